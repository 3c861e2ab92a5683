package wire

import (
	"time"

	"github.com/switchboard-sip/switchboard/cdr"
	"github.com/switchboard-sip/switchboard/contacts"
	"github.com/switchboard-sip/switchboard/missed"
)

// ContactExport is the JSON form of a contact with all its calls and
// messages: the privacy export (`switchboard contacts export`, SPEC §2).
type ContactExport struct {
	Contact  Contact   `json:"contact"`
	Calls    []Call    `json:"calls"`
	Messages []Message `json:"messages"`
}

// NewContactExport is the JSON form of ex with times in loc.
func NewContactExport(ex contacts.Export, loc *time.Location) ContactExport {
	out := ContactExport{Contact: NewContact(ex.Contact, loc), Calls: make([]Call, len(ex.Calls)),
		Messages: MessageList(ex.Messages, loc)}
	for i, r := range ex.Calls {
		out.Calls[i] = NewCall(r, loc)
	}
	return out
}

// CallWithMissed is a call record with its missed-call entry, if it has
// one: an item of `switchboard calls --missed --json`.
type CallWithMissed struct {
	Call
	Missed *Missed `json:"missed,omitempty"`
}

// CallsWithMissed is the body `switchboard calls --json` prints.
type CallsWithMissed struct {
	Items []CallWithMissed `json:"items"`
}

// NewCallsWithMissed is the JSON form of records, each with its entry from
// entries (keyed by the record's missed id), times in loc.
func NewCallsWithMissed(records []cdr.Record, entries map[string]missed.Entry, loc *time.Location) CallsWithMissed {
	out := CallsWithMissed{Items: make([]CallWithMissed, len(records))}
	for i, r := range records {
		out.Items[i].Call = NewCall(r, loc)
		if e, ok := entries[r.MissedID]; ok {
			m := NewMissed(e, loc)
			out.Items[i].Missed = &m
		}
	}
	return out
}
