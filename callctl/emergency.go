package callctl

import (
	"context"
	"time"
)

// EmergencyNumbers tells whether a dialled number reaches the emergency
// services of a region; *emergency.Numbers implements it.
type EmergencyNumbers interface {
	Is(dialled, region string) bool
}

// Callbacks finds the emergency call whose callback window covers a call
// to number: the extension that made it and its record id. It reads
// memory only (the SIP path asks it on every inbound call).
type Callbacks interface {
	Callback(number string, now time.Time) (ext, recordID string, ok bool)
}

// ReasonEmergency and ReasonCallback are the decisions' reasons for an
// emergency call and for the call back to the extension that made one.
const (
	ReasonEmergency = "emergency"
	ReasonCallback  = "emergency callback"
)

// EmergencyStage runs right after Identify (SPEC §1 "Emergency calls
// always go through"). An outbound call to an emergency number is marked
// Emergency and routed at once, to emergency.route or (empty target) the
// trunk: no later stage runs, so no block entry, rule, hotline hours or
// caller-name change can touch it. An inbound call to the number an
// emergency call presented, within the callback window, goes straight to
// the extension that made it, past blocking (anonymous callers included),
// hours and rules. It never rejects and fails open: without a recogniser
// or callbacks it lets every call continue.
type EmergencyStage struct {
	numbers   EmergencyNumbers
	region    string // numbers.region, for a call whose trunk names none
	route     string
	callbacks Callbacks
	target    func(ext string) string
	now       func() time.Time
}

var _ Stage = (*EmergencyStage)(nil)

// EmergencyOptions configure the stage.
type EmergencyOptions struct {
	Numbers EmergencyNumbers
	// Region is numbers.region, used when the trunk names no region.
	Region string
	// Route is emergency.route; empty: the trunk.
	Route     string
	Callbacks Callbacks
	// Target is the SIP URI of an extension at the PBX, for callbacks.
	Target func(ext string) string
}

// NewEmergencyStage returns the stage.
func NewEmergencyStage(o EmergencyOptions) *EmergencyStage {
	return &EmergencyStage{numbers: o.Numbers, region: o.Region, route: o.Route, callbacks: o.Callbacks,
		target: o.Target, now: time.Now}
}

// Name implements Stage.
func (*EmergencyStage) Name() string { return "emergency" }

// Handle implements Stage.
func (s *EmergencyStage) Handle(_ context.Context, c *Call) Decision {
	if c.Direction == Outbound {
		if !s.IsEmergency(c) {
			return Decision{Verdict: Continue}
		}
		c.Emergency = true
		c.Extension, c.ExtensionName = c.Signalling.From.User, c.Signalling.From.Display
		return Decision{Verdict: Route, Target: s.route, Reason: ReasonEmergency}
	}
	if s.callbacks == nil || s.target == nil {
		return Decision{Verdict: Continue}
	}
	ext, id, ok := s.callbacks.Callback(c.Called.Key(), s.now())
	if !ok || ext == "" {
		return Decision{Verdict: Continue}
	}
	c.CallbackOf = id
	return Decision{Verdict: Route, Target: s.target(ext), Reason: ReasonCallback}
}

// Dials tells whether dialled (a Request-URI's user part) is an emergency
// number of region (numbers.region when empty). The sip package asks it
// before the pipeline runs, so that the drain and the CPS limits, which
// refuse a call before any work is done for it, let emergency calls pass.
func (s *EmergencyStage) Dials(dialled, region string) bool {
	if s == nil || s.numbers == nil {
		return false
	}
	if region == "" {
		region = s.region
	}
	return s.numbers.Is(dialled, region)
}

// IsEmergency tells whether an outbound call dials an emergency number of
// its trunk's region: the Request-URI's user part as the PBX sent it, or
// the called number identified from it.
func (s *EmergencyStage) IsEmergency(c *Call) bool {
	if s == nil || s.numbers == nil || c.Direction != Outbound {
		return false
	}
	region := c.Region
	if region == "" {
		region = s.region
	}
	if u := c.Signalling.RequestURI.User; u != "" && s.numbers.Is(u, region) {
		return true
	}
	return c.Called.Raw != "" && s.numbers.Is(c.Called.Raw, region)
}
