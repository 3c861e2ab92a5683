package web

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
)

func TestInsights(t *testing.T) {
	store := newCallStore(t, 10) // 10 inbound calls from t0 on, one hour; every third missed
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	s := New(Options{Calls: store, Log: zaptest.NewLogger(t), Location: berlin})
	s.now = func() time.Time { return t0.Add(24 * time.Hour) }
	RegisterInsights(s, statsOptions(store, "ACME <GmbH>"))
	srv := httptest.NewServer(s)
	defer srv.Close()

	r := do(t, srv, "GET", "/api/stats/charts?theme=dark", nil)
	var got Insights
	if r.status != 200 || json.Unmarshal([]byte(r.body), &got) != nil {
		t.Fatalf("%d %.300s", r.status, r.body)
	}
	if got.Report.Totals.Calls != 10 || got.Report.Totals.Missed != 4 || len(got.Report.ByDay) != 30 || len(got.Charts) != 7 {
		t.Fatalf("totals %+v, %d days, %d charts", got.Report.Totals, len(got.Report.ByDay), len(got.Charts))
	}
	charts := map[string]int{}
	for i, c := range got.Charts {
		charts[c.Name] = i
	}
	// Each series of a bar chart has one bar per day, hotline or caller.
	bars := func(name string, series, want int) {
		t.Helper()
		c := got.Charts[charts[name]]
		if n := strings.Count(c.SVG, "fill:"+c.Series[series].Color+`"`); n != want {
			t.Errorf("%s: %d %s bars, want %d", name, n, c.Series[series].Name, want)
		}
	}
	bars("by_day", 0, 30)
	bars("hotlines", 1, 1)
	bars("top_callers", 0, 1)
	if c := got.Charts[charts["hotlines"]]; !strings.Contains(c.SVG, "ACME &lt;GmbH&gt;") {
		t.Errorf("hotlines chart without the company from the config: %.200s", c.SVG)
	}
	if c := got.Charts[charts["campaigns"]]; c.SVG == "" {
		t.Errorf("calls without a campaign are not drawn: %+v", c)
	}
	if c := got.Charts[charts["reasons"]]; c.SVG != "" || c.Empty == "" {
		t.Errorf("reasons without wrap-ups: %+v", c)
	}

	// A filter that matches nothing leaves only the days.
	r = do(t, srv, "GET", "/api/stats/charts?since=72h&until=2026-03-03T00:00:00Z&hotline=other", nil)
	if r.status != 200 || json.Unmarshal([]byte(r.body), &got) != nil || got.Report.Totals.Calls != 0 || len(got.Report.ByDay) == 0 {
		t.Fatalf("filtered: %d %.300s", r.status, r.body)
	}

	resp, err := http.Get(srv.URL + "/api/stats/charts/by_hour.svg?since=48h")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/svg+xml" ||
		!strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'none'") {
		t.Fatalf("by_hour.svg: %s %v", resp.Status, resp.Header)
	}

	for _, tt := range []struct {
		path, naming string
		status       int
	}{
		{"/api/stats/charts?since=yesterday", "since", 400},
		{"/api/stats/charts?since=1h&until=2h", "until", 400},
		{"/api/stats/charts?theme=pink", "theme", 400},
		{"/api/stats/charts/pie.svg", "pie", 404},
		{"/api/stats/charts/by_day.png", "by_day.png", 404},
		{"/api/stats/charts/reasons.svg", "wrapped-up", 404},
	} {
		r := do(t, srv, "GET", tt.path, nil)
		if r.status != tt.status || !strings.Contains(r.body, tt.naming) {
			t.Errorf("%s: %d %s; want %d naming %q", tt.path, r.status, r.body, tt.status, tt.naming)
		}
	}
}
