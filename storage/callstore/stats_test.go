package callstore

import (
	"github.com/switchboard-sip/switchboard/cdr"

	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-sip/switchboard/callctl"
	"github.com/switchboard-sip/switchboard/stats"
)

// seedStats saves a known set of calls: per hotline, answered and missed
// calls with known ring and talk times, wrap-ups, an outbound call and a
// call outside the range that must not count.
func seedStats(t *testing.T, s *Store) {
	t.Helper()
	ctx := context.Background()
	day := time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC) // Monday 09:00 in Berlin
	n := 0
	add := func(at time.Time, hotline, campaign string, disp cdr.Disposition, ring, talk int64, contact int64) string {
		n++
		r := cdr.Record{ID: fmt.Sprintf("s%03d", n), CallID: fmt.Sprint(n), Direction: callctl.Inbound,
			Caller: fmt.Sprintf("+4915%d", contact), Hotline: hotline, Campaign: campaign, StartedAt: at,
			Disposition: disp, RingMS: ring, TalkMS: talk, ContactID: contact}
		s.Save(r)
		return r.ID
	}
	// acme: ring 1000..10000 ms over 10 calls, 7 answered (talk 10s..70s), 3 missed.
	for i := range 10 {
		disp, talk := cdr.Answered, int64(0)
		if i < 7 {
			talk = int64(i+1) * 10000
		} else {
			disp = []cdr.Disposition{cdr.NoAnswer, cdr.Busy, cdr.NoAnswer}[i-7]
		}
		add(day.Add(time.Duration(i)*time.Minute), "acme", "radio", disp, int64(i+1)*1000, talk, 1+int64(i%2))
	}
	// shop: 4 calls the next day at 23:30 Berlin (22:30 UTC), 1 answered, 1 blocked (no ring), 2 missed.
	next := day.Add(24*time.Hour + 14*time.Hour + 30*time.Minute)
	add(next, "shop", "", cdr.Answered, 500, 3000, 3)
	add(next, "shop", "", cdr.Blocked, 0, 0, 3)
	add(next, "shop", "", cdr.NoAnswer, 4000, 0, 3)
	add(next, "shop", "", cdr.Busy, 2000, 0, 0)
	// Not counted: outbound, and before the range.
	s.Save(cdr.Record{ID: "out", Direction: callctl.Outbound, Hotline: "", StartedAt: day, Disposition: cdr.Answered})
	add(day.Add(-10*24*time.Hour), "acme", "radio", cdr.Answered, 1, 1, 1)
	flush(t, s)
	for id, w := range map[string]cdr.WrapUp{
		"s001": {Reason: "order", Satisfaction: 5}, "s002": {Reason: "order", Satisfaction: 2},
		"s003": {Reason: "complaint"}, "s011": {Satisfaction: 4, Notes: "x"},
	} {
		if _, err := s.SetWrapUp(ctx, id, w); err != nil {
			t.Fatal(err)
		}
	}
}

