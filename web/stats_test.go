package web

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/switchboard-sip/switchboard/stats"
)

// statsOptions are the figures of store with company as acme's company and
// every top caller Jane with one open missed call.
func statsOptions(store StatsSource, company string) StatsOptions {
	return StatsOptions{Source: store,
		Companies: func() map[string]string { return map[string]string{"acme": company} },
		Caller: func(context.Context) stats.Caller {
			return func(id int64) (string, string, int64, bool) { return "Jane", "+4915112345678", 1, true }
		}}
}

func TestStatsAPI(t *testing.T) {
	store := newCallStore(t, 10) // 10 inbound calls from t0 on; every third missed
	s := New(Options{Calls: store, Log: zaptest.NewLogger(t)})
	s.now = func() time.Time { return t0.Add(24 * time.Hour) }
	RegisterStats(s, statsOptions(store, "ACME GmbH"))
	srv := httptest.NewServer(s)
	defer srv.Close()

	r := do(t, srv, "GET", "/api/stats", nil)
	var body map[string]json.RawMessage
	if r.status != 200 || json.Unmarshal([]byte(r.body), &body) != nil {
		t.Fatalf("%d %s", r.status, r.body)
	}
	for _, k := range []string{"since", "until", "totals", "hotlines", "campaigns", "by_day", "by_hour", "top_callers", "reasons", "satisfaction", "resolved"} {
		if _, ok := body[k]; !ok {
			t.Errorf("no %q in %s", k, r.body)
		}
	}
	var rep stats.Report
	json.Unmarshal([]byte(r.body), &rep)
	if rep.Totals.Calls != 10 || rep.Totals.Missed != 4 || rep.Hotlines[0].Company != "ACME GmbH" || rep.Hotlines[0].RingMSP50 != 1500 ||
		len(rep.ByDay) != 30 || len(rep.ByHour) != 168 || len(rep.TopCallers) != 1 || rep.TopCallers[0].Name != "Jane" {
		t.Errorf("report %+v", rep)
	}
	r = do(t, srv, "GET", "/api/stats?since=2h&hotline=other", map[string]string{"Accept": "text/html, text/csv;q=0.9"})
	if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/csv") || !strings.Contains(r.body, "\ntotals,,,0,") {
		t.Errorf("csv: %d %s %s", r.status, r.header.Get("Content-Type"), r.body)
	}
	r = do(t, srv, "GET", "/api/stats?contact=999", nil)
	if json.Unmarshal([]byte(r.body), &rep) != nil || r.status != 200 || rep.Totals.Calls != 0 || len(rep.TopCallers) != 0 {
		t.Errorf("contact=999 (no calls): %d %s", r.status, r.body)
	}
	for q, field := range map[string]string{"?since=soon": "since", "?until=48h&since=1h": "until", "?contact=jane": "contact", "?contact=-1": "contact"} {
		r := do(t, srv, "GET", "/api/stats"+q, nil)
		if msg := errorBody(t, r); r.status != 400 || !strings.HasPrefix(msg, field) {
			t.Errorf("%s: %d %q", q, r.status, msg)
		}
	}
}
