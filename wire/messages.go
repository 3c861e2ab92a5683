package wire

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/switchboard-sip/switchboard/cdr"
	"github.com/switchboard-sip/switchboard/contacts"
)

// KindMessage and KindCall name the two kinds of trace items.
const (
	KindCall    = "call"
	KindMessage = "message"
)

// Message is the JSON form of a text message record (SPEC §8: id, kind,
// direction, caller, called, contact_id, content, content_type, trunk,
// source, node, status, at). truncated and size tell that the content was
// cut at messages.max_content and how long the body was.
type Message struct {
	ID          string `json:"id"`
	Kind        string `json:"kind"`
	CallID      string `json:"call_id"`
	Direction   string `json:"direction"`
	Caller      string `json:"caller"`
	CallerRaw   string `json:"caller_raw"`
	Called      string `json:"called"`
	CalledRaw   string `json:"called_raw"`
	ContactID   *int64 `json:"contact_id"`
	Content     string `json:"content"`
	Truncated   bool   `json:"truncated"`
	Size        int    `json:"size"`
	ContentType string `json:"content_type"`
	Trunk       string `json:"trunk"`
	Source      string `json:"source"`
	Node        string `json:"node"`
	Status      int    `json:"status"`
	At          string `json:"at"`
}

// NewMessage is the JSON form of m with its time in loc (UTC when nil).
func NewMessage(m cdr.Message, loc *time.Location) Message {
	if loc == nil {
		loc = time.UTC
	}
	out := Message{ID: m.ID, Kind: KindMessage, CallID: m.CallID, Direction: string(m.Direction),
		Caller: m.Caller, CallerRaw: m.CallerRaw, Called: m.Called, CalledRaw: m.CalledRaw,
		Content: m.Content, Truncated: m.Truncated, Size: m.Size, ContentType: m.ContentType,
		Trunk: m.Trunk, Source: m.Source, Node: m.Node, Status: m.Status, At: FormatTime(m.At, loc)}
	if m.ContactID != 0 {
		id := m.ContactID
		out.ContactID = &id
	}
	return out
}

// TraceItem is one item of GET /api/trace: a call (kind "call", the call
// record shape of /api/calls) or a text message (kind "message"). Exactly
// one of Call and Message is set.
type TraceItem struct {
	Call    *Call
	Message *Message
}

// traceCall is a call record with its kind, as the trace writes it.
type traceCall struct {
	Kind string `json:"kind"`
	Call
}

// MarshalJSON writes the item flat, with its kind.
func (it TraceItem) MarshalJSON() ([]byte, error) {
	switch {
	case it.Message != nil:
		return json.Marshal(it.Message)
	case it.Call != nil:
		return json.Marshal(traceCall{Kind: KindCall, Call: *it.Call})
	}
	return nil, fmt.Errorf("wire: empty trace item")
}

// UnmarshalJSON reads an item by its kind; an item without one is a call.
func (it *TraceItem) UnmarshalJSON(b []byte) error {
	var k struct {
		Kind string `json:"kind"`
	}
	if err := json.Unmarshal(b, &k); err != nil {
		return err
	}
	*it = TraceItem{}
	if k.Kind == KindMessage {
		it.Message = new(Message)
		return json.Unmarshal(b, it.Message)
	}
	it.Call = new(Call)
	return json.Unmarshal(b, it.Call)
}

// MessageList is the messages of a privacy export.
func MessageList(ms []cdr.Message, loc *time.Location) []Message {
	out := make([]Message, len(ms))
	for i, m := range ms {
		out[i] = NewMessage(m, loc)
	}
	return out
}

// traceItems merges a trace page's calls and messages, newest first.
func traceItems(t contacts.Trace, loc *time.Location) []TraceItem {
	tl := t.Timeline()
	out := make([]TraceItem, len(tl))
	for i, e := range tl {
		if e.Message != nil {
			m := NewMessage(*e.Message, loc)
			out[i].Message = &m
		} else {
			c := NewCall(*e.Call, loc)
			out[i].Call = &c
		}
	}
	return out
}
