// Package callctl holds the call pipeline and call state. It knows nothing of
// SIP syntax: the sip package hands it parsed addresses and gets decisions back.
package callctl

import (
	"strings"
	"time"

	"github.com/switchboard-sip/switchboard/cdr"
)

// Direction is the call's direction, the one its record keeps.
type Direction = cdr.Direction

// Directions of a call, seen from the PBX.
const (
	Inbound  = cdr.Inbound  // from a trunk, to the PBX
	Outbound = cdr.Outbound // from the PBX, to a trunk
)

// Address is a parsed name-addr or URI from one SIP header, free of SIP types.
type Address struct {
	Display string            // display name, unquoted, as received
	Scheme  string            // sip, sips or tel
	User    string            // user part (or the tel: number)
	Host    string            // host part; empty for tel:
	Params  map[string]string // URI parameters (user=phone, phone-context, ...)
	Header  map[string]string // header parameters (tag, privacy, screen, index, cause, reason...)
}

// Signalling is what the INVITE says about the parties, extracted by the sip
// package. Lists keep header order.
type Signalling struct {
	RequestURI     Address
	From           Address
	To             Address
	PAI            []Address // P-Asserted-Identity
	RPID           []Address // Remote-Party-ID
	Privacy        []string  // Privacy header values, lower case (id, header, user, none, ...)
	PCalledPartyID *Address
	Diversion      []Address
	HistoryInfo    []Address
}

// Party is one end of a call after identification.
type Party struct {
	Raw           string `json:"raw"`                     // number or user part as received
	E164          string `json:"e164,omitempty"`          // +4930123456; empty when not a readable public number
	National      string `json:"national,omitempty"`      // formatted national form, for display
	International string `json:"international,omitempty"` // formatted international form, for display
	Ext           string `json:"ext,omitempty"`           // extension suffix, when the number carried one
	Name          string `json:"name,omitempty"`          // display name as received (not yet sanitised)
	Anonymous     bool   `json:"anonymous"`
	Internal      bool   `json:"internal"`         // matched an internal extension pattern
	Source        string `json:"source,omitempty"` // header the party was read from (SourcePAI, SourceFrom, ...)
	// Host is the host of the sip: or sips: URI the party was read from,
	// as received; empty for tel:. With Raw it is the party's SIP address,
	// which blocking matches (SPEC §1).
	Host string `json:"host,omitempty"`
}

// RecordRaw is the party as its record keeps it raw: the number or user
// part as received, or, for a SIP user that is no number at all
// (sip:spam@example.net), the whole address user@host, so that the record
// says who it was and the board can block that address (SPEC §1).
// Anonymous parties keep their placeholder.
func (p Party) RecordRaw() string {
	if p.E164 != "" || p.Internal || p.Anonymous || p.Host == "" || !hasLetter(p.Raw) {
		return p.Raw
	}
	return p.Raw + "@" + strings.ToLower(p.Host)
}

// Key is the form used to look the party up: E.164 when known, else raw.
func (p Party) Key() string {
	if p.E164 != "" {
		return p.E164
	}
	return p.Raw
}

// Call is one call attempt, parsed once from the INVITE and enriched by the
// pipeline stages.
type Call struct {
	ID             string // record id, unique per attempt
	CallID         string // SIP Call-ID
	Direction      Direction
	Trunk          string // name of the trunk the call came from or goes to
	Trusted        bool   // the trunk's identity headers (PAI, RPID) are trusted
	Region         string // default country for numbers of this call
	Signalling     Signalling
	Caller         Party
	Called         Party
	OriginalCalled *Party // first diverting number, when the call was forwarded
	Hotline        string
	Campaign       string // the hotline's campaign (attribution, SPEC §10)
	// Lookup holds each configured lookup's JSON answer by name, an
	// empty object when it failed (SPEC §5 lookup).
	Lookup      map[string]any
	ContactID   int64
	StartedAt   time.Time
	Tags        []string
	Headers     map[string]string // extra headers for the forwarded INVITE
	DisplayName string            // caller display name for the PBX, when set
	Target      string            // SIP URI to forward to; empty means the default
	Fallback    string            // SIP URI to use when the target is down (hotline fallback)
	Node        string

	// Set by the hotline stage, sanitised: what the receptionist sees.
	Company  string
	Greeting string
	Display  string
	// Contact is the remote party's contact as the stages saw it; nil when
	// none is known (yet).
	Contact *ContactInfo
	// Set by the rules stage for the missed-call notifications.
	Notify     []string
	SkipNotify bool

	// Emergency marks an outbound call to an emergency number (SPEC §1):
	// every stage and the proxy let it through unchanged.
	Emergency bool
	// CallbackOf is the record id of the emergency call this inbound call
	// calls back (SPEC §1 callback window); empty for other calls.
	CallbackOf string
	// Extension and ExtensionName are the phone that made an emergency
	// call: From's user part and display name as the PBX sent them (the
	// caller identity may be a company number in P-Asserted-Identity).
	Extension     string
	ExtensionName string

	// Trace makes the call a dry run and collects what each stage did
	// (switchboard explain); nil on live calls.
	Trace *Trace
}

// Remote is the party outside the PBX: the caller inbound, the callee outbound.
func (c *Call) Remote() *Party {
	if c.Direction == Outbound {
		return &c.Called
	}
	return &c.Caller
}
