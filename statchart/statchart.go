// Package statchart draws the front-desk figures of SPEC §10 (a
// stats.Report) as SVG charts for the board's Insights view. The charts are
// drawn on the server by github.com/go-analyze/charts, so that the board
// stays plain HTML and JavaScript without third-party code or a CDN.
//
// Legends are not drawn into the SVG: each Chart names its series and their
// colours, and the board writes the legend as text, which screen readers
// and translations can reach.
package statchart

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/go-analyze/charts"

	"github.com/switchboard-sip/switchboard/stats"
)

// Chart is one drawn figure.
type Chart struct {
	// Name identifies the chart (one of Names).
	Name  string `json:"name"`
	Title string `json:"title"`
	// SVG is the drawing; empty when the range holds nothing to draw, in
	// which case Empty says so in words.
	SVG   string `json:"svg"`
	Empty string `json:"empty,omitempty"`
	// Summary says in words what the drawing shows, for those who cannot
	// see it (the image's alternative text).
	Summary string   `json:"summary"`
	Series  []Series `json:"series"`
}

// Series is one coloured series of a chart, for the legend.
type Series struct {
	Name string `json:"name"`
	// Color is written as the SVG writes it ("rgb(r,g,b)"), so that a
	// legend swatch and the drawing match exactly.
	Color string `json:"color"`
}

// drawer draws one chart.
type drawer struct {
	name string
	draw func(stats.Report, Theme) (Chart, error)
}

// drawers draw the charts, in the order the board shows them.
var drawers = []drawer{
	{"by_day", byDay}, {"answer_rate", answerRate}, {"hotlines", hotlines}, {"campaigns", campaigns},
	{"by_hour", byHour}, {"top_callers", topCallers}, {"reasons", reasons},
}

// Names are the charts in the order the board shows them.
var Names = func() []string {
	out := make([]string, len(drawers))
	for i, d := range drawers {
		out[i] = d.name
	}
	return out
}()

// Theme is the board's colour scheme: "light" or "dark".
type Theme string

// The themes; anything else is Light.
const (
	Light Theme = "light"
	Dark  Theme = "dark"
)

// Drawing sizes in SVG units; the board scales the drawing to its column.
const (
	width  = 720
	height = 260
)

// The series colours: answered green, missed red, the rest grey, as on the
// board's call list.
var (
	colorAnswered = charts.Color{R: 21, G: 128, B: 61, A: 255}
	colorMissed   = charts.Color{R: 185, G: 28, B: 28, A: 255}
	colorOther    = charts.Color{R: 148, G: 154, B: 164, A: 255}
	colorCalls    = charts.Color{R: 11, G: 99, B: 206, A: 255}
	colorRate     = charts.Color{R: 217, G: 119, B: 6, A: 255}
)

