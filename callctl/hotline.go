package callctl

import (
	"github.com/switchboard-sip/switchboard/cdr"

	"context"
	"fmt"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/switchboard-sip/switchboard/configs"
	"github.com/switchboard-sip/switchboard/contacts"
	"github.com/switchboard-sip/switchboard/templates"
)

// Headers the hotline stage adds to the INVITE forwarded to the PBX
// (SPEC §5).
const (
	HeaderHotline = "X-Switchboard-Hotline"
	HeaderContact = "X-Switchboard-Contact"
)

// ContactInfo is what the policy stages know about the remote party's
// contact: enough for hotline templates (.Contact) and rules (contact).
type ContactInfo struct {
	ID      int64
	Name    string
	Company string
	Email   string
	Tags    []string
	Fields  map[string]string
	Calls   int64 // calls in the contact's history
}

// ContactFinder gives the contact of a call's remote party, nil when none
// is known. It is called on the INVITE path, so it must answer from memory
// (the contact cache), never from the database.
type ContactFinder interface {
	FindContact(c *Call) *ContactInfo
}

// ContactFinderFunc adapts a function to ContactFinder.
type ContactFinderFunc func(c *Call) *ContactInfo

// FindContact implements ContactFinder.
func (f ContactFinderFunc) FindContact(c *Call) *ContactInfo { return f(c) }

// ContactIndex is the in-memory contact index; *contacts.Cache implements
// it.
type ContactIndex interface {
	Lookup(e164 string) *contacts.Info
}

// IndexContacts finds a call's contact in the contact index by the remote
// party's E.164 number. Anonymous and internal parties have no contact,
// as in the contact stage.
func IndexContacts(ix ContactIndex) ContactFinder {
	return ContactFinderFunc(func(c *Call) *ContactInfo {
		r := c.Remote()
		if r.Anonymous || r.Internal || r.E164 == "" {
			return nil
		}
		in := ix.Lookup(r.E164)
		if in == nil {
			return nil
		}
		return &ContactInfo{ID: in.ID, Name: in.Name, Company: in.Company, Email: in.Email, Tags: in.Tags}
	})
}

func findContact(f ContactFinder, c *Call) *ContactInfo {
	if f == nil {
		return nil
	}
	return f.FindContact(c)
}

// callTime is the time policy is evaluated at: the call's start, so that
// `switchboard explain --at` and the live call agree.
func callTime(c *Call) time.Time {
	if c.StartedAt.IsZero() {
		return time.Now()
	}
	return c.StartedAt
}

// TemplateData is the data templates and rules see for a call (SPEC §5).
// The hotline part is filled from the call's hotline when h is not nil,
// and Now is then in the hotline's time zone.
func TemplateData(c *Call, h *templates.HotlineTemplates, contact *ContactInfo, now time.Time) templates.Data {
	d := templates.Data{
		Call: templates.Call{
			ID: c.ID, CallID: c.CallID, Direction: string(c.Direction), Trunk: c.Trunk,
			Hotline: c.Hotline, Tags: c.Tags,
		},
		Caller: templateParty(c.Caller),
		Called: templateParty(c.Called),
		Now:    now,
		Lookup: c.Lookup,
	}
	// A call without a hotline has no opening hours: it counts as open,
	// so that a rule on !hotline.open only fires for closed hotlines.
	d.Hotline.Open = true
	if h != nil {
		d.Hotline = templates.Hotline{Name: h.Name(), Company: h.Config.Company, Open: h.Open(now)}
		if h.Config.Location != nil {
			// Templates and rules see the time where the hotline is, so
			// that .Now.Hour and now.getHours() are its local hours.
			d.Now = now.In(h.Config.Location)
		}
	}
	if contact != nil {
		d.Contact = &templates.Contact{
			ID: contact.ID, Name: contact.Name, Company: contact.Company, Email: contact.Email,
			Tags: contact.Tags, Fields: contact.Fields, Calls: contact.Calls,
		}
	}
	return d
}

func templateParty(p Party) templates.Party {
	return templates.Party{
		E164: p.E164, National: p.National, International: p.International,
		Raw: p.Raw, Name: p.Name, Anonymous: p.Anonymous, Internal: p.Internal,
	}
}

