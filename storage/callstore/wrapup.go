package callstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/switchboard-sip/switchboard/cdr"
)

// newerWrap reports whether a is a later wrap-up than b: set, and set after
// b when b is set at all.
func newerWrap(a, b cdr.WrapUp) bool {
	return a.At != nil && (b.At == nil || a.At.After(*b.At))
}

// SetWrapUp stores the front desk's wrap-up of a call (SPEC §10) and
// returns the record with it. w.At is set to now. The record may still be
// pending (a call in progress): the pending version takes the wrap-up and
// any later save of the call path keeps it; a written row is updated at
// once, and the writer's upsert never overwrites a later wrap-up.
func (s *Store) SetWrapUp(ctx context.Context, id string, w cdr.WrapUp) (cdr.Record, error) {
	now := fromMillis(toMillis(time.Now()))
	w.At = &now
	s.mu.Lock()
	p, pending := s.pending[id]
	if pending {
		p.rec.WrapUp = w
		full := s.queueLocked(p.rec)
		s.mu.Unlock()
		signal(s.wake)
		if full {
			signal(s.urgent)
		}
	} else {
		s.mu.Unlock()
	}
	res, err := s.db.ExecContext(ctx, s.db.Rebind(`UPDATE calls SET reason = ?, satisfaction = ?, notes = ?, wrapup_at = ?,
		resolved = ?, transcript = ?
		WHERE id = ? AND (wrapup_at IS NULL OR wrapup_at <= ?)`),
		w.Reason, w.Satisfaction, w.Notes, toMillis(now), nullBool(w.Resolved), w.Transcript, id, toMillis(now))
	if err != nil {
		return cdr.Record{}, fmt.Errorf("callstore: wrap-up %q: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 && !pending {
		// Not written and not pending: no such call (Get says so).
		return s.Get(ctx, id)
	}
	r, err := s.Get(ctx, id)
	if err == nil {
		r.WrapUp = w // a concurrent save may not show it yet; it is stored
	}
	return r, err
}

// wrapUpOf reads the stored wrap-up of a record, for a pending version
// that may not carry it (saved by the call path after the wrap-up was
// written and left the pending set).
func (s *Store) wrapUpOf(ctx context.Context, id string) (cdr.WrapUp, error) {
	var (
		w            cdr.WrapUp
		at, resolved sql.NullInt64
	)
	err := s.db.QueryRowContext(ctx, s.db.Rebind(`SELECT reason, satisfaction, notes, wrapup_at, resolved, transcript FROM calls WHERE id = ?`), id).
		Scan(&w.Reason, &w.Satisfaction, &w.Notes, &at, &resolved, &w.Transcript)
	if err != nil {
		return cdr.WrapUp{}, err
	}
	w.At = timePtr(at)
	w.Resolved = boolPtr(resolved)
	return w, nil
}

// wrapUpMigration adds whether the matter was resolved (NULL: not said;
// 0, 1) and the transcript (SPEC §8, §10). It is appended to
// callMigrations.
const wrapUpMigration = `ALTER TABLE calls ADD COLUMN resolved INTEGER;
	ALTER TABLE calls ADD COLUMN transcript TEXT NOT NULL DEFAULT '';`

// keepTranscript is the front desk's wrap-up w, keeping the call path's
// transcript (a PBX header) when the front desk has none.
func keepTranscript(w, path cdr.WrapUp) cdr.WrapUp {
	if w.Transcript == "" {
		w.Transcript = path.Transcript
	}
	return w
}

func nullBool(b *bool) any {
	if b == nil {
		return nil
	}
	if *b {
		return 1
	}
	return 0
}

func boolPtr(v sql.NullInt64) *bool {
	if !v.Valid {
		return nil
	}
	b := v.Int64 != 0
	return &b
}

// ClearRecording removes the recording reference of a record (SPEC §2:
// Delete) and returns the record as it is now. A pending version loses it
// too, so that the writer does not put it back.
func (s *Store) ClearRecording(ctx context.Context, id string) (cdr.Record, error) {
	s.mu.Lock()
	if p, ok := s.pending[id]; ok && p.rec.Recording != "" {
		r := p.rec
		r.Recording = ""
		s.queueLocked(r)
		s.mu.Unlock()
		signal(s.wake)
	} else {
		s.mu.Unlock()
	}
	if _, err := s.db.ExecContext(ctx, s.db.Rebind(`UPDATE calls SET recording = '' WHERE id = ?`), id); err != nil {
		return cdr.Record{}, fmt.Errorf("callstore: clear recording of %q: %w", id, err)
	}
	return s.Get(ctx, id)
}
