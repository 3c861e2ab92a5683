package wire

import (
	"time"

	"github.com/switchboard-sip/switchboard/contacts"
)

// Contact is the JSON form of a contact (SPEC §8: id, name, company,
// email, tags, fields, numbers, source, created_at, calls_count,
// first_call_at, last_call_at, open_missed), times in the API's format.
type Contact struct {
	ID          int64             `json:"id"`
	Name        string            `json:"name"`
	Company     string            `json:"company"`
	Email       string            `json:"email"`
	ClientID    string            `json:"client_id"`
	Tags        []string          `json:"tags"`
	Fields      map[string]string `json:"fields"`
	Numbers     []Phone           `json:"numbers"`
	Source      string            `json:"source"`
	CreatedAt   string            `json:"created_at"`
	UpdatedAt   string            `json:"updated_at"`
	CallsCount  int64             `json:"calls_count"`
	FirstCallAt *string           `json:"first_call_at"`
	LastCallAt  *string           `json:"last_call_at"`
	OpenMissed  int64             `json:"open_missed"`
}

// NewContact is the JSON form of c with times in loc. The command line
// uses it so that `contacts find` prints what the API serves.
func NewContact(c contacts.Contact, loc *time.Location) Contact {
	if loc == nil {
		loc = time.UTC
	}
	out := Contact{
		ID: c.ID, Name: c.Name, Company: c.Company, Email: c.Email, ClientID: c.ClientID, Tags: c.Tags, Fields: c.Fields,
		Numbers: Phones(c.Numbers), Source: string(c.Source),
		CreatedAt: FormatTime(c.CreatedAt, loc), UpdatedAt: FormatTime(c.UpdatedAt, loc),
		CallsCount: c.CallsCount, FirstCallAt: FormatTimePtr(c.FirstCallAt, loc), LastCallAt: FormatTimePtr(c.LastCallAt, loc),
		OpenMissed: c.OpenMissed,
	}
	if out.Tags == nil {
		out.Tags = []string{}
	}
	if out.Fields == nil {
		out.Fields = map[string]string{}
	}
	return out
}

// Phone is the JSON form of one of a contact's numbers; the API also
// takes it as input (SPEC §8).
type Phone struct {
	E164 string `json:"e164"`
	Raw  string `json:"raw"`
	Ext  string `json:"ext"`
}

// Phones is the JSON form of a contact's numbers: never null.
func Phones(ps []contacts.Phone) []Phone {
	out := make([]Phone, len(ps))
	for i, p := range ps {
		out[i] = Phone(p)
	}
	return out
}

// ContactList is the body of GET /api/contacts.
type ContactList struct {
	Items []Contact `json:"items"`
	Next  string    `json:"next"`
}

// TraceResponse is the body of GET /api/trace: the contact (null when the
// number has none), the window, and a page of the calls and text messages
// in it, newest first: calls in the call record shape of /api/calls with
// kind "call", messages with kind "message" (SPEC §8); next is the cursor
// of the following page (?cursor=), empty on the last.
type TraceResponse struct {
	Number  string      `json:"number"`
	Contact *Contact    `json:"contact"`
	Since   string      `json:"since"`
	Until   string      `json:"until"`
	Items   []TraceItem `json:"items"`
	Next    string      `json:"next"`
}

// NewTrace is the JSON form of a trace with times in loc.
func NewTrace(t contacts.Trace, loc *time.Location) TraceResponse {
	out := TraceResponse{Number: t.Number, Since: FormatTime(t.Since, loc), Until: FormatTime(t.Until, loc),
		Items: traceItems(t, loc), Next: t.Next}
	if t.Contact != nil {
		c := NewContact(*t.Contact, loc)
		out.Contact = &c
	}
	return out
}