// HotlineStage picks the hotline by the called number of an inbound call
// and applies it (SPEC §5, §7 hotlines): the display name and headers the
// PBX sees, the route, and opening hours. It needs only memory; a template
// that fails at run time is logged and its text left empty (fail open).
type HotlineStage struct {
	hotlines *templates.Hotlines
	contacts ContactFinder
	log      *zap.Logger
}

// PolicyOptions are what the hotline and rules stages need besides their
// config section. Every field is optional.
type PolicyOptions struct {
	// Contacts finds the remote party's contact; nil: none is ever known.
	Contacts ContactFinder
	// Location is the config's time zone: rules of calls without a hotline
	// see now in it. UTC when nil.
	Location *time.Location
	// LinkPrefix is what the template function tel puts before a number
	// (missed.email.link_prefix); tel: when empty.
	LinkPrefix string
	// Hotlines gives the rules stage the hotline's company and opening
	// state: pass HotlineStage.Hotlines().
	Hotlines *templates.Hotlines
	Log      *zap.Logger
}

func (o PolicyOptions) withDefaults() PolicyOptions {
	if o.Location == nil {
		o.Location = time.UTC
	}
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	return o
}

// NewHotlineStage compiles the hotlines section; errors name the key and
// line of each bad template.
func NewHotlineStage(cfg []configs.Hotline, o PolicyOptions) (*HotlineStage, error) {
	o = o.withDefaults()
	set, err := templates.CompileHotlines(cfg, templates.Options{LinkPrefix: o.LinkPrefix})
	if err != nil {
		return nil, fmt.Errorf("callctl: hotline stage: %w", err)
	}
	return NewHotlineStageOf(set, o), nil
}

// NewHotlineStageOf builds the stage over hotlines compiled already
// (templates.Compile), so that a config is compiled once when it loads.
func NewHotlineStageOf(set *templates.Hotlines, o PolicyOptions) *HotlineStage {
	o = o.withDefaults()
	return &HotlineStage{hotlines: set, contacts: o.Contacts, log: o.Log}
}

// Hotlines returns the compiled hotlines, for the rules stage and explain.
func (s *HotlineStage) Hotlines() *templates.Hotlines { return s.hotlines }

// Name implements Stage.
func (s *HotlineStage) Name() string { return "hotline" }

// HotlineResult is what the hotline stage found for a call: for the board
// (the rendered greeting and display), for explain, and for the stage
// itself. Text values are sanitised; HTML holds them escaped for the board.
type HotlineResult struct {
	Hotline     *templates.HotlineTemplates // nil when no hotline matched
	Number      string                      // the called number that matched
	Open        bool
	Contact     *ContactInfo
	Rendered    templates.Rendered // company, greeting, display as text
	HTML        templates.Rendered // the same, HTML-escaped
	DisplayName string             // caller name for From and P-Asserted-Identity
	Err         error              // a template that failed at run time
}

// Evaluate finds and renders the hotline of c without changing c. Only
// inbound calls have a hotline: the called number of an outbound call is
// the outside world, not one of ours.
func (s *HotlineStage) Evaluate(c *Call) HotlineResult {
	if c.Direction == Outbound {
		return HotlineResult{}
	}
	var r HotlineResult
	r.Number = c.Called.Key()
	r.Hotline = s.hotlines.Match(r.Number)
	if r.Hotline == nil && c.OriginalCalled != nil {
		// A call forwarded to the front desk: the number first dialled
		// says which company the caller wanted.
		r.Number = c.OriginalCalled.Key()
		r.Hotline = s.hotlines.Match(r.Number)
	}
	if r.Hotline == nil {
		return HotlineResult{}
	}
	now := callTime(c)
	r.Open = r.Hotline.Open(now)
	r.Contact = findContact(s.contacts, c)
	cc := *c
	cc.Hotline = r.Hotline.Name()
	rendered, err := r.Hotline.Render(TemplateData(&cc, r.Hotline, r.Contact, now))
	r.Err = err
	r.Rendered = templates.Rendered{
		Company:  SanitizeHeaderValue(rendered.Company),
		Greeting: SanitizeHeaderValue(rendered.Greeting),
		Display:  SanitizeHeaderValue(rendered.Display),
	}
	r.HTML = r.Rendered.HTML()
	r.DisplayName = CleanDisplayName(r.Hotline.Config.CallerNamePrefix + callerName(c, r.Contact))
	return r
}

