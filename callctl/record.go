package callctl

import "time"

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

// Record is the stored call record (SPEC §3, §8 field names).
type Record struct {
	ID          string      `json:"id"`
	CallID      string      `json:"call_id"`
	Direction   Direction   `json:"direction"`
	Trunk       string      `json:"trunk,omitempty"`
	Caller      string      `json:"caller"`
	CallerRaw   string      `json:"caller_raw"`
	CallerName  string      `json:"caller_name"`
	Called      string      `json:"called"`
	CalledRaw   string      `json:"called_raw"`
	Hotline     string      `json:"hotline"`
	ContactID   int64       `json:"contact_id,omitempty"`
	Node        string      `json:"node"`
	StartedAt   time.Time   `json:"started_at"`
	RingingAt   *time.Time  `json:"ringing_at"`
	AnsweredAt  *time.Time  `json:"answered_at"`
	EndedAt     *time.Time  `json:"ended_at"`
	RingMS      int64       `json:"ring_ms"`
	TalkMS      int64       `json:"talk_ms"`
	SIPStatus   int         `json:"sip_status"`
	Disposition Disposition `json:"disposition"`
	Reason      string      `json:"reason,omitempty"`
	MissedID    string      `json:"missed_id,omitempty"`
	Recording   string      `json:"recording,omitempty"`
}
