package missed

import (
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/switchboard-sip/switchboard/storage"
)

// Errors of the entry store; match them with errors.Is.
var (
	// ErrNotFound is returned for an entry that does not exist.
	ErrNotFound = storage.ErrNotFound
	// ErrProcessed is returned when marking an entry that is already
	// processed.
	ErrProcessed = errors.New("already processed")
)

// migrations are the schema steps of the "missed" component. Append only.
// Times are unix milliseconds in UTC, like the calls table.
var migrations = []string{
	`CREATE TABLE missed_calls (
		id           TEXT    NOT NULL PRIMARY KEY,
		call_id      TEXT    NOT NULL DEFAULT '',
		record_id    TEXT    NOT NULL,
		kind         TEXT    NOT NULL DEFAULT 'missed',
		contact_id   INTEGER,
		caller       TEXT    NOT NULL DEFAULT '',
		caller_name  TEXT    NOT NULL DEFAULT '',
		hotline      TEXT    NOT NULL DEFAULT '',
		status       TEXT    NOT NULL DEFAULT 'open',
		count        INTEGER NOT NULL DEFAULT 1,
		exception    TEXT    NOT NULL DEFAULT '',
		notified_at  INTEGER,
		processed_at INTEGER,
		resolved_by  TEXT    NOT NULL DEFAULT '',
		created_at   INTEGER NOT NULL,
		day          TEXT    NOT NULL DEFAULT ''
	);
	CREATE UNIQUE INDEX missed_calls_record ON missed_calls(record_id);
	CREATE INDEX missed_calls_created ON missed_calls(created_at, id);
	CREATE INDEX missed_calls_status ON missed_calls(status, created_at, id);
	CREATE INDEX missed_calls_caller ON missed_calls(caller, day);
	CREATE INDEX missed_calls_contact ON missed_calls(contact_id, status);`,
}

const entryColumns = `id, call_id, record_id, kind, contact_id, caller, caller_name, hotline,
	status, count, exception, notified_at, processed_at, resolved_by, created_at, day`

// List limits.
const (
	defaultLimit = 50
	maxLimit     = 1000
)

// store is the SQL side of the entries.
type store struct {
	db *storage.DB
	// lookups counts openFor queries: the tests hold the answered calls of
	// callers without open entries to none.
	lookups atomic.Uint64
}

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func (s *store) q(query string) string { return s.db.Rebind(query) }

