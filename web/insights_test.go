package web

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-sip/switchboard/stats"
)

func TestInsights(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	var asked []stats.Filter
	s := New(Options{Location: berlin})
	s.now = func() time.Time { return now }
	RegisterInsights(s, InsightsOptions{Report: func(_ context.Context, f stats.Filter) (stats.Report, error) {
		if f.Hotline == "broken" {
			return stats.Report{}, errors.New("database gone")
		}
		asked = append(asked, f)
		return stats.Report{
			Since: f.Since, Until: f.Until, Totals: stats.Totals{Calls: 3, Answered: 2, Missed: 1, AnswerRate: 2.0 / 3},
			ByDay:    []stats.DayStat{{Date: "2026-12-03", Calls: 1, Answered: 1}, {Date: "2026-12-04", Calls: 2, Answered: 1, Missed: 1}},
			ByHour:   []stats.HourStat{{Weekday: 4, Hour: 11, Calls: 2}},
			Hotlines: []stats.HotlineStats{{Name: "acme", Company: "ACME", Calls: 3, Answered: 2, Missed: 1}},
		}, nil
	}})
	srv := httptest.NewServer(s)
	defer srv.Close()
	get := func(path string) (*http.Response, string) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(b)
	}

	resp, body := get("/api/stats/charts?since=48h&until=2026-12-04T11:00:00Z&hotline=acme&campaign=radio&theme=dark")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	f := asked[len(asked)-1]
	if !f.Since.Equal(now.Add(-48*time.Hour)) || !f.Until.Equal(time.Date(2026, 12, 4, 11, 0, 0, 0, time.UTC)) ||
		f.Hotline != "acme" || f.Campaign != "radio" || f.Location != berlin {
		t.Fatalf("filter %+v", f)
	}
	var got Insights
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	if got.Report.Totals.Calls != 3 || len(got.Charts) != 7 {
		t.Fatalf("report %+v, %d charts", got.Report.Totals, len(got.Charts))
	}
	if c := got.Charts[0]; c.Name != "by_day" || !strings.HasPrefix(c.SVG, "<svg") || len(c.Series) != 3 {
		t.Fatalf("first chart %q: %.60q, series %v", c.Name, c.SVG, c.Series)
	}
	if c := got.Charts[3]; c.Name != "campaigns" || c.SVG != "" || c.Empty == "" {
		t.Fatalf("campaigns without data: %+v", c)
	}

	// Without parameters the source picks the default range.
	if resp, body := get("/api/stats/charts"); resp.StatusCode != 200 || !asked[len(asked)-1].Since.IsZero() {
		t.Fatalf("default range: %d %s, filter %+v", resp.StatusCode, body, asked[len(asked)-1])
	}

	resp, body = get("/api/stats/charts/by_hour.svg?since=24h")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/svg+xml" || !strings.HasPrefix(body, "<svg") {
		t.Fatalf("by_hour.svg: %d %s %.80q", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	if !strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'none'") {
		t.Fatalf("svg without CSP")
	}

	for _, tt := range []struct {
		path, naming string
		status       int
	}{
		{"/api/stats/charts?since=yesterday", "since", 400},
		{"/api/stats/charts?since=-1h", "since", 400},
		{"/api/stats/charts?since=1h&until=2h", "until", 400},
		{"/api/stats/charts?theme=pink", "theme", 400},
		{"/api/stats/charts/pie.svg", "pie", 404},
		{"/api/stats/charts/by_day.png", "by_day.png", 404},
		{"/api/stats/charts/campaigns.svg", "campaign", 404},
		{"/api/stats/charts?hotline=broken", "internal error", 500},
	} {
		resp, body := get(tt.path)
		if resp.StatusCode != tt.status || !strings.Contains(body, tt.naming) {
			t.Errorf("%s: %d %s; want %d naming %q", tt.path, resp.StatusCode, body, tt.status, tt.naming)
		}
	}
}
