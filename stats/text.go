package stats

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
)

// WriteText writes r for reading on a terminal (`switchboard stats`).
// Names that came from callers or the front desk lose their control
// characters, and empty cells show "-".
func WriteText(w io.Writer, r Report) error {
	pct := func(v float64) string { return strconv.FormatFloat(100*v, 'f', 1, 64) + "%" }
	sec := func(ms int64) string { return strconv.FormatFloat(float64(ms)/1000, 'f', 1, 64) + "s" }
	t := r.Totals
	fmt.Fprintf(w, "%s to %s: %d calls, %d answered, %d missed, answer rate %s\n",
		r.Since.Format("2006-01-02 15:04"), r.Until.Format("2006-01-02 15:04 MST"), t.Calls, t.Answered, t.Missed, pct(t.AnswerRate))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	section := func(title string, header ...string) {
		fmt.Fprintf(tw, "\n%s\n%s\n", title, strings.ToUpper(strings.Join(header, "\t")))
	}
	section("Hotlines", "hotline", "company", "calls", "answered", "missed", "rate", "ring p50", "ring p90", "talk p50")
	for _, h := range r.Hotlines {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\t%s\t%s\t%s\n", TextCell(orNone(h.Name)), TextCell(h.Company), h.Calls, h.Answered, h.Missed,
			pct(h.AnswerRate), sec(h.RingMSP50), sec(h.RingMSP90), sec(h.TalkMSP50))
	}
	section("Campaigns", "campaign", "calls", "answered", "missed", "rate")
	for _, c := range r.Campaigns {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\n", TextCell(orNone(c.Campaign)), c.Calls, c.Answered, c.Missed, pct(c.AnswerRate))
	}
	section("Most frequent callers", "contact", "name", "number", "calls", "last call", "open missed")
	for _, c := range r.TopCallers {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%d\n", c.ContactID, TextCell(c.Name), c.Number, c.Calls, c.LastCallAt.Format("2006-01-02 15:04"), c.OpenMissed)
	}
	section("Wrap-up reasons", "reason", "calls")
	for _, c := range r.Reasons {
		fmt.Fprintf(tw, "%s\t%d\n", TextCell(c.Reason), c.Calls)
	}
	fmt.Fprintf(tw, "\nSatisfaction: %.2f from %d scored calls\n", r.Satisfaction.Mean, r.Satisfaction.Count)
	fmt.Fprintf(tw, "Resolved: %s of %d calls with a resolution\n", pct(r.Resolved.Share), r.Resolved.Count)
	return tw.Flush()
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// TextCell is a value as a cell of a text table: empty values would
// collapse a column, and control characters from the network must not
// reach a terminal.
func TextCell(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return -1
		}
		return r
	}, s)
	if s == "" {
		return "-"
	}
	return s
}
