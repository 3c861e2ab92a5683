package callstore

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"time"

	"golang.org/x/sync/errgroup"

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

// Stats computes the figures of SPEC §10 for f. Since and Until must be
// set (the callers apply the 30-day default); Location places days and
// hours (UTC when nil). Company names and contact names are not the call
// store's: stats.Complete adds them.
func (s *Store) Stats(ctx context.Context, f stats.Filter) (stats.Report, error) {
	if f.Location == nil {
		f.Location = time.UTC
	}
	if !f.Until.After(f.Since) {
		return stats.Report{}, fmt.Errorf("callstore: stats: until %s is not after since %s", f.Until.Format(time.RFC3339), f.Since.Format(time.RFC3339))
	}
	// Saves of the last batch window are counted too; a database that is
	// down must not hold the answer, so the wait is short.
	fctx, cancel := context.WithTimeout(ctx, time.Second)
	_ = s.Flush(fctx)
	cancel()

	// The queries are independent and each reads its own range of an
	// index: they run at once on the pool's connections (SQLite in WAL
	// mode reads in parallel), each filling its own part of the report.
	r := stats.Empty(f)
	var ring, talk map[string]*histogram
	var wraps []wrapGroup
	steps := []func(context.Context) error{
		func(ctx context.Context) error { return s.statsGroups(ctx, f, &r) },
		func(ctx context.Context) error { return s.statsBuckets(ctx, f, &r) },
		func(ctx context.Context) error { return s.statsTopCallers(ctx, f, &r) },
		func(ctx context.Context) (err error) {
			wraps, err = s.statsWrapUps(ctx, f)
			return err
		},
		func(ctx context.Context) (err error) {
			ring, err = s.histogram(ctx, f, "ring_ms", ringStepMS, `disposition IN ('answered', 'no_answer', 'busy')`)
			return err
		},
		func(ctx context.Context) (err error) {
			talk, err = s.histogram(ctx, f, "talk_ms", talkStepMS, `disposition = 'answered'`)
			return err
		},
	}
	g, gctx := errgroup.WithContext(ctx)
	for _, step := range steps {
		g.Go(func() error { return step(gctx) })
	}
	if err := g.Wait(); err != nil {
		return stats.Report{}, fmt.Errorf("callstore: stats: %w", err)
	}
	// Ring time is over the calls that rang at the front desk (answered
	// or missed), talk time over answered calls.
	for i := range r.Hotlines {
		h := &r.Hotlines[i]
		h.RingMSP50 = ring[h.Name].percentile(50, ringStepMS)
		h.RingMSP90 = ring[h.Name].percentile(90, ringStepMS)
		h.TalkMSP50 = talk[h.Name].percentile(50, talkStepMS)
	}
	addWrapUps(&r, wraps)
	return r, nil
}

