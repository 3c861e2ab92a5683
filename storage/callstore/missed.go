package callstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/switchboard-sip/switchboard/cdr"
)

// LinkMissed writes a missed-call entry's id into its call record inside
// tx, the transaction that creates the entry, so that the entry and the
// link commit together (package missed asks; it never writes the calls
// table). The record may not be written yet, as the store batches: the
// caller then hands the id to the waiting record (LinkSaved).
func (s *Store) LinkMissed(ctx context.Context, tx *sql.Tx, recordID, missedID string) error {
	if _, err := tx.ExecContext(ctx, s.db.Rebind(`UPDATE calls SET missed_id = ? WHERE id = ?`), missedID, recordID); err != nil {
		return fmt.Errorf("callstore: link record %s to missed call %s: %w", recordID, missedID, err)
	}
	return nil
}

// UnlinkedMissed lists node's missed calls (SPEC §3) that ended in [from,
// to) and carry no missed-call entry id: the calls a process that died
// between a call's end and its entry's transaction left behind.
func (s *Store) UnlinkedMissed(ctx context.Context, node string, from, to time.Time) ([]cdr.Record, error) {
	if err := s.Flush(ctx); err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, s.db.Rebind(`SELECT `+callColumns+` FROM calls
		WHERE node = ? AND `+missedSQL+` AND missed_id = '' AND ended_at >= ? AND ended_at < ?
		ORDER BY ended_at`), node, toMillis(from), toMillis(to))
	if err != nil {
		return nil, fmt.Errorf("callstore: unlinked missed calls: %w", err)
	}
	return scanCalls(rows)
}

// LinkSaved gives the record r, saved by the call path, its missed-call
// entry id after the entry's transaction (LinkMissed) committed, without
// writing the record a second time when it need not be: a version still
// waiting for the writer takes the id and is written once with it; a
// written row that LinkMissed reached already has it. Only a row written
// between that update and now, or a record the writer never had, is saved
// again.
func (s *Store) LinkSaved(ctx context.Context, r cdr.Record, missedID string) {
	s.mu.Lock()
	if p, ok := s.pending[r.ID]; ok {
		p.rec.MissedID = missedID
		full := s.queueHeldLocked(p.rec, p.held)
		s.mu.Unlock()
		signal(s.wake)
		if full {
			signal(s.urgent)
		}
		return
	}
	s.mu.Unlock()
	var have string
	err := s.db.QueryRowContext(ctx, s.db.Rebind(`SELECT missed_id FROM calls WHERE id = ?`), r.ID).Scan(&have)
	if err == nil && have == missedID {
		return
	}
	r.MissedID = missedID
	s.Save(r)
}
