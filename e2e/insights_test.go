package e2e

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/switchboard-sip/switchboard/cdr"
	"github.com/switchboard-sip/switchboard/storage"
	"github.com/switchboard-sip/switchboard/storage/callstore"
)

// insightContacts are the known callers of the Insights test, besides
// boardContact (contact 1); they are imported as contacts 2 and up.
var insightContacts = []struct{ name, number string }{
	{"Max Mustermann", "+4930555001"}, {"Erika Musterfrau", "+4930555002"}, {"Hans Meier", "+4930555003"},
}

// insightCall is one seeded call.
type insightCall struct {
	start       time.Time
	hotline     string
	campaign    string
	disposition cdr.Disposition
	contact     int64
	reason      string
}

// insightCalls is a deterministic spread of calls over the 20 days before
// today (UTC, the config's zone): several a day at office hours, every
// outcome, two hotlines, three campaigns (one of them none), four known
// callers and some wrapped up.
func insightCalls(today time.Time) []insightCall {
	outcomes := []cdr.Disposition{cdr.Answered, cdr.Answered, cdr.NoAnswer, cdr.Answered, cdr.Busy, cdr.Blocked, cdr.Answered}
	hotlines := []string{"acme", "acme", "globex"}
	campaigns := []string{"radio", "web", "", "radio"}
	reasons := []string{"order", "", "support", "", "complaint", ""}
	var out []insightCall
	k := 0
	for d := 1; d <= 20; d++ {
		if d%7 == 3 {
			continue // a day without calls
		}
		for i := range (d*7)%5 + 1 {
			k++
			c := insightCall{
				start:       today.AddDate(0, 0, -d).Add(time.Duration(8+(d+i*3)%10)*time.Hour + time.Duration(i*7)*time.Minute),
				hotline:     hotlines[k%len(hotlines)],
				campaign:    campaigns[k%len(campaigns)],
				disposition: outcomes[k%len(outcomes)],
				contact:     int64(k % (len(insightContacts) + 3)), // 0 (unknown) for some
			}
			if c.contact > int64(len(insightContacts)+1) {
				c.contact = 0
			}
			if c.disposition == cdr.Answered {
				c.reason = reasons[k%len(reasons)]
			}
			out = append(out, c)
		}
	}
	return out
}

