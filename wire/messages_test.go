package wire_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-sip/switchboard/cdr"
	"github.com/switchboard-sip/switchboard/contacts"
	"github.com/switchboard-sip/switchboard/wire"
)

// A trace page's calls and messages come out as one list, newest first,
// each with its kind and the SPEC §8 fields, and read back the same.
func TestTraceItems(t *testing.T) {
	at := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	tr := contacts.Trace{
		Items: []cdr.Record{
			{ID: "c2", Direction: cdr.Inbound, StartedAt: at.Add(2 * time.Minute), Disposition: cdr.Answered},
			{ID: "c1", Direction: cdr.Outbound, StartedAt: at, Disposition: cdr.Busy},
		},
		Messages: []cdr.Message{
			{ID: "m1", Direction: cdr.Received, Caller: "+4915112345678", Called: "201", ContactID: 7,
				Content: "hi", ContentType: "text/plain", Trunk: "carrier", Source: "sip:x@y", Node: "sb-1", Status: 200,
				At: at.Add(time.Minute)},
		},
	}
	b, err := json.Marshal(wire.NewTrace(tr, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	var raw struct {
		Items []map[string]any `json:"items"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, it := range raw.Items {
		order = append(order, it["kind"].(string)+":"+it["id"].(string))
	}
	if strings.Join(order, " ") != "call:c2 message:m1 call:c1" {
		t.Fatalf("items %v, want newest first across calls and messages", order)
	}
	m := raw.Items[1]
	for _, k := range []string{"id", "kind", "direction", "caller", "called", "contact_id", "content", "content_type", "trunk", "source", "node", "status", "at"} {
		if _, ok := m[k]; !ok {
			t.Errorf("message item lacks %q: %v", k, m)
		}
	}
	if m["at"] != "2026-12-07T10:01:00.000Z" || m["direction"] != "received" || m["contact_id"] != float64(7) {
		t.Errorf("message item %v", m)
	}
	var back wire.TraceResponse
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Items) != 3 || back.Items[0].Call == nil || back.Items[0].Call.ID != "c2" ||
		back.Items[1].Message == nil || back.Items[1].Message.Content != "hi" || back.Items[2].Call.Disposition != "busy" {
		t.Errorf("read back: %+v", back.Items)
	}
}
