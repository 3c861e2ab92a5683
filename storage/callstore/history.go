package callstore

import (
	"context"
	"database/sql"
	"fmt"
	"slices"

	"github.com/switchboard-sip/switchboard/cdr"
)

// CallCounts returns, for each of the contacts that has calls, how many it
// has and when the first and last started (SPEC §8 calls_count,
// first_call_at, last_call_at).
func (s *Store) CallCounts(ctx context.Context, ids []int64) (map[int64]cdr.Span, error) {
	out := make(map[int64]cdr.Span, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	rows, err := s.db.QueryContext(ctx, s.db.Rebind(`SELECT contact_id, COUNT(*), MIN(started_at), MAX(started_at) FROM calls
		WHERE contact_id IN (`+placeholders(len(ids))+`) GROUP BY contact_id`), args...)
	if err != nil {
		return nil, fmt.Errorf("callstore: call history: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, n, first, last int64
		if err := rows.Scan(&id, &n, &first, &last); err != nil {
			return nil, fmt.Errorf("callstore: call history: %w", err)
		}
		out[id] = cdr.Span{Calls: n, First: fromMillis(first), Last: fromMillis(last)}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("callstore: call history: %w", err)
	}
	return out, nil
}

// DeleteContactCalls deletes every call of a contact inside tx, the
// transaction that deletes the contact (a privacy request), and returns
// how many went.
func (s *Store) DeleteContactCalls(ctx context.Context, tx *sql.Tx, id int64) (int64, error) {
	var res sql.Result
	err := s.rollupChange(ctx, tx, `contact_id = ?`, []any{id}, true, func() (err error) {
		res, err = tx.ExecContext(ctx, s.db.Rebind(`DELETE FROM calls WHERE contact_id = ?`), id)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("callstore: delete calls of %d: %w", id, err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

// WithoutCalls returns those of ids that no call and no message links
// to, for the retention job's purge of call-created contacts.
func (s *Store) WithoutCalls(ctx context.Context, ids []int64) ([]int64, error) {
	var out []int64
	for len(ids) > 0 {
		n := min(len(ids), 500)
		batch := ids[:n]
		ids = ids[n:]
		have, err := s.CallCounts(ctx, batch)
		if err != nil {
			return nil, err
		}
		texted, err := s.withMessages(ctx, batch)
		if err != nil {
			return nil, err
		}
		for _, id := range batch {
			if _, ok := have[id]; !ok && !texted[id] {
				out = append(out, id)
			}
		}
	}
	// A call in progress (held in the journal) or not yet written links
	// its contact too.
	s.mu.Lock()
	linked := make(map[int64]bool)
	for _, p := range s.pending {
		if p.rec.ContactID != 0 {
			linked[p.rec.ContactID] = true
		}
	}
	s.mu.Unlock()
	return slices.DeleteFunc(out, func(id int64) bool { return linked[id] }), nil
}
