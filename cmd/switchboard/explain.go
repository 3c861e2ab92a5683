package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"text/tabwriter"
	"time"

	"go.uber.org/zap"

	"github.com/switchboard-sip/switchboard/callctl"
	"github.com/switchboard-sip/switchboard/configs"
	"github.com/switchboard-sip/switchboard/contacts"
	"github.com/switchboard-sip/switchboard/storage"
)

func init() { extraCommands["explain"] = explainCommand }

// explanation is the whole decision for one hypothetical call.
type explanation struct {
	Direction      callctl.Direction `json:"direction"`
	Source         string            `json:"source"`
	Trunk          string            `json:"trunk,omitempty"`
	At             time.Time         `json:"at"`
	Caller         callctl.Party     `json:"caller"`
	Called         callctl.Party     `json:"called"`
	OriginalCalled *callctl.Party    `json:"original_called,omitempty"`
	Block          explainBlock      `json:"block"`
	Contact        *explainContact   `json:"contact,omitempty"`
	Hotline        *explainHotline   `json:"hotline,omitempty"`
	Rules          []explainRule     `json:"rules"`
	RuleErrors     []string          `json:"rule_errors,omitempty"`
	Headers        map[string]string `json:"headers,omitempty"`
	DisplayName    string            `json:"display_name,omitempty"`
	Decision       explainDecision   `json:"decision"`
}

type explainBlock struct {
	Blocked   bool   `json:"blocked"`
	Anonymous bool   `json:"anonymous"`
	Number    string `json:"number"`
	Entry     any    `json:"entry,omitempty"`
}

type explainContact struct {
	Found  *contacts.Info `json:"found,omitempty"`
	Create bool           `json:"create"`
	Name   string         `json:"name,omitempty"`
	Skip   string         `json:"skip,omitempty"`
}

type explainHotline struct {
	Name     string `json:"name"`
	Number   string `json:"number"`
	Open     bool   `json:"open"`
	Company  string `json:"company"`
	Greeting string `json:"greeting"`
	Display  string `json:"display"`
	Error    string `json:"error,omitempty"`
}

type explainRule struct {
	Name string `json:"name"`
	Then any    `json:"then"`
}

type explainDecision struct {
	Action       string              `json:"action"` // forward, reject
	Code         int                 `json:"code,omitempty"`
	Reason       string              `json:"reason,omitempty"`
	Disposition  callctl.Disposition `json:"disposition,omitempty"`
	Announcement string              `json:"announcement,omitempty"`
	Target       string              `json:"target,omitempty"`
}

