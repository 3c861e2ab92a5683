package web

import (
	"github.com/switchboard-sip/switchboard/cdr"

	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/switchboard-sip/switchboard/callctl"
	"github.com/switchboard-sip/switchboard/storage"
	"github.com/switchboard-sip/switchboard/storage/callstore"
	"github.com/switchboard-sip/switchboard/storage/storagetest"
	"github.com/switchboard-sip/switchboard/wire"
)

var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// newCallStore is a real store on a fresh SQLite file, holding n inbound
// answered calls one minute apart plus a few shaped for filter tests.
func newCallStore(t *testing.T, n int) *callstore.Store {
	t.Helper()
	db, err := storage.Open(storagetest.Target(t, "web"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := callstore.New(context.Background(), db, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Close(context.Background())
		db.Close()
	})
	for i := range n {
		ring := t0.Add(time.Duration(i)*time.Minute + 500*time.Millisecond)
		r := cdr.Record{
			ID: fmt.Sprintf("call%03d", i), CallID: fmt.Sprintf("sip%03d@pbx", i),
			Direction: callctl.Inbound, Caller: "+4915112345678", CallerRaw: "015112345678",
			CallerName: "Jane", Called: "+49301234560", CalledRaw: "0301234560",
			Hotline: "acme", Node: "sb-1", StartedAt: t0.Add(time.Duration(i) * time.Minute),
			RingingAt: &ring, RingMS: 1500, SIPStatus: 200, Disposition: cdr.Answered,
		}
		if i%3 == 0 {
			r.Disposition, r.SIPStatus, r.Caller = cdr.NoAnswer, 487, "+4930999"
		}
		if i == 1 {
			r.ContactID = 7
		}
		s.Save(r)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	return s
}

type response struct {
	status int
	header http.Header
	body   string
}

func do(t *testing.T, srv *httptest.Server, method, path string, header map[string]string) response {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
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

// errorBody checks the body is exactly {"error": "..."} and returns the text.
func errorBody(t *testing.T, r response) string {
	t.Helper()
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type = %q, want JSON", ct)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(r.body), &m); err != nil {
		t.Fatalf("body %q is not JSON: %v", r.body, err)
	}
	msg, ok := m["error"].(string)
	if !ok || len(m) != 1 || msg == "" {
		t.Errorf("body %s is not {\"error\": \"...\"}", r.body)
	}
	return msg
}

func metricsHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "switchboard_active_calls 0\n") })
}

