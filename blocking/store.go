package blocking

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard-sip/switchboard/storage"
)

// DB is the database the store keeps its entries in; *storage.DB
// implements it. The interface names what the block list needs of it.
type DB interface {
	Migrate(ctx context.Context, component string, steps []string) error
	BeginTx(ctx context.Context, opts *sql.TxOptions) (*sql.Tx, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	// Rebind turns ? placeholders into the driver's own.
	Rebind(query string) string
	// NotifyTx tells the other nodes of a change when tx commits, and Bus
	// hears theirs (SPEC §11).
	NotifyTx(ctx context.Context, tx storage.Execer, topic string) error
	Bus() *storage.Bus
}

// busTopic is the topic of block list changes on the storage bus.
const busTopic = "blocks"

// Errors the store returns for requests it refuses; match them with
// errors.Is.
var (
	ErrNotFound = errors.New("blocking: no such entry")
	// ErrConfigEntry refuses to remove an entry that comes from the config
	// file: it would be back at the next reload, so it must be removed there.
	ErrConfigEntry = errors.New("blocking: entry is set in the config file")
)

// migrations is the blocks component's schema. blocks_version is a change
// counter bumped in the same transaction as every change, so that every
// process sharing the database (the agent, the CLI, other nodes) notices a
// change with one cheap read instead of reloading the table.
var migrations = []string{
	`CREATE TABLE blocks (
		id         INTEGER PRIMARY KEY AUTOINCREMENT,
		number     TEXT NOT NULL,
		action     TEXT NOT NULL,
		direction  TEXT NOT NULL,
		reason     TEXT NOT NULL DEFAULT '',
		source     TEXT NOT NULL,
		created_at TEXT NOT NULL,
		UNIQUE (number, action, direction)
	);
	CREATE TABLE blocks_version (
		id      INTEGER PRIMARY KEY CHECK (id = 1),
		version INTEGER NOT NULL
	);
	INSERT INTO blocks_version (id, version) VALUES (1, 0);`,
}

// Store keeps the block list: the stored entries, the config entries, and
// the index over both that the call path reads.
type Store struct {
	db DB

	// mu serialises reloads so that a poll and a local change cannot
	// install their snapshots out of order. Lookups never take it.
	mu   sync.Mutex
	snap atomic.Pointer[snapshot]
}

// snapshot is one consistent state of the block list.
type snapshot struct {
	index   *Index
	version int64   // blocks_version.version the rows were read at
	config  []Entry // from the config file, in file order
	rows    []Entry // stored entries, by id
}

// Open migrates the blocks tables and loads the stored entries together
// with the config entries (see FromConfig).
func Open(ctx context.Context, db DB, config []Entry) (*Store, error) {
	if err := db.Migrate(ctx, "blocks", migrations); err != nil {
		return nil, fmt.Errorf("blocking: %w", err)
	}
	s := &Store{db: db}
	s.snap.Store(&snapshot{index: NewIndex(config), version: -1, config: config})
	if err := s.Refresh(ctx); err != nil {
		return nil, err
	}
	// Another node's change is in force for this node's next call.
	db.Bus().Subscribe(busTopic, func([]byte) {
		rctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.Refresh(rctx) // on failure the next notice or poll tries again
	})
	return s, nil
}

// Lookup decides for number in direction dir from memory; see Index.Lookup.
// The returned entry is shared and must not be modified.
func (s *Store) Lookup(number string, dir Direction) Match {
	return s.snap.Load().index.Lookup(number, dir)
}

// Len is the number of entries in force, config and stored.
func (s *Store) Len() int { return s.snap.Load().index.Len() }

// Config returns the entries from the config file.
func (s *Store) Config() []Entry {
	return append([]Entry(nil), s.snap.Load().config...)
}

// SetConfig replaces the config entries, as on a config reload; the stored
// entries stay. It takes effect for the next lookup.
func (s *Store) SetConfig(config []Entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.snap.Load()
	s.install(&snapshot{version: old.version, config: config, rows: old.rows})
}

func (s *Store) install(n *snapshot) {
	all := make([]Entry, 0, len(n.config)+len(n.rows))
	all = append(all, n.config...)
	all = append(all, n.rows...)
	n.index = NewIndex(all)
	s.snap.Store(n)
}

// Refresh reloads the stored entries when another process (or node) has
// changed them since the last load. It costs one single-row read when
// nothing changed.
func (s *Store) Refresh(ctx context.Context) error {
	var v int64
	if err := s.db.QueryRowContext(ctx, `SELECT version FROM blocks_version WHERE id = 1`).Scan(&v); err != nil {
		return fmt.Errorf("blocking: read change counter: %w", err)
	}
	if v == s.snap.Load().version {
		return nil
	}
	return s.reload(ctx)
}

// reload reads the counter and all rows in one transaction, so the version
// installed is the one the rows belong to.
func (s *Store) reload(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("blocking: load: %w", err)
	}
	defer tx.Rollback()
	var v int64
	if err := tx.QueryRowContext(ctx, `SELECT version FROM blocks_version WHERE id = 1`).Scan(&v); err != nil {
		return fmt.Errorf("blocking: load: %w", err)
	}
	rows, err := queryEntries(ctx, tx, `SELECT id, number, action, direction, reason, source, created_at FROM blocks ORDER BY id`)
	if err != nil {
		return fmt.Errorf("blocking: load: %w", err)
	}
	s.install(&snapshot{version: v, config: s.snap.Load().config, rows: rows})
	return nil
}

