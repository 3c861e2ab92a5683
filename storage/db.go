// Package storage opens the database that call records, contacts, blocks and
// the notification outbox share, and runs each component's schema migrations.
package storage

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	_ "github.com/mattn/go-sqlite3" // the embedded default driver
)

// DB is the shared database handle.
type DB struct {
	*sql.DB
	Driver string
}

// Open opens (creating if needed) the database. For SQLite it turns on WAL
// and a busy timeout so that readers never block the single writer.
func Open(driver, dsn string) (*DB, error) {
	if driver != "sqlite" {
		return nil, fmt.Errorf("storage: driver %q is not supported by this build", driver)
	}
	db, err := sql.Open("sqlite3", sqliteDSN(dsn))
	if err != nil {
		return nil, fmt.Errorf("storage: open %s: %w", dsn, err)
	}
	if err := db.Ping(); err != nil {
		db.Close()
		return nil, fmt.Errorf("storage: open %s: %w", dsn, err)
	}
	if _, err := db.Exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
		component TEXT NOT NULL PRIMARY KEY, version INTEGER NOT NULL)`); err != nil {
		db.Close()
		return nil, fmt.Errorf("storage: open %s: %w", dsn, err)
	}
	return &DB{DB: db, Driver: driver}, nil
}

func sqliteDSN(dsn string) string {
	path, query, _ := strings.Cut(dsn, "?")
	v, _ := url.ParseQuery(query)
	set := func(k, val string) {
		if v.Get(k) == "" {
			v.Set(k, val)
		}
	}
	set("_journal_mode", "WAL")
	set("_busy_timeout", "5000")
	set("_synchronous", "NORMAL")
	set("_foreign_keys", "1")
	set("_txlock", "immediate")
	return "file:" + path + "?" + v.Encode()
}

// Migrate brings one component's tables up to date. steps[i] is the SQL that
// takes the schema from version i to i+1; applied steps are never run again,
// so steps may only ever be appended.
func (db *DB) Migrate(ctx context.Context, component string, steps []string) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("storage: migrate %s: %w", component, err)
	}
	defer tx.Rollback()
	var have int
	err = tx.QueryRowContext(ctx, `SELECT version FROM schema_migrations WHERE component = ?`, component).Scan(&have)
	if err != nil && err != sql.ErrNoRows {
		return fmt.Errorf("storage: migrate %s: %w", component, err)
	}
	if have > len(steps) {
		return fmt.Errorf("storage: migrate %s: database is at version %d, this build knows %d", component, have, len(steps))
	}
	for i := have; i < len(steps); i++ {
		if _, err := tx.ExecContext(ctx, steps[i]); err != nil {
			return fmt.Errorf("storage: migrate %s to version %d: %w", component, i+1, err)
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations(component, version) VALUES(?, ?)
		ON CONFLICT(component) DO UPDATE SET version = excluded.version`, component, len(steps)); err != nil {
		return fmt.Errorf("storage: migrate %s: %w", component, err)
	}
	return tx.Commit()
}

// Rebind turns the ? placeholders of a query into the driver's own: SQLite
// takes them as written, PostgreSQL wants $1, $2... Queries are written once
// with ? so that both drivers share them.
func (db *DB) Rebind(query string) string {
	if db.Driver != "postgres" {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 8)
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(query[i])
	}
	return b.String()
}
