package storage_test

import (
	"context"
	"os"
	"sync"
	"testing"

	"github.com/switchboard-sip/switchboard/storage"
	"github.com/switchboard-sip/switchboard/storage/storagetest"
)

func TestMain(m *testing.M) { os.Exit(storagetest.Main(m)) }

// The SQLite-only words of a schema step (AUTOINCREMENT, WITHOUT ROWID,
// 64-bit INTEGER) must mean the same on both drivers: ids are never reused
// and integers hold unix milliseconds.
func TestMigrateSharedSteps(t *testing.T) {
	ctx := context.Background()
	db := storagetest.Open(t, "m")
	steps := []string{
		`CREATE TABLE things (id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, name TEXT NOT NULL);
		CREATE TABLE names (name TEXT NOT NULL PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;`,
	}
	if err := db.Migrate(ctx, "things", steps); err != nil {
		t.Fatal(err)
	}
	// Applied steps never run again, even on a second node starting at once.
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() { errs <- db.Migrate(ctx, "things", steps) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	const ms = int64(1_800_000_000_000) // needs 64 bits
	var first, second int64
	if err := db.QueryRowContext(ctx, db.Rebind(`INSERT INTO things(at, name) VALUES(?, ?) RETURNING id`), ms, "a").Scan(&first); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, db.Rebind(`DELETE FROM things WHERE id = ?`), first); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRowContext(ctx, db.Rebind(`INSERT INTO things(at, name) VALUES(?, ?) RETURNING id`), ms, "b").Scan(&second); err != nil {
		t.Fatal(err)
	}
	if second <= first {
		t.Errorf("id %d reused after delete (first %d)", second, first)
	}
	var at int64
	if err := db.QueryRowContext(ctx, db.Rebind(`SELECT at FROM things WHERE id = ?`), second).Scan(&at); err != nil || at != ms {
		t.Errorf("at = %d, %v; want %d", at, err, ms)
	}
	if err := db.Migrate(ctx, "things", steps[:0]); err == nil {
		t.Error("a database newer than the build was accepted")
	}
}

func TestHasTable(t *testing.T) {
	ctx := context.Background()
	db := storagetest.Open(t, "h")
	for name, want := range map[string]bool{"schema_migrations": true, "calls": false} {
		got, err := db.HasTable(ctx, name)
		if err != nil || got != want {
			t.Errorf("HasTable(%s) = %v, %v; want %v", name, got, err, want)
		}
	}
}

func TestOpenRefusesUnknownDriver(t *testing.T) {
	if _, err := storage.Open("mysql", "x"); err == nil {
		t.Fatal("mysql accepted")
	}
}