func (s *store) insert(ctx context.Context, q querier, e Entry) error {
	_, err := q.ExecContext(ctx, s.q(`INSERT INTO missed_calls (`+entryColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		e.ID, e.CallID, e.RecordID, string(e.Kind), nullID(e.ContactID), e.Caller, e.CallerName, e.Hotline,
		string(e.Status), e.Count, string(e.Exception), nullMillis(e.NotifiedAt), nullMillis(e.ProcessedAt),
		e.ResolvedBy, e.CreatedAt.UnixMilli(), e.Day)
	if err != nil {
		return fmt.Errorf("missed: insert entry for record %s: %w", e.RecordID, err)
	}
	return nil
}

func (s *store) get(ctx context.Context, q querier, id string) (Entry, error) {
	rows, err := q.QueryContext(ctx, s.q(`SELECT `+entryColumns+` FROM missed_calls WHERE id = ?`), id)
	if err != nil {
		return Entry{}, fmt.Errorf("missed: get %q: %w", id, err)
	}
	list, err := scanEntries(rows)
	if err != nil {
		return Entry{}, fmt.Errorf("missed: get %q: %w", id, err)
	}
	if len(list) == 0 {
		return Entry{}, fmt.Errorf("missed: get %q: %w", id, ErrNotFound)
	}
	return list[0], nil
}

// byRecord is the entry of a call record.
func (s *store) byRecord(ctx context.Context, q querier, recordID string) (Entry, error) {
	rows, err := q.QueryContext(ctx, s.q(`SELECT `+entryColumns+` FROM missed_calls WHERE record_id = ?`), recordID)
	if err != nil {
		return Entry{}, fmt.Errorf("missed: entry of record %q: %w", recordID, err)
	}
	list, err := scanEntries(rows)
	if err != nil {
		return Entry{}, fmt.Errorf("missed: entry of record %q: %w", recordID, err)
	}
	if len(list) == 0 {
		return Entry{}, fmt.Errorf("missed: entry of record %q: %w", recordID, ErrNotFound)
	}
	return list[0], nil
}

// openSameDay is the first open, notified entry of a caller on a day, if
// any. Only a notified entry makes a later call a repeat: when the first
// call was excepted (too short a ring, say), the next one is news.
func (s *store) openSameDay(ctx context.Context, q querier, caller, day string) (*Entry, error) {
	rows, err := q.QueryContext(ctx, s.q(`SELECT `+entryColumns+` FROM missed_calls
		WHERE caller = ? AND day = ? AND status = 'open' AND notified_at IS NOT NULL ORDER BY created_at, id LIMIT 1`), caller, day)
	if err != nil {
		return nil, fmt.Errorf("missed: open entries of %s on %s: %w", caller, day, err)
	}
	list, err := scanEntries(rows)
	if err != nil || len(list) == 0 {
		return nil, err
	}
	return &list[0], nil
}

// lastNotified is when a caller was last notified about; zero when never.
func (s *store) lastNotified(ctx context.Context, q querier, caller string) (time.Time, error) {
	rows, err := q.QueryContext(ctx, s.q(`SELECT MAX(notified_at) FROM missed_calls WHERE caller = ?`), caller)
	if err != nil {
		return time.Time{}, fmt.Errorf("missed: last notification of %s: %w", caller, err)
	}
	defer rows.Close()
	var ms sql.NullInt64
	if rows.Next() {
		if err := rows.Scan(&ms); err != nil {
			return time.Time{}, fmt.Errorf("missed: last notification of %s: %w", caller, err)
		}
	}
	if err := rows.Err(); err != nil {
		return time.Time{}, fmt.Errorf("missed: last notification of %s: %w", caller, err)
	}
	if !ms.Valid {
		return time.Time{}, nil
	}
	return time.UnixMilli(ms.Int64).UTC(), nil
}

// countRepeat adds one call to an entry; when notify is set the entry,
// which had an exception so far, is now notified.
func (s *store) countRepeat(ctx context.Context, q querier, id string, notifiedAt *time.Time) error {
	var err error
	if notifiedAt != nil {
		_, err = q.ExecContext(ctx, s.q(`UPDATE missed_calls SET count = count + 1, exception = '', notified_at = ? WHERE id = ?`),
			notifiedAt.UnixMilli(), id)
	} else {
		_, err = q.ExecContext(ctx, s.q(`UPDATE missed_calls SET count = count + 1 WHERE id = ?`), id)
	}
	if err != nil {
		return fmt.Errorf("missed: count repeat on %s: %w", id, err)
	}
	return nil
}

// openFor lists the open entries of a contact or a number, created before
// t (any time when t is zero).
func (s *store) openFor(ctx context.Context, q querier, contactID int64, number string, t time.Time) ([]Entry, error) {
	var where []string
	var args []any
	if contactID != 0 {
		where = append(where, "contact_id = ?")
		args = append(args, contactID)
	}
	if number != "" {
		where = append(where, "caller = ?")
		args = append(args, number)
	}
	if len(where) == 0 {
		return nil, nil
	}
	bound := ""
	if !t.IsZero() {
		bound = ` AND created_at <= ?`
		args = append(args, t.UnixMilli())
	}
	s.lookups.Add(1)
	rows, err := q.QueryContext(ctx, s.q(`SELECT `+entryColumns+` FROM missed_calls
		WHERE status = 'open' AND (`+strings.Join(where, " OR ")+`)`+bound+` ORDER BY created_at, id`), args...)
	if err != nil {
		return nil, fmt.Errorf("missed: open entries of contact %d / %s: %w", contactID, number, err)
	}
	return scanEntries(rows)
}

// markProcessed sets an open entry processed; ok is false when it was not
// open (any more).
func (s *store) markProcessed(ctx context.Context, q querier, id, by string, t time.Time) (bool, error) {
	res, err := q.ExecContext(ctx, s.q(`UPDATE missed_calls SET status = 'processed', processed_at = ?, resolved_by = ?
		WHERE id = ? AND status = 'open'`), t.UnixMilli(), by, id)
	if err != nil {
		return false, fmt.Errorf("missed: mark %s processed: %w", id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("missed: mark %s processed: %w", id, err)
	}
	return n == 1, nil
}

// list returns entries newest first, optionally of one status.
func (s *store) list(ctx context.Context, status Status, limit int, cursor string) ([]Entry, string, error) {
	if limit <= 0 {
		limit = defaultLimit
	}
	limit = min(limit, maxLimit)
	var where []string
	var args []any
	if status != "" {
		where = append(where, "status = ?")
		args = append(args, string(status))
	}
	if cursor != "" {
		ms, id, err := decodeCursor(cursor)
		if err != nil {
			return nil, "", fmt.Errorf("missed: list: %w", err)
		}
		where = append(where, "(created_at < ? OR (created_at = ? AND id < ?))")
		args = append(args, ms, ms, id)
	}
	query := `SELECT ` + entryColumns + ` FROM missed_calls`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, " AND ")
	}
	query += ` ORDER BY created_at DESC, id DESC LIMIT ` + strconv.Itoa(limit+1)
	rows, err := s.db.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, "", fmt.Errorf("missed: list: %w", err)
	}
	items, err := scanEntries(rows)
	if err != nil {
		return nil, "", fmt.Errorf("missed: list: %w", err)
	}
	next := ""
	if len(items) > limit {
		items = items[:limit]
		last := items[len(items)-1]
		next = encodeCursor(last.CreatedAt.UnixMilli(), last.ID)
	}
	if items == nil {
		items = []Entry{}
	}
	return items, next, nil
}

