package web

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"go.uber.org/zap/zaptest"

	"github.com/switchboard-sip/switchboard/cdr"

	"github.com/switchboard-sip/switchboard/wire"
)

func TestWrapUpPatch(t *testing.T) {
	store := newCallStore(t, 3)
	s := New(Options{Calls: store, Log: zaptest.NewLogger(t)})
	var mu sync.Mutex
	var events []CallEvent
	RegisterWrapUp(s, WrapUpOptions{Store: store, Publish: func(typ string, data any) {
		mu.Lock()
		defer mu.Unlock()
		if typ == EventCallUpdated {
			events = append(events, data.(CallEvent))
		}
	}})
	srv := httptest.NewServer(s)
	defer srv.Close()
	patch := func(t *testing.T, id, body string) response {
		t.Helper()
		req, _ := http.NewRequest("PATCH", srv.URL+"/api/calls/"+id, strings.NewReader(body))
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return response{resp.StatusCode, resp.Header, string(b)}
	}

	tests := []struct {
		name, id, body string
		status         int
		want           string // in the error, or the wrap-up as "reason|satisfaction|notes"
	}{
		{"known reason", "call001", `{"reason": "order", "satisfaction": 4, "notes": "two boxes"}`, 200, "order|4|two boxes"},
		{"keeps absent keys", "call001", `{"notes": "line1\nline2\u0007"}`, 200, "order|4|line1\nline2"},
		{"free text reason, cleared score", "call001", `{"reason": "asked\u0000 for Bob", "satisfaction": null}`, 200, "asked for Bob|<nil>|line1\nline2"},
		{"record shape sent back", "call002", `{"id": "x", "disposition": "busy", "reason": "sales"}`, 200, "sales|<nil>|"},
		{"score too high", "call001", `{"satisfaction": 6}`, 400, "satisfaction"},
		{"score zero", "call001", `{"satisfaction": 0}`, 400, "satisfaction"},
		{"score not whole", "call001", `{"satisfaction": 2.5}`, 400, "satisfaction"},
		{"score a string", "call001", `{"satisfaction": "5"}`, 400, "satisfaction"},
		{"reason not text", "call001", `{"reason": 3}`, 400, "reason"},
		{"reason too long", "call001", `{"reason": "` + strings.Repeat("x", 201) + `"}`, 400, "reason"},
		{"unknown field", "call001", `{"mood": "good"}`, 400, "mood"},
		{"not an object", "call001", `[1]`, 400, "body"},
		{"empty body", "call001", ``, 400, "body"},
		{"unknown call", "nope", `{"reason": "x"}`, 404, "nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := patch(t, tt.id, tt.body)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.body)
			}
			if tt.status != 200 {
				if msg := errorBody(t, r); !strings.HasPrefix(msg, tt.want) && !strings.Contains(msg, tt.want) {
					t.Errorf("error %q does not name %q", msg, tt.want)
				}
				return
			}
			var c wire.Call
			if err := json.Unmarshal([]byte(r.body), &c); err != nil {
				t.Fatal(err)
			}
			if got := wrapString(c); got != tt.want {
				t.Errorf("wrap-up %q, want %q", got, tt.want)
			}
			// GET sees what PATCH answered.
			var again wire.Call
			_ = json.Unmarshal([]byte(do(t, srv, "GET", "/api/calls/"+tt.id, nil).body), &again)
			if got := wrapString(again); got != tt.want || again.WrappedUpAt == nil {
				t.Errorf("GET wrap-up %q, want %q", got, tt.want)
			}
		})
	}
	mu.Lock()
	defer mu.Unlock()
	if len(events) != 4 || events[3].Call.ID != "call002" || events[3].Call.Reason != "sales" {
		t.Errorf("call.updated events: %+v", events)
	}
}

func wrapString(c wire.Call) string {
	score := "<nil>"
	if c.Satisfaction != nil {
		score = strconv.Itoa(*c.Satisfaction)
	}
	return c.Reason + "|" + score + "|" + c.Notes
}

// resolved and the transcript are set, kept when absent and cleared by
// null; a transcript over the bound and a resolved that is not a boolean
// are refused with the field named.
func TestWrapUpResolvedAndTranscript(t *testing.T) {
	store := newCallStore(t, 2)
	s := New(Options{Calls: store, Log: zaptest.NewLogger(t)})
	RegisterWrapUp(s, WrapUpOptions{Store: store})
	srv := httptest.NewServer(s)
	defer srv.Close()
	big := strings.Repeat("é", cdr.MaxTranscript/2+1)
	for _, tt := range []struct {
		name, body string
		status     int
		want       string // "resolved|transcript" or the field in the error
	}{
		{"set both", `{"resolved": true, "transcript": "Hello.\nBye."}`, 200, "true|Hello.\nBye."},
		{"absent keys stay", `{"reason": "order"}`, 200, "true|Hello.\nBye."},
		{"false", `{"resolved": false}`, 200, "false|Hello.\nBye."},
		{"null clears", `{"resolved": null, "transcript": null}`, 200, "<nil>|"},
		{"resolved a string", `{"resolved": "yes"}`, 400, "resolved"},
		{"transcript too long", `{"transcript": "` + big + `"}`, 400, "transcript"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest("PATCH", srv.URL+"/api/calls/call001", strings.NewReader(tt.body))
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, b)
			}
			if tt.status != 200 {
				if !strings.Contains(string(b), tt.want) {
					t.Errorf("error %s does not name %q", b, tt.want)
				}
				return
			}
			var c wire.Call
			_ = json.Unmarshal([]byte(do(t, srv, "GET", "/api/calls/call001", nil).body), &c)
			got := "<nil>"
			if c.Resolved != nil {
				got = strconv.FormatBool(*c.Resolved)
			}
			if got += "|" + c.Transcript; got != tt.want {
				t.Errorf("GET: %q, want %q", got, tt.want)
			}
		})
	}
}
