package web

import (
	"github.com/switchboard-sip/switchboard/cdr"

	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-sip/switchboard/callctl"
	"github.com/switchboard-sip/switchboard/contacts"
	"github.com/switchboard-sip/switchboard/storage/callstore"
)

func TestBoardFiles(t *testing.T) {
	s := New(Options{Token: "s3cret"})
	RegisterBoard(s, BoardOptions{LinkPrefix: "callto:", WrapUpReasons: []string{"order", "complaint"}})
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

type fakeCalls []cdr.Record

func (f fakeCalls) List(_ context.Context, q callstore.Query) ([]cdr.Record, string, error) {
	var out []cdr.Record
	for _, r := range f {
		if q.ContactID == 0 || r.ContactID == q.ContactID {
			out = append(out, r)
		}
	}
	return out[:min(len(out), q.Limit)], "", nil
}

func (f fakeCalls) Get(context.Context, string) (cdr.Record, error) {
	return cdr.Record{}, nil
}

func TestContactEnricher(t *testing.T) {
	last := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	now := last.Add(24 * time.Hour)
	store := fakeContacts{7: {ID: 7, Name: "Jane Doe", Company: "Doe Ltd",
		Numbers: []contacts.Phone{{E164: "+4930111222"}},
		History: contacts.History{CallsCount: 3, LastCallAt: &now, OpenMissed: 1}}}
	current := cdr.Record{ID: "r3", CallID: "c3", ContactID: 7, Direction: callctl.Inbound, Caller: "+4930111222", StartedAt: now}
	older := cdr.Record{ID: "r2", CallID: "c2", ContactID: 7, StartedAt: last}
	tests := []struct {
		name      string
		calls     CallReader
		rec       cdr.Record
		call      *callctl.Call
		wantNil   bool
		wantCount int64
		wantLast  string
	}{
		{"this call already written", fakeCalls{current, older}, current, nil, false, 2, "2026-03-01T10:00:00.000Z"},
		{"this call not yet written", fakeCalls{older}, cdr.Record{ID: "r4", ContactID: 7}, nil, false, 3, "2026-03-01T10:00:00.000Z"},
		{"found by number", fakeCalls{older}, cdr.Record{ID: "r5", Caller: "+4930111222"}, nil, false, 3, "2026-03-01T10:00:00.000Z"},
		{"outbound: the callee", fakeCalls{older}, cdr.Record{ID: "r6", Direction: callctl.Outbound, Called: "+4930111222", Caller: "201"}, nil, false, 3, "2026-03-01T10:00:00.000Z"},
		{"unknown number", fakeCalls{}, cdr.Record{ID: "r7", Caller: "+4930999"}, nil, true, 0, ""},
		{"anonymous", fakeCalls{}, cdr.Record{ID: "r8", Caller: "+4930111222"},
			&callctl.Call{Direction: callctl.Inbound, Caller: callctl.Party{Anonymous: true}}, true, 0, ""},
		{"no call store", nil, current, nil, false, 3, "2026-03-02T10:00:00.000Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ContactEnricher(store, tt.calls, time.UTC)(context.Background(), callctl.Event{Type: callctl.EventRinging, Record: tt.rec, Call: tt.call})
			if tt.wantNil {
				if got != nil {
					t.Fatalf("got %+v, want no contact", got)
				}
				return
			}
			if got == nil || got.Name != "Jane Doe" || got.Company != "Doe Ltd" || got.OpenMissed != 1 {
				t.Fatalf("got %+v", got)
			}
			if got.CallsCount != tt.wantCount || got.LastCallAt == nil || *got.LastCallAt != tt.wantLast {
				t.Fatalf("calls_count %d, last %v; want %d, %s", got.CallsCount, got.LastCallAt, tt.wantCount, tt.wantLast)
			}
		})
	}
}
