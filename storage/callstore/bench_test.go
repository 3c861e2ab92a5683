package callstore

// Measured on a shared 2-core AMD EPYC VM, SQLite in WAL mode
// (go test -bench . -benchtime 100000x for Save, 1s for List):
//
//	Save (one record per call)       10,000-50,000 records/s, 2.1 KB and 22 allocs per save
//	SaveCall (3 saves per call)      15,000-40,000 calls/s
//	List of 100,000 rows, 50 items   0.3-0.6 ms (newest, cursor, number, disposition, missed, since)
//	List of 100,000 rows, 1000 items 6-8 ms
//
// The spread is other work on the machine; the floor is well above the call
// rates one node's SIP side handles.

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/switchboard-sip/switchboard/cdr"
)

// BenchmarkCallStoreSave measures sustained save throughput through the
// writer, disk included: the clock stops only when everything is flushed.
func BenchmarkCallStoreSave(b *testing.B) {
	s, _ := newStore(b)
	s.log = zap.NewNop()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s.Save(rec(fmt.Sprintf("b%09d", i), base.Add(time.Duration(i)*time.Millisecond)))
	}
	longFlush(b, s)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkCallStoreSaveCall is one call's life: saved at INVITE, answer and
// end, the pattern the SIP layer produces.
func BenchmarkCallStoreSaveCall(b *testing.B) {
	s, _ := newStore(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := rec(fmt.Sprintf("c%09d", i), base.Add(time.Duration(i)*time.Millisecond))
		s.Save(r)
		r.SIPStatus = 180
		s.Save(r)
		r.SIPStatus, r.TalkMS = 200, 1000
		s.Save(r)
	}
	longFlush(b, s)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
}

// BenchmarkCallStoreSmallBatches writes records in batches of 20, the
// size of a 20 ms batch window at 1,000 calls per second: the cost per
// batch (begin, statement, commit) shows here.
func BenchmarkCallStoreSmallBatches(b *testing.B) {
	s, _ := newStore(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s.Save(rec(fmt.Sprintf("s%09d", i), base.Add(time.Duration(i)*time.Millisecond)))
		if i%20 == 19 {
			if err := s.Flush(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
	longFlush(b, s)
}

// BenchmarkCallStoreList reads pages from a table of 100,000 records.
func BenchmarkCallStoreList(b *testing.B) {
	s, _ := newStore(b)
	const rows = 100_000
	for i := range rows {
		r := rec(fmt.Sprintf("l%06d", i), base.Add(time.Duration(i)*time.Second))
		r.Caller = fmt.Sprintf("+49151%07d", i%5000)
		if i%7 == 0 {
			r.Disposition = "no_answer"
		}
		s.Save(r)
	}
	longFlush(b, s)
	ctx := context.Background()
	_, deep, err := s.List(ctx, Query{Limit: 1000})
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		q    Query
	}{
		{"newest50", Query{}},
		{"page1000", Query{Limit: 1000}},
		{"cursor", Query{Cursor: deep}},
		{"number", Query{Number: "+491510000042"}},
		{"disposition", Query{Disposition: "no_answer"}},
		{"missed", Query{Missed: true}},
		{"since", Query{Since: base.Add(rows / 2 * time.Second), Disposition: "answered"}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, _, err := s.List(ctx, bc.q); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// longFlush allows for a slow disk: a benchmark measures, it does not judge.
func longFlush(b *testing.B, s *Store) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := s.Flush(ctx); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkCallStoreCallLife is the writer's work for calls that overlap
// as on a busy node, paced at 2,000 calls/s: call i starts while call
// i-100 is answered and call i-1000 ends, so that a call's versions fall
// into different batches. Without the journal each version is a row
// written; with it (SQLite) only the ended one is, and the others are
// appended to the local file. cpu-µs/call is the process's CPU time
// (writer, SQLite, journal) per call, from getrusage.
func BenchmarkCallStoreCallLife(b *testing.B) {
	for _, withJournal := range []bool{false, true} {
		b.Run(fmt.Sprint("journal=", withJournal), func(b *testing.B) {
			s, tg := newStore(b)
			if withJournal {
				p := JournalPath(tg.driver, tg.dsn)
				if p == "" {
					b.Skip("the journal is for SQLite")
				}
				if err := s.OpenJournal(context.Background(), p); err != nil {
					b.Fatal(err)
				}
			}
			const answerLag, endLag, perTick = 100, 1000, 20
			life := func(i int) (start, answered, ended cdr.Record) {
				start = rec(fmt.Sprintf("l%09d", i), base.Add(time.Duration(i)*time.Millisecond))
				start.Disposition, start.SIPStatus = "", 0
				answered = start
				at := start.StartedAt.Add(time.Second)
				answered.AnsweredAt, answered.Disposition, answered.SIPStatus = &at, cdr.Answered, 200
				ended = answered
				end := at.Add(time.Second)
				ended.EndedAt, ended.TalkMS = &end, 1000
				return
			}
			tick := time.NewTicker(10 * time.Millisecond)
			defer tick.Stop()
			cpu0 := cpuTime()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N+endLag; i++ {
				if i%perTick == 0 {
					<-tick.C
				}
				if i < b.N {
					st, _, _ := life(i)
					s.Save(st)
				}
				if j := i - answerLag; j >= 0 && j < b.N {
					_, an, _ := life(j)
					s.Save(an)
				}
				if j := i - endLag; j >= 0 {
					_, _, en := life(j)
					s.Save(en)
				}
			}
			longFlush(b, s)
			b.StopTimer()
			b.ReportMetric(float64(s.rows.Load())/float64(b.N), "rows/call")
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/call")
		})
	}
}
