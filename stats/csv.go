package stats

import (
	"encoding/csv"
	"io"
	"strconv"
	"time"
)

// CSVHeader is the header row of a report as CSV. Each row is one figure
// of one section (totals, hotline, campaign, day, hour, top_caller,
// reason, satisfaction, resolved, resolved_hotline, resolved_campaign);
// columns a section has no value for are empty.
var CSVHeader = []string{"section", "name", "detail", "calls", "answered", "missed", "answer_rate",
	"ring_ms_p50", "ring_ms_p90", "talk_ms_p50", "last_call_at", "open_missed", "value"}

// WriteCSV writes r as CSV (GET /api/stats with Accept: text/csv and
// `switchboard stats --csv`). Names that came from callers or the front
// desk are guarded against spreadsheet formulas.
func WriteCSV(w io.Writer, r Report) error {
	cw := csv.NewWriter(w)
	i := func(n int64) string { return strconv.FormatInt(n, 10) }
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', 4, 64) }
	row := func(cells ...string) {
		out := make([]string, len(CSVHeader))
		copy(out, cells)
		out[1], out[2] = safe(out[1]), safe(out[2])
		cw.Write(out)
	}
	cw.Write(CSVHeader)
	t := r.Totals
	row("range", r.Since.Format(time.RFC3339), r.Until.Format(time.RFC3339))
	row("totals", "", "", i(t.Calls), i(t.Answered), i(t.Missed), f(t.AnswerRate))
	for _, h := range r.Hotlines {
		row("hotline", h.Name, h.Company, i(h.Calls), i(h.Answered), i(h.Missed), f(h.AnswerRate), i(h.RingMSP50), i(h.RingMSP90), i(h.TalkMSP50))
	}
	for _, c := range r.Campaigns {
		row("campaign", c.Campaign, "", i(c.Calls), i(c.Answered), i(c.Missed), f(c.AnswerRate))
	}
	for _, d := range r.ByDay {
		row("day", d.Date, "", i(d.Calls), i(d.Answered), i(d.Missed))
	}
	for _, h := range r.ByHour {
		row("hour", time.Weekday(h.Weekday).String()[:3], strconv.Itoa(h.Hour), i(h.Calls))
	}
	for _, c := range r.TopCallers {
		row("top_caller", c.Name, c.Number, i(c.Calls), "", "", "", "", "", "", c.LastCallAt.Format(time.RFC3339), i(c.OpenMissed), i(c.ContactID))
	}
	for _, c := range r.Reasons {
		row("reason", c.Reason, "", i(c.Calls))
	}
	row("satisfaction", "", "", i(r.Satisfaction.Count), "", "", "", "", "", "", "", "", f(r.Satisfaction.Mean))
	row("resolved", "", "", i(r.Resolved.Count), "", "", "", "", "", "", "", "", f(r.Resolved.Share))
	for _, h := range r.Hotlines {
		row("resolved_hotline", h.Name, "", i(h.Resolved.Count), "", "", "", "", "", "", "", "", f(h.Resolved.Share))
	}
	for _, c := range r.Campaigns {
		row("resolved_campaign", c.Campaign, "", i(c.Resolved.Count), "", "", "", "", "", "", "", "", f(c.Resolved.Share))
	}
	cw.Flush()
	return cw.Error()
}

// safe keeps a spreadsheet from reading a value as a formula.
func safe(s string) string {
	if s != "" && (s[0] == '=' || s[0] == '+' || s[0] == '-' || s[0] == '@' || s[0] == '\t' || s[0] == '\r') {
		if s[0] == '+' && len(s) > 1 && s[1] >= '0' && s[1] <= '9' {
			return s // a phone number
		}
		return "'" + s
	}
	return s
}
