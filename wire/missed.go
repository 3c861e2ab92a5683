package wire

import (
	"time"

	"github.com/switchboard-sip/switchboard/missed"
)

// Missed is the JSON form of a missed-call entry (SPEC §8 field names, plus
// kind, caller_name, record_id and created_at). Absent times and contact are
// null, so that clients see every field on every entry.
type Missed struct {
	ID          string  `json:"id"`
	CallID      string  `json:"call_id"`
	RecordID    string  `json:"record_id"`
	Kind        string  `json:"kind"`
	ContactID   *int64  `json:"contact_id"`
	Caller      string  `json:"caller"`
	CallerName  string  `json:"caller_name"`
	Hotline     string  `json:"hotline"`
	Status      string  `json:"status"`
	Count       int     `json:"count"`
	Exception   string  `json:"exception"`
	NotifiedAt  *string `json:"notified_at"`
	ProcessedAt *string `json:"processed_at"`
	ResolvedBy  string  `json:"resolved_by"`
	CreatedAt   string  `json:"created_at"`
}

// NewMissed is the JSON form of e with times in loc (UTC when nil); the
// event stream and the notifications use it so that an entry looks the
// same everywhere.
func NewMissed(e missed.Entry, loc *time.Location) Missed {
	if loc == nil {
		loc = time.UTC
	}
	m := Missed{
		ID: e.ID, CallID: e.CallID, RecordID: e.RecordID, Kind: string(e.Kind),
		Caller: e.Caller, CallerName: e.CallerName, Hotline: e.Hotline,
		Status: string(e.Status), Count: e.Count, Exception: string(e.Exception),
		NotifiedAt: FormatTimePtr(e.NotifiedAt, loc), ProcessedAt: FormatTimePtr(e.ProcessedAt, loc),
		ResolvedBy: e.ResolvedBy, CreatedAt: FormatTime(e.CreatedAt, loc),
	}
	if e.ContactID != 0 {
		id := e.ContactID
		m.ContactID = &id
	}
	return m
}
