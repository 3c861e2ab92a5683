package callstore

import (
	"context"
	"fmt"
	"sort"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/switchboard-sip/switchboard/stats"
)

// Stats computes the figures of SPEC §10 for f. Since and Until must be
// set (the callers apply the 30-day default); Location places days and
// hours (UTC when nil). Company names and contact names are not the call
// store's: stats.Complete adds them.
//
// With rollups kept in f's zone (EnableRollups), the local days wholly in
// the range are read from them and only the partial days at either end
// from the calls' indexes; a report of one contact reads that contact's
// calls. Wrap-ups (a few percent of the calls) always come from their
// index.
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
	// index or rollup table: they run at once on the pool's connections
	// (SQLite in WAL mode reads in parallel), each filling its own part.
	p := s.planStats(f)
	var steps []func(context.Context) error
	var parts []*figures
	part := func() *figures {
		fig := &figures{}
		parts = append(parts, fig)
		return fig
	}
	for _, piece := range p.pieces {
		g, b, ring, talk := part(), part(), part(), part()
		steps = append(steps,
			func(ctx context.Context) error { return s.statsGroups(ctx, piece, g) },
			func(ctx context.Context) error { return s.statsBuckets(ctx, piece, b) },
			func(ctx context.Context) error {
				return s.histogram(ctx, piece, ring, histRing, "ring_ms", `disposition IN ('answered', 'no_answer', 'busy')`)
			},
			func(ctx context.Context) error {
				return s.histogram(ctx, piece, talk, histTalk, "talk_ms", `disposition = 'answered'`)
			})
	}
	if p.fromDay != "" {
		d, h := part(), part()
		steps = append(steps,
			func(ctx context.Context) error { return s.rollupDays(ctx, f, p, d) },
			func(ctx context.Context) error { return s.rollupHist(ctx, f, p, h) })
	}
	var top []stats.TopCaller
	var wraps, wrapDays []wrapGroup
	steps = append(steps,
		func(ctx context.Context) (err error) {
			top, err = s.statsTopCallers(ctx, f, p)
			return err
		},
		func(ctx context.Context) (err error) {
			wraps, err = s.statsWrapUps(ctx, f)
			return err
		},
		func(ctx context.Context) (err error) {
			wrapDays, err = s.statsWrapUpDays(ctx, f)
			return err
		})
	g, gctx := errgroup.WithContext(ctx)
	for _, step := range steps {
		g.Go(func() error { return step(gctx) })
	}
	if err := g.Wait(); err != nil {
		return stats.Report{}, fmt.Errorf("callstore: stats: %w", err)
	}
	r := stats.Empty(f)
	mergeFigures(parts).fill(&r)
	r.TopCallers = append(r.TopCallers, top...)
	addWrapUps(&r, append(wraps, wrapDays...))
	return r, nil
}

// statsPlan splits a report's range: the local days [fromDay, toDay) come
// from the rollups (fromDay empty: none), the pieces from the calls'
// indexes.
type statsPlan struct {
	fromDay, toDay string
	from, to       time.Time // where those days start and end
	pieces         []stats.Filter
}

// planStats reads whole local days from the rollups when they are kept in
// f's zone and the report is not one contact's.
func (s *Store) planStats(f stats.Filter) statsPlan {
	loc := s.rollupZone()
	if loc == nil || loc.String() != f.Location.String() || f.ContactID != 0 {
		return statsPlan{pieces: []stats.Filter{f}}
	}
	l := f.Since.In(loc)
	first := time.Date(l.Year(), l.Month(), l.Day(), 0, 0, 0, 0, loc)
	if first.Before(f.Since) {
		first = time.Date(l.Year(), l.Month(), l.Day()+1, 0, 0, 0, 0, loc)
	}
	u := f.Until.In(loc)
	end := time.Date(u.Year(), u.Month(), u.Day(), 0, 0, 0, 0, loc)
	if !first.Before(end) {
		return statsPlan{pieces: []stats.Filter{f}}
	}
	p := statsPlan{fromDay: first.Format(time.DateOnly), toDay: end.Format(time.DateOnly), from: first, to: end}
	if f.Since.Before(first) {
		head := f
		head.Until = first
		p.pieces = append(p.pieces, head)
	}
	if end.Before(f.Until) {
		tail := f
		tail.Since = end
		p.pieces = append(p.pieces, tail)
	}
	return p
}

// figures are counts read by one query, merged into the report once all
// queries are done.
type figures struct {
	groups   map[[2]string]*[3]int64 // (hotline, campaign) → calls, answered, missed
	quarters [][4]int64              // quarter hour, calls, answered, missed
	days     []dayRow
	hist     map[hotlineKind]*histCounts
}

