package callstore

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/switchboard-sip/switchboard/callctl"
	"github.com/switchboard-sip/switchboard/cdr"
	"github.com/switchboard-sip/switchboard/stats"
)

func zone(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// reportsAgree computes f with the rollups and again from the calls alone
// and fails when the two differ in any figure.
func reportsAgree(t *testing.T, s *Store, what string, f stats.Filter) stats.Report {
	t.Helper()
	ctx := context.Background()
	with, err := s.Stats(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	loc := s.rollLoc.Load()
	s.rollLoc.Store(nil)
	without, err := s.Stats(ctx, f)
	s.rollLoc.Store(loc)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(with)
	b, _ := json.Marshal(without)
	if string(a) != string(b) {
		t.Errorf("%s: with rollups\n  %s\nfrom the calls\n  %s", what, a, b)
	}
	return with
}

// The rollups give every figure the calls give, whatever happens to the
// calls: versions saved again with another disposition, a contact merged
// or deleted, retention, a lost node's calls closed, and a rebuild; in
// zones with DST changes and a half-hour offset.
func TestRollupsAgreeWithTheCalls(t *testing.T) {
	ctx := context.Background()
	for _, name := range []string{"Europe/Berlin", "America/New_York", "Asia/Kolkata"} {
		t.Run(name, func(t *testing.T) {
			loc := zone(t, name)
			s, _ := newStore(t)
			if err := s.EnableRollups(ctx, loc); err != nil {
				t.Fatal(err)
			}
			rnd := rand.New(rand.NewPCG(7, 11))
			start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
			hotlines := []string{"acme", "shop", "clinic"}
			disps := []cdr.Disposition{cdr.Answered, cdr.Answered, cdr.NoAnswer, cdr.Busy, cdr.Blocked, cdr.Failed}
			var recs []cdr.Record
			for i := range 600 {
				// March and April (both spring changes), and late October
				// into November (both autumn changes).
				at := start.Add(time.Duration(rnd.Int64N(int64(40 * 24 * time.Hour))))
				if i%3 == 0 {
					at = time.Date(2026, 10, 20, 0, 0, 0, 0, time.UTC).Add(time.Duration(rnd.Int64N(int64(16 * 24 * time.Hour))))
				}
				r := rec(fmt.Sprintf("r%04d", i), at)
				r.Hotline, r.Campaign = hotlines[i%3], []string{"radio", "", "web"}[i%3]
				r.ContactID = 1 + rnd.Int64N(40)
				r.Disposition, r.RingMS = "", 0
				if i%10 == 0 {
					r.Direction = callctl.Outbound
				}
				s.Save(r) // ringing: no disposition yet
				recs = append(recs, r)
			}
			flush(t, s)
			for i := range recs {
				r := &recs[i]
				r.Disposition = disps[rnd.IntN(len(disps))]
				r.RingMS = rnd.Int64N(30000)
				if r.Disposition == cdr.Answered {
					r.TalkMS = rnd.Int64N(900000)
				}
				ended := r.StartedAt.Add(time.Minute)
				r.EndedAt = &ended
				if i%50 == 1 {
					r.Node, r.EndedAt, r.Disposition = "sb-2", nil, cdr.Answered // still up on a node that will be lost
				}
				s.Save(*r)
				if i%100 == 0 {
					flush(t, s)
				}
			}
			flush(t, s)
			check := func(stage string) {
				t.Helper()
				full := stats.Filter{Since: time.Date(2026, 3, 1, 0, 0, 0, 0, loc), Until: time.Date(2026, 11, 10, 13, 7, 0, 0, loc), Location: loc}
				rep := reportsAgree(t, s, stage+", whole range", full)
				if rep.Totals.Calls == 0 || len(rep.TopCallers) == 0 {
					t.Fatalf("%s: no calls counted: %+v", stage, rep.Totals)
				}
				part := stats.Filter{Since: time.Date(2026, 3, 7, 13, 45, 0, 0, time.UTC), Until: time.Date(2026, 3, 30, 4, 0, 0, 0, time.UTC), Location: loc}
				reportsAgree(t, s, stage+", partial days at both ends", part)
				f := full
				f.Hotline = "shop"
				reportsAgree(t, s, stage+", one hotline", f)
				f = full
				f.Campaign = "web"
				reportsAgree(t, s, stage+", one campaign", f)
			}
			check("saved twice")

			if err := s.Relink(ctx, 3, 4); err != nil {
				t.Fatal(err)
			}
			flush(t, s)
			check("contact 3 merged into 4")
			tx, err := s.db.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.DeleteContactCalls(ctx, tx, 5); err != nil {
				t.Fatal(err)
			}
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
			check("contact 5 deleted")
			if _, err := s.Prune(ctx, time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)); err != nil {
				t.Fatal(err)
			}
			check("pruned")
			lost := time.Date(2026, 11, 5, 0, 0, 0, 0, time.UTC)
			if err := s.Beat(ctx, "sb-2", lost); err != nil {
				t.Fatal(err)
			}
			if n, err := s.closeNode(ctx, "sb-2", toMillis(lost)); err != nil || n == 0 {
				t.Fatalf("closeNode: %d %v", n, err)
			}
			check("lost node's calls closed")
			if _, err := s.RebuildRollups(ctx); err != nil {
				t.Fatal(err)
			}
			check("rebuilt")
		})
	}
}

// A zone change rebuilds the rollups; a report in another zone than the
// rollups' is computed from the calls.
func TestRollupsZoneChange(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	berlin, kolkata := zone(t, "Europe/Berlin"), zone(t, "Asia/Kolkata")
	if err := s.EnableRollups(ctx, berlin); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 3, 2, 18, 45, 0, 0, time.UTC) // 19:45 Berlin, 00:15 the next day in Kolkata
	s.Save(rec("z1", at))
	flush(t, s)
	f := stats.Filter{Since: time.Date(2026, 3, 1, 0, 0, 0, 0, kolkata), Until: time.Date(2026, 3, 5, 0, 0, 0, 0, kolkata), Location: kolkata}
	day := func() string {
		r, err := s.Stats(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range r.ByDay {
			if d.Calls > 0 {
				return d.Date
			}
		}
		return ""
	}
	if got := day(); got != "2026-03-03" {
		t.Errorf("Kolkata report over Berlin rollups: day %s, want 2026-03-03", got)
	}
	if err := s.EnableRollups(ctx, kolkata); err != nil {
		t.Fatal(err)
	}
	if got := day(); got != "2026-03-03" {
		t.Errorf("after the rebuild in Kolkata: day %s, want 2026-03-03", got)
	}
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM stats_days WHERE day = '2026-03-03'`).Scan(&n); err != nil || n != 1 {
		t.Errorf("rollup rows of 2026-03-03 in Kolkata: %d %v", n, err)
	}
}

// Days and hours of the week are local, to the quarter hour and across
// DST changes, both from the rollups and from the calls: these cases fail
// when buckets are placed in UTC, with whole-hour offsets, or with the
// offset of the wrong side of a change.
func TestTimeBucketsInZones(t *testing.T) {
	type call struct {
		utc     time.Time
		date    string
		weekday time.Weekday
		hour    int
	}
	u := func(mo time.Month, d, h, m int) time.Time { return time.Date(2026, mo, d, h, m, 0, 0, time.UTC) }
	cases := map[string][]call{
		"Asia/Kolkata": { // +05:30
			{u(3, 2, 18, 29), "2026-03-02", time.Monday, 23},
			{u(3, 2, 18, 30), "2026-03-03", time.Tuesday, 0},
			{u(3, 3, 4, 45), "2026-03-03", time.Tuesday, 10},
		},
		"Europe/Berlin": { // CET→CEST 2026-03-29 01:00 UTC, back 2026-10-25 01:00 UTC
			{u(3, 29, 0, 30), "2026-03-29", time.Sunday, 1},
			{u(3, 29, 1, 30), "2026-03-29", time.Sunday, 3},
			{u(3, 29, 22, 30), "2026-03-30", time.Monday, 0},
			{u(10, 25, 0, 30), "2026-10-25", time.Sunday, 2},
			{u(10, 25, 1, 30), "2026-10-25", time.Sunday, 2},
			{u(10, 25, 23, 30), "2026-10-26", time.Monday, 0},
		},
		"America/New_York": { // EST→EDT 2026-03-08 07:00 UTC, back 2026-11-01 06:00 UTC
			{u(3, 8, 6, 30), "2026-03-08", time.Sunday, 1},
			{u(3, 8, 7, 30), "2026-03-08", time.Sunday, 3},
			{u(3, 9, 4, 30), "2026-03-09", time.Monday, 0},
			{u(11, 1, 5, 30), "2026-11-01", time.Sunday, 1},
			{u(11, 1, 6, 30), "2026-11-01", time.Sunday, 1},
			{u(11, 2, 4, 30), "2026-11-01", time.Sunday, 23},
		},
	}
	ctx := context.Background()
	for name, calls := range cases {
		t.Run(name, func(t *testing.T) {
			loc := zone(t, name)
			s, _ := newStore(t)
			if err := s.EnableRollups(ctx, loc); err != nil {
				t.Fatal(err)
			}
			wantDay := map[string]int64{}
			wantHour := map[[2]int]int64{}
			for i, c := range calls {
				s.Save(rec(fmt.Sprint("b", i), c.utc))
				wantDay[c.date]++
				wantHour[[2]int{int(c.weekday), c.hour}]++
			}
			flush(t, s)
			for i := range calls {
				if _, err := s.SetWrapUp(ctx, fmt.Sprint("b", i), cdr.WrapUp{Satisfaction: 3}); err != nil {
					t.Fatal(err)
				}
			}
			first, last := calls[0].utc.In(loc), calls[len(calls)-1].utc.In(loc)
			whole := stats.Filter{Location: loc, Since: time.Date(first.Year(), first.Month(), first.Day()-1, 0, 0, 0, 0, loc),
				Until: time.Date(last.Year(), last.Month(), last.Day()+2, 0, 0, 0, 0, loc)}
			partial := whole
			partial.Since = calls[0].utc.Add(-time.Minute)
			partial.Until = calls[len(calls)-1].utc.Add(time.Minute)
			for _, tc := range []struct {
				what    string
				f       stats.Filter
				rollups bool
			}{{"whole days, rollups", whole, true}, {"whole days, calls", whole, false}, {"partial days, rollups", partial, true}} {
				if !tc.rollups {
					s.rollLoc.Store(nil)
				}
				r, err := s.Stats(ctx, tc.f)
				s.rollLoc.Store(loc)
				if err != nil {
					t.Fatal(err)
				}
				for _, d := range r.ByDay {
					if d.Calls != wantDay[d.Date] {
						t.Errorf("%s: %s has %d calls, want %d", tc.what, d.Date, d.Calls, wantDay[d.Date])
					}
					if d.Scored != wantDay[d.Date] {
						t.Errorf("%s: %s has %d wrap-ups, want %d", tc.what, d.Date, d.Scored, wantDay[d.Date])
					}
				}
				for _, h := range r.ByHour {
					if want := wantHour[[2]int{h.Weekday, h.Hour}]; h.Calls != want {
						t.Errorf("%s: %s %02d:00 has %d calls, want %d", tc.what, time.Weekday(h.Weekday), h.Hour, h.Calls, want)
					}
				}
			}
		})
	}
}

// Time buckets keep two significant digits, at least 10 ms.
func TestTimeBucket(t *testing.T) {
	for in, want := range map[int64]int64{-5: 0, 0: 0, 9: 0, 15: 10, 999: 990, 1000: 1000, 1099: 1000, 12345: 12000, 987654: 980000} {
		if got := timeBucket(in); got != want {
			t.Errorf("timeBucket(%d) = %d, want %d", in, got, want)
		}
	}
	prev := -1
	for _, raw := range []int64{0, 10, 990, 1000, 1100, 9900, 10000, 99000, 100000, 3_600_000, 86_400_000, 999_000_000_000} {
		v := timeBucket(raw)
		i := bucketIndex(v)
		if i <= prev || i >= maxBuckets || bucketValue(i) != v {
			t.Errorf("bucketIndex(%d) = %d (after %d), back %d", v, i, prev, bucketValue(i))
		}
		prev = i
	}
	h := map[int64]int64{10: 3, 5000: 2, 1200: 7}
	back := map[int64]int64{}
	if err := decodeHist(encodeHist(h), back); err != nil || fmt.Sprint(back) != fmt.Sprint(h) {
		t.Errorf("histogram round trip: %v %v", back, err)
	}
}

// BenchmarkCallStoreSaveRollups is BenchmarkCallStoreSave with the
// statistics' rollups kept by the writer: what they cost a save.
func BenchmarkCallStoreSaveRollups(b *testing.B) {
	s, _ := newStore(b)
	if err := s.EnableRollups(context.Background(), zone(b, "Europe/Berlin")); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := rec(fmt.Sprintf("b%09d", i), base.Add(time.Duration(i)*time.Millisecond))
		r.ContactID = int64(1 + i%5000)
		s.Save(r)
	}
	longFlush(b, s)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}