// Render draws every chart of r (in the order of Names).
func Render(r stats.Report, theme Theme) ([]Chart, error) {
	out := make([]Chart, 0, len(Names))
	for _, name := range Names {
		c, err := RenderOne(r, name, theme)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// ErrUnknownChart is returned by RenderOne for a name not in Names.
var ErrUnknownChart = errors.New("statchart: no such chart")

// RenderOne draws the chart called name.
func RenderOne(r stats.Report, name string, theme Theme) (Chart, error) {
	i := slices.IndexFunc(drawers, func(d drawer) bool { return d.name == name })
	if i < 0 {
		return Chart{}, fmt.Errorf("%w %q; charts are %v", ErrUnknownChart, name, Names)
	}
	c, err := drawers[i].draw(r, theme)
	if err != nil {
		return Chart{}, fmt.Errorf("statchart: %s: %w", name, err)
	}
	c.Name = name
	if c.Series == nil {
		c.Series = []Series{}
	}
	return c, nil
}

// palette is the theme with our series colours on a transparent
// background, so that the board's panel shows through.
func palette(theme Theme, series ...charts.Color) charts.ColorPalette {
	name := charts.ThemeLight
	if theme == Dark {
		name = charts.ThemeDark
	}
	return charts.GetTheme(name).WithSeriesColors(series).WithBackgroundColor(charts.ColorTransparent)
}

func legend(names []string, colors []charts.Color) []Series {
	out := make([]Series, len(names))
	for i, n := range names {
		out[i] = Series{Name: n, Color: svgColor(colors[i])}
	}
	return out
}

// svgColor writes c as the SVG renderer does for an opaque colour.
func svgColor(c charts.Color) string {
	return fmt.Sprintf("rgb(%d,%d,%d)", c.R, c.G, c.B)
}

func draw(w, h int, paint func(p *charts.Painter) error) (string, error) {
	p := charts.NewPainter(charts.PainterOptions{OutputFormat: charts.ChartOutputSVG, Width: w, Height: h})
	if err := paint(p); err != nil {
		return "", err
	}
	b, err := p.Bytes()
	return string(b), err
}

// outcomes splits counts into answered, missed and the rest (blocked,
// closed, rejected, failed…), which stack to the number of calls.
func outcomes(calls, answered, missed int64) (float64, float64, float64) {
	return float64(answered), float64(missed), float64(max(calls-answered-missed, 0))
}

var outcomeNames = []string{"answered", "missed", "other"}
var outcomeColors = []charts.Color{colorAnswered, colorMissed, colorOther}

// outcomeRow is one bar of an outcome chart.
type outcomeRow struct {
	label                   string
	calls, answered, missed int64
}

// outcomeChart draws one stacked bar (answered, missed, other) per row;
// empty says why there is nothing to draw.
func outcomeChart(title, empty string, rows []outcomeRow, theme Theme, horizontal bool) (Chart, error) {
	c := Chart{Title: title, Series: legend(outcomeNames, outcomeColors)}
	if len(rows) == 0 {
		c.Empty = empty
		return c, nil
	}
	labels := make([]string, len(rows))
	values := [][]float64{make([]float64, len(rows)), make([]float64, len(rows)), make([]float64, len(rows))}
	var said []string
	for i, r := range rows {
		labels[i] = r.label
		values[0][i], values[1][i], values[2][i] = outcomes(r.calls, r.answered, r.missed)
		if r.calls > 0 {
			said = append(said, fmt.Sprintf("%s: %d calls, %d answered, %d missed", r.label, r.calls, r.answered, r.missed))
		}
	}
	c.Summary = summary(said, "no calls")
	opt := charts.NewBarChartOptionWithData(values)
	opt.Theme = palette(theme, outcomeColors...)
	opt.Horizontal = horizontal
	opt.StackSeries = charts.Ptr(true)
	opt.Legend.Show = charts.Ptr(false)
	opt.CategoryAxis.Labels = labels
	opt.ValueAxis = countAxis()
	opt.ValueFormatter = wholeNumbers
	h := height
	if horizontal {
		h = max(height, 60+28*len(rows))
	}
	var err error
	c.SVG, err = draw(width, h, func(p *charts.Painter) error { return p.BarChart(opt) })
	return c, err
}

// countAxis starts at zero, so that a bar's length is its count.
func countAxis() []charts.ValueAxisOption {
	return []charts.ValueAxisOption{{Min: charts.Ptr(0.0)}}
}

// wholeNumbers labels a count axis: counts have no fractions.
func wholeNumbers(v float64) string {
	if v != math.Trunc(v) {
		return ""
	}
	return fmt.Sprintf("%.0f", v)
}

func percent(v float64) string { return fmt.Sprintf("%.0f%%", v) }

func byDay(r stats.Report, theme Theme) (Chart, error) {
	rows := make([]outcomeRow, len(r.ByDay))
	for i, d := range r.ByDay {
		rows[i] = outcomeRow{dayLabel(d.Date), d.Calls, d.Answered, d.Missed}
	}
	return outcomeChart("Calls per day", "No days in this range.", rows, theme, false)
}

// dayLabel writes a YYYY-MM-DD date short: "2 Dec".
func dayLabel(date string) string {
	t, err := time.Parse(time.DateOnly, date)
	if err != nil {
		return date
	}
	return t.Format("2 Jan")
}

func answerRate(r stats.Report, theme Theme) (Chart, error) {
	c := Chart{Title: "Answer rate per day", Series: legend([]string{"answer rate"}, []charts.Color{colorRate})}
	labels := make([]string, len(r.ByDay))
	rates := make([]float64, len(r.ByDay))
	var said []string
	for i, d := range r.ByDay {
		labels[i] = dayLabel(d.Date)
		rates[i] = charts.GetNullValue()
		if d.Answered+d.Missed > 0 {
			rates[i] = 100 * stats.Rate(d.Answered, d.Missed)
			said = append(said, fmt.Sprintf("%s: %.0f%%", labels[i], rates[i]))
		}
	}
	c.Summary = summary(said, "")
	if len(said) == 0 {
		c.Empty = "No answered or missed call in this range."
		return c, nil
	}
	opt := charts.NewLineChartOptionWithData([][]float64{rates})
	opt.Theme = palette(theme, colorRate)
	opt.Legend.Show = charts.Ptr(false)
	opt.XAxis.Labels = labels
	opt.YAxis = []charts.YAxisOption{{Min: charts.Ptr(0.0), Max: charts.Ptr(100.0), Unit: 25, LabelCount: 5, ValueFormatter: percent}}
	opt.Symbol = charts.Symbol{Shape: charts.SymbolCircle}
	var err error
	c.SVG, err = draw(width, height, func(p *charts.Painter) error { return p.LineChart(opt) })
	return c, err
}

func hotlines(r stats.Report, theme Theme) (Chart, error) {
	rows := make([]outcomeRow, len(r.Hotlines))
	for i, h := range r.Hotlines {
		name := cmp.Or(h.Company, h.Name, "no hotline")
		rows[i] = outcomeRow{rateLabel(name, h.AnswerRate), h.Calls, h.Answered, h.Missed}
	}
	return outcomeChart("Per hotline", "No hotline calls in this range.", rows, theme, true)
}

func campaigns(r stats.Report, theme Theme) (Chart, error) {
	rows := make([]outcomeRow, len(r.Campaigns))
	for i, cs := range r.Campaigns {
		rows[i] = outcomeRow{rateLabel(cmp.Or(cs.Campaign, "no campaign"), cs.AnswerRate), cs.Calls, cs.Answered, cs.Missed}
	}
	return outcomeChart("Per campaign", "No campaign calls in this range.", rows, theme, true)
}

// rateLabel names a bar with its answer rate: "ACME GmbH · 68%".
func rateLabel(name string, rate float64) string {
	return fmt.Sprintf("%s · %.0f%%", name, 100*rate)
}

// weekdays are the heat map's rows, Monday first as on a desk calendar;
// the numbers are time.Weekday's.
var weekdays = []struct {
	day   int
	label string
}{{1, "Mon"}, {2, "Tue"}, {3, "Wed"}, {4, "Thu"}, {5, "Fri"}, {6, "Sat"}, {0, "Sun"}}

func byHour(r stats.Report, theme Theme) (Chart, error) {
	c := Chart{Title: "Calls per hour of the week", Series: legend([]string{"calls"}, []charts.Color{colorCalls})}
	row := map[int]int{}
	values := make([][]float64, len(weekdays))
	labels := make([]string, len(weekdays))
	for i, w := range weekdays {
		row[w.day] = i
		labels[i] = w.label
		values[i] = make([]float64, 24)
		for h := range values[i] {
			// An hour without calls has no cell, so that a busy hour
			// stands out against the empty ones.
			values[i][h] = charts.GetNullValue()
		}
	}
	var busy []stats.HourStat
	for _, h := range r.ByHour {
		i, ok := row[h.Weekday]
		if !ok || h.Hour < 0 || h.Hour > 23 || h.Calls == 0 {
			continue
		}
		values[i][h.Hour] = float64(h.Calls)
		busy = append(busy, h)
	}
	c.Summary = busiest(busy, labels, row)
	if len(busy) == 0 {
		c.Empty = "No calls in this range."
		return c, nil
	}
	hours := make([]string, 24)
	for h := range hours {
		hours[h] = fmt.Sprintf("%02d", h)
	}
	opt := charts.NewHeatMapOptionWithData(values)
	opt.Theme = palette(theme, colorCalls)
	opt.ScaleMinValue = charts.Ptr(0.0)
	opt.XAxis.Labels = hours
	opt.XAxis.LabelCount = 24
	opt.XAxis.LabelFontStyle = charts.FontStyle{FontSize: 10}
	opt.YAxis.Labels = labels
	opt.ValuesLabel.Show = charts.Ptr(true)
	opt.ValuesLabel.ValueFormatter = wholeNumbers
	var err error
	c.SVG, err = draw(width, 300, func(p *charts.Painter) error { return p.HeatMapChart(opt) })
	return c, err
}

func topCallers(r stats.Report, theme Theme) (Chart, error) {
	colors := []charts.Color{colorCalls, colorMissed}
	c := Chart{Title: "Most frequent callers", Series: legend([]string{"calls", "open missed calls"}, colors)}
	if len(r.TopCallers) == 0 {
		c.Empty = "No calls from known contacts in this range."
		return c, nil
	}
	n := len(r.TopCallers)
	labels := make([]string, n)
	values := [][]float64{make([]float64, n), make([]float64, n)}
	said := make([]string, n)
	for i, t := range r.TopCallers {
		labels[i] = callerLabel(t)
		values[0][i], values[1][i] = float64(t.Calls), float64(t.OpenMissed)
		said[i] = fmt.Sprintf("%s: %d calls, %d open missed", labels[i], t.Calls, t.OpenMissed)
	}
	c.Summary = summary(said, "")
	var err error
	c.SVG, err = rankedBars(labels, values, colors, theme, 36)
	return c, err
}

// rankedBars draws a group of horizontal bars per label, the first label on
// top, and each group rowHeight high at least.
func rankedBars(labels []string, values [][]float64, colors []charts.Color, theme Theme, rowHeight int) (string, error) {
	// Horizontal bars run bottom to top.
	labels = slices.Clone(labels)
	slices.Reverse(labels)
	for i := range values {
		values[i] = slices.Clone(values[i])
		slices.Reverse(values[i])
	}
	opt := charts.NewBarChartOptionWithData(values)
	opt.Theme = palette(theme, colors...)
	opt.Horizontal = true
	opt.Legend.Show = charts.Ptr(false)
	opt.CategoryAxis.Labels = labels
	opt.ValueAxis = countAxis()
	opt.ValueFormatter = wholeNumbers
	return draw(width, max(height, 60+rowHeight*len(labels)), func(p *charts.Painter) error { return p.BarChart(opt) })
}

func callerLabel(t stats.TopCaller) string {
	switch {
	case t.Name != "" && t.Number != "":
		return t.Name + " (" + t.Number + ")"
	case t.Name != "":
		return t.Name
	case t.Number != "":
		return t.Number
	}
	return fmt.Sprintf("contact %d", t.ContactID)
}

func reasons(r stats.Report, theme Theme) (Chart, error) {
	colors := []charts.Color{colorCalls}
	c := Chart{Title: "Reasons for calling", Series: legend([]string{"calls"}, colors)}
	if len(r.Reasons) == 0 {
		c.Empty = "No wrapped-up calls in this range."
		return c, nil
	}
	labels := make([]string, len(r.Reasons))
	values := [][]float64{make([]float64, len(r.Reasons))}
	said := make([]string, len(r.Reasons))
	for i, rs := range r.Reasons {
		labels[i] = cmp.Or(rs.Reason, "no reason")
		values[0][i] = float64(rs.Calls)
		said[i] = fmt.Sprintf("%s: %d calls", labels[i], rs.Calls)
	}
	c.Summary = summary(said, "")
	var err error
	c.SVG, err = rankedBars(labels, values, colors, theme, 28)
	return c, err
}

// summary joins the parts of a chart's summary; none is said when there
// are none.
func summary(parts []string, none string) string {
	if len(parts) == 0 {
		return none
	}
	return strings.Join(parts, "; ") + "."
}

// busiest says which hours of the week had the most calls (at most five).
func busiest(hours []stats.HourStat, dayLabels []string, row map[int]int) string {
	slices.SortStableFunc(hours, func(a, b stats.HourStat) int { return cmp.Compare(b.Calls, a.Calls) })
	var said []string
	for _, h := range hours[:min(len(hours), 5)] {
		said = append(said, fmt.Sprintf("%s %02d:00: %d calls", dayLabels[row[h.Weekday]], h.Hour, h.Calls))
	}
	if len(said) == 0 {
		return ""
	}
	return "Busiest: " + summary(said, "")
}
