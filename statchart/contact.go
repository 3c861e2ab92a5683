package statchart

import (
	"fmt"
	"time"

	"github.com/go-analyze/charts"

	"github.com/switchboard-sip/switchboard/stats"
)

// contactDrawers draw the charts of one contact's page (SPEC §8): its
// calls per month by outcome, satisfaction and the share resolved over
// time, and its reasons for calling, from the same report as Insights
// (stats.Filter.ContactID).
var contactDrawers = []drawer{
	{"by_month", byMonth}, {"satisfaction", satisfactionByMonth}, {"resolved", resolvedByMonth}, {"reasons", reasons},
}

// ContactNames are the contact page's charts in the order it shows them.
var ContactNames = func() []string {
	out := make([]string, len(contactDrawers))
	for i, d := range contactDrawers {
		out[i] = d.name
	}
	return out
}()

// RenderContact draws every chart of a contact's page from r, the report
// narrowed to that contact.
func RenderContact(r stats.Report, theme Theme) ([]Chart, error) {
	out := make([]Chart, 0, len(contactDrawers))
	for _, d := range contactDrawers {
		c, err := d.draw(r, theme)
		if err != nil {
			return nil, fmt.Errorf("statchart: %s: %w", d.name, err)
		}
		c.Name = d.name
		if c.Series == nil {
			c.Series = []Series{}
		}
		out = append(out, c)
	}
	return out, nil
}

// month adds up the days of one month (YYYY-MM).
type month struct {
	key                     string
	calls, answered, missed int64
	resolved, unresolved    int64
	scored                  int64
	scoreSum                float64
}

// months groups a report's days by month, oldest first.
func months(r stats.Report) []month {
	var out []month
	for _, d := range r.ByDay {
		if len(d.Date) < 7 {
			continue
		}
		k := d.Date[:7]
		if len(out) == 0 || out[len(out)-1].key != k {
			out = append(out, month{key: k})
		}
		m := &out[len(out)-1]
		m.calls, m.answered, m.missed = m.calls+d.Calls, m.answered+d.Answered, m.missed+d.Missed
		m.resolved, m.unresolved = m.resolved+d.Resolved, m.unresolved+d.Unresolved
		m.scored += d.Scored
		m.scoreSum += d.Satisfaction * float64(d.Scored)
	}
	return out
}

// monthLabel writes YYYY-MM short: "Dec 26".
func monthLabel(key string) string {
	t, err := time.Parse("2006-01", key)
	if err != nil {
		return key
	}
	return t.Format("Jan 06")
}

func byMonth(r stats.Report, theme Theme) (Chart, error) {
	ms := months(r)
	rows := make([]outcomeRow, len(ms))
	any := false
	for i, m := range ms {
		rows[i] = outcomeRow{monthLabel(m.key), m.calls, m.answered, m.missed}
		any = any || m.calls > 0
	}
	if !any {
		rows = nil
	}
	return outcomeChart("Calls per month", "No calls in this range.", rows, theme, false)
}

// monthLine draws one value per month (nil: no value that month) on a
// line with the given axis.
func monthLine(title, series, empty string, color charts.Color, theme Theme, ms []month, value func(month) (float64, bool),
	axis charts.YAxisOption, say func(string, float64) string) (Chart, error) {
	c := Chart{Title: title, Series: legend([]string{series}, []charts.Color{color})}
	labels := make([]string, len(ms))
	values := make([]float64, len(ms))
	var said []string
	for i, m := range ms {
		labels[i] = monthLabel(m.key)
		values[i] = charts.GetNullValue()
		if v, ok := value(m); ok {
			values[i] = v
			said = append(said, say(labels[i], v))
		}
	}
	c.Summary = summary(said, "")
	if len(said) == 0 {
		c.Empty = empty
		return c, nil
	}
	opt := charts.NewLineChartOptionWithData([][]float64{values})
	opt.Theme = palette(theme, color)
	opt.Legend.Show = charts.Ptr(false)
	opt.XAxis.Labels = labels
	opt.YAxis = []charts.YAxisOption{axis}
	opt.Symbol = charts.Symbol{Shape: charts.SymbolCircle}
	var err error
	c.SVG, err = draw(width, height, func(p *charts.Painter) error { return p.LineChart(opt) })
	return c, err
}

func satisfactionByMonth(r stats.Report, theme Theme) (Chart, error) {
	return monthLine("Satisfaction per month", "mean score", "No scored calls in this range.", colorCalls, theme, months(r),
		func(m month) (float64, bool) { return m.scoreSum / float64(max(m.scored, 1)), m.scored > 0 },
		charts.YAxisOption{Min: charts.Ptr(1.0), Max: charts.Ptr(5.0), Unit: 1, LabelCount: 5,
			ValueFormatter: func(v float64) string { return fmt.Sprintf("%.0f", v) }},
		func(label string, v float64) string { return fmt.Sprintf("%s: %.1f of 5", label, v) })
}

func resolvedByMonth(r stats.Report, theme Theme) (Chart, error) {
	c, err := monthLine("Share resolved per month", "resolved", "No call was marked resolved or unresolved in this range.", colorAnswered, theme, months(r),
		func(m month) (float64, bool) {
			return 100 * float64(m.resolved) / float64(max(m.resolved+m.unresolved, 1)), m.resolved+m.unresolved > 0
		},
		charts.YAxisOption{Min: charts.Ptr(0.0), Max: charts.Ptr(100.0), Unit: 25, LabelCount: 5, ValueFormatter: percent},
		func(label string, v float64) string { return fmt.Sprintf("%s: %.0f%% resolved", label, v) })
	if err == nil && r.Resolved.Count > 0 {
		c.Summary = fmt.Sprintf("%.0f%% of %d calls resolved. %s", 100*r.Resolved.Share, r.Resolved.Count, c.Summary)
	}
	return c, err
}
