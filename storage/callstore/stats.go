package callstore

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/switchboard-sip/switchboard/stats"
)

// Front-desk figures (SPEC §10) come from indexed queries that return
// aggregates, never call rows: the stats index covers every column they
// read, so a range of the index is all they touch. Percentiles are ranked
// by window functions in the database. The figures cover inbound calls:
// the front desk's calls; answer_rate is answered / (answered + missed).

// statsMigration adds the covering index of the statistics and the
// partial index of wrapped-up calls. It is appended to callMigrations.
const statsMigration = `CREATE INDEX calls_stats ON calls(started_at, hotline, campaign, disposition, ring_ms, talk_ms, contact_id)
		WHERE direction = 'inbound';
	CREATE INDEX calls_wrapup ON calls(started_at, hotline, campaign, reason, satisfaction, wrapup_at)
		WHERE direction = 'inbound' AND wrapup_at IS NOT NULL;`

// statsSQL and wrapupSQL repeat the partial indexes' conditions word for
// word, as the planner needs.
const (
	statsSQL  = `direction = 'inbound'`
	wrapupSQL = `direction = 'inbound' AND wrapup_at IS NOT NULL`
	// missedCase counts a missed call (SPEC §3) among inbound ones.
	missedCase   = `CASE WHEN disposition IN ('no_answer', 'busy') THEN 1 ELSE 0 END`
	answeredCase = `CASE WHEN disposition = 'answered' THEN 1 ELSE 0 END`
	// bucketMS is the time bucket of by_day and by_hour: a quarter hour,
	// so that every zone offset (+05:30, +05:45) falls on a boundary and
	// the buckets are placed in local days and hours in Go, exactly, DST
	// included.
	bucketMS = 15 * 60 * 1000
	// topCallers is how many callers top_callers lists.
	topCallers = 20
	// maxReasons bounds the reasons list: free text may vary endlessly.
	maxReasons = 50
)

// where builds the range and filter condition shared by the queries.
func statsWhere(f stats.Filter, base string) (string, []any) {
	cond := base + ` AND started_at >= ? AND started_at < ?`
	args := []any{toMillis(f.Since), toMillis(f.Until)}
	if f.Hotline != "" {
		cond += ` AND hotline = ?`
		args = append(args, f.Hotline)
	}
	if f.Campaign != "" {
		cond += ` AND campaign = ?`
		args = append(args, f.Campaign)
	}
	if f.ContactID != 0 {
		cond += ` AND contact_id = ?`
		args = append(args, f.ContactID)
	}
	return cond, args
}

// indexed names the index SQLite must use: without table statistics it
// may prefer the narrower calls_started and read every row from the table.
// One contact's calls are fewer than any range of the covering indexes:
// they come from calls_contact_time, which SQLite picks for the equality.
func (s *Store) indexed(f stats.Filter, name string) string {
	if s.db.Driver == "sqlite" && f.ContactID == 0 {
		return ` INDEXED BY ` + name
	}
	return ""
}

// wrapGroup counts the wrap-ups of one hotline, campaign, reason and
// resolved value (date empty), or of one local date and resolved value.
type wrapGroup struct {
	date              string
	hotline, campaign string
	reason            string
	resolved          sql.NullInt64
	n, scored, sum    int64
}

