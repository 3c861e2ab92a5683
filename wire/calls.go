// Package wire holds the JSON shapes switchboard writes (SPEC §8 field
// names): the API, the event stream, the notifications and the command
// line all print a record, entry, contact or block through these, so each
// looks the same everywhere.
package wire

import (
	"time"

	"github.com/switchboard-sip/switchboard/cdr"
)

// TimeFormat is how the API writes times: RFC 3339 with milliseconds.
const TimeFormat = "2006-01-02T15:04:05.000Z07:00"

// Call is the JSON form of a call record (SPEC §8 field names). Absent times
// and a missing contact are null rather than left out, so that clients see
// every field on every record.
type Call struct {
	ID          string  `json:"id"`
	CallID      string  `json:"call_id"`
	Direction   string  `json:"direction"`
	Trunk       string  `json:"trunk,omitempty"`
	Caller      string  `json:"caller"`
	CallerRaw   string  `json:"caller_raw"`
	CallerName  string  `json:"caller_name"`
	Called      string  `json:"called"`
	CalledRaw   string  `json:"called_raw"`
	Hotline     string  `json:"hotline"`
	Campaign    string  `json:"campaign"`
	ContactID   *int64  `json:"contact_id"`
	Node        string  `json:"node"`
	StartedAt   string  `json:"started_at"`
	RingingAt   *string `json:"ringing_at"`
	AnsweredAt  *string `json:"answered_at"`
	EndedAt     *string `json:"ended_at"`
	RingMS      int64   `json:"ring_ms"`
	TalkMS      int64   `json:"talk_ms"`
	SIPStatus   int     `json:"sip_status"`
	Disposition string  `json:"disposition"`
	AnsweredBy  string  `json:"answered_by"`
	EndReason   string  `json:"end_reason,omitempty"`
	MissedID    string  `json:"missed_id"`
	Recording   string  `json:"recording,omitempty"`
	// Emergency marks a call to an emergency number; EmergencyCallback
	// names the emergency call an inbound call called back (SPEC §1).
	Emergency         bool   `json:"emergency"`
	EmergencyCallback string `json:"emergency_callback,omitempty"`
	// The front desk's wrap-up (SPEC §10); satisfaction is null until
	// scored.
	Reason       string  `json:"reason"`
	Satisfaction *int    `json:"satisfaction"`
	Notes        string  `json:"notes"`
	WrappedUpAt  *string `json:"wrapped_up_at"`
	// Resolved is null until the front desk says.
	Resolved   *bool  `json:"resolved"`
	Transcript string `json:"transcript"`
}

// NewCall is the JSON form of r with times in loc (UTC when nil). Event
// streams and the command line use it so that a record looks the same
// everywhere.
func NewCall(r cdr.Record, loc *time.Location) Call {
	if loc == nil {
		loc = time.UTC
	}
	c := Call{
		ID: r.ID, CallID: r.CallID, Direction: string(r.Direction), Trunk: r.Trunk,
		Caller: r.Caller, CallerRaw: r.CallerRaw, CallerName: r.CallerName,
		Called: r.Called, CalledRaw: r.CalledRaw, Hotline: r.Hotline, Campaign: r.Campaign, Node: r.Node,
		StartedAt:  FormatTime(r.StartedAt, loc),
		RingingAt:  FormatTimePtr(r.RingingAt, loc),
		AnsweredAt: FormatTimePtr(r.AnsweredAt, loc),
		EndedAt:    FormatTimePtr(r.EndedAt, loc),
		RingMS:     r.RingMS, TalkMS: r.TalkMS, SIPStatus: r.SIPStatus,
		Disposition: string(r.Disposition), AnsweredBy: r.AnsweredBy, EndReason: r.EndReason,
		MissedID: r.MissedID, Recording: r.Recording,
		Emergency: r.Emergency, EmergencyCallback: r.EmergencyCallback,
		Reason: r.WrapUp.Reason, Notes: r.Notes, WrappedUpAt: FormatTimePtr(r.WrapUp.At, loc),
		Resolved: r.Resolved, Transcript: r.Transcript,
	}
	if r.Satisfaction != 0 {
		n := r.Satisfaction
		c.Satisfaction = &n
	}
	if r.ContactID != 0 {
		id := r.ContactID
		c.ContactID = &id
	}
	return c
}

// FormatTime writes t the API's way in loc; the zero time is "".
func FormatTime(t time.Time, loc *time.Location) string {
	if t.IsZero() {
		return ""
	}
	return t.In(loc).Format(TimeFormat)
}

// FormatTimePtr writes *t the API's way in loc; nil and the zero time
// are null.
func FormatTimePtr(t *time.Time, loc *time.Location) *string {
	if t == nil || t.IsZero() {
		return nil
	}
	s := FormatTime(*t, loc)
	return &s
}

// CallList is the body of GET /api/calls.
type CallList struct {
	Items []Call `json:"items"`
	Next  string `json:"next"`
}
