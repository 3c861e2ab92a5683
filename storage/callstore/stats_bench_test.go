package callstore

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard-sip/switchboard/stats"
	"github.com/switchboard-sip/switchboard/storage"
)

// statsNow is the end of the generated data and of the benchmarked ranges.
var statsNow = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// genStatsDB fills path with 1,000,000 calls over 13 months (retention):
// 80 % inbound over 5 hotlines and 3 campaigns, 70 % answered, 20 % no
// answer, 10 % busy, from 50,000 contacts; 3 % wrapped up. One transaction
// of prepared inserts with the indexes dropped, then created again from
// their own definitions.
func genStatsDB(tb testing.TB, path string) {
	tb.Helper()
	ctx := context.Background()
	db, err := storage.Open("sqlite", path)
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	s, err := New(ctx, db, nil)
	if err != nil {
		tb.Fatal(err)
	}
	defer s.Close(ctx)
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		tb.Fatal(err)
	}
	defer tx.Rollback()
	var indexes [][2]string
	rows, err := tx.QueryContext(ctx, `SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'calls' AND sql IS NOT NULL`)
	if err != nil {
		tb.Fatal(err)
	}
	for rows.Next() {
		var ix [2]string
		if err := rows.Scan(&ix[0], &ix[1]); err != nil {
			tb.Fatal(err)
		}
		indexes = append(indexes, ix)
	}
	rows.Close()
	for _, ix := range indexes {
		if _, err := tx.ExecContext(ctx, `DROP INDEX `+ix[0]); err != nil {
			tb.Fatal(err)
		}
	}
	ins, err := tx.PrepareContext(ctx, `INSERT INTO calls (id, call_id, direction, caller, called, hotline,
		campaign, contact_id, started_at, ring_ms, talk_ms, sip_status, disposition, reason, satisfaction, wrapup_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		tb.Fatal(err)
	}
	defer ins.Close()
	const n = 1_000_000
	rnd := rand.New(rand.NewPCG(1, 2))
	span := statsNow.Sub(statsNow.AddDate(0, -13, 0))
	start := statsNow.Add(-span)
	hotlines := []string{"acme", "shop", "clinic", "law", "garage"}
	campaigns := []string{"radio", "web", ""}
	reasons := []string{"order", "complaint", "support", "sales", "other"}
	for i := range n {
		at := start.Add(span / n * time.Duration(i))
		dir, hotline, campaign := "inbound", hotlines[i%5], campaigns[i%3]
		if i%5 == 4 {
			dir, hotline, campaign = "outbound", "", ""
		}
		disp, status, ring, talk := "answered", 200, rnd.Int64N(20000), rnd.Int64N(600000)
		switch x := rnd.IntN(10); {
		case x == 0:
			disp, status, talk = "busy", 486, 0
		case x < 3:
			disp, status, talk = "no_answer", 487, 0
		}
		var reason string
		var score int
		var wrapped any
		if rnd.IntN(100) < 3 {
			reason, score, wrapped = reasons[rnd.IntN(5)], 1+rnd.IntN(5), at.Add(time.Minute).UnixMilli()
		}
		contact := 1 + rnd.Int64N(50_000)
		if _, err := ins.ExecContext(ctx, fmt.Sprintf("s%07d", i), fmt.Sprint(i), dir, fmt.Sprintf("+49151%07d", contact),
			"+49301234560", hotline, campaign, contact, at.UnixMilli(), ring, talk, status, disp, reason, score, wrapped); err != nil {
			tb.Fatal(err)
		}
	}
	for _, ix := range indexes {
		if _, err := tx.ExecContext(ctx, ix[1]); err != nil {
			tb.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkStats computes the §10 figures over a database of 1,000,000
// calls (target: under 200 ms at p50 for the default 30 days, 12 months
// and one contact). SWITCHBOARD_STATS_DB keeps the generated database
// between runs. The nohelp/ case is the default report without rollups.
func BenchmarkStats(b *testing.B) {
	path := os.Getenv("SWITCHBOARD_STATS_DB")
	if path == "" {
		path = filepath.Join(b.TempDir(), "stats.db")
	}
	if _, err := os.Stat(path); err != nil {
		t0 := time.Now()
		genStatsDB(b, path)
		b.Logf("generated %s in %s", path, time.Since(t0).Round(time.Second))
	}
	db, err := storage.Open("sqlite", path)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	s, err := New(context.Background(), db, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close(context.Background())
	berlin, _ := time.LoadLocation("Europe/Berlin")
	t0 := time.Now()
	if err := s.EnableRollups(context.Background(), berlin); err != nil {
		b.Fatal(err)
	}
	b.Logf("rollups ready in %s (rebuilt when the database is new)", time.Since(t0).Round(time.Millisecond))
	def := stats.Range(stats.Filter{Location: berlin}, statsNow)
	for _, bc := range []struct {
		name string
		f    stats.Filter
	}{
		{"default30days", def},
		{"hotline30days", func() stats.Filter { f := def; f.Hotline = "acme"; return f }()},
		{"campaign30days", func() stats.Filter { f := def; f.Campaign = "radio"; return f }()},
		{"last7days", stats.Range(stats.Filter{Since: statsNow.AddDate(0, 0, -7), Location: berlin}, statsNow)},
		{"last12months", stats.Range(stats.Filter{Since: statsNow.AddDate(-1, 0, 0), Location: berlin}, statsNow)},
		{"contact12months", stats.Range(stats.Filter{Since: statsNow.AddDate(-1, 0, 0), Location: berlin, ContactID: 4242}, statsNow)},
		{"contact30days", func() stats.Filter { f := def; f.ContactID = 4242; return f }()},
		{"nohelp/default30days", def},
	} {
		b.Run(bc.name, func(b *testing.B) {
			if strings.HasPrefix(bc.name, "nohelp/") {
				// The same report from the calls' indexes alone: the
				// cost the rollups save.
				loc := s.rollLoc.Load()
				s.rollLoc.Store(nil)
				defer s.rollLoc.Store(loc)
			}
			var took []time.Duration
			var calls int64
			cpu0 := cpuTime()
			for b.Loop() {
				t0 := time.Now()
				r, err := s.Stats(context.Background(), bc.f)
				took = append(took, time.Since(t0))
				if err != nil {
					b.Fatal(err)
				}
				calls = r.Totals.Calls
			}
			// CPU time says what a report costs whatever else the machine
			// runs; the wall time depends on the cores left to the queries.
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/1000/float64(len(took)), "cpu-ms/op")
			sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
			b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(took[len(took)*99/100].Microseconds())/1000, "p99-ms")
			b.ReportMetric(float64(calls), "calls")
		})
	}
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkRebuildRollups recomputes the rollups of the 1,000,000-call
// database of BenchmarkStats (`switchboard stats --rebuild`).
func BenchmarkRebuildRollups(b *testing.B) {
	path := os.Getenv("SWITCHBOARD_STATS_DB")
	if path == "" {
		path = filepath.Join(b.TempDir(), "stats.db")
	}
	if _, err := os.Stat(path); err != nil {
		genStatsDB(b, path)
	}
	db, err := storage.Open("sqlite", path)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	s, err := New(context.Background(), db, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close(context.Background())
	berlin, _ := time.LoadLocation("Europe/Berlin")
	if err := s.EnableRollups(context.Background(), berlin); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		n, err := s.RebuildRollups(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(n), "calls")
	}
}