func scanEntries(rows *sql.Rows) ([]Entry, error) {
	defer rows.Close()
	var out []Entry
	for rows.Next() {
		var (
			e                   Entry
			kind, status, exc   string
			contact             sql.NullInt64
			notified, processed sql.NullInt64
			created             int64
		)
		if err := rows.Scan(&e.ID, &e.CallID, &e.RecordID, &kind, &contact, &e.Caller, &e.CallerName, &e.Hotline,
			&status, &e.Count, &exc, &notified, &processed, &e.ResolvedBy, &created, &e.Day); err != nil {
			return nil, err
		}
		e.Kind, e.Status, e.Exception = Kind(kind), Status(status), Exception(exc)
		e.ContactID = contact.Int64
		e.NotifiedAt, e.ProcessedAt = timePtr(notified), timePtr(processed)
		e.CreatedAt = time.UnixMilli(created).UTC()
		out = append(out, e)
	}
	return out, rows.Err()
}

func nullID(id int64) any {
	if id == 0 {
		return nil
	}
	return id
}

func nullMillis(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UnixMilli()
}

func timePtr(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := time.UnixMilli(v.Int64).UTC()
	return &t
}

func encodeCursor(ms int64, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(ms, 10) + ":" + id))
}

func decodeCursor(s string) (int64, string, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return 0, "", storage.ErrInvalidCursor
	}
	ms, id, ok := strings.Cut(string(b), ":")
	if !ok || id == "" {
		return 0, "", storage.ErrInvalidCursor
	}
	n, err := strconv.ParseInt(ms, 10, 64)
	if err != nil {
		return 0, "", storage.ErrInvalidCursor
	}
	return n, id, nil
}

// Lookup reads entries by id straight from the database, for the command
// line, which runs no Service. Unknown ids are left out; a database that
// never had missed calls gives none.
func Lookup(ctx context.Context, db *storage.DB, ids []string) (map[string]Entry, error) {
	out := make(map[string]Entry, len(ids))
	if ok, err := db.HasTable(ctx, "missed_calls"); err != nil || !ok {
		return out, err
	}
	st := &store{db: db}
	for _, id := range ids {
		if id == "" {
			continue
		}
		e, err := st.get(ctx, db, id)
		switch {
		case err == nil:
			out[id] = e
		case errors.Is(err, ErrNotFound):
		default:
			return nil, err
		}
	}
	return out, nil
}