// statsWrapUps reads the wrap-ups of the range from the small index of
// wrapped-up calls: per hotline, campaign, reason and resolved value
// (reasons, satisfaction, the share resolved in total, per hotline and
// per campaign).
func (s *Store) statsWrapUps(ctx context.Context, f stats.Filter) ([]wrapGroup, error) {
	cond, args := statsWhere(f, wrapupSQL)
	rows, err := s.db.QueryContext(ctx, s.db.Rebind(`SELECT hotline, campaign, reason, resolved,
			COUNT(*), SUM(CASE WHEN satisfaction > 0 THEN 1 ELSE 0 END), SUM(satisfaction)
		FROM calls`+s.indexed(f, "calls_wrapup")+` WHERE `+cond+` GROUP BY hotline, campaign, reason, resolved`), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []wrapGroup
	for rows.Next() {
		var g wrapGroup
		if err := rows.Scan(&g.hotline, &g.campaign, &g.reason, &g.resolved, &g.n, &g.scored, &g.sum); err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	return out, rows.Err()
}

// statsWrapUpDays reads the wrap-ups of the range per local date and
// resolved value (the share resolved and satisfaction over time). The
// date is computed in the database from the offsets in force over the
// range (localDaySQL), so that a year of wrap-ups is a few hundred rows.
func (s *Store) statsWrapUpDays(ctx context.Context, f stats.Filter) ([]wrapGroup, error) {
	cond, args := statsWhere(f, wrapupSQL)
	rows, err := s.db.QueryContext(ctx, s.db.Rebind(`SELECT `+localDaySQL(f.Location, f.Since, f.Until)+` AS d, resolved,
			COUNT(*), SUM(CASE WHEN satisfaction > 0 THEN 1 ELSE 0 END), SUM(satisfaction)
		FROM calls`+s.indexed(f, "calls_wrapup")+` WHERE `+cond+` GROUP BY d, resolved`), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []wrapGroup
	for rows.Next() {
		var g wrapGroup
		var day int64
		if err := rows.Scan(&day, &g.resolved, &g.n, &g.scored, &g.sum); err != nil {
			return nil, err
		}
		g.date = time.UnixMilli(day * dayMS).UTC().Format(time.DateOnly)
		out = append(out, g)
	}
	return out, rows.Err()
}

const dayMS = 24 * 60 * 60 * 1000

// localDaySQL is an SQL expression of started_at's local date in loc, as
// days since 1970-01-01: started_at plus the zone's offset at that instant,
// divided into days. The offset is one CASE branch per period of the zone
// (a DST change starts the next) that overlaps [since, until).
func localDaySQL(loc *time.Location, since, until time.Time) string {
	var b strings.Builder
	t := since.In(loc)
	for range 1000 {
		_, end := t.ZoneBounds()
		if end.IsZero() || !end.Before(until) {
			break
		}
		_, off := t.Zone()
		fmt.Fprintf(&b, " WHEN started_at < %d THEN %d", end.UnixMilli(), int64(off)*1000)
		t = end.In(loc)
	}
	_, off := t.Zone()
	if b.Len() == 0 {
		return fmt.Sprintf("((started_at + %d) / %d)", int64(off)*1000, dayMS)
	}
	return fmt.Sprintf("((started_at + CASE%s ELSE %d END) / %d)", b.String(), int64(off)*1000, dayMS)
}

// addWrapUps adds the wrap-up figures to r, whose hotlines and campaigns
// are already counted.
func addWrapUps(r *stats.Report, groups []wrapGroup) {
	reasons := map[string]int64{}
	hot := map[string]*stats.Resolved{}
	for i := range r.Hotlines {
		hot[r.Hotlines[i].Name] = &r.Hotlines[i].Resolved
	}
	camp := map[string]*stats.Resolved{}
	for i := range r.Campaigns {
		camp[r.Campaigns[i].Campaign] = &r.Campaigns[i].Resolved
	}
	var scored, sum int64
	for _, g := range groups {
		var yes, no int64
		if g.resolved.Valid && g.resolved.Int64 != 0 {
			yes = g.n
		} else if g.resolved.Valid {
			no = g.n
		}
		if g.date != "" {
			r.AddWrapUps(g.date, yes, no, g.scored, g.sum)
			continue
		}
		scored += g.scored
		sum += g.sum
		if g.reason != "" {
			reasons[g.reason] += g.n
		}
		if g.resolved.Valid {
			r.Resolved.Add(yes, no)
			if h := hot[g.hotline]; h != nil {
				h.Add(yes, no)
			}
			if c := camp[g.campaign]; c != nil {
				c.Add(yes, no)
			}
		}
	}
	for reason, n := range reasons {
		r.Reasons = append(r.Reasons, stats.ReasonStat{Reason: reason, Calls: n})
	}
	sort.Slice(r.Reasons, func(i, j int) bool {
		a, b := r.Reasons[i], r.Reasons[j]
		return a.Calls > b.Calls || (a.Calls == b.Calls && a.Reason < b.Reason)
	})
	if len(r.Reasons) > maxReasons {
		r.Reasons = r.Reasons[:maxReasons]
	}
	r.Satisfaction.Count = scored
	if scored > 0 {
		r.Satisfaction.Mean = float64(sum) / float64(scored)
	}
}

// wrapUpIndexMigration widens the wrap-up index by resolved, so that the
// share resolved is read from the index alone. Appended to
// callMigrations.
const wrapUpIndexMigration = `DROP INDEX calls_wrapup;
	CREATE INDEX calls_wrapup ON calls(started_at, hotline, campaign, reason, satisfaction, resolved, wrapup_at)
		WHERE direction = 'inbound' AND wrapup_at IS NOT NULL;`
