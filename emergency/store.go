package emergency

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/switchboard-sip/switchboard/storage"
)

// Alert is one emergency call as the front desk is told of it (SPEC §4,
// §8): who called, from where, what was dialled, when, and who
// acknowledged it. ID is the call record's id.
type Alert struct {
	ID        string
	CallID    string
	Extension string // the phone that called (From's user part)
	Name      string // its display name
	Location  string // emergency.locations, else the contact's
	Presented string // the caller identity the call presented, which the emergency services call back
	Dialled   string // the number as dialled
	Node      string
	At        time.Time
	// CallbackUntil ends the window in which a call to Presented goes to
	// Extension (emergency.callback_window).
	CallbackUntil time.Time
	AckedBy       string
	AckedAt       *time.Time
}

// ErrNotFound is returned for an alert id that does not exist.
var ErrNotFound = errors.New("emergency: no such emergency call")

// migrations are the schema steps of the "emergency" component. Append
// only. Times are unix milliseconds in UTC.
var migrations = []string{
	`CREATE TABLE emergency_calls (
		id             TEXT    NOT NULL PRIMARY KEY,
		call_id        TEXT    NOT NULL DEFAULT '',
		extension      TEXT    NOT NULL DEFAULT '',
		name           TEXT    NOT NULL DEFAULT '',
		location       TEXT    NOT NULL DEFAULT '',
		presented      TEXT    NOT NULL DEFAULT '',
		dialled        TEXT    NOT NULL DEFAULT '',
		node           TEXT    NOT NULL DEFAULT '',
		at             INTEGER NOT NULL,
		callback_until INTEGER NOT NULL,
		acked_by       TEXT    NOT NULL DEFAULT '',
		acked_at       INTEGER
	);
	CREATE INDEX emergency_callback ON emergency_calls(callback_until);
	CREATE INDEX emergency_open ON emergency_calls(at) WHERE acked_at IS NULL;`,
}

// busTopic is the notice sent to the other nodes when an emergency call
// was recorded or acknowledged, so that their callback routing and boards
// follow at once (SPEC §11).
const busTopic = "emergency"

const alertColumns = `id, call_id, extension, name, location, presented, dialled, node, at, callback_until, acked_by, acked_at`

// Store keeps the emergency calls in the database, the one table every
// node shares, and the callbacks that are due in memory: the SIP path asks
// Callback on every inbound call and must not wait for the database.
// Changes from other nodes arrive on the storage bus (PostgreSQL
// LISTEN/NOTIFY), plus a periodic reload for SQLite's command line.
type Store struct {
	db  *storage.DB
	now func() time.Time

	mu        sync.RWMutex
	callbacks map[string]Alert // presented number → the newest alert in its window
	changed   chan struct{}
}

// Open migrates the table and loads the callbacks still in their window.
func Open(ctx context.Context, db *storage.DB) (*Store, error) {
	if err := db.Migrate(ctx, "emergency", migrations); err != nil {
		return nil, fmt.Errorf("emergency: %w", err)
	}
	s := &Store{db: db, now: time.Now, callbacks: map[string]Alert{}, changed: make(chan struct{}, 1)}
	if err := s.reload(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Watch keeps the callbacks in step with the other nodes until ctx ends:
// a bus notice reloads at once, and every interval reloads anyway.
func (s *Store) Watch(ctx context.Context, every time.Duration, onErr func(error)) {
	stop := s.db.Bus().Subscribe(busTopic, func([]byte) {
		select {
		case s.changed <- struct{}{}:
		default:
		}
	})
	defer stop()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.changed:
		}
		if err := s.reload(ctx); err != nil && ctx.Err() == nil && onErr != nil {
			onErr(err)
		}
	}
}

func (s *Store) reload(ctx context.Context) error {
	rows, err := s.db.QueryContext(ctx, s.db.Rebind(`SELECT `+alertColumns+` FROM emergency_calls
		WHERE callback_until > ? ORDER BY at`), s.now().UnixMilli())
	if err != nil {
		return fmt.Errorf("emergency: load callbacks: %w", err)
	}
	list, err := scanAlerts(rows)
	if err != nil {
		return err
	}
	m := make(map[string]Alert, len(list))
	for _, a := range list {
		if a.Presented != "" {
			m[a.Presented] = a // ordered by time: the newest wins
		}
	}
	s.mu.Lock()
	s.callbacks = m
	s.mu.Unlock()
	return nil
}

// Remember opens an emergency call's callback window on this node, in
// memory only: it works while the database is away.
func (s *Store) Remember(a Alert) {
	if a.Presented != "" && a.CallbackUntil.After(a.At) {
		s.mu.Lock()
		s.callbacks[a.Presented] = a
		s.mu.Unlock()
	}
}

