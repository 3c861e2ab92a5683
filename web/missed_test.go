package web_test

import (
	"github.com/switchboard-sip/switchboard/cdr"

	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-sip/switchboard/callctl"
	"github.com/switchboard-sip/switchboard/configs"
	"github.com/switchboard-sip/switchboard/missed"
	"github.com/switchboard-sip/switchboard/storage"
	"github.com/switchboard-sip/switchboard/storage/callstore"
	"github.com/switchboard-sip/switchboard/storage/storagetest"
	"github.com/switchboard-sip/switchboard/web"
)

// missedServer serves the missed-call endpoints over a real service in a
// temporary SQLite file, with one missed call per caller given.
func missedServer(t *testing.T, token string, callers ...string) (*httptest.Server, []missed.Entry) {
	t.Helper()
	ctx := context.Background()
	cfg, err := configs.Parse([]byte(`
sip:
  listen: [udp://127.0.0.1:5060]
  pbx: sip:127.0.0.1:5080
  trunks: [{name: carrier, match: [127.0.0.1/32]}]
`))
	if err != nil {
		t.Fatal(err)
	}
	db, err := storage.Open(storagetest.Target(t, "sb"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	calls, err := callstore.New(ctx, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { calls.Close(context.Background()) })
	// A clock a minute on at every reading orders the entries.
	var tick atomic.Int64
	now := func() time.Time {
		return time.Date(2030, 3, 4, 10, 0, 0, 0, time.UTC).Add(time.Duration(tick.Add(1)) * time.Minute)
	}
	svc, err := missed.New(ctx, missed.Options{DB: db, Config: cfg, Records: calls, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close(context.Background()) })
	at := time.Date(2030, 3, 4, 9, 0, 0, 0, time.UTC)
	for i, c := range callers {
		ring := at.Add(time.Duration(i) * time.Minute)
		end := ring.Add(5 * time.Second)
		r := cdr.Record{ID: fmt.Sprintf("r%d", i), CallID: fmt.Sprintf("c%d", i), Direction: callctl.Inbound,
			Caller: c, CallerRaw: c, StartedAt: ring, RingingAt: &ring, EndedAt: &end, RingMS: 5000,
			SIPStatus: 487, Disposition: cdr.NoAnswer}
		calls.Save(r)
		svc.Observe(callctl.Event{Type: callctl.EventEnded, Record: r, Call: &callctl.Call{Caller: callctl.Party{E164: c, Raw: c}}})
	}
	if err := svc.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	entries, _, err := svc.List(ctx, "", 100, "")
	if err != nil {
		t.Fatal(err)
	}
	s := web.New(web.Options{Token: token})
	s.HandleMissed(svc)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return srv, entries
}

func call(t *testing.T, method, url, token, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s %s: Content-Type %q, want JSON", method, url, ct)
	}
	return resp.StatusCode, b
}

type missedList struct {
	Items []map[string]any `json:"items"`
	Next  *string          `json:"next"`
}

func TestMissedAPIList(t *testing.T) {
	t.Parallel()
	srv, entries := missedServer(t, "", "+4930111001", "+4930111002", "+4930111003")
	if len(entries) != 3 {
		t.Fatalf("%d entries, want 3", len(entries))
	}
	code, b := call(t, "GET", srv.URL+"/api/missed?status=open", "", "")
	var l missedList
	if err := json.Unmarshal(b, &l); err != nil || code != 200 || l.Next == nil {
		t.Fatalf("GET /api/missed: %d %s (%v)", code, b, err)
	}
	if len(l.Items) != 3 {
		t.Fatalf("%d items, want 3", len(l.Items))
	}
	for _, k := range []string{"id", "call_id", "contact_id", "caller", "hotline", "status", "count", "exception", "notified_at", "processed_at", "resolved_by"} {
		if _, ok := l.Items[0][k]; !ok {
			t.Errorf("item without %q: %v", k, l.Items[0])
		}
	}
	if l.Items[0]["caller"] != "+4930111003" || l.Items[0]["status"] != "open" || l.Items[0]["count"] != 1.0 {
		t.Errorf("newest item %v", l.Items[0])
	}

	// Pages of two.
	var callers []any
	url := srv.URL + "/api/missed?limit=2"
	for range 3 {
		_, b := call(t, "GET", url, "", "")
		var p missedList
		if err := json.Unmarshal(b, &p); err != nil {
			t.Fatal(err)
		}
		for _, it := range p.Items {
			callers = append(callers, it["caller"])
		}
		if *p.Next == "" {
			break
		}
		url = srv.URL + "/api/missed?limit=2&cursor=" + *p.Next
	}
	if fmt.Sprint(callers) != "[+4930111003 +4930111002 +4930111001]" {
		t.Errorf("pages gave %v", callers)
	}

	for _, c := range []struct {
		query string
		code  int
		want  string
	}{
		{"?status=closed", 400, "status"},
		{"?limit=0", 400, "limit"},
		{"?limit=x", 400, "limit"},
		{"?cursor=%21%21", 400, "cursor"},
		{"?status=processed", 200, `"items":[]`},
		{"?status=all", 200, "+4930111001"},
	} {
		code, b := call(t, "GET", srv.URL+"/api/missed"+c.query, "", "")
		if code != c.code || !strings.Contains(string(b), c.want) {
			t.Errorf("GET /api/missed%s: %d %s, want %d with %q", c.query, code, b, c.code, c.want)
		}
	}
}

func TestMissedAPIProcess(t *testing.T) {
	t.Parallel()
	srv, entries := missedServer(t, "tok", "+4930111001")
	id := entries[0].ID
	steps := []struct {
		name  string
		path  string
		token string
		body  string
		code  int
		want  string
	}{
		{"no token", "/api/missed/" + id + "/processed", "", "", 401, "token"},
		{"bad body", "/api/missed/" + id + "/processed", "tok", "{", 400, "body"},
		{"unknown id", "/api/missed/nope/processed", "tok", "", 404, "nope"},
		{"mark", "/api/missed/" + id + "/processed", "tok", `{"by": "alice\r\n"}`, 200, `"resolved_by":"alice"`},
		{"again", "/api/missed/" + id + "/processed", "tok", "", 409, "already processed"},
	}
	for _, s := range steps {
		code, b := call(t, "POST", srv.URL+s.path, s.token, s.body)
		if code != s.code || !strings.Contains(string(b), s.want) {
			t.Errorf("%s: %d %s, want %d with %q", s.name, code, b, s.code, s.want)
		}
		var obj map[string]any
		if err := json.Unmarshal(b, &obj); err != nil {
			t.Errorf("%s: body %s is not a JSON object", s.name, b)
		}
		if code >= 400 && obj["error"] == nil {
			t.Errorf("%s: error response without \"error\": %s", s.name, b)
		}
	}
	_, b := call(t, "GET", srv.URL+"/api/missed?status=processed", "tok", "")
	if !strings.Contains(string(b), `"status":"processed"`) || !strings.Contains(string(b), `"processed_at":"2`) {
		t.Errorf("processed list %s", b)
	}
}
