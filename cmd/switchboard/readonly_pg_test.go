package main

import (
	"bytes"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// pgVersions digests every row of every table with its xmin, the id of the
// transaction that wrote it: a write that leaves a row as it was (an
// upsert of the same schema version) still shows.
func pgVersions(t *testing.T, dsn string) string {
	t.Helper()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var b strings.Builder
	for _, name := range strings.Fields(pgTables(t, db)) {
		var digest sql.NullString
		q := fmt.Sprintf(`SELECT md5(string_agg(xmin::text || t::text, '|' ORDER BY t::text)) FROM %q t`, name)
		if err := db.QueryRow(q).Scan(&digest); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s:%s ", name, digest.String)
	}
	return b.String()
}

func pgTables(t *testing.T, db *sql.DB) string {
	t.Helper()
	var names sql.NullString
	err := db.QueryRow(`SELECT string_agg(tablename, ' ' ORDER BY tablename) FROM pg_tables WHERE schemaname = 'public'`).Scan(&names)
	if err != nil {
		t.Fatal(err)
	}
	return names.String
}

// The reading commands open PostgreSQL through the agent's front door with
// a read-only session: a used database stays unchanged to the byte, while
// a writing command (the positive control) changes it.
func TestReadingCommandsPostgresWriteNothing(t *testing.T) {
	dsn := pgDatabase(t)
	path := writePGExplainConfig(t, dsn)
	csv := filepath.Join(t.TempDir(), "people.csv")
	if err := os.WriteFile(csv, []byte("name,phone\nJane Doe,+4930111222\nMax Muster,+4930333444\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		if code := dispatch(args, &out, &errb); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errb.String())
		}
		return out.String()
	}
	run("contacts", "import", "-c", path, csv)
	before := pgVersions(t, dsn)
	for _, args := range [][]string{
		{"calls", "-c", path},
		{"calls", "-c", path, "--missed", "--json"},
		{"contacts", "find", "-c", path, "030 111222"},
		{"contacts", "export", "-c", path, "1"},
		{"trace", "-c", path, "030 111222", "--csv"},
	} {
		run(args...)
		if after := pgVersions(t, dsn); after != before {
			t.Fatalf("%v changed the database:\nbefore %s\nafter  %s", args, before, after)
		}
	}
	if out := run("contacts", "delete", "-c", path, "2"); out == "" {
		t.Fatal("delete printed nothing")
	}
	if after := pgVersions(t, dsn); after == before {
		t.Fatal("delete left the database unchanged: the snapshot cannot see a write")
	}
}
