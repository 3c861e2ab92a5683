package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-sip/switchboard/agent"
	"github.com/switchboard-sip/switchboard/internal/pgtest"
)

// pgDatabase is a new empty database on the shared test server, or a skip
// (a failure in CI) when PostgreSQL is not installed.
func pgDatabase(t *testing.T) string {
	t.Helper()
	srv, err := pgtest.Shared()
	if err != nil {
		if pgtest.Required() {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dsn, err := srv.NewDatabase(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return dsn
}

func writePGExplainConfig(t *testing.T, dsn string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sb.yaml")
	cfg := strings.Replace(explainConfig, "storage: {dsn: DB}", fmt.Sprintf("storage: {driver: postgres, dsn: %q}", dsn), 1)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// pgSnapshot describes every table of the database with a digest of its
// rows, so that any write (a new table, a row, a changed value) shows.
func pgSnapshot(t *testing.T, dsn string) string {
	t.Helper()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename`)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, name)
	}
	rows.Close()
	var b strings.Builder
	for _, name := range tables {
		var digest sql.NullString
		q := fmt.Sprintf(`SELECT md5(string_agg(t::text, '|' ORDER BY t::text)) FROM %q t`, name)
		if err := db.QueryRow(q).Scan(&digest); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s:%s ", name, digest.String)
	}
	return b.String()
}

func explainOn(t *testing.T, path, from string) agent.Explanation {
	t.Helper()
	var out, errb bytes.Buffer
	if code := dispatch([]string{"explain", "-c", path, "--json", "--from", from, "--to", "0301234560", "--at", "2026-11-23T10:00"}, &out, &errb); code != 0 {
		t.Fatalf("explain: exit %d: %s", code, errb.String())
	}
	var ex agent.Explanation
	if err := json.Unmarshal(out.Bytes(), &ex); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	return ex
}

// On PostgreSQL, explain reads through a read-only session: an empty
// database stays without a table, a used one unchanged to the byte.
func TestExplainPostgresWritesNothing(t *testing.T) {
	t.Run("empty database", func(t *testing.T) {
		dsn := pgDatabase(t)
		path := writePGExplainConfig(t, dsn)
		ex := explainOn(t, path, "030 111222")
		if ex.Decision.Action != "forward" {
			t.Errorf("decision %+v, want forward", ex.Decision)
		}
		if snap := pgSnapshot(t, dsn); snap != "" {
			t.Errorf("explain created tables in an empty database: %s", snap)
		}
	})
	t.Run("used database", func(t *testing.T) {
		dsn := pgDatabase(t)
		path := writePGExplainConfig(t, dsn)
		csv := filepath.Join(t.TempDir(), "people.csv")
		if err := os.WriteFile(csv, []byte("name,phone\nJane Doe,+4930111222\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		var out, errb bytes.Buffer
		if code := dispatch([]string{"contacts", "import", "-c", path, csv}, &out, &errb); code != 0 {
			t.Fatalf("import: exit %d: %s", code, errb.String())
		}
		before := pgSnapshot(t, dsn)
		if !strings.Contains(before, "schema_migrations:") {
			t.Fatalf("the import made no schema (positive control): %s", before)
		}
		known := explainOn(t, path, "030 111222")
		if known.Contact == nil || known.Contact.Found == nil || known.Contact.Found.Name != "Jane Doe" {
			t.Errorf("known caller: contact %+v, want Jane Doe found", known.Contact)
		}
		if unknown := explainOn(t, path, "030 555666"); unknown.Contact == nil || !unknown.Contact.Create {
			t.Errorf("unknown caller: contact %+v, want one to be created", unknown.Contact)
		}
		if after := pgSnapshot(t, dsn); after != before {
			t.Errorf("explain changed the database:\nbefore %s\nafter  %s", before, after)
		}
	})
}