// seedInsightCalls imports insightContacts and writes calls into the call
// store of n.
func seedInsightCalls(t *testing.T, n *node, calls []insightCall) {
	t.Helper()
	csv := "name,phone\n"
	for _, c := range insightContacts {
		csv += c.name + "," + c.number + "\n"
	}
	path := filepath.Join(n.dir, "more.csv")
	if err := os.WriteFile(path, []byte(csv), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(binPath, "contacts", "import", "-c", n.cfgPath, path).CombinedOutput(); err != nil {
		t.Fatalf("contacts import: %v\n%s", err, out)
	}
	ctx := context.Background()
	db, err := storage.Open("sqlite", filepath.Join(n.dir, "sb.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	store, err := callstore.New(ctx, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range calls {
		end := c.start.Add(time.Minute)
		r := cdr.Record{
			ID: fmt.Sprintf("seed%d", i), CallID: fmt.Sprintf("seed-%d@e2e", i), Direction: cdr.Inbound,
			Caller: trunkCaller, Called: hotlineNumber, Hotline: c.hotline, Campaign: c.campaign, ContactID: c.contact,
			Node: "e2e", StartedAt: c.start, EndedAt: &end, Disposition: c.disposition, RingMS: 2000 + int64(i%7)*1000,
		}
		if c.disposition == cdr.Answered {
			at := c.start.Add(2 * time.Second)
			r.AnsweredAt, r.TalkMS, r.SIPStatus, r.AnsweredBy = &at, 58000, 200, "reception"
		}
		if c.reason != "" {
			r.WrapUp = cdr.WrapUp{Reason: c.reason, Satisfaction: 1 + i%5, At: &end}
		}
		store.Save(r)
	}
	if err := store.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// expectedCounts are what the charts must draw for calls over the default
// range (the last 30 days).
func expectedCounts(calls []insightCall) map[string]chartCount {
	rated, cells, hotlines, campaigns, callers, reasons := map[string]bool{}, map[string]bool{}, map[string]bool{}, map[string]bool{}, map[int64]bool{}, map[string]bool{}
	for _, c := range calls {
		if c.disposition == cdr.Answered || c.disposition == cdr.NoAnswer || c.disposition == cdr.Busy {
			rated[c.start.Format(time.DateOnly)] = true
		}
		cells[fmt.Sprint(c.start.Weekday(), c.start.Hour())] = true
		hotlines[c.hotline], campaigns[c.campaign] = true, true
		if c.contact != 0 {
			callers[c.contact] = true
		}
		if c.reason != "" {
			reasons[c.reason] = true
		}
	}
	three := func(n int) []int { return []int{n, n, n} }
	return map[string]chartCount{
		"by_day":      {Fills: three(30)}, // every day of the range, days without calls too
		"answer_rate": {Points: len(rated)},
		"hotlines":    {Fills: three(len(hotlines))},
		"campaigns":   {Fills: three(len(campaigns))},
		"by_hour":     {Cells: len(cells)},
		"top_callers": {Fills: []int{len(callers), len(callers)}},
		"reasons":     {Fills: []int{len(reasons)}},
	}
}

// chartCounts reads what each Insights chart drew: the shapes filled with
// each legend colour, the line points and the heat map cells, from the SVG
// the board shows as an image, and whether the image was decoded.
const chartCounts = `(() => {
  const out = {};
  for (const f of document.querySelectorAll("#charts figure")) {
    const img = f.querySelector("img");
    if (!img) { out[f.dataset.chart] = {empty: true}; continue; }
    const src = decodeURIComponent(img.src.slice(img.src.indexOf(",") + 1));
    const svg = new DOMParser().parseFromString(src, "image/svg+xml");
    const paths = [...svg.querySelectorAll("path")].map((p) => p.getAttribute("style") || "");
    const colors = [...f.querySelectorAll(".swatch")].map((s) => s.dataset.color);
    out[f.dataset.chart] = {
      loaded: img.complete && img.naturalWidth > 0,
      fills: colors.map((c) => paths.filter((s) => s.includes("fill:" + c)).length),
      points: svg.querySelectorAll("circle").length,
      cells: paths.filter((s) => s.includes("fill:rgb(")).length,
    };
  }
  return out;
})()`

type chartCount struct {
	Empty  bool  `json:"empty"`
	Loaded bool  `json:"loaded"`
	Fills  []int `json:"fills"`
	Points int   `json:"points"`
	Cells  int   `json:"cells"`
}

// TestBoardInsights opens the Insights view on a seeded database and
// checks that each chart drew one bar, point or cell per figure, that the
// view follows a wrap-up made meanwhile, and saves a screenshot (into docs/
// with SWITCHBOARD_UPDATE_DOCS=1).
func TestBoardInsights(t *testing.T) {
	exe := chromiumPath(t)
	calls := insightCalls(time.Now().UTC().Truncate(24 * time.Hour))
	n := boardNode(t, func(n *node) { seedInsightCalls(t, n, calls) })
	ctx := browser(t, exe)
	// The browser's days are the switchboard's (UTC), so that "the last 30
	// days" are 30 whole days on both sides.
	step(t, ctx, "set the time zone", chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{TimezoneID: "UTC"})
		return err
	}))
	signIn(t, ctx, n)
	step(t, ctx, "open the Insights view",
		chromedp.Click(chromedp.CSS(`#view-insights`)),
		chromedp.WaitVisible(chromedp.CSS(`#charts figure[data-chart="by_day"] img`)),
		chromedp.WaitVisible(chromedp.CSS(`#charts figure[data-chart="reasons"] img`)))
	counts := value(t, ctx, "count what the charts drew", chromedp.Evaluate[map[string]chartCount](chartCounts))
	want := expectedCounts(calls)
	for name, w := range want {
		got, ok := counts[name]
		switch {
		case !ok || got.Empty:
			t.Errorf("chart %s: not drawn (%+v)", name, got)
		case !got.Loaded:
			t.Errorf("chart %s: the image did not load", name)
		case w.Fills != nil && fmt.Sprint(got.Fills) != fmt.Sprint(w.Fills):
			t.Errorf("chart %s: bars per series %v, want %v", name, got.Fills, w.Fills)
		case w.Points != 0 && got.Points != w.Points:
			t.Errorf("chart %s: %d points, want %d", name, got.Points, w.Points)
		case w.Cells != 0 && got.Cells != w.Cells:
			t.Errorf("chart %s: %d cells, want %d", name, got.Cells, w.Cells)
		}
	}
	alt := value(t, ctx, "read the heat map's text", chromedp.AttributeValue(chromedp.CSS(`#charts figure[data-chart="by_hour"] img`), "alt"))
	if !strings.HasPrefix(alt.Value, "Calls per hour of the week. Busiest: ") {
		t.Errorf("the heat map's alternative text is %q", alt.Value)
	}
	totals := value(t, ctx, "read the totals", chromedp.Text(chromedp.CSS(`#totals`)))
	t.Logf("totals: %q", totals)

	// A wrap-up saved elsewhere reaches the view through the event stream.
	step(t, ctx, "wrap up another call through the API", chromedp.Evaluate[chromedp.Void](
		`fetch("/api/session").then(r => r.json()).then(s => fetch("/api/calls/seed4", {method: "PATCH",
		  headers: {"Content-Type": "application/json", "X-CSRF-Token": s.csrf || ""},
		  body: JSON.stringify({reason: "billing", satisfaction: 2})})).then(r => { if (!r.ok) throw new Error(r.status); })`,
		chromedp.EvalAwaitPromise))
	more := want["reasons"].Fills[0] + 1
	reasons := value(t, ctx, "see the reasons chart follow", chromedp.Poll[int](
		fmt.Sprintf(`(() => { const c = (%s).reasons; return c && c.fills && c.fills[0] === %d ? %[2]d : 0; })()`, chartCounts, more),
		chromedp.WithPollingTimeout(10*time.Second)))
	if reasons != more {
		t.Errorf("reasons chart after a wrap-up: want %d bars", more)
	}

	shot := value(t, ctx, "take a screenshot", chromedp.FullScreenshot(100))
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil || img.Bounds().Dx() < 800 {
		t.Fatalf("screenshot: %v (%v)", err, img)
	}
	out := filepath.Join(t.TempDir(), "insights.png")
	if os.Getenv("SWITCHBOARD_UPDATE_DOCS") != "" {
		out = filepath.Join(filepath.Dir(scenarioDir), "docs", "insights.png")
	}
	if err := os.WriteFile(out, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s (%dx%d)", out, img.Bounds().Dx(), img.Bounds().Dy())

	// A call that ends while the view is open is counted without a reload.
	if total := value(t, ctx, "read the calls total", chromedp.Text(chromedp.CSS(`#totals dd`))); total != fmt.Sprint(len(calls)) {
		t.Errorf("calls total %q, want %d", total, len(calls))
	}
	pbx := n.pbx(t, "uas_answer.xml", 0)
	call := n.trunkCall(t, "uac_answer.xml", 500*time.Millisecond)
	call.succeed(t)
	pbx.succeed(t)
	value(t, ctx, "see the ended call counted", chromedp.Poll[bool](
		fmt.Sprintf(`document.querySelector("#totals dd").textContent === "%d"`, len(calls)+1),
		chromedp.WithPollingTimeout(15*time.Second)))

	// wrapup.reasons changed by a reload reach the board.
	cfg, err := os.ReadFile(n.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	n.reloadConfig(t, string(cfg)+"wrapup:\n  reasons: [billing, order]\n", true)
	offered := value(t, ctx, "ask the board's config", chromedp.Evaluate[[]string](
		`fetch("/api/board").then(r => r.json()).then(c => c.wrapup_reasons)`, chromedp.EvalAwaitPromise))
	if strings.Join(offered, ",") != "billing,order" {
		t.Errorf("after a reload the board offers reasons %q, want billing,order", offered)
	}

	// Filtered by hotline, the per-hotline chart has one bar.
	step(t, ctx, "filter by hotline",
		chromedp.SetValue(chromedp.CSS(`#filter-hotline`), "globex"),
		chromedp.Evaluate[chromedp.Void](`document.getElementById("filter-hotline").dispatchEvent(new Event("change", {bubbles: true}))`))
	hot := value(t, ctx, "see the filtered chart", chromedp.Poll[int](
		`(() => { const c = (`+chartCounts+`).hotlines; return c && c.fills && c.fills[0] === 1 ? 1 : 0; })()`,
		chromedp.WithPollingTimeout(10*time.Second)))
	if hot != 1 {
		t.Errorf("hotline filter: %d hotline bars, want 1", hot)
	}
	step(t, ctx, "clear the filter",
		chromedp.SetValue(chromedp.CSS(`#filter-hotline`), ""),
		chromedp.Evaluate[chromedp.Void](`document.getElementById("filter-hotline").dispatchEvent(new Event("change", {bubbles: true}))`))
	value(t, ctx, "see all hotlines again", chromedp.Poll[int](
		fmt.Sprintf(`(() => { const c = (%s).hotlines; return c && c.fills && c.fills[0] === %d ? 1 : 0; })()`, chartCounts, want["hotlines"].Fills[0]),
		chromedp.WithPollingTimeout(10*time.Second)))

}