type hotlineKind struct {
	hotline string
	kind    int
}

type dayRow struct {
	date                    string
	calls, answered, missed int64
	hours                   [24]int64
}

func (fg *figures) group(hotline, campaign string) *[3]int64 {
	if fg.groups == nil {
		fg.groups = map[[2]string]*[3]int64{}
	}
	k := [2]string{hotline, campaign}
	c := fg.groups[k]
	if c == nil {
		c = &[3]int64{}
		fg.groups[k] = c
	}
	return c
}

func (fg *figures) histOf(k hotlineKind) *histCounts {
	if fg.hist == nil {
		fg.hist = map[hotlineKind]*histCounts{}
	}
	h := fg.hist[k]
	if h == nil {
		h = &histCounts{}
		fg.hist[k] = h
	}
	return h
}

func mergeFigures(parts []*figures) *figures {
	out := &figures{}
	for _, p := range parts {
		for k, c := range p.groups {
			g := out.group(k[0], k[1])
			g[0], g[1], g[2] = g[0]+c[0], g[1]+c[1], g[2]+c[2]
		}
		out.quarters = append(out.quarters, p.quarters...)
		out.days = append(out.days, p.days...)
		for k, h := range p.hist {
			dst := out.histOf(k)
			for i, n := range h {
				dst[i] += n
			}
		}
	}
	return out
}