func TestStatsFigures(t *testing.T) {
	s, _ := newStore(t)
	seedStats(t, s)
	berlin, _ := time.LoadLocation("Europe/Berlin")
	f := stats.Filter{Since: time.Date(2026, 3, 1, 0, 0, 0, 0, berlin), Until: time.Date(2026, 3, 5, 0, 0, 0, 0, berlin), Location: berlin}
	r, err := s.Stats(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	r.Complete(map[string]string{"acme": "ACME GmbH"}, func(id int64) (string, string, int64, bool) {
		return fmt.Sprint("contact ", id), "+49", id * 10, id != 2
	})
	check := func(name string, got, want any) {
		t.Helper()
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	check("totals", r.Totals, stats.Totals{Calls: 14, Answered: 8, Missed: 5, AnswerRate: 8.0 / 13})
	check("hotlines", r.Hotlines, []stats.HotlineStats{
		{Name: "acme", Company: "ACME GmbH", Calls: 10, Answered: 7, Missed: 3, AnswerRate: 0.7, RingMSP50: 5000, RingMSP90: 9000, TalkMSP50: 40000},
		{Name: "shop", Calls: 4, Answered: 1, Missed: 2, AnswerRate: 1.0 / 3, RingMSP50: 2000, RingMSP90: 4000, TalkMSP50: 3000},
	})
	check("campaigns", r.Campaigns, []stats.CampaignStat{
		{Campaign: "radio", Calls: 10, Answered: 7, Missed: 3, AnswerRate: 0.7},
		{Campaign: "", Calls: 4, Answered: 1, Missed: 2, AnswerRate: 1.0 / 3},
	})
	var days []string
	for _, d := range r.ByDay {
		days = append(days, fmt.Sprintf("%s %d/%d/%d %.1f/%d", d.Date, d.Calls, d.Answered, d.Missed, d.Satisfaction, d.Scored))
	}
	check("days", days, []string{"2026-03-01 0/0/0 0.0/0", "2026-03-02 10/7/3 3.5/2", "2026-03-03 4/1/2 4.0/1", "2026-03-04 0/0/0 0.0/0"})
	if len(r.ByHour) != 168 || r.ByHour[1*24+9].Calls != 10 || r.ByHour[2*24+23].Calls != 4 {
		t.Errorf("by_hour: mon 09 %d, tue 23 %d (of %d hours)", r.ByHour[33].Calls, r.ByHour[71].Calls, len(r.ByHour))
	}
	// Contacts 2 and 1 called 5 times each, 2 last; contact 2 is gone.
	if len(r.TopCallers) != 3 || r.TopCallers[0].ContactID != 2 || r.TopCallers[0].Calls != 5 || r.TopCallers[0].Name != "" ||
		r.TopCallers[1].ContactID != 1 || r.TopCallers[1].Name != "contact 1" || r.TopCallers[1].OpenMissed != 10 ||
		r.TopCallers[2].ContactID != 3 || r.TopCallers[2].Calls != 3 || !r.TopCallers[2].LastCallAt.Equal(time.Date(2026, 3, 3, 22, 30, 0, 0, time.UTC)) {
		t.Errorf("top callers %+v", r.TopCallers)
	}
	check("reasons", r.Reasons, []stats.ReasonStat{{Reason: "order", Calls: 2}, {Reason: "complaint", Calls: 1}})
	check("satisfaction", r.Satisfaction, stats.Satisfaction{Mean: 11.0 / 3, Count: 3})

	t.Run("filters", func(t *testing.T) {
		g := f
		g.Hotline = "shop"
		r, err := s.Stats(context.Background(), g)
		if err != nil || r.Totals.Calls != 4 || len(r.Hotlines) != 1 || r.Satisfaction.Count != 1 {
			t.Errorf("hotline shop: %+v %v", r.Totals, err)
		}
		g = f
		g.Campaign = "radio"
		if r, err := s.Stats(context.Background(), g); err != nil || r.Totals.Calls != 10 || len(r.Reasons) != 2 {
			t.Errorf("campaign radio: %+v %v", r.Totals, err)
		}
		g = f
		g.Until = g.Since
		if _, err := s.Stats(context.Background(), g); err == nil {
			t.Error("an empty range gave no error")
		}
	})
}

// The figures are read from the covering indexes only: no query of Stats
// reads the calls table itself.
func TestStatsQueriesUseTheIndexes(t *testing.T) {
	s, _ := newSQLiteStore(t, "")
	f := stats.Filter{Since: base, Until: base.Add(time.Hour), Hotline: "acme"}
	cond, args := statsWhere(f, statsSQL)
	wcond, wargs := statsWhere(f, wrapupSQL)
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`SELECT hotline, campaign, COUNT(*), SUM(` + answeredCase + `) FROM calls` + s.indexed(f, "calls_stats") + ` WHERE ` + cond + ` GROUP BY hotline, campaign`, args},
		{`SELECT contact_id, COUNT(*) FROM calls` + s.indexed(f, "calls_stats") + ` WHERE ` + cond + ` AND contact_id IS NOT NULL GROUP BY contact_id`, args},
		{`SELECT reason, resolved, SUM(satisfaction) FROM calls` + s.indexed(f, "calls_wrapup") + ` WHERE ` + wcond + ` GROUP BY reason`, wargs},
		{`SELECT ` + localDaySQL(zone(t, "Europe/Berlin"), base, base.AddDate(0, 6, 0)) + ` AS d, resolved, COUNT(*) FROM calls` +
			s.indexed(f, "calls_wrapup") + ` WHERE ` + wcond + ` GROUP BY d, resolved`, wargs},
	} {
		rows, err := s.db.Query(`EXPLAIN QUERY PLAN `+q.sql, q.args...)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		if p := strings.Join(plan, "; "); !strings.Contains(p, "COVERING INDEX") {
			t.Errorf("plan of %s\n  = %s, want a covering index", q.sql, p)
		}
	}
}

