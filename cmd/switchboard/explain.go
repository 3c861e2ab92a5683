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

	"github.com/switchboard-sip/switchboard/agent"
	"github.com/switchboard-sip/switchboard/callctl"
)

// explainCommand is a dry run of the whole decision for one call: nothing
// is stored, no contact is created, no SIP is sent (agent.Explain).
func explainCommand(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("explain", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("c", "", "config file")
	from := fs.String("from", "", "calling number, as the caller sends it, or a SIP address (user@host)")
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
	src, err := explainSource(*source)
	if err != nil {
		fmt.Fprintln(stderr, "switchboard explain:", err)
		return 2
	}
	ex, err := agent.Explain(context.Background(), cfg, agent.Query{From: *from, To: *to, Name: *name, Source: src, At: when})
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

// explainSource is --source: an IP, or IP:PORT; empty means a trunk's.
func explainSource(s string) (netip.AddrPort, error) {
	if s == "" {
		return netip.AddrPort{}, nil
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap, nil
	}
	ip, err := netip.ParseAddr(s)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("--source %q: not an IP or IP:PORT", s)
	}
	return netip.AddrPortFrom(ip, 5060), nil
}

func writeExplanation(w io.Writer, ex *agent.Explanation) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	line := func(k, format string, args ...any) { fmt.Fprintf(tw, "%s\t%s\n", k, fmt.Sprintf(format, args...)) }
	for _, n := range ex.Notes {
		line("note", "%s", n)
	}
	line("direction", "%s (source %s%s)", orDash(string(ex.Direction)), ex.Source, trunkNote(ex.Trunk))
	line("caller", "%s", partyLine(ex.Caller))
	line("called", "%s", partyLine(ex.Called))
	if ex.OriginalCalled != nil {
		line("originally called", "%s", partyLine(*ex.OriginalCalled))
	}
	if ex.Emergency != "" {
		line("emergency", "%s", ex.Emergency)
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
		if !h.Reached {
			line("hotline called", "%s (%s, matched %s, %s)", h.Name, h.Company, h.Number, open)
		} else {
			line("hotline", "%s (%s, matched %s, %s)", h.Name, h.Company, h.Number, open)
			line("greeting", "%s", h.Greeting)
			line("display", "%s", h.Display)
		}
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
	for _, st := range ex.Steps {
		line("stage", "%s: %s", st.Stage, st.Verdict)
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

func blockLine(b agent.ExplainBlock) string {
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

func contactLine(c *agent.ExplainContact) string {
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
