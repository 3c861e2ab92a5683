package storage

import (
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// ErrNoDatabase is returned by OpenReadOnly when the database does not
// exist: a reading command then works without one rather than create it.
var ErrNoDatabase = errors.New("storage: no database")

// OpenReadOnly opens an existing database for reading only: it creates no
// file and writes nothing, for dry runs (`switchboard explain`) and the
// reading commands. Migrate only checks that a component's schema is
// current; readers that skip it must expect an older or missing schema.
func OpenReadOnly(driver, dsn string) (*DB, error) {
	if driver != SQLite {
		// A server database exists by definition; its sessions are made
		// read-only by the server, and no schema step runs.
		return openPool(driver, dsn, true)
	}
	path, _, _ := strings.Cut(strings.TrimPrefix(dsn, "file:"), "?")
	if path == "" || path == ":memory:" {
		return nil, ErrNoDatabase
	}
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNoDatabase, path)
	}
	// A WAL database is read through its -wal and -shm files, which SQLite
	// creates when they are missing. With no -wal file no writer has the
	// database open, and immutable reading needs neither; with one, the
	// files exist already and are shared with the writer.
	mode := "mode=ro&immutable=1"
	if _, err := os.Stat(path + "-wal"); err == nil {
		mode = "mode=ro"
	}
	db, err := sql.Open("sqlite3", "file:"+path+"?"+mode+"&_busy_timeout=5000")
	if err != nil {
		return nil, fmt.Errorf("storage: open %s read-only: %w", path, err)
	}
	if err := db.Ping(); err != nil {
		db.Close()
		return nil, fmt.Errorf("storage: open %s read-only: %w", path, err)
	}
	return &DB{DB: db, Driver: driver, dsn: dsn, readOnly: true}, nil
}
