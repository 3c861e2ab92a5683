package statchart

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-sip/switchboard/stats"
)

// seeded is a report with known counts: five days (one without calls),
// three hours of the week with calls, two hotlines, one campaign, two top
// callers and one reason.
func seeded() stats.Report {
	r := stats.Report{Since: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), Until: time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)}
	for i := 1; i <= 5; i++ {
		r.ByDay = append(r.ByDay, stats.DayStat{Date: fmt.Sprintf("2026-12-%02d", i), Calls: int64(3 * i), Answered: int64(i), Missed: int64(i)})
	}
	r.ByDay[2] = stats.DayStat{Date: "2026-12-03"}
	r.ByHour = []stats.HourStat{{Weekday: 1, Hour: 9, Calls: 3}, {Weekday: 0, Hour: 23, Calls: 1}, {Weekday: 3, Hour: 14, Calls: 12}, {Weekday: 4, Hour: 10}}
	r.Hotlines = []stats.HotlineStats{
		{Name: "acme", Company: "ACME <GmbH> & Co", Calls: 10, Answered: 6, Missed: 3, AnswerRate: 6.0 / 9},
		{Name: "beta", Calls: 2, Answered: 2, AnswerRate: 1},
	}
	r.Campaigns = []stats.CampaignStat{{Campaign: "radio", Calls: 4, Answered: 3, Missed: 1, AnswerRate: .75}}
	r.TopCallers = []stats.TopCaller{{ContactID: 1, Name: "Jane", Number: "+4930111222", Calls: 5, OpenMissed: 1}, {ContactID: 2, Name: "Bob", Calls: 3}}
	r.Reasons = []stats.ReasonStat{{Reason: "order", Calls: 3}}
	return r
}

// fills counts the shapes filled with a series colour.
func fills(svg, color string) int { return strings.Count(svg, "fill:"+color+`"`) }

func TestRenderCounts(t *testing.T) {
	cs, err := Render(seeded(), Light)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != len(Names) {
		t.Fatalf("%d charts, want %d", len(cs), len(Names))
	}
	got := map[string]Chart{}
	for i, c := range cs {
		if c.Name != Names[i] {
			t.Errorf("chart %d is %q, want %q", i, c.Name, Names[i])
		}
		got[c.Name] = c
	}
	bars := func(name string, series, want int) {
		t.Helper()
		c := got[name]
		if n := fills(c.SVG, c.Series[series].Color); n != want {
			t.Errorf("%s: %d %s bars, want %d", name, n, c.Series[series].Name, want)
		}
	}
	// Every day gets its stacked bar (answered, missed, other), an empty
	// day too.
	for i := range 3 {
		bars("by_day", i, 5)
	}
	for i := range 3 {
		bars("hotlines", i, 2)
		bars("campaigns", i, 1)
	}
	bars("top_callers", 0, 2)
	bars("top_callers", 1, 2)
	bars("reasons", 0, 1)
	// The answer rate has a point for each day with answered or missed
	// calls: four of five.
	rate := got["answer_rate"]
	if n := strings.Count(rate.SVG, "<circle"); n != 4 {
		t.Errorf("answer_rate: %d points, want 4", n)
	}
	// The heat map has a cell for each hour with calls, each labelled with
	// its count.
	heat := got["by_hour"].SVG
	for _, want := range []string{">3</text>", ">1</text>", ">12</text>", ">Mon</text>", ">Sun</text>", ">23</text>"} {
		if !strings.Contains(heat, want) {
			t.Errorf("by_hour lacks %s", want)
		}
	}
	if strings.Contains(got["hotlines"].SVG, "<GmbH>") || !strings.Contains(got["hotlines"].SVG, "ACME &lt;GmbH&gt; &amp; Co") {
		t.Errorf("hotline names not escaped in the SVG")
	}
	if !strings.Contains(got["top_callers"].SVG, "Jane (+4930111222)") {
		t.Errorf("top caller label missing")
	}
	// Each chart says in words what it shows.
	for name, want := range map[string]string{
		"by_day":      "2 Dec: 6 calls, 2 answered, 2 missed; 4 Dec",
		"answer_rate": "1 Dec: 50%; 2 Dec: 50%; 4 Dec: 50%; 5 Dec: 50%.",
		"hotlines":    "ACME <GmbH> & Co · 67%: 10 calls, 6 answered, 3 missed; beta · 100%: 2 calls",
		"by_hour":     "Busiest: Wed 14:00: 12 calls; Mon 09:00: 3 calls; Sun 23:00: 1 calls.",
		"top_callers": "Jane (+4930111222): 5 calls, 1 open missed; Bob: 3 calls, 0 open missed.",
		"reasons":     "order: 3 calls.",
	} {
		if !strings.Contains(got[name].Summary, want) {
			t.Errorf("%s: summary %q lacks %q", name, got[name].Summary, want)
		}
	}
}

func TestRenderEmpty(t *testing.T) {
	r := stats.Report{ByDay: []stats.DayStat{{Date: "2026-12-01"}}}
	cs, err := Render(r, Dark)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		switch c.Name {
		case "by_day":
			if c.SVG == "" {
				t.Errorf("by_day: a range without calls still has its days")
			}
		default:
			if c.SVG != "" || c.Empty == "" {
				t.Errorf("%s: svg %d bytes, empty %q; want no drawing and a reason", c.Name, len(c.SVG), c.Empty)
			}
		}
		if c.Series == nil {
			t.Errorf("%s: series null", c.Name)
		}
	}
	if _, err := RenderOne(r, "pie", Light); err == nil || !strings.Contains(err.Error(), "pie") {
		t.Errorf("unknown chart: %v", err)
	}
}