func TestAuth(t *testing.T) {
	store := newCallStore(t, 2)
	const token = "s3cret-token"
	right := map[string]string{"Authorization": "Bearer " + token}
	tests := []struct {
		name      string
		token     string
		protect   bool
		path      string
		header    map[string]string
		want      int
		wantError bool
	}{
		{"no token configured", "", false, "/api/calls", nil, 200, false},
		{"missing", token, false, "/api/calls", nil, 401, true},
		{"wrong", token, false, "/api/calls", map[string]string{"Authorization": "Bearer nope"}, 401, true},
		{"prefix of the token", token, false, "/api/calls", map[string]string{"Authorization": "Bearer s3cret"}, 401, true},
		{"basic scheme", token, false, "/api/calls", map[string]string{"Authorization": "Basic " + token}, 401, true},
		{"right", token, false, "/api/calls", right, 200, false},
		{"scheme case", token, false, "/api/calls", map[string]string{"Authorization": "bearer " + token}, 200, false},
		{"one record", token, false, "/api/calls/call001", right, 200, false},
		{"unknown api path before auth", token, false, "/api/nope", nil, 401, true},
		{"unknown api path after auth", token, false, "/api/nope", right, 404, true},
		{"dot segments", token, false, "/x/../api/calls", nil, 401, true},
		{"healthz open", token, true, "/healthz", nil, 200, false},
		{"metrics open", token, false, "/metrics", nil, 200, false},
		{"metrics protected", token, true, "/metrics", nil, 401, true},
		{"metrics protected with token", token, true, "/metrics", right, 200, false},
		{"event stream query token", token, false, "/api/calls?access_token=" + token, map[string]string{"Accept": "text/event-stream"}, 200, false},
		{"query token needs event stream", token, false, "/api/calls?access_token=" + token, nil, 401, true},
		{"wrong query token", token, false, "/api/calls?access_token=x", map[string]string{"Accept": "text/event-stream"}, 401, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(New(Options{Calls: store, Metrics: metricsHandler(), Token: tt.token, ProtectMetrics: tt.protect, Log: zaptest.NewLogger(t)}))
			defer srv.Close()
			r := do(t, srv, "GET", tt.path, tt.header)
			if r.status != tt.want {
				t.Fatalf("status = %d, want %d (body %s)", r.status, tt.want, r.body)
			}
			if tt.wantError {
				errorBody(t, r)
			}
			if r.status == 401 && r.header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
}

func TestCallsAPI(t *testing.T) {
	store := newCallStore(t, 10)
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	s := New(Options{Calls: store, Log: zaptest.NewLogger(t), Location: berlin})
	s.now = func() time.Time { return t0.Add(10 * time.Minute) }
	srv := httptest.NewServer(s)
	defer srv.Close()

	list := func(t *testing.T, query string) wire.CallList {
		t.Helper()
		r := do(t, srv, "GET", "/api/calls"+query, nil)
		if r.status != 200 {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		var l wire.CallList
		if err := json.Unmarshal([]byte(r.body), &l); err != nil {
			t.Fatal(err)
		}
		return l
	}
	ids := func(l wire.CallList) string {
		var out []string
		for _, c := range l.Items {
			out = append(out, strings.TrimPrefix(c.ID, "call"))
		}
		return strings.Join(out, " ")
	}

	t.Run("filters", func(t *testing.T) {
		tests := []struct{ query, want string }{
			{"", "009 008 007 006 005 004 003 002 001 000"},
			{"?limit=3", "009 008 007"},
			{"?limit=5000", "009 008 007 006 005 004 003 002 001 000"},
			{"?disposition=no_answer", "009 006 003 000"},
			{"?number=%2B4930999", "009 006 003 000"},
			{"?number=+4930999", "009 006 003 000"}, // unescaped +
			{"?number=0301234560&limit=2", "009 008"},
			{"?since=3m", "009 008 007"},
			{"?since=" + url.QueryEscape(t0.Add(8*time.Minute).Format(time.RFC3339)), "009 008"},
			{"?missed=true", "009 006 003 000"},
			{"?contact_id=7", "001"},
			{"?disposition=busy", ""},
		}
		for _, tt := range tests {
			t.Run(tt.query, func(t *testing.T) {
				if got := ids(list(t, tt.query)); got != tt.want {
					t.Errorf("ids = %q, want %q", got, tt.want)
				}
			})
		}
	})

	t.Run("pagination", func(t *testing.T) {
		var all []string
		next := ""
		for range 10 {
			l := list(t, "?limit=4&cursor="+url.QueryEscape(next))
			all = append(all, ids(l))
			if next = l.Next; next == "" {
				break
			}
		}
		if got := strings.Join(all, " | "); got != "009 008 007 006 | 005 004 003 002 | 001 000" {
			t.Errorf("pages = %s", got)
		}
	})

	t.Run("record shape", func(t *testing.T) {
		r := do(t, srv, "GET", "/api/calls/call001", nil)
		if r.status != 200 {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(r.body), &m); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"id", "call_id", "direction", "caller", "caller_raw", "caller_name",
			"called", "called_raw", "hotline", "contact_id", "node", "started_at", "ringing_at",
			"answered_at", "ended_at", "ring_ms", "talk_ms", "sip_status", "disposition", "missed_id"} {
			if _, ok := m[k]; !ok {
				t.Errorf("field %s missing in %s", k, r.body)
			}
		}
		checks := map[string]any{
			"id": "call001", "started_at": "2026-03-02T10:01:00.000+01:00",
			"ringing_at": "2026-03-02T10:01:00.500+01:00", "answered_at": nil,
			"contact_id": float64(7), "sip_status": float64(200), "disposition": "answered",
		}
		for k, want := range checks {
			if m[k] != want {
				t.Errorf("%s = %v, want %v", k, m[k], want)
			}
		}
		if r := do(t, srv, "GET", "/api/calls/call002", nil); !strings.Contains(r.body, `"contact_id":null`) {
			t.Errorf("record without contact: %s", r.body)
		}
	})

	t.Run("empty list is an array", func(t *testing.T) {
		r := do(t, srv, "GET", "/api/calls?disposition=busy", nil)
		if strings.TrimSpace(r.body) != `{"items":[],"next":""}` {
			t.Errorf("body = %s", r.body)
		}
	})

	t.Run("errors", func(t *testing.T) {
		tests := []struct {
			method, path string
			want         int
			mention      string
		}{
			{"GET", "/api/calls?limit=abc", 400, "limit"},
			{"GET", "/api/calls?limit=0", 400, "limit"},
			{"GET", "/api/calls?limit=-3", 400, "limit"},
			{"GET", "/api/calls?disposition=maybe", 400, "disposition"},
			{"GET", "/api/calls?since=yesterday", 400, "since"},
			{"GET", "/api/calls?since=-1h", 400, "since"},
			{"GET", "/api/calls?cursor=garbage!", 400, "cursor"},
			{"GET", "/api/calls?missed=perhaps", 400, "missed"},
			{"GET", "/api/calls?contact_id=x", 400, "contact_id"},
			{"GET", "/api/calls/unknown", 404, "unknown"},
			{"GET", "/api/nothing/here", 404, "/api/nothing/here"},
			{"GET", "/nothing", 404, "/nothing"},
			{"POST", "/api/calls", 405, "POST"},
			{"DELETE", "/api/calls/call001", 405, "DELETE"},
			{"POST", "/healthz", 405, "POST"},
		}
		for _, tt := range tests {
			t.Run(tt.method+" "+tt.path, func(t *testing.T) {
				r := do(t, srv, tt.method, tt.path, nil)
				if r.status != tt.want {
					t.Fatalf("status = %d, want %d (%s)", r.status, tt.want, r.body)
				}
				if msg := errorBody(t, r); !strings.Contains(msg, tt.mention) {
					t.Errorf("error %q does not mention %q", msg, tt.mention)
				}
				if tt.want == 405 && !strings.Contains(r.header.Get("Allow"), "GET") {
					t.Errorf("Allow = %q", r.header.Get("Allow"))
				}
			})
		}
	})
}

// failingReader is a CallReader whose database is gone.
type failingReader struct{}

func (failingReader) List(context.Context, callstore.Query) ([]cdr.Record, string, error) {
	return nil, "", errors.New("storage: calls: list: disk I/O error at /var/lib/secret.db")
}

func (failingReader) Get(context.Context, string) (cdr.Record, error) {
	return cdr.Record{}, errors.New("storage: calls: get: disk I/O error")
}

func TestStoreFailureIs500WithoutDetails(t *testing.T) {
	srv := httptest.NewServer(New(Options{Calls: failingReader{}, Log: zaptest.NewLogger(t)}))
	defer srv.Close()
	for _, p := range []string{"/api/calls", "/api/calls/x"} {
		t.Run(p, func(t *testing.T) {
			r := do(t, srv, "GET", p, nil)
			if r.status != 500 {
				t.Fatalf("status = %d", r.status)
			}
			if msg := errorBody(t, r); strings.Contains(msg, "secret") {
				t.Errorf("error leaks the cause: %q", msg)
			}
		})
	}
}

func TestHealthz(t *testing.T) {
	tests := []struct {
		name   string
		health func() error
		want   int
		body   string
	}{
		{"no check", nil, 200, `{"reasons":[],"status":"ok"}`},
		{"up", func() error { return nil }, 200, `{"reasons":[],"status":"ok"}`},
		{"down", func() error { return errors.New("sip listener udp://127.0.0.1:5060 down") }, 503,
			`{"error":"sip listener udp://127.0.0.1:5060 down","reasons":["sip listener udp://127.0.0.1:5060 down"],"status":"unavailable"}`},
		// Liveness: a node that routes calls without its database is alive.
		{"database away", func() error { return &DegradedError{Err: errors.New("storage: connection refused")} }, 200,
			`{"reasons":["storage: connection refused"],"status":"degraded"}`},
		{"two reasons", func() error {
			return &DegradedError{Reasons: []string{"storage: database is locked", "call records waiting: 12"}}
		}, 200, `{"reasons":["storage: database is locked","call records waiting: 12"],"status":"degraded"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(New(Options{Health: tt.health, Token: "t"}))
			defer srv.Close()
			r := do(t, srv, "GET", "/healthz", nil)
			if r.status != tt.want || strings.TrimSpace(r.body) != tt.body {
				t.Errorf("= %d %s, want %d %s", r.status, r.body, tt.want, tt.body)
			}
		})
	}
}

// TestReadyz: readiness answers 503 with the state while starting or
// draining, 200 otherwise, and never asks for the token.
func TestReadyz(t *testing.T) {
	for _, tt := range []struct {
		name  string
		ready func() error
		want  int
		body  string
	}{
		{"no check", nil, 200, `{"status":"ready"}`},
		{"ready", func() error { return nil }, 200, `{"status":"ready"}`},
		{"draining", func() error { return errors.New("draining") }, 503, `{"status":"draining"}`},
		{"starting", func() error { return errors.New("starting") }, 503, `{"status":"starting"}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(New(Options{Ready: tt.ready, Token: "t"}))
			defer srv.Close()
			r := do(t, srv, "GET", "/readyz", nil)
			if r.status != tt.want || strings.TrimSpace(r.body) != tt.body {
				t.Errorf("= %d %s, want %d %s", r.status, r.body, tt.want, tt.body)
			}
		})
	}
}

func TestHandleAddsRoutesUnderTheSameRules(t *testing.T) {
	s := New(Options{Token: "tok", Log: zaptest.NewLogger(t)})
	s.HandleFunc("GET /api/contacts/{id}", func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, 200, map[string]string{"id": r.PathValue("id")})
	})
	s.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "board") })
	s.HandleFunc("GET /api/boom", func(w http.ResponseWriter, r *http.Request) { panic("bad input") })
	srv := httptest.NewServer(s)
	defer srv.Close()
	auth := map[string]string{"Authorization": "Bearer tok"}
	tests := []struct {
		method, path string
		header       map[string]string
		want         int
		body         string
	}{
		{"GET", "/api/contacts/5", nil, 401, ""},
		{"GET", "/api/contacts/5", auth, 200, `{"id":"5"}`},
		{"PATCH", "/api/contacts/5", auth, 405, ""},
		{"GET", "/", nil, 200, "board"},
		{"GET", "/anything", nil, 200, "board"},
		{"GET", "/api/unknown", auth, 404, ""},
		{"GET", "/api/boom", auth, 500, `{"error":"internal error"}`},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			r := do(t, srv, tt.method, tt.path, tt.header)
			if r.status != tt.want {
				t.Fatalf("status = %d, want %d (%s)", r.status, tt.want, r.body)
			}
			if tt.body != "" && strings.TrimSpace(r.body) != tt.body {
				t.Errorf("body = %s, want %s", r.body, tt.body)
			}
			if tt.want >= 400 {
				errorBody(t, r)
			}
		})
	}
}

