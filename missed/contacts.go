package missed

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/switchboard-sip/switchboard/storage"
)

// ContactLog is the missed_calls table as the contact store reads it: the
// open entries of a contact (SPEC §8 open_missed) and their deletion with
// the contact (a privacy request).
type ContactLog struct {
	db *storage.DB
}

// NewContactLog migrates the missed_calls table (the CLI may open contacts
// before an agent ever ran) and returns its contact view.
func NewContactLog(ctx context.Context, db *storage.DB) (*ContactLog, error) {
	if err := db.Migrate(ctx, "missed", migrations); err != nil {
		return nil, fmt.Errorf("missed: %w", err)
	}
	return &ContactLog{db: db}, nil
}

// OpenMissed returns how many open entries each of the contacts has.
func (l *ContactLog) OpenMissed(ctx context.Context, ids []int64) (map[int64]int64, error) {
	out := make(map[int64]int64, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	rows, err := l.db.QueryContext(ctx, l.db.Rebind(`SELECT contact_id, COUNT(*) FROM missed_calls
		WHERE status = 'open' AND contact_id IN (`+strings.Repeat("?, ", len(ids)-1)+`?) GROUP BY contact_id`), args...)
	if err != nil {
		return nil, fmt.Errorf("missed: open entries of contacts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, n int64
		if err := rows.Scan(&id, &n); err != nil {
			return nil, fmt.Errorf("missed: open entries of contacts: %w", err)
		}
		out[id] = n
	}
	return out, rows.Err()
}

// DeleteContactMissed deletes a contact's entries inside tx, the
// transaction that deletes the contact. Their outbox rows name the entry,
// not the person, and stay.
func (l *ContactLog) DeleteContactMissed(ctx context.Context, tx *sql.Tx, id int64) error {
	if _, err := tx.ExecContext(ctx, l.db.Rebind(`DELETE FROM missed_calls WHERE contact_id = ?`), id); err != nil {
		return fmt.Errorf("missed: delete entries of contact %d: %w", id, err)
	}
	return nil
}
