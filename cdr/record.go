// Package cdr is the call detail record: the one type a call's record has
// from the tracker that fills it, through the store that keeps it
// (storage/callstore), to wire, which gives it its JSON shape. It is a leaf:
// it imports nothing of switchboard, so every package can share it.
package cdr

import (
	"time"
	"unicode/utf8"
)

// Direction tells which side a call came from (SPEC §1).
type Direction string

// Directions of a call, seen from the PBX.
const (
	Inbound  Direction = "inbound"  // from a trunk, to the PBX
	Outbound Direction = "outbound" // from the PBX, to a trunk
)

// Disposition is how a call ended (SPEC §3).
type Disposition string

// Dispositions of a call record.
const (
	Answered  Disposition = "answered"
	NoAnswer  Disposition = "no_answer"
	Busy      Disposition = "busy"
	Rejected  Disposition = "rejected"
	Blocked   Disposition = "blocked"
	Closed    Disposition = "closed"
	Failed    Disposition = "failed"
	Elsewhere Disposition = "elsewhere"
)

// ReasonNodeLost is the end reason of a call whose node died and whose BYE
// has not (yet) passed another node (SPEC §11); a BYE that passes later
// corrects the record.
const ReasonNodeLost = "node lost"

// Record is the stored call record (SPEC §3, §8 field names).
type Record struct {
	ID          string
	CallID      string
	Direction   Direction
	Trunk       string
	Caller      string
	CallerRaw   string
	CallerName  string
	Called      string
	CalledRaw   string
	Hotline     string
	Campaign    string
	ContactID   int64
	Node        string
	StartedAt   time.Time
	RingingAt   *time.Time
	AnsweredAt  *time.Time
	EndedAt     *time.Time
	RingMS      int64
	TalkMS      int64
	SIPStatus   int
	Disposition Disposition
	// AnsweredBy is the phone that took the call, from the PBX's 2xx
	// (SPEC §2: P-Asserted-Identity, else Contact user, else To name).
	AnsweredBy string
	// EndReason is switchboard's own note on how the attempt ended
	// ("cancelled", "node lost", "rule vip", a block reason). It is not the
	// front desk's wrap-up reason (WrapUp.Reason, JSON "reason", SPEC §8):
	// the two answer different questions and are kept apart.
	EndReason string
	MissedID  string
	Recording string
	// Emergency marks a call to an emergency number (SPEC §1).
	Emergency bool
	// EmergencyCallback is the id of the emergency call's record that this
	// inbound call called back within the callback window; empty otherwise.
	EmergencyCallback string
	WrapUp
}

// WrapUp is what the front desk records after a call (SPEC §10): why the
// caller called, how satisfied they were, free notes, whether the matter
// was resolved and a transcript. It is set by the API (PATCH
// /api/calls/{id}); only the transcript may also come from the call path
// (a PBX header, Active.SetTranscript).
type WrapUp struct {
	// Reason is one of wrapup.reasons or free text.
	Reason string
	// Satisfaction is 1–5; 0 means not scored.
	Satisfaction int
	Notes        string
	// Resolved says whether the caller's matter was settled; nil when
	// the front desk did not say (SPEC §10: the share resolved).
	Resolved *bool
	// Transcript is the call's transcript (or its URL): from the front
	// desk or from the PBX's header named in wrapup.transcript_header, at
	// most MaxTranscript bytes.
	Transcript string
	// At is when the wrap-up was last set; nil when never. Of two versions
	// of a record, the one with the later wrap-up keeps its wrap-up.
	At *time.Time
}

// MaxTranscript bounds a stored transcript: a long call's text fits, a
// runaway header or request body does not.
const MaxTranscript = 64 << 10

// CutTranscript bounds a transcript to MaxTranscript bytes, cut on a
// character boundary.
func CutTranscript(s string) string {
	if len(s) <= MaxTranscript {
		return s
	}
	cut := MaxTranscript
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}