// Add records an emergency call and opens its callback window, in memory
// at once and in the database for the other nodes.
func (s *Store) Add(ctx context.Context, a Alert) error {
	a.At = a.At.UTC()
	s.Remember(a)
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("emergency: add %s: %w", a.ID, err)
	}
	defer tx.Rollback()
	_, err = tx.ExecContext(ctx, s.db.Rebind(`INSERT INTO emergency_calls (`+alertColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '', NULL) ON CONFLICT (id) DO NOTHING`),
		a.ID, a.CallID, a.Extension, a.Name, a.Location, a.Presented, a.Dialled, a.Node,
		a.At.UnixMilli(), a.CallbackUntil.UnixMilli())
	if err != nil {
		return fmt.Errorf("emergency: add %s: %w", a.ID, err)
	}
	if err := s.db.NotifyTx(ctx, tx, busTopic); err != nil {
		return fmt.Errorf("emergency: add %s: %w", a.ID, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("emergency: add %s: %w", a.ID, err)
	}
	return nil
}

// Callback is the emergency call whose callback window covers a call to
// number at now; false when there is none. It reads memory only.
func (s *Store) Callback(number string, now time.Time) (Alert, bool) {
	if number == "" {
		return Alert{}, false
	}
	s.mu.RLock()
	a, ok := s.callbacks[number]
	s.mu.RUnlock()
	if !ok || !now.Before(a.CallbackUntil) {
		return Alert{}, false
	}
	return a, true
}

// Waiting reports whether any callback window may still be open: the SIP
// path asks it first, so that inbound calls pay for reading their number
// only while an emergency call's window is open somewhere.
func (s *Store) Waiting() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.callbacks) > 0
}

// Open lists the emergency calls nobody has acknowledged yet, newest
// first: what the board shows again after a reload.
func (s *Store) Open(ctx context.Context) ([]Alert, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+alertColumns+` FROM emergency_calls
		WHERE acked_at IS NULL ORDER BY at DESC LIMIT 100`)
	if err != nil {
		return nil, fmt.Errorf("emergency: open alerts: %w", err)
	}
	return scanAlerts(rows)
}

// Get is one alert.
func (s *Store) Get(ctx context.Context, id string) (Alert, error) {
	rows, err := s.db.QueryContext(ctx, s.db.Rebind(`SELECT `+alertColumns+` FROM emergency_calls WHERE id = ?`), id)
	if err != nil {
		return Alert{}, fmt.Errorf("emergency: get %s: %w", id, err)
	}
	list, err := scanAlerts(rows)
	if err != nil {
		return Alert{}, err
	}
	if len(list) == 0 {
		return Alert{}, ErrNotFound
	}
	return list[0], nil
}

// Acknowledge records who acknowledged the alert and when. The first
// acknowledgement stays: a second one changes nothing and returns the
// alert as it is.
func (s *Store) Acknowledge(ctx context.Context, id, by string, at time.Time) (Alert, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return Alert{}, fmt.Errorf("emergency: acknowledge %s: %w", id, err)
	}
	defer tx.Rollback()
	_, err = tx.ExecContext(ctx, s.db.Rebind(`UPDATE emergency_calls SET acked_by = ?, acked_at = ?
		WHERE id = ? AND acked_at IS NULL`), by, at.UTC().UnixMilli(), id)
	if err != nil {
		return Alert{}, fmt.Errorf("emergency: acknowledge %s: %w", id, err)
	}
	if err := s.db.NotifyTx(ctx, tx, busTopic); err != nil {
		return Alert{}, fmt.Errorf("emergency: acknowledge %s: %w", id, err)
	}
	if err := tx.Commit(); err != nil {
		return Alert{}, fmt.Errorf("emergency: acknowledge %s: %w", id, err)
	}
	return s.Get(ctx, id)
}

func scanAlerts(rows *sql.Rows) ([]Alert, error) {
	defer rows.Close()
	var out []Alert
	for rows.Next() {
		var a Alert
		var at, until int64
		var acked sql.NullInt64
		if err := rows.Scan(&a.ID, &a.CallID, &a.Extension, &a.Name, &a.Location, &a.Presented, &a.Dialled,
			&a.Node, &at, &until, &a.AckedBy, &acked); err != nil {
			return nil, fmt.Errorf("emergency: read alerts: %w", err)
		}
		a.At, a.CallbackUntil = time.UnixMilli(at).UTC(), time.UnixMilli(until).UTC()
		if acked.Valid {
			t := time.UnixMilli(acked.Int64).UTC()
			a.AckedAt = &t
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("emergency: read alerts: %w", err)
	}
	return out, nil
}
