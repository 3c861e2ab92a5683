package callstore

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/switchboard-sip/switchboard/internal/pgtest"
	"github.com/switchboard-sip/switchboard/storage"
)

// TestDatabaseAway stops PostgreSQL under a running store: saves never
// block, records wait in the bounded local queue, what exceeds it is
// counted, and the rest is written once the database is back (SPEC §11).
func TestDatabaseAway(t *testing.T) {
	s, tg := newStore(t)
	if tg.driver != storage.Postgres {
		t.Skip("SQLite is a local file; its lock test is TestCallStoreSurvivesLockedDatabase")
	}
	srv, err := pgtest.Shared()
	if err != nil {
		t.Fatal(err)
	}
	s.maxPending = 20
	s.Save(rec("before", base))
	flush(t, s)
	if err := srv.Pause(); err != nil {
		t.Fatal(err)
	}
	resumed := false
	defer func() {
		if !resumed {
			srv.Resume()
		}
	}()
	start := time.Now()
	for i := range 25 {
		s.Save(rec(fmt.Sprintf("away%02d", i), base.Add(time.Duration(i+1)*time.Second)))
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("25 saves took %v with the database away", d)
	}
	short, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	err = s.Flush(short)
	cancel()
	if err == nil {
		t.Fatal("Flush succeeded with the database away")
	}
	if s.Degraded() == nil {
		t.Error("not degraded with the database away")
	}
	if n := s.Dropped(); n != 5 {
		t.Errorf("dropped %d, want 5 (25 saves, room for 20)", n)
	}
	if err := srv.Resume(); err != nil {
		t.Fatal(err)
	}
	resumed = true
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if n := countRows(t, tg); n != 21 {
		t.Errorf("rows = %d, want 21 (before + 20 queued)", n)
	}
	if s.Degraded() != nil || s.Pending() != 0 {
		t.Errorf("after the outage: degraded %v, pending %d", s.Degraded(), s.Pending())
	}
}
