package agent

import (
	"github.com/switchboard-sip/switchboard/cdr"

	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/switchboard-sip/switchboard/blocking"
	"github.com/switchboard-sip/switchboard/callctl"
	"github.com/switchboard-sip/switchboard/configs"
	"github.com/switchboard-sip/switchboard/contacts"
	"github.com/switchboard-sip/switchboard/storage"
	"github.com/switchboard-sip/switchboard/wire"
)

// Query is one hypothetical call for Explain: the numbers as the caller
// sends them, the address the INVITE comes from, and when.
type Query struct {
	From, To, Name string
	// Source is the sender; the zero value means an address of the
	// first trunk.
	Source netip.AddrPort
	At     time.Time
}

// Explanation is the whole decision for one hypothetical call (SPEC §6
// explain), in the JSON shape `switchboard explain --json` prints.
type Explanation struct {
	Direction      callctl.Direction `json:"direction"`
	Source         string            `json:"source"`
	Trunk          string            `json:"trunk,omitempty"`
	At             time.Time         `json:"at"`
	Caller         callctl.Party     `json:"caller"`
	Called         callctl.Party     `json:"called"`
	OriginalCalled *callctl.Party    `json:"original_called,omitempty"`
	Steps          []ExplainStep     `json:"steps"`
	Block          ExplainBlock      `json:"block"`
	Contact        *ExplainContact   `json:"contact,omitempty"`
	Hotline        *ExplainHotline   `json:"hotline,omitempty"`
	Rules          []ExplainRule     `json:"rules"`
	RuleErrors     []string          `json:"rule_errors,omitempty"`
	Headers        map[string]string `json:"headers,omitempty"`
	DisplayName    string            `json:"display_name,omitempty"`
	Decision       ExplainDecision   `json:"decision"`
	// Emergency says how an emergency call or its call back is handled
	// (SPEC §1); empty for other calls.
	Emergency string `json:"emergency,omitempty"`
	// Notes say what the dry run could not see (no database yet, a read
	// that failed).
	Notes []string `json:"notes,omitempty"`
}

// ExplainStep is one pipeline stage and its verdict, in pipeline order.
type ExplainStep struct {
	Stage   string `json:"stage"`
	Verdict string `json:"verdict"` // continue, reject, route
}

// ExplainBlock is the block stage's finding.
type ExplainBlock struct {
	Blocked   bool        `json:"blocked"`
	Anonymous bool        `json:"anonymous"`
	Number    string      `json:"number"`
	Entry     *wire.Block `json:"entry,omitempty"`
}

// ExplainContact is the contact stage's finding.
type ExplainContact struct {
	Found  *contacts.Info `json:"found,omitempty"`
	Create bool           `json:"create"`
	Name   string         `json:"name,omitempty"`
	Skip   string         `json:"skip,omitempty"`
}

// ExplainHotline is the hotline called. Reached is false when an earlier
// stage (blocking) ended the call before the hotline stage ran: the
// hotline is still named, since that is what the caller dialled.
type ExplainHotline struct {
	Name     string `json:"name"`
	Number   string `json:"number"`
	Open     bool   `json:"open"`
	Reached  bool   `json:"reached"`
	Company  string `json:"company"`
	Greeting string `json:"greeting"`
	Display  string `json:"display"`
	Error    string `json:"error,omitempty"`
}

// ExplainRule is a rule that fired, with its action.
type ExplainRule struct {
	Name string `json:"name"`
	Then any    `json:"then"`
}

// ExplainDecision is what the proxy would do with the call.
type ExplainDecision struct {
	Action       string          `json:"action"` // forward, reject
	Code         int             `json:"code,omitempty"`
	Reason       string          `json:"reason,omitempty"`
	Disposition  cdr.Disposition `json:"disposition,omitempty"`
	Announcement string          `json:"announcement,omitempty"`
	Target       string          `json:"target,omitempty"`
}