func TestQueryNumber(t *testing.T) {
	tests := []struct{ in, want string }{
		{"+4930123", "+4930123"},
		{" 4930123", "+4930123"},
		{"030 123", "030 123"},
		{" 201 ", "201"},
		{"", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := QueryNumber(tt.in); got != tt.want {
				t.Errorf("QueryNumber(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestServeListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()

	t.Run("port in use", func(t *testing.T) {
		_, err := Listen(addr, http.NotFoundHandler())
		if err == nil || !strings.Contains(err.Error(), addr) {
			t.Fatalf("Listen on a used port: %v", err)
		}
	})

	// A long-lived stream must not hold up shutdown beyond the grace.
	streaming := make(chan struct{})
	s := New(Options{})
	s.HandleFunc("GET /api/events", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		close(streaming)
		<-r.Context().Done()
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ServeListener(ctx, ln, s) }()

	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("healthz = %d", resp.StatusCode)
	}
	stream, err := http.Get("http://" + addr + "/api/events")
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Body.Close()
	<-streaming

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("ServeListener = %v, want nil after a clean shutdown", err)
		}
	case <-time.After(shutdownTimeout + 2*time.Second):
		t.Fatal("shutdown did not finish")
	}
	if _, err := http.Get("http://" + addr + "/healthz"); err == nil {
		t.Error("still serving after shutdown")
	}
	if !slices.Contains([]int{200}, resp.StatusCode) {
		t.Error(resp.StatusCode)
	}
}
