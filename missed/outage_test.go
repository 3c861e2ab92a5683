package missed_test

import (
	"context"
	"testing"
	"time"

	"github.com/switchboard-sip/switchboard/internal/pgtest"
	"github.com/switchboard-sip/switchboard/storage"
	"github.com/switchboard-sip/switchboard/storage/storagetest"
)

// TestDatabaseAwayKeepsMissedCalls: a missed call that ends while
// PostgreSQL is away (longer than the retries a failing event gets) waits in
// the local queue and is entered and notified, once, when it is back
// (SPEC §11).
func TestDatabaseAwayKeepsMissedCalls(t *testing.T) {
	if storagetest.Pass(t) != storage.Postgres {
		t.Skip("SQLite is a local file that does not go away")
	}
	// A server of its own: the package's shared one serves parallel tests.
	srv, err := pgtest.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	dsn, err := srv.NewDatabase(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, envOptions{driver: storage.Postgres, dsn: dsn})
	if err := srv.Pause(); err != nil {
		t.Fatal(err)
	}
	ev := call{caller: external("+4930111222"), ring: 10 * time.Second}.event()
	e.calls.Save(ev.Record)
	e.svc.Observe(ev)
	// Longer than the 5 attempts (0.2+0.4+0.8+1.6 s) after which an event
	// failing against a live database is given up.
	time.Sleep(4 * time.Second)
	if err := srv.Resume(); err != nil {
		t.Fatal(err)
	}
	e.flush()
	got := e.only()
	if got.RecordID != ev.Record.ID {
		t.Fatalf("entry %+v, want one for record %s", got, ev.Record.ID)
	}
	if got.Exception != "" || got.NotifiedAt == nil {
		t.Fatalf("entry %+v: want notified, no exception", got)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		e.hook.mu.Lock()
		n := e.hook.n
		e.hook.mu.Unlock()
		if n == 1 {
			break
		}
		if n > 1 || time.Now().After(deadline) {
			var st, errText string
			var attempts int
			e.db.QueryRow(`SELECT status, attempts, last_error FROM outbox`).Scan(&st, &attempts, &errText)
			t.Fatalf("webhook called %d times, want once (outbox: %s after %d attempts: %s)", n, st, attempts, errText)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
