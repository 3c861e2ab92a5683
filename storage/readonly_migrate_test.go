package storage

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// On a read-only database Migrate only checks the schema: current and
// never-run components pass, an older one is an error naming the upgrade,
// and nothing is written (the component that was behind stays behind).
func TestMigrateReadOnlyChecksOnly(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "sb.db")
	db, err := Open(SQLite, path)
	if err != nil {
		t.Fatal(err)
	}
	steps := []string{`CREATE TABLE a (x INTEGER)`, `CREATE TABLE b (y INTEGER)`}
	if err := db.Migrate(ctx, "current", steps); err != nil {
		t.Fatal(err)
	}
	if err := db.Migrate(ctx, "older", []string{`CREATE TABLE o (x INTEGER)`}); err != nil {
		t.Fatal(err)
	}
	db.Close()

	ro, err := OpenReadOnly(SQLite, path)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if err := ro.Migrate(ctx, "current", steps); err != nil {
		t.Errorf("current schema: %v", err)
	}
	if err := ro.Migrate(ctx, "never", steps); err != nil {
		t.Errorf("component that never ran: %v", err)
	}
	for range 2 {
		err := ro.Migrate(ctx, "older", []string{`CREATE TABLE a2 (x INTEGER)`, `CREATE TABLE c (z INTEGER)`})
		if err == nil || !strings.Contains(err.Error(), "version 1, this build reads version 2") {
			t.Errorf("older schema: %v, want an error naming both versions", err)
		}
	}
	if ok, err := ro.HasTable(ctx, "c"); err != nil || ok {
		t.Errorf("table c exists (%v, %v): a read-only Migrate ran a step", ok, err)
	}
}