// callerName is the name the PBX shows (SPEC §5 caller-name lookup): the
// contact's name, else the display name received, else the number.
func callerName(c *Call, contact *ContactInfo) string {
	if contact != nil && CleanDisplayName(contact.Name) != "" {
		return contact.Name
	}
	if n := CleanDisplayName(c.Caller.Name); n != "" {
		return n
	}
	switch {
	case c.Caller.Anonymous:
		return "Anonymous"
	case c.Caller.National != "":
		return c.Caller.National
	case c.Caller.E164 != "":
		return c.Caller.E164
	}
	return c.Caller.Raw
}

// Handle implements Stage: it sets the hotline, display name, headers and
// route on the call. It does not refuse a closed hotline's calls: the
// closed stage does, after the rules, so that a rule can see hotline.open
// and route a closed hotline's calls elsewhere (voicemail, a VIP line).
func (s *HotlineStage) Handle(_ context.Context, c *Call) Decision {
	if c.Emergency || c.CallbackOf != "" {
		// SPEC §1: an emergency call and its call back go on unchanged:
		// no caller-name change, no hotline route.
		return Decision{Verdict: Continue}
	}
	r := s.Evaluate(c)
	c.Trace.note(r)
	if r.Hotline == nil {
		return Decision{Verdict: Continue}
	}
	if r.Err != nil {
		s.log.Warn("hotline template failed", zap.String("call_id", c.CallID), zap.String("hotline", r.Hotline.Name()), zap.Error(r.Err))
	}
	cfg := &r.Hotline.Config
	c.Hotline = cfg.Name
	c.Campaign = cfg.Campaign
	c.DisplayName = r.DisplayName
	c.Company, c.Greeting, c.Display = r.Rendered.Company, r.Rendered.Greeting, r.Rendered.Display
	if r.Contact != nil {
		c.Contact = r.Contact
	}
	if c.Headers == nil {
		c.Headers = make(map[string]string, 2)
	}
	c.Headers[HeaderHotline] = SanitizeHeaderValue(cfg.Name)
	if r.Contact != nil && r.Contact.ID != 0 {
		c.Headers[HeaderContact] = strconv.FormatInt(r.Contact.ID, 10)
	}
	if cfg.Route != "" {
		c.Target = cfg.Route
	}
	c.Fallback = cfg.Fallback
	return Decision{Verdict: Continue}
}

// ClosedStage refuses calls to a hotline outside its opening hours with
// the hotline's closed response and announcement. It goes after the rules
// stage: a rule's route ends the pipeline before it, which is how a rule
// sends a closed hotline's calls somewhere else.
type ClosedStage struct {
	hotlines *templates.Hotlines
}

// NewClosedStage builds the closed stage over the hotline stage's
// hotlines.
func NewClosedStage(h *HotlineStage) *ClosedStage {
	return &ClosedStage{hotlines: h.Hotlines()}
}

// Name implements Stage.
func (s *ClosedStage) Name() string { return "closed" }

// Handle implements Stage.
func (s *ClosedStage) Handle(_ context.Context, c *Call) Decision {
	if c.Emergency || c.CallbackOf != "" {
		// SPEC §1: opening hours never refuse an emergency call nor the
		// emergency services' call back.
		return Decision{Verdict: Continue}
	}
	h := s.hotlines.ByName(c.Hotline)
	if h == nil || h.Open(callTime(c)) {
		return Decision{Verdict: Continue}
	}
	code := h.Config.Closed.Response
	if code == 0 {
		code = StatusTemporarilyUnavailable
	}
	return Decision{
		Verdict:      Reject,
		Code:         code,
		Reason:       "hotline " + h.Name() + " is closed",
		Disposition:  cdr.Closed,
		Announcement: h.Config.Closed.Announcement,
	}
}