// Watch polls for changes made by other processes every interval until ctx
// ends, so that `switchboard block add` takes effect on the next call of a
// running agent. Errors go to onErr (may be nil) and the old list stays in
// force: blocking fails open to the last known list, never to an empty one.
func (s *Store) Watch(ctx context.Context, every time.Duration, onErr func(error)) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.Refresh(ctx); err != nil && onErr != nil && ctx.Err() == nil {
				onErr(err)
			}
		}
	}
}

// Add stores an entry (source cli or api; empty means api) and returns it
// with its id. Adding an entry for the same number, action and direction
// again updates its reason instead of making a duplicate. The index is
// updated before Add returns.
func (s *Store) Add(ctx context.Context, e Entry) (Entry, error) {
	if err := e.Normalize(); err != nil {
		return Entry{}, fmt.Errorf("blocking: add: %w", err)
	}
	switch e.Source {
	case "":
		e.Source = SourceAPI
	case SourceCLI, SourceAPI:
	default:
		return Entry{}, fmt.Errorf("blocking: add: source %q cannot be stored", e.Source)
	}
	e.CreatedAt = time.Now().UTC().Truncate(time.Millisecond)
	err := s.change(ctx, func(tx *sql.Tx) error {
		var created string
		err := tx.QueryRowContext(ctx, s.db.Rebind(`INSERT INTO blocks (number, action, direction, reason, source, created_at)
			VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (number, action, direction) DO UPDATE SET reason = excluded.reason
			RETURNING id, created_at`),
			e.Number, e.Action, e.Direction, e.Reason, e.Source, e.CreatedAt.Format(time.RFC3339Nano)).Scan(&e.ID, &created)
		if err != nil {
			return err
		}
		e.CreatedAt, err = time.Parse(time.RFC3339Nano, created)
		return err
	})
	if err != nil {
		return Entry{}, fmt.Errorf("blocking: add %s: %w", e.Number, err)
	}
	return e, nil
}

// Remove deletes the stored entry with id.
func (s *Store) Remove(ctx context.Context, id int64) (Entry, error) {
	var removed []Entry
	err := s.change(ctx, func(tx *sql.Tx) error {
		var err error
		removed, err = queryEntries(ctx, tx, s.db.Rebind(`DELETE FROM blocks WHERE id = ?
			RETURNING id, number, action, direction, reason, source, created_at`), id)
		if err == nil && len(removed) == 0 {
			err = ErrNotFound
		}
		return err
	})
	if err != nil {
		return Entry{}, fmt.Errorf("blocking: remove %d: %w", id, err)
	}
	return removed[0], nil
}

// RemoveNumber deletes every stored entry for number (a normalised number
// or prefix) and returns them. When only the config file has the number it
// returns ErrConfigEntry, when nothing has it ErrNotFound.
func (s *Store) RemoveNumber(ctx context.Context, number string) ([]Entry, error) {
	var removed []Entry
	err := s.change(ctx, func(tx *sql.Tx) error {
		var err error
		removed, err = queryEntries(ctx, tx, s.db.Rebind(`DELETE FROM blocks WHERE number = ?
			RETURNING id, number, action, direction, reason, source, created_at`), number)
		if err != nil || len(removed) > 0 {
			return err
		}
		for _, c := range s.snap.Load().config {
			if c.Number == number {
				return ErrConfigEntry
			}
		}
		return ErrNotFound
	})
	if err != nil {
		return nil, fmt.Errorf("blocking: remove %s: %w", number, err)
	}
	return removed, nil
}

// List returns stored entries with id > after, by id, at most limit (all
// when limit <= 0), and the id to pass as after for the next page (0 when
// there is none). Config entries are not included; see Config.
func (s *Store) List(ctx context.Context, after int64, limit int) ([]Entry, int64, error) {
	q := `SELECT id, number, action, direction, reason, source, created_at FROM blocks WHERE id > ? ORDER BY id`
	args := []any{after}
	if limit > 0 {
		// One more than asked tells whether there is a next page.
		q += ` LIMIT ?`
		args = append(args, limit+1)
	}
	es, err := queryEntries(ctx, s.db, s.db.Rebind(q), args...)
	if err != nil {
		return nil, 0, fmt.Errorf("blocking: list: %w", err)
	}
	var next int64
	if limit > 0 && len(es) > limit {
		es = es[:limit]
		next = es[limit-1].ID
	}
	return es, next, nil
}

// change runs f in a write transaction that also bumps the change counter,
// then reloads the index so the change is in force when the caller returns.
func (s *Store) change(ctx context.Context, f func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := f(tx); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE blocks_version SET version = version + 1 WHERE id = 1`); err != nil {
		return err
	}
	if err := s.db.NotifyTx(ctx, tx, busTopic); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	return s.reload(ctx)
}

type querier interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
}

func queryEntries(ctx context.Context, db querier, q string, args ...any) ([]Entry, error) {
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Entry
	for rows.Next() {
		var e Entry
		var created string
		if err := rows.Scan(&e.ID, &e.Number, &e.Action, &e.Direction, &e.Reason, &e.Source, &created); err != nil {
			return nil, err
		}
		// A row with an unreadable time is still a valid entry; the time
		// is only informative.
		e.CreatedAt, _ = time.Parse(time.RFC3339Nano, created)
		out = append(out, e)
	}
	return out, rows.Err()
}