// fill writes the counts into r: totals, hotlines and campaigns are sums
// of the few (hotline, campaign) groups; ring time is over the calls that
// rang at the front desk (answered or missed), talk time over answered
// calls.
func (fg *figures) fill(r *stats.Report) {
	hot := map[string]*stats.HotlineStats{}
	camp := map[string]*stats.CampaignStat{}
	for k, c := range fg.groups {
		n, ans, miss := c[0], c[1], c[2]
		if n == 0 {
			continue
		}
		r.Totals.Calls += n
		r.Totals.Answered += ans
		r.Totals.Missed += miss
		hs := hot[k[0]]
		if hs == nil {
			hs = &stats.HotlineStats{Name: k[0]}
			hot[k[0]] = hs
		}
		hs.Calls, hs.Answered, hs.Missed = hs.Calls+n, hs.Answered+ans, hs.Missed+miss
		cs := camp[k[1]]
		if cs == nil {
			cs = &stats.CampaignStat{Campaign: k[1]}
			camp[k[1]] = cs
		}
		cs.Calls, cs.Answered, cs.Missed = cs.Calls+n, cs.Answered+ans, cs.Missed+miss
	}
	r.Totals.AnswerRate = stats.Rate(r.Totals.Answered, r.Totals.Missed)
	for _, hs := range hot {
		hs.AnswerRate = stats.Rate(hs.Answered, hs.Missed)
		ring, talk := fg.hist[hotlineKind{hs.Name, histRing}], fg.hist[hotlineKind{hs.Name, histTalk}]
		hs.RingMSP50, hs.RingMSP90, hs.TalkMSP50 = ring.percentile(50), ring.percentile(90), talk.percentile(50)
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
	for _, q := range fg.quarters {
		r.AddBucket(time.UnixMilli(q[0]*bucketMS), q[1], q[2], q[3])
	}
	for _, d := range fg.days {
		r.AddDay(d.date, d.calls, d.answered, d.missed, d.hours)
	}
}

// histCounts counts calls per time bucket (timeBucket), by bucket index
// (bucketIndex): an array, so that adding the days of a year is a few
// million additions and no map lookups.
type histCounts [maxBuckets]int64

// percentile is the nearest-rank p-th percentile (the ceil(p·n/100)-th
// value) of h; 0 without calls (or without h).
func (h *histCounts) percentile(p int) int64 {
	if h == nil {
		return 0
	}
	var n int64
	for _, c := range h {
		n += c
	}
	if n <= 0 {
		return 0
	}
	rank := (n*int64(p) + 99) / 100
	var seen int64
	for i, c := range h {
		if seen += c; seen >= rank {
			return bucketValue(i)
		}
	}
	return 0
}

// statsGroups counts calls per (hotline, campaign) in one pass.
func (s *Store) statsGroups(ctx context.Context, f stats.Filter, fg *figures) error {
	cond, args := statsWhere(f, statsSQL)
	rows, err := s.db.QueryContext(ctx, s.db.Rebind(`SELECT hotline, campaign, COUNT(*), SUM(`+answeredCase+`), SUM(`+missedCase+`)
		FROM calls`+s.indexed(f, "calls_stats")+` WHERE `+cond+` GROUP BY hotline, campaign`), args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var h, c string
		var n, ans, miss int64
		if err := rows.Scan(&h, &c, &n, &ans, &miss); err != nil {
			return err
		}
		g := fg.group(h, c)
		g[0], g[1], g[2] = g[0]+n, g[1]+ans, g[2]+miss
	}
	return rows.Err()
}

// histogram counts calls per hotline and time bucket of col. Counting
// buckets in the database keeps what reaches Go to a few hundred rows per
// hotline however many calls the range holds, and costs less than ranking
// every call with a window function.
func (s *Store) histogram(ctx context.Context, f stats.Filter, fg *figures, kind int, col, disp string) error {
	cond, args := statsWhere(f, statsSQL)
	rows, err := s.db.QueryContext(ctx, s.db.Rebind(`SELECT hotline, `+bucketSQL(col)+` AS v, COUNT(*)
		FROM calls`+s.indexed(f, "calls_stats")+` WHERE `+cond+` AND `+disp+` GROUP BY hotline, v`), args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var k hotlineKind
		var v, n int64
		if err := rows.Scan(&k.hotline, &v, &n); err != nil {
			return err
		}
		k.kind = kind
		fg.histOf(k)[bucketIndex(v)] += n
	}
	return rows.Err()
}

// statsBuckets counts calls per quarter hour of the range, so that every
// zone offset (+05:30, +05:45) falls on a boundary; fill places each in
// its local day and hour of the week, DST included.
func (s *Store) statsBuckets(ctx context.Context, f stats.Filter, fg *figures) error {
	cond, args := statsWhere(f, statsSQL)
	rows, err := s.db.QueryContext(ctx, s.db.Rebind(`SELECT started_at / `+fmt.Sprint(bucketMS)+` AS b, COUNT(*), SUM(`+answeredCase+`), SUM(`+missedCase+`)
		FROM calls`+s.indexed(f, "calls_stats")+` WHERE `+cond+` GROUP BY b`), args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var q [4]int64
		if err := rows.Scan(&q[0], &q[1], &q[2], &q[3]); err != nil {
			return err
		}
		fg.quarters = append(fg.quarters, q)
	}
	return rows.Err()
}

// rollupFilter is the condition on a rollup table of the plan's days and
// f's hotline and campaign.
func rollupFilter(f stats.Filter, p statsPlan) (string, []any) {
	cond := `day >= ? AND day < ?`
	args := []any{p.fromDay, p.toDay}
	if f.Hotline != "" {
		cond += ` AND hotline = ?`
		args = append(args, f.Hotline)
	}
	if f.Campaign != "" {
		cond += ` AND campaign = ?`
		args = append(args, f.Campaign)
	}
	return cond, args
}

// rollupDays reads the plan's whole days from stats_days.
func (s *Store) rollupDays(ctx context.Context, f stats.Filter, p statsPlan, fg *figures) error {
	cond, args := rollupFilter(f, p)
	rows, err := s.db.QueryContext(ctx, s.db.Rebind(`SELECT day, hotline, campaign, calls, answered, missed, `+hourColumns()+`
		FROM stats_days WHERE `+cond), args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	byDate := map[string]*dayRow{}
	dest := make([]any, 30)
	for rows.Next() {
		var d dayRow
		var h, c string
		dest[0], dest[1], dest[2], dest[3], dest[4], dest[5] = &d.date, &h, &c, &d.calls, &d.answered, &d.missed
		for i := range d.hours {
			dest[6+i] = &d.hours[i]
		}
		if err := rows.Scan(dest...); err != nil {
			return err
		}
		g := fg.group(h, c)
		g[0], g[1], g[2] = g[0]+d.calls, g[1]+d.answered, g[2]+d.missed
		sum := byDate[d.date]
		if sum == nil {
			sum = &dayRow{date: d.date}
			byDate[d.date] = sum
		}
		sum.calls, sum.answered, sum.missed = sum.calls+d.calls, sum.answered+d.answered, sum.missed+d.missed
		for i, n := range d.hours {
			sum.hours[i] += n
		}
	}
	for _, d := range byDate {
		fg.days = append(fg.days, *d)
	}
	return rows.Err()
}

// rollupHist reads the plan's whole days' histograms from stats_hist.
func (s *Store) rollupHist(ctx context.Context, f stats.Filter, p statsPlan, fg *figures) error {
	cond, args := rollupFilter(f, p)
	rows, err := s.db.QueryContext(ctx, s.db.Rebind(`SELECT hotline, kind, data FROM stats_hist WHERE `+cond), args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var k hotlineKind
		var b []byte
		if err := rows.Scan(&k.hotline, &k.kind, &b); err != nil {
			return err
		}
		h := fg.histOf(k)
		if err := walkHist(b, func(v, n int64) { h[bucketIndex(v)] += n }); err != nil {
			return err
		}
	}
	return rows.Err()
}