// resolved gives the share resolved in total, per hotline, per campaign
// and per day; contact= narrows every figure to that contact, top callers
// included.
func TestStatsResolvedAndContact(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	seedStats(t, s)
	yes, no := true, false
	for id, r := range map[string]*bool{"s001": &yes, "s002": &no, "s003": &yes, "s011": &yes} {
		cur, _ := s.Get(ctx, id)
		w := cur.WrapUp
		w.Resolved = r
		if _, err := s.SetWrapUp(ctx, id, w); err != nil {
			t.Fatal(err)
		}
	}
	berlin, _ := time.LoadLocation("Europe/Berlin")
	f := stats.Filter{Since: time.Date(2026, 3, 1, 0, 0, 0, 0, berlin), Until: time.Date(2026, 3, 5, 0, 0, 0, 0, berlin), Location: berlin}
	r, err := s.Stats(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	if r.Resolved.Count != 4 || r.Resolved.Share != 0.75 {
		t.Errorf("resolved %+v, want 3 of 4", r.Resolved)
	}
	if h := r.Hotlines[0]; h.Name != "acme" || h.Resolved.Count != 3 || h.Resolved.Share != 2.0/3 {
		t.Errorf("acme resolved %+v", h.Resolved)
	}
	if c := r.Campaigns[1]; c.Campaign != "" || c.Resolved.Count != 1 || c.Resolved.Share != 1 {
		t.Errorf("campaign '' resolved %+v", c.Resolved)
	}
	if d := r.ByDay[1]; d.Resolved != 2 || d.Unresolved != 1 {
		t.Errorf("day %s resolved %d unresolved %d", d.Date, d.Resolved, d.Unresolved)
	}

	f.ContactID = 3
	r, err = s.Stats(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	if r.Totals.Calls != 3 || r.Totals.Answered != 1 || r.Totals.Missed != 1 || len(r.Hotlines) != 1 || r.Hotlines[0].RingMSP90 != 4000 {
		t.Errorf("contact 3: totals %+v hotlines %+v", r.Totals, r.Hotlines)
	}
	if len(r.TopCallers) != 1 || r.TopCallers[0].ContactID != 3 || r.TopCallers[0].Calls != 3 {
		t.Errorf("contact 3: top callers %+v", r.TopCallers)
	}
	if r.Resolved.Count != 1 || r.Satisfaction.Count != 1 || r.Satisfaction.Mean != 4 || len(r.Reasons) != 0 {
		t.Errorf("contact 3: wrap-ups %+v %+v %+v, want only s011's", r.Resolved, r.Satisfaction, r.Reasons)
	}
	f.ContactID = 1
	if r, err = s.Stats(ctx, f); err != nil || r.Totals.Calls != 5 || r.Resolved.Count != 2 || r.Resolved.Share != 1 {
		t.Errorf("contact 1: %+v resolved %+v %v", r.Totals, r.Resolved, err)
	}
}