// explainCommand is a dry run of the whole decision for one call: nothing
// is stored, no contact is created, no SIP is sent.
func explainCommand(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("explain", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("c", "", "config file")
	from := fs.String("from", "", "calling number, as the caller sends it")
	to := fs.String("to", "", "called number, as the caller sends it")
	name := fs.String("name", "", "display name the caller sends")
	source := fs.String("source", "", "IP[:PORT] the INVITE comes from (default: the first trunk)")
	at := fs.String("at", "", "time of the call, RFC 3339 or 2006-01-02T15:04 in the config's zone (default now)")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *from == "" || *to == "" {
		fmt.Fprintln(stderr, "switchboard explain: --from and --to are required")
		return 2
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	when, err := parseAt(*at, cfg.Location)
	if err != nil {
		fmt.Fprintln(stderr, "switchboard explain: --at:", err)
		return 2
	}
	ex, err := explain(cfg, *from, *to, *name, *source, when)
	if err != nil {
		fmt.Fprintln(stderr, "switchboard explain:", err)
		return 1
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(ex); err != nil {
			return 1
		}
		return 0
	}
	writeExplanation(stdout, ex)
	return 0
}

func parseAt(s string, loc *time.Location) (time.Time, error) {
	if s == "" {
		return time.Now(), nil
	}
	if loc == nil {
		loc = time.UTC
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.ParseInLocation("2006-01-02T15:04", s, loc)
}

func explain(cfg *configs.Config, from, to, name, source string, at time.Time) (*explanation, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	db, err := storage.Open(cfg.Storage.Driver, cfg.Storage.DSN)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	d, err := newDeps(ctx, cfg, db, zap.NewNop())
	if err != nil {
		return nil, err
	}
	defer d.close(ctx)
	numbers, err := contacts.NewNumbers(cfg.Numbers.Region, cfg.Numbers.Internal)
	if err != nil {
		return nil, err
	}
	st, err := buildStages(cfg, d, numbers)
	if err != nil {
		return nil, err
	}
	routing, err := buildRouting(cfg)
	if err != nil {
		return nil, err
	}
	src, err := explainSource(cfg, source)
	if err != nil {
		return nil, err
	}
	dir, trunk := routing.Classify(src)
	ex := &explanation{Direction: dir, Source: src.String(), At: at, Rules: []explainRule{}}
	if dir == "" {
		ex.Decision = explainDecision{Action: "reject", Code: 403, Reason: "unknown source"}
		return ex, nil
	}
	c := &callctl.Call{Direction: dir, CallID: "explain", StartedAt: at, Node: cfg.Node, Signalling: callctl.Signalling{
		RequestURI: callctl.Address{Scheme: "sip", User: to, Host: "switchboard"},
		To:         callctl.Address{Scheme: "sip", User: to, Host: "switchboard"},
		From:       callctl.Address{Scheme: "sip", User: from, Host: "caller", Display: name},
	}}
	if trunk != nil {
		c.Trunk, c.Region, c.Trusted = trunk.Name, trunk.Region, dir == callctl.Inbound && trunk.Trust
		ex.Trunk = trunk.Name
	}
	d0 := explainStages(ctx, st, c, ex)
	ex.Caller, ex.Called, ex.OriginalCalled = c.Caller, c.Called, c.OriginalCalled
	ex.Headers, ex.DisplayName = c.Headers, c.DisplayName
	ex.Decision = decisionOf(d0, c, cfg, trunk != nil && trunk.Outbound != nil)
	return ex, nil
}

// explainStages asks each stage what it would do, in pipeline order,
// without the side effects of a live call (no contact is created).
func explainStages(ctx context.Context, st *stages, c *callctl.Call, ex *explanation) callctl.Decision {
	st.identify.Handle(ctx, c)
	b := st.block.Check(c)
	ex.Block = explainBlock{Blocked: b.Blocked, Anonymous: b.Anonymous, Number: b.Number}
	if b.Entry != nil {
		ex.Block.Entry = b.Entry
	}
	if d := st.block.Handle(ctx, c); d.Verdict != callctl.Continue {
		return d
	}
	cr := st.contact.Check(c)
	ex.Contact = &explainContact{Found: cr.Contact, Create: cr.Create, Name: cr.Name, Skip: cr.Skip}
	if cr.Contact != nil {
		c.ContactID = cr.Contact.ID
	}
	if hr := st.hotline.Evaluate(c); hr.Hotline != nil {
		ex.Hotline = &explainHotline{Name: hr.Hotline.Name(), Number: hr.Number, Open: hr.Open,
			Company: hr.Rendered.Company, Greeting: hr.Rendered.Greeting, Display: hr.Rendered.Display}
		if hr.Err != nil {
			ex.Hotline.Error = hr.Err.Error()
		}
	}
	st.hotline.Handle(ctx, c)
	rr := st.rules.Evaluate(c)
	for _, f := range rr.Fired {
		ex.Rules = append(ex.Rules, explainRule{Name: f.Rule, Then: f.Then})
	}
	for _, err := range rr.Errors {
		ex.RuleErrors = append(ex.RuleErrors, err.Error())
	}
	if d := st.rules.Handle(ctx, c); d.Verdict != callctl.Continue {
		return d
	}
	return st.closed.Handle(ctx, c)
}

// decisionOf says what the proxy would do: reject, or forward to the
// route a stage chose, the PBX (inbound) or the trunk (outbound).
func decisionOf(d callctl.Decision, c *callctl.Call, cfg *configs.Config, trunkOut bool) explainDecision {
	if d.Verdict == callctl.Reject {
		return explainDecision{Action: "reject", Code: d.Code, Reason: d.Reason, Disposition: d.Disposition, Announcement: d.Announcement}
	}
	target := c.Target
	if d.Verdict == callctl.Route {
		target = d.Target
	}
	if target == "" && c.Direction == callctl.Outbound {
		if tr := cfg.Trunk(c.Trunk); trunkOut && tr != nil {
			target = tr.Outbound
		} else {
			return explainDecision{Action: "reject", Code: 404, Reason: "no trunk with an outbound address", Disposition: callctl.Failed}
		}
	}
	if target == "" {
		target = cfg.SIP.PBX
	}
	return explainDecision{Action: "forward", Target: target}
}

// explainSource is --source, or an address of the first trunk.
func explainSource(cfg *configs.Config, s string) (netip.AddrPort, error) {
	if s != "" {
		if ap, err := netip.ParseAddrPort(s); err == nil {
			return ap, nil
		}
		ip, err := netip.ParseAddr(s)
		if err != nil {
			return netip.AddrPort{}, fmt.Errorf("--source %q: not an IP or IP:PORT", s)
		}
		return netip.AddrPortFrom(ip, 5060), nil
	}
	for _, t := range cfg.SIP.Trunks {
		for _, m := range t.Match {
			if ap, err := netip.ParseAddrPort(m); err == nil {
				return ap, nil
			}
			if p, err := netip.ParsePrefix(m); err == nil {
				return netip.AddrPortFrom(p.Addr(), 5060), nil
			}
			if ip, err := netip.ParseAddr(m); err == nil {
				return netip.AddrPortFrom(ip, 5060), nil
			}
		}
	}
	return netip.AddrPort{}, fmt.Errorf("no trunk to take a source address from; give --source")
}

func writeExplanation(w io.Writer, ex *explanation) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	line := func(k, format string, args ...any) { fmt.Fprintf(tw, "%s\t%s\n", k, fmt.Sprintf(format, args...)) }
	line("direction", "%s (source %s%s)", orDash(string(ex.Direction)), ex.Source, trunkNote(ex.Trunk))
	line("caller", "%s", partyLine(ex.Caller))
	line("called", "%s", partyLine(ex.Called))
	if ex.OriginalCalled != nil {
		line("originally called", "%s", partyLine(*ex.OriginalCalled))
	}
	line("blocking", "%s", blockLine(ex.Block))
	if ex.Contact != nil {
		line("contact", "%s", contactLine(ex.Contact))
	}
	if h := ex.Hotline; h != nil {
		open := "open"
		if !h.Open {
			open = "closed"
		}
		line("hotline", "%s (%s, matched %s, %s)", h.Name, h.Company, h.Number, open)
		line("greeting", "%s", h.Greeting)
		line("display", "%s", h.Display)
	} else if ex.Direction == callctl.Inbound {
		line("hotline", "none")
	}
	if ex.DisplayName != "" {
		line("caller name to PBX", "%s", ex.DisplayName)
	}
	for _, r := range ex.Rules {
		b, _ := json.Marshal(r.Then)
		line("rule fired", "%s: %s", r.Name, b)
	}
	for _, e := range ex.RuleErrors {
		line("rule skipped", "%s", e)
	}
	for k, v := range ex.Headers {
		line("header", "%s: %s", k, v)
	}
	d := ex.Decision
	switch d.Action {
	case "reject":
		line("decision", "reject %d (%s)%s", d.Code, d.Reason, annNote(d.Announcement))
	default:
		line("decision", "forward to %s", d.Target)
	}
	tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func trunkNote(t string) string {
	if t == "" {
		return ""
	}
	return ", trunk " + t
}

func annNote(a string) string {
	if a == "" {
		return ""
	}
	return ", announcement " + a
}

func partyLine(p callctl.Party) string {
	var b strings.Builder
	b.WriteString(orDash(p.Raw))
	if p.E164 != "" {
		fmt.Fprintf(&b, " → %s (%s)", p.E164, p.National)
	}
	if p.Name != "" {
		fmt.Fprintf(&b, " %q", p.Name)
	}
	for flag, on := range map[string]bool{"anonymous": p.Anonymous, "internal": p.Internal} {
		if on {
			b.WriteString(" [" + flag + "]")
		}
	}
	return b.String()
}

func blockLine(b explainBlock) string {
	if !b.Blocked {
		return "not blocked (" + orDash(b.Number) + ")"
	}
	s := "BLOCKED " + orDash(b.Number)
	if b.Anonymous {
		s += " (anonymous)"
	}
	if b.Entry != nil {
		e, _ := json.Marshal(b.Entry)
		s += " by " + string(e)
	}
	return s
}

func contactLine(c *explainContact) string {
	switch {
	case c.Found != nil:
		return fmt.Sprintf("found #%d %s", c.Found.ID, c.Found.Name)
	case c.Create:
		if c.Name == "" {
			return "to be created (no name)"
		}
		return "to be created: " + c.Name
	default:
		return "none (" + c.Skip + ")"
	}
}