// Explain runs the call pipeline for q in dry-run mode: the same stages
// and routing as a live call, but nothing is written, no contact id is
// reserved and no SIP is sent. The database is opened read-only; without
// one the decision uses the config alone.
func Explain(ctx context.Context, cfg *configs.Config, q Query) (*Explanation, error) {
	pol, err := compile(cfg)
	if err != nil {
		return nil, err
	}
	ex := &Explanation{At: q.At, Rules: []ExplainRule{}, Steps: []ExplainStep{}}
	db, err := storage.OpenReadOnly(cfg.Storage.Driver, cfg.Storage.DSN)
	switch {
	case errors.Is(err, storage.ErrNoDatabase):
		ex.Notes = append(ex.Notes, "no database yet: stored blocks and contacts are not known")
	case err != nil:
		return nil, err
	default:
		defer db.Close()
	}
	d, lookup := dryDeps(ctx, db, pol, ex)
	routing, err := pol.routing(d)
	if err != nil {
		return nil, err
	}
	src := q.Source
	if !src.IsValid() {
		if src, err = trunkSource(cfg); err != nil {
			return nil, err
		}
	}
	ex.Source = src.String()
	dir, trunk := routing.Classify(src)
	ex.Direction = dir
	if dir == "" {
		ex.Decision = ExplainDecision{Action: "reject", Code: callctl.StatusForbidden, Reason: "unknown source"}
		return ex, nil
	}
	c := &callctl.Call{Direction: dir, CallID: "explain", StartedAt: q.At, Node: cfg.Node, Trace: &callctl.Trace{},
		Signalling: callctl.Signalling{
			RequestURI: explainAddress(q.To, "switchboard", ""),
			To:         explainAddress(q.To, "switchboard", ""),
			From:       explainAddress(q.From, "caller", q.Name),
		}}
	if trunk != nil {
		c.Trunk, c.Region, c.Trusted = trunk.Name, trunk.Region, dir == callctl.Inbound && trunk.Trust
		ex.Trunk = trunk.Name
	}
	decision := routing.Pipeline.Run(ctx, c)
	ex.Caller, ex.Called, ex.OriginalCalled = c.Caller, c.Called, c.OriginalCalled
	ex.Headers, ex.DisplayName = c.Headers, c.DisplayName
	ex.addSteps(c.Trace.Steps)
	switch {
	case c.Emergency:
		ex.Emergency = "passes every check"
	case c.CallbackOf != "":
		ex.Emergency = "call back of emergency call " + c.CallbackOf + ": straight to the extension"
	}
	if ex.Hotline == nil && dir == callctl.Inbound {
		ex.calledHotline(routing.Pipeline, c)
	}
	if lookup.Err != nil {
		ex.Notes = append(ex.Notes, "contacts not read: "+lookup.Err.Error())
	}
	if decision.Verdict == callctl.Reject {
		ex.Decision = ExplainDecision{Action: "reject", Code: decision.Code, Reason: decision.Reason,
			Disposition: decision.Disposition, Announcement: decision.Announcement}
		return ex, nil
	}
	target, err := routing.Target(c, trunk)
	if err != nil {
		ex.Decision = ExplainDecision{Action: "reject", Code: callctl.StatusNotFound, Reason: err.Error(), Disposition: cdr.Failed}
		return ex, nil
	}
	ex.Decision = ExplainDecision{Action: "forward", Target: target.String()}
	return ex, nil
}

// dryDeps are the stages' dependencies for a dry run: the block list and
// contacts read once from db (nil: none), no announcements.
func dryDeps(ctx context.Context, db *storage.DB, pol *policy, ex *Explanation) (deps, *contacts.Lookup) {
	var bdb blocking.DB
	var cdb contacts.DB
	if db != nil {
		bdb, cdb = db, db
	}
	blocks, err := blocking.Load(ctx, bdb, pol.blockEntries)
	if err != nil {
		ex.Notes = append(ex.Notes, "stored blocks not read: "+err.Error())
	}
	lookup := contacts.NewLookup(ctx, cdb)
	return deps{log: zap.NewNop(), blocks: blocks, contacts: lookup}, lookup
}

// addSteps turns the pipeline's trace into the explanation.
func (ex *Explanation) addSteps(steps []callctl.Step) {
	for _, s := range steps {
		ex.Steps = append(ex.Steps, ExplainStep{Stage: s.Stage, Verdict: verdictName(s.Decision.Verdict)})
		switch r := s.Detail.(type) {
		case callctl.BlockResult:
			ex.Block = ExplainBlock{Blocked: r.Blocked, Anonymous: r.Anonymous, Number: r.Number}
			if r.Entry != nil {
				b := wire.NewBlock(*r.Entry, time.UTC)
				ex.Block.Entry = &b
			}
		case callctl.ContactResult:
			ex.Contact = &ExplainContact{Found: r.Contact, Create: r.Create, Name: r.Name, Skip: r.Skip}
		case callctl.HotlineResult:
			ex.hotline(r, true)
		case callctl.RulesResult:
			for _, f := range r.Fired {
				ex.Rules = append(ex.Rules, ExplainRule{Name: f.Rule, Then: f.Then})
			}
			for _, err := range r.Errors {
				ex.RuleErrors = append(ex.RuleErrors, err.Error())
			}
		}
	}
}

// calledHotline names the hotline of a call the pipeline ended before its
// hotline stage (a blocked caller): the stage's own evaluation, which
// changes nothing.
func (ex *Explanation) calledHotline(p callctl.Pipeline, c *callctl.Call) {
	for _, s := range p {
		if h, ok := s.(*callctl.HotlineStage); ok {
			ex.hotline(h.Evaluate(c), false)
		}
	}
}

func (ex *Explanation) hotline(r callctl.HotlineResult, reached bool) {
	if r.Hotline == nil {
		return
	}
	ex.Hotline = &ExplainHotline{Name: r.Hotline.Name(), Number: r.Number, Open: r.Open, Reached: reached,
		Company: r.Rendered.Company, Greeting: r.Rendered.Greeting, Display: r.Rendered.Display}
	if r.Err != nil {
		ex.Hotline.Error = r.Err.Error()
	}
}

func verdictName(v callctl.Verdict) string {
	switch v {
	case callctl.Reject:
		return "reject"
	case callctl.Route:
		return "route"
	}
	return "continue"
}

// trunkSource is an address of the first trunk, the default sender of an
// explained call.
func trunkSource(cfg *configs.Config) (netip.AddrPort, error) {
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

// explainAddress is the address a dry run's party sends: a number at a
// placeholder host, or a SIP address as given (user@host, optionally with
// sip: or sips:), so that blocking by address can be tried too.
func explainAddress(n, host, display string) callctl.Address {
	a := callctl.Address{Scheme: "sip", User: n, Host: host, Display: display}
	for _, scheme := range []string{"sip:", "sips:"} {
		if len(n) > len(scheme) && strings.EqualFold(n[:len(scheme)], scheme) {
			n, a.Scheme = n[len(scheme):], scheme[:len(scheme)-1]
		}
	}
	if user, h, ok := strings.Cut(n, "@"); ok && user != "" && h != "" {
		a.User, a.Host = user, h
	}
	return a
}
