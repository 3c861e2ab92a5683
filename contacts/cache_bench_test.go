package contacts_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/switchboard-sip/switchboard/contacts"
)

// BenchmarkCacheLoad measures how long the agent needs at start to load a
// million contacts (1.33 million numbers) into the call path's index.
func BenchmarkCacheLoad(b *testing.B) {
	ctx := context.Background()
	e := newEnv(b)
	const n = 1000000
	tx, err := e.db.BeginTx(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	insC, _ := tx.Prepare(`INSERT INTO contacts(id, name, company, email, tags, source, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'import', 0, 0)`)
	insN, _ := tx.Prepare(`INSERT INTO contact_numbers(e164, raw, contact_id) VALUES (?, ?, ?)`)
	tags := []string{`[]`, `["vip"]`, `["customer","b2b"]`}
	for i := 1; i <= n; i++ {
		if _, err := insC.Exec(i, fmt.Sprintf("Given%d Family%d", i, i), fmt.Sprintf("Company %d", i%5000), fmt.Sprintf("p%d@example.com", i), tags[i%3]); err != nil {
			b.Fatal(err)
		}
		e164 := fmt.Sprintf("+49151%08d", i)
		if _, err := insN.Exec(e164, e164, i); err != nil {
			b.Fatal(err)
		}
		if i%3 == 0 {
			e164 = fmt.Sprintf("+4930%08d", i)
			if _, err := insN.Exec(e164, e164, i); err != nil {
				b.Fatal(err)
			}
		}
	}
	tx.Exec(`UPDATE contact_seq SET next = ?`, n+1)
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		start := time.Now()
		c, err := contacts.NewCache(ctx, e.store, contacts.CacheOptions{Poll: time.Hour})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(time.Since(start).Seconds(), "s/load")
		b.StopTimer()
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), "MiB-heap")
		if st := c.Stats(); st.Contacts != n || st.Numbers != n+n/3 {
			b.Fatalf("loaded %+v", st)
		}
		if in := c.Lookup("+493000000003"); in == nil || in.ID != 3 {
			b.Fatalf("lookup: %+v", in)
		}
		c.Close(ctx)
		b.StartTimer()
	}
}
