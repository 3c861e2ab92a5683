// Package storage opens the database that call records, contacts, blocks and
// the notification outbox share, and runs each component's schema migrations.
package storage

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib" // PostgreSQL for several nodes (SPEC §11)
	_ "github.com/mattn/go-sqlite3"  // the embedded default driver
)

// DB is the shared database handle.
type DB struct {
	*sql.DB
	// Driver is SQLite or Postgres.
	Driver string
	dsn    string
	// readOnly is set by OpenReadOnly: Migrate then only checks that the
	// schema is current and writes nothing.
	readOnly bool

	busOnce sync.Once
	bus     *Bus
}

// Close stops the bus, if it ran, and closes the database.
func (db *DB) Close() error {
	db.busOnce.Do(func() {}) // orders the read of db.bus after its making
	if db.bus != nil {
		db.bus.close()
	}
	return db.DB.Close()
}

// Open opens (creating if needed) the database. For SQLite it turns on WAL
// and a busy timeout so that readers never block the single writer; for
// PostgreSQL (SPEC §11) it goes through pgx's database/sql driver, so that
// every store's code serves both.
func Open(driver, dsn string) (*DB, error) {
	db, err := openPool(driver, dsn, false)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), openTimeout)
	defer cancel()
	if err := db.inMigrationLock(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			component TEXT NOT NULL PRIMARY KEY, version INTEGER NOT NULL)`)
		return err
	}); err != nil {
		db.DB.Close()
		return nil, fmt.Errorf("storage: open %s: %w", redact(driver, dsn), err)
	}
	return db, nil
}

// openPool opens and pings the database without touching its schema. A
// read-only PostgreSQL pool starts every session with
// default_transaction_read_only, so the server itself refuses any write.
func openPool(driver, dsn string, readOnly bool) (*DB, error) {
	var sdb *sql.DB
	switch driver {
	case SQLite:
		var err error
		if sdb, err = sql.Open("sqlite3", sqliteDSN(dsn)); err != nil {
			return nil, fmt.Errorf("storage: open %s: %w", redact(driver, dsn), err)
		}
	case Postgres:
		cfg, err := pgx.ParseConfig(dsn)
		if err != nil {
			return nil, fmt.Errorf("storage: open %s: %w", redact(driver, dsn), err)
		}
		if cfg.ConnectTimeout == 0 {
			// A database host that vanished must not hold a writer (or
			// /healthz) for the kernel's TCP timeout.
			cfg.ConnectTimeout = pgConnectTimeout
		}
		if readOnly {
			cfg.RuntimeParams["default_transaction_read_only"] = "on"
		}
		sdb = stdlib.OpenDB(*cfg)
	default:
		return nil, fmt.Errorf("storage: driver %q is not supported (sqlite or postgres)", driver)
	}
	db := &DB{DB: sdb, Driver: driver, dsn: dsn, readOnly: readOnly}
	if driver == Postgres {
		sdb.SetMaxOpenConns(pgMaxConns)
		sdb.SetMaxIdleConns(pgMaxConns)
		sdb.SetConnMaxIdleTime(time.Minute)
	}
	ctx, cancel := context.WithTimeout(context.Background(), openTimeout)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		sdb.Close()
		return nil, fmt.Errorf("storage: open %s: %w", redact(driver, dsn), err)
	}
	return db, nil
}

// PostgreSQL connection limits of one node: enough for the writers, the API
// and the notifier at once, few enough that ten nodes fit in the server's
// default max_connections.
const (
	pgMaxConns       = 8
	pgConnectTimeout = 5 * time.Second
	openTimeout      = 15 * time.Second
)

// redact hides a PostgreSQL password in messages.
func redact(driver, dsn string) string {
	if driver != Postgres {
		return dsn
	}
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		return u.Redacted()
	}
	if strings.Contains(dsn, "password") {
		return "(dsn with password)"
	}
	return dsn
}

// inMigrationLock runs fn in a transaction that, on PostgreSQL, holds an
// advisory lock: nodes starting at once would otherwise race to create the
// same tables. SQLite's immediate transactions already serialise them.
func (db *DB) inMigrationLock(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if db.Driver == Postgres {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(7468737)`); err != nil {
			return err
		}
	}
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
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
// takes the schema from version i to i+1, written once for both drivers (see
// schema); applied steps are never run again, so steps may only ever be
// appended.
func (db *DB) Migrate(ctx context.Context, component string, steps []string) error {
	if db.readOnly {
		return db.checkSchema(ctx, component, len(steps))
	}
	err := db.inMigrationLock(ctx, func(tx *sql.Tx) error {
		var have int
		err := tx.QueryRowContext(ctx, db.Rebind(`SELECT version FROM schema_migrations WHERE component = ?`), component).Scan(&have)
		if err != nil && err != sql.ErrNoRows {
			return err
		}
		if have > len(steps) {
			return fmt.Errorf("database is at version %d, this build knows %d", have, len(steps))
		}
		for i := have; i < len(steps); i++ {
			if _, err := tx.ExecContext(ctx, db.schema(steps[i])); err != nil {
				return fmt.Errorf("to version %d: %w", i+1, err)
			}
		}
		_, err = tx.ExecContext(ctx, db.Rebind(`INSERT INTO schema_migrations(component, version) VALUES(?, ?)
			ON CONFLICT(component) DO UPDATE SET version = excluded.version`), component, len(steps))
		return err
	})
	if err != nil {
		return fmt.Errorf("storage: migrate %s: %w", component, err)
	}
	return nil
}

// checkSchema is Migrate on a read-only database: a reading command works
// on a current schema and changes nothing, so an older one is an error
// that says how to upgrade it. A component that never ran (version 0) has
// no tables and no rows: its reader finds nothing to read.
func (db *DB) checkSchema(ctx context.Context, component string, want int) error {
	if ok, err := db.HasTable(ctx, "schema_migrations"); err != nil || !ok {
		return err // a database nothing ever ran on: every component at 0
	}
	var have int
	err := db.QueryRowContext(ctx, db.Rebind(`SELECT version FROM schema_migrations WHERE component = ?`), component).Scan(&have)
	if err != nil && err != sql.ErrNoRows {
		return fmt.Errorf("storage: schema of %s: %w", component, err)
	}
	if have != 0 && have != want {
		return fmt.Errorf("storage: %s tables are at version %d, this build reads version %d (a writing command such as switchboard run brings them up to date)", component, have, want)
	}
	return nil
}
