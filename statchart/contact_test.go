package statchart

import (
	"strings"
	"testing"
	"time"

	"github.com/switchboard-sip/switchboard/stats"
)

// The contact charts add the days of each month: calls by outcome, the
// mean score of the scored calls and the share resolved; a range without
// them says so in words.
func TestContactCharts(t *testing.T) {
	loc := time.UTC
	f := stats.Filter{Since: time.Date(2026, 10, 1, 0, 0, 0, 0, loc), Until: time.Date(2026, 12, 5, 0, 0, 0, 0, loc), Location: loc}
	r := stats.Empty(f)
	r.AddDay("2026-10-03", 3, 2, 1, [24]int64{})
	r.AddDay("2026-10-20", 1, 1, 0, [24]int64{})
	r.AddDay("2026-12-01", 2, 0, 2, [24]int64{})
	r.AddWrapUps("2026-10-03", 1, 1, 2, 9) // scores 4 and 5
	r.AddWrapUps("2026-10-20", 1, 0, 1, 1)
	r.Resolved.Add(2, 1)
	charts, err := RenderContact(r, Light)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Chart{}
	for _, c := range charts {
		got[c.Name] = c
	}
	for name, want := range map[string]string{
		"by_month":     "Oct 26: 4 calls, 3 answered, 1 missed; Dec 26: 2 calls, 0 answered, 2 missed.",
		"satisfaction": "Oct 26: 3.3 of 5.",
		"resolved":     "67% of 3 calls resolved. Oct 26: 67% resolved.",
	} {
		if c := got[name]; c.Summary != want || c.SVG == "" {
			t.Errorf("%s: summary %q (svg %d bytes), want %q", name, c.Summary, len(c.SVG), want)
		}
	}
	if c := got["reasons"]; c.SVG != "" || !strings.Contains(c.Empty, "No wrapped-up") {
		t.Errorf("reasons without reasons: %+v", c)
	}
	empty, err := RenderContact(stats.Empty(f), Dark)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range empty {
		if c.SVG != "" || c.Empty == "" {
			t.Errorf("%s of an empty report: svg %d bytes, empty %q", c.Name, len(c.SVG), c.Empty)
		}
	}
}
