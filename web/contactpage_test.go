package web

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/switchboard-sip/switchboard/configs"
	"github.com/switchboard-sip/switchboard/contacts"
)

// The search box finds a contact by a number in national format, which
// the substring search of names and E.164 digits cannot.
func TestContactSearchByNationalNumber(t *testing.T) {
	srv, store, _, _ := contactServer(t)
	jane, err := store.Create(context.Background(), contacts.Contact{Name: "Jane", Numbers: []contacts.Phone{{E164: "+49301234567"}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Create(context.Background(), contacts.Contact{Name: "Bob 030", Numbers: []contacts.Phone{{E164: "+49309999999"}}}); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"030%201234567", "0049%2030%201234567", "Jane"} {
		code, body := contactDo(t, srv, "GET", "/api/contacts?q="+q, "")
		items, _ := body["items"].([]any)
		if code != 200 || len(items) == 0 || items[0].(map[string]any)["id"] != float64(jane.ID) {
			t.Errorf("q=%s: %d %v, want Jane first", q, code, body)
		}
	}
}

// The contact page is the board's page under /board/contacts/{id}; other
// paths under /board/contacts/ are not.
func TestContactPageRoute(t *testing.T) {
	s := New(Options{Log: zaptest.NewLogger(t)})
	RegisterBoard(s, BoardOptions{Recordings: func() (string, bool) { return "https://pbx.example/rec/", true }})
	srv := httptest.NewServer(s)
	defer srv.Close()
	for path, want := range map[string]int{"/board/contacts/12": 200, "/board/contacts/x": 404, "/board/contacts/": 404} {
		r := do(t, srv, "GET", path, nil)
		if r.status != want || (want == 200 && !strings.Contains(r.body, `id="contact"`)) {
			t.Errorf("%s: %d, want %d", path, r.status, want)
		}
		if want == 200 && !strings.Contains(r.header.Get("Content-Security-Policy"), "media-src 'self' http: https:") {
			t.Errorf("%s: CSP %q lets no recording play", path, r.header.Get("Content-Security-Policy"))
		}
	}
	var cfg BoardConfig
	json.Unmarshal([]byte(do(t, srv, "GET", "/api/board", nil).body), &cfg)
	if cfg.RecordingsBaseURL != "https://pbx.example/rec/" || !cfg.RecordingsDeleteAtPBX {
		t.Errorf("board config %+v", cfg)
	}
}

// The contact charts are one contact's report over twelve months, drawn
// by statchart's contact set.
func TestContactCharts(t *testing.T) {
	store := newCallStore(t, 10) // call001 belongs to contact 7
	s := New(Options{Calls: store, Log: zaptest.NewLogger(t)})
	s.now = func() time.Time { return t0.Add(24 * time.Hour) }
	RegisterInsights(s, statsOptions(store, "ACME GmbH"))
	srv := httptest.NewServer(s)
	defer srv.Close()
	r := do(t, srv, "GET", "/api/contacts/7/charts?theme=dark", nil)
	var got Insights
	if err := json.Unmarshal([]byte(r.body), &got); err != nil || r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	var names []string
	for _, c := range got.Charts {
		names = append(names, c.Name)
	}
	if got.Report.Totals.Calls != 1 || strings.Join(names, ",") != "by_month,satisfaction,resolved,reasons" || got.Charts[0].SVG == "" {
		t.Errorf("totals %+v, charts %v", got.Report.Totals, names)
	}
	for _, bad := range []string{"/api/contacts/x/charts", "/api/contacts/7/charts?theme=pink"} {
		if r := do(t, srv, "GET", bad, nil); r.status != 400 {
			t.Errorf("%s: %d", bad, r.status)
		}
	}
}

// Delete asks the PBX's store with the token and clears the reference;
// when the PBX refuses, the reference stays and the answer says why.
func TestDeleteRecording(t *testing.T) {
	var mu sync.Mutex
	var got []string
	refuse := false
	pbx := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, r.Method+" "+r.URL.Path+" "+r.Header.Get("Authorization"))
		if refuse {
			http.Error(w, "locked by legal hold", http.StatusConflict)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer pbx.Close()
	store := newCallStore(t, 3)
	ctx := context.Background()
	for _, id := range []string{"call001", "call002"} {
		r, _ := store.Get(ctx, id)
		r.Recording = "rec/" + id
		store.Save(r)
	}
	if err := store.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	s := New(Options{Calls: store, Log: zaptest.NewLogger(t)})
	var events []string
	RegisterRecordings(s, RecordingOptions{Store: store, Log: zaptest.NewLogger(t),
		Publish: func(typ string, data any) { events = append(events, typ) },
		Config: func() configs.Recordings {
			return configs.Recordings{DeleteURL: pbx.URL + "/store/{{.Recording}}", DeleteToken: "s3cret"}
		}})
	srv := httptest.NewServer(s)
	defer srv.Close()

	r := do(t, srv, "DELETE", "/api/calls/call001/recording", nil)
	var out RecordingDeleted
	if err := json.Unmarshal([]byte(r.body), &out); err != nil || r.status != 200 || !out.AtPBX || out.PBXStatus != 204 || out.Call.Recording != "" {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	if len(got) != 1 || got[0] != "DELETE /store/rec/call001 Bearer s3cret" {
		t.Errorf("the PBX got %q", got)
	}
	if rec, _ := store.Get(ctx, "call001"); rec.Recording != "" {
		t.Errorf("reference still %q", rec.Recording)
	}
	if len(events) != 1 || events[0] != EventCallUpdated {
		t.Errorf("events %v", events)
	}

	mu.Lock()
	refuse = true
	mu.Unlock()
	r = do(t, srv, "DELETE", "/api/calls/call002/recording", nil)
	if r.status != http.StatusBadGateway || !strings.Contains(r.body, "legal hold") {
		t.Errorf("refused by the PBX: %d %s", r.status, r.body)
	}
	if rec, _ := store.Get(ctx, "call002"); rec.Recording != "rec/call002" {
		t.Errorf("a refused delete cleared the reference: %q", rec.Recording)
	}
	for path, want := range map[string]int{"/api/calls/call001/recording": 404, "/api/calls/nope/recording": 404} {
		if r := do(t, srv, "DELETE", path, nil); r.status != want {
			t.Errorf("%s: %d, want %d", path, r.status, want)
		}
	}
}

// The delete URL is an http(s) URL whatever the reference holds.
func TestRecordingDeleteURL(t *testing.T) {
	for _, tt := range []struct{ tmpl, ref, want string }{
		{"https://pbx/rec/{{.Recording}}", "abc", "https://pbx/rec/abc"},
		{"https://pbx/rec?id={{urlquery .Recording}}", "a b&c", "https://pbx/rec?id=a+b%26c"},
		{"{{.Recording}}", "javascript:alert(1)", ""},
		{"{{.Recording}}", "file:///etc/passwd", ""},
		{"https://pbx/{{.Nope}}", "x", ""},
	} {
		got, err := RecordingDeleteURL(tt.tmpl, tt.ref)
		if got != tt.want || (tt.want == "") != (err != nil) {
			t.Errorf("%q with %q = %q, %v; want %q", tt.tmpl, tt.ref, got, err, tt.want)
		}
	}
}
