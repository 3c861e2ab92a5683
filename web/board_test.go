package web

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-sip/switchboard/callctl"
	"github.com/switchboard-sip/switchboard/cdr"
	"github.com/switchboard-sip/switchboard/contacts"
)

func TestBoardFiles(t *testing.T) {
	s := New(Options{Token: "s3cret"})
	RegisterBoard(s, BoardOptions{LinkPrefix: "callto:", WrapUpReasons: func() []string { return []string{"order", "complaint"} }})
	a := NewAuth(s, AuthOptions{})
	srv := httptest.NewServer(a.Wrap(s))
	defer srv.Close()
	tests := []struct {
		path, ctype, contains string
		status                int
	}{
		{"/", "text/html", `<script src="/board/board.js"`, 200},
		{"/board/board.js", "javascript", "EventSource", 200},
		{"/board/board.css", "text/css", ".card", 200},
		{"/board/", "application/json", "no such path", 404},
		{"/board/nope.js", "", "", 404},
		{"/api/nope", "application/json", "token", 401}, // the page never answers for the API
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			resp, err := http.Get(srv.URL + tt.path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %s, want %d: %s", resp.Status, tt.status, b)
			}
			if !strings.Contains(resp.Header.Get("Content-Type"), tt.ctype) || !strings.Contains(string(b), tt.contains) {
				t.Fatalf("Content-Type %q, body %.200q: want %q containing %q", resp.Header.Get("Content-Type"), b, tt.ctype, tt.contains)
			}
			if tt.status == 200 && !strings.Contains(resp.Header.Get("Content-Security-Policy"), "script-src 'self'") {
				t.Fatalf("no CSP on %s", tt.path)
			}
		})
	}
	req, _ := http.NewRequest("GET", srv.URL+"/api/board", nil)
	req.Header.Set("Authorization", "Bearer s3cret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), `"link_prefix":"callto:"`) || !strings.Contains(string(b), `"wrapup_reasons":["order","complaint"]`) {
		t.Fatalf("GET /api/board: %s", b)
	}
}

// The board script must never put network data into the page as HTML.
func TestBoardScriptUsesTextOnly(t *testing.T) {
	b, err := boardFiles.ReadFile("board/board.js")
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("} {
		if strings.Contains(string(b), bad) {
			t.Errorf("board.js uses %s", bad)
		}
	}
}

type fakeContacts map[int64]contacts.Contact

func (f fakeContacts) Get(_ context.Context, id int64) (contacts.Contact, error) {
	if c, ok := f[id]; ok {
		return c, nil
	}
	return contacts.Contact{}, contacts.ErrNotFound
}

func (f fakeContacts) FindByNumber(_ context.Context, e164 string) (contacts.Contact, error) {
	for _, c := range f {
		for _, n := range c.Numbers {
			if n.E164 == e164 {
				return c, nil
			}
		}
	}
	return contacts.Contact{}, contacts.ErrNotFound
}

// TestContactEnricher checks the contact part of call.ringing against a
// real call store: calls_count and last_call_at describe the calls before
// the ringing one, whether its own record (and those before it) are
// written yet or still pending, and null/0 on a first call.
func TestContactEnricher(t *testing.T) {
	older := t0.Add(-24 * time.Hour)
	store := fakeContacts{7: {ID: 7, Name: "Jane Doe", Company: "Doe Ltd",
		Numbers: []contacts.Phone{{E164: "+4930111222"}},
		History: contacts.History{CallsCount: 9, LastCallAt: &t0, OpenMissed: 1}}}
	current := cdr.Record{ID: "r3", CallID: "c3", ContactID: 7, Direction: callctl.Inbound, Caller: "+4930111222", StartedAt: t0}
	before := cdr.Record{ID: "r2", CallID: "c2", ContactID: 7, Direction: callctl.Inbound, StartedAt: older}
	retry := cdr.Record{ID: "r1", CallID: "c3", ContactID: 7, Direction: callctl.Inbound, StartedAt: older.Add(time.Hour)} // same Call-ID: an earlier attempt of this call
	later := cdr.Record{ID: "r9", CallID: "c9", ContactID: 7, Direction: callctl.Inbound, StartedAt: t0.Add(time.Hour)}
	tests := []struct {
		name             string
		written, pending []cdr.Record
		rec              cdr.Record
		call             *callctl.Call
		noStore, wantNil bool
		wantCount        int64
		wantLast         string // "" is null
	}{
		{"first call, not yet written", nil, []cdr.Record{current}, current, nil, false, false, 0, ""},
		{"first call, written", []cdr.Record{current}, nil, current, nil, false, false, 0, ""},
		{"a call before, both written", []cdr.Record{before, current, later}, nil, current, nil, false, false, 1, "2026-03-01T09:00:00.000Z"},
		{"a call before, both pending", nil, []cdr.Record{before, current}, current, nil, false, false, 1, "2026-03-01T09:00:00.000Z"},
		{"an attempt of the same Call-ID is not a call before", []cdr.Record{before, retry}, []cdr.Record{current}, current, nil, false, false, 1, "2026-03-01T09:00:00.000Z"},
		{"found by number", []cdr.Record{before}, nil, cdr.Record{ID: "r5", Caller: "+4930111222", StartedAt: t0}, nil, false, false, 1, "2026-03-01T09:00:00.000Z"},
		{"outbound: the callee", []cdr.Record{before}, nil, cdr.Record{ID: "r6", Direction: callctl.Outbound, Called: "+4930111222", Caller: "201", StartedAt: t0}, nil, false, false, 1, "2026-03-01T09:00:00.000Z"},
		{"unknown number", nil, nil, cdr.Record{ID: "r7", Caller: "+4930999"}, nil, false, true, 0, ""},
		{"anonymous", nil, nil, cdr.Record{ID: "r8", Caller: "+4930111222"},
			&callctl.Call{Direction: callctl.Inbound, Caller: callctl.Party{Anonymous: true}}, false, true, 0, ""},
		{"no call store: the stored history", nil, nil, current, nil, true, false, 9, "2026-03-02T09:00:00.000Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := newCallStore(t, 0)
			for _, r := range tt.written {
				calls.Save(r)
			}
			if err := calls.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
			for _, r := range tt.pending {
				calls.Save(r) // read before the writer's batch window ends
			}
			var history CallHistory = calls
			if tt.noStore {
				history = nil
			}
			got := ContactEnricher(store, history, time.UTC)(context.Background(), callctl.Event{Type: callctl.EventRinging, Record: tt.rec, Call: tt.call})
			if tt.wantNil {
				if got != nil {
					t.Fatalf("got %+v, want no contact", got)
				}
				return
			}
			if got == nil || got.Name != "Jane Doe" || got.Company != "Doe Ltd" || got.OpenMissed != 1 {
				t.Fatalf("got %+v", got)
			}
			last := ""
			if got.LastCallAt != nil {
				last = *got.LastCallAt
			}
			if got.CallsCount != tt.wantCount || last != tt.wantLast {
				t.Fatalf("calls_count %d, last_call_at %q; want %d, %q", got.CallsCount, last, tt.wantCount, tt.wantLast)
			}
		})
	}
}