// statsGroups counts calls per (hotline, campaign) in one pass; totals,
// hotlines and campaigns are sums of those few groups.
func (s *Store) statsGroups(ctx context.Context, f stats.Filter, r *stats.Report) error {
	cond, args := statsWhere(f, statsSQL)
	rows, err := s.db.QueryContext(ctx, s.db.Rebind(`SELECT hotline, campaign, COUNT(*), SUM(`+answeredCase+`), SUM(`+missedCase+`)
		FROM calls`+s.indexed(f, "calls_stats")+` WHERE `+cond+` GROUP BY hotline, campaign`), args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	hot := map[string]*stats.HotlineStats{}
	camp := map[string]*stats.CampaignStat{}
	for rows.Next() {
		var h, c string
		var n, ans, miss int64
		if err := rows.Scan(&h, &c, &n, &ans, &miss); err != nil {
			return err
		}
		r.Totals.Calls += n
		r.Totals.Answered += ans
		r.Totals.Missed += miss
		hs := hot[h]
		if hs == nil {
			hs = &stats.HotlineStats{Name: h}
			hot[h] = hs
		}
		hs.Calls, hs.Answered, hs.Missed = hs.Calls+n, hs.Answered+ans, hs.Missed+miss
		cs := camp[c]
		if cs == nil {
			cs = &stats.CampaignStat{Campaign: c}
			camp[c] = cs
		}
		cs.Calls, cs.Answered, cs.Missed = cs.Calls+n, cs.Answered+ans, cs.Missed+miss
	}
	if err := rows.Err(); err != nil {
		return err
	}
	r.Totals.AnswerRate = stats.Rate(r.Totals.Answered, r.Totals.Missed)
	for _, hs := range hot {
		hs.AnswerRate = stats.Rate(hs.Answered, hs.Missed)
		r.Hotlines = append(r.Hotlines, *hs)
	}
	for _, cs := range camp {
		cs.AnswerRate = stats.Rate(cs.Answered, cs.Missed)
		r.Campaigns = append(r.Campaigns, *cs)
	}
	sort.Slice(r.Hotlines, func(i, j int) bool {
		a, b := r.Hotlines[i], r.Hotlines[j]
		return a.Calls > b.Calls || (a.Calls == b.Calls && a.Name < b.Name)
	})
	sort.Slice(r.Campaigns, func(i, j int) bool {
		a, b := r.Campaigns[i], r.Campaigns[j]
		return a.Calls > b.Calls || (a.Calls == b.Calls && a.Campaign < b.Campaign)
	})
	return nil
}

// Percentile resolutions: ring times are ranked to 10 ms, talk times to
// 100 ms. Counting calls per (hotline, time step) in the database keeps
// what reaches Go to a few thousand aggregate rows however many calls the
// range holds, and costs less than ranking every call with a window
// function (a sort of the whole range); the nearest-rank percentile of
// the steps is exact to the step.
const (
	ringStepMS = 10
	talkStepMS = 100
)

// histogram counts calls per hotline and step of col, steps ascending.
type histogram struct {
	steps, counts []int64
	n             int64
}

// percentile is the nearest-rank p-th percentile (the ceil(p·n/100)-th
// value), rounded down to its step; 0 without calls.
func (h *histogram) percentile(p int, step int64) int64 {
	if h == nil {
		return 0
	}
	rank := (h.n*int64(p) + 99) / 100
	var seen int64
	for i, c := range h.counts {
		if seen += c; seen >= rank {
			return h.steps[i] * step
		}
	}
	return 0
}

func (s *Store) histogram(ctx context.Context, f stats.Filter, col string, step int64, disp string) (map[string]*histogram, error) {
	cond, args := statsWhere(f, statsSQL)
	rows, err := s.db.QueryContext(ctx, s.db.Rebind(`SELECT hotline, `+col+` / `+fmt.Sprint(step)+` AS step, COUNT(*)
		FROM calls`+s.indexed(f, "calls_stats")+` WHERE `+cond+` AND `+disp+` GROUP BY hotline, step ORDER BY hotline, step`), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]*histogram{}
	for rows.Next() {
		var name string
		var st, n int64
		if err := rows.Scan(&name, &st, &n); err != nil {
			return nil, err
		}
		h := out[name]
		if h == nil {
			h = &histogram{}
			out[name] = h
		}
		h.steps, h.counts, h.n = append(h.steps, st), append(h.counts, n), h.n+n
	}
	return out, rows.Err()
}

// statsBuckets counts calls per quarter hour of the range and places each
// bucket in its local day and hour of the week.
func (s *Store) statsBuckets(ctx context.Context, f stats.Filter, r *stats.Report) error {
	cond, args := statsWhere(f, statsSQL)
	rows, err := s.db.QueryContext(ctx, s.db.Rebind(`SELECT started_at / `+fmt.Sprint(bucketMS)+` AS b, COUNT(*), SUM(`+answeredCase+`), SUM(`+missedCase+`)
		FROM calls`+s.indexed(f, "calls_stats")+` WHERE `+cond+` GROUP BY b`), args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var b, n, ans, miss int64
		if err := rows.Scan(&b, &n, &ans, &miss); err != nil {
			return err
		}
		r.AddBucket(time.UnixMilli(b*bucketMS), n, ans, miss)
	}
	return rows.Err()
}

// statsTopCallers lists the contacts with the most calls in the range.
func (s *Store) statsTopCallers(ctx context.Context, f stats.Filter, r *stats.Report) error {
	cond, args := statsWhere(f, statsSQL)
	rows, err := s.db.QueryContext(ctx, s.db.Rebind(`SELECT contact_id, COUNT(*) AS n, MAX(started_at) AS last
		FROM calls`+s.indexed(f, "calls_stats")+` WHERE `+cond+` AND contact_id IS NOT NULL
		GROUP BY contact_id ORDER BY n DESC, last DESC, contact_id LIMIT `+fmt.Sprint(topCallers)), args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var t stats.TopCaller
		var last int64
		if err := rows.Scan(&t.ContactID, &t.Calls, &last); err != nil {
			return err
		}
		t.LastCallAt = fromMillis(last).In(f.Location)
		r.TopCallers = append(r.TopCallers, t)
	}
	return rows.Err()
}

// wrapGroup counts the wrap-ups of one quarter hour, hotline, campaign,
// reason and resolved value.
type wrapGroup struct {
	bucket            int64
	hotline, campaign string
	reason            string
	resolved          sql.NullInt64
	n, scored, sum    int64
}

// statsWrapUps reads the wrap-ups of the range from the small index of
// wrapped-up calls, grouped finely enough for every figure made of them:
// reasons, satisfaction, the share resolved in total, per hotline, per
// campaign and per day.
func (s *Store) statsWrapUps(ctx context.Context, f stats.Filter) ([]wrapGroup, error) {
	cond, args := statsWhere(f, wrapupSQL)
	rows, err := s.db.QueryContext(ctx, s.db.Rebind(`SELECT started_at / `+fmt.Sprint(bucketMS)+` AS b, hotline, campaign, reason, resolved,
			COUNT(*), SUM(CASE WHEN satisfaction > 0 THEN 1 ELSE 0 END), SUM(satisfaction)
		FROM calls`+s.indexed(f, "calls_wrapup")+` WHERE `+cond+` GROUP BY b, hotline, campaign, reason, resolved`), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []wrapGroup
	for rows.Next() {
		var g wrapGroup
		if err := rows.Scan(&g.bucket, &g.hotline, &g.campaign, &g.reason, &g.resolved, &g.n, &g.scored, &g.sum); err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	return out, rows.Err()
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
		scored += g.scored
		sum += g.sum
		if g.reason != "" {
			reasons[g.reason] += g.n
		}
		var yes, no int64
		if g.resolved.Valid {
			if g.resolved.Int64 != 0 {
				yes = g.n
			} else {
				no = g.n
			}
			r.Resolved.Add(yes, no)
			if h := hot[g.hotline]; h != nil {
				h.Add(yes, no)
			}
			if c := camp[g.campaign]; c != nil {
				c.Add(yes, no)
			}
		}
		r.AddWrapUps(time.UnixMilli(g.bucket*bucketMS), yes, no, g.scored, g.sum)
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
