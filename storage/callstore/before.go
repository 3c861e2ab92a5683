package callstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/switchboard-sip/switchboard/cdr"
)

// History is a contact's calls before a given call, for the board's ringing
// card (SPEC §8: how often they called and when). Last is nil when there
// were none.
type History struct {
	Calls int64
	Last  *time.Time
}

// Before summarises the calls of a contact that started before r (in
// (started_at, id) order), leaving out r and every attempt of r's SIP
// Call-ID. Saved records not yet written count too, once.
func (s *Store) Before(ctx context.Context, contactID int64, r cdr.Record) (History, error) {
	var h History
	ms := toMillis(r.StartedAt)
	earlier := func(x cdr.Record) bool {
		xm := toMillis(x.StartedAt)
		return x.ContactID == contactID && x.ID != r.ID && (r.CallID == "" || x.CallID != r.CallID) &&
			(xm < ms || (xm == ms && x.ID < r.ID))
	}
	var pendingIDs []any
	s.mu.Lock()
	for id, p := range s.pending {
		if p.rec.ContactID != contactID {
			continue
		}
		// Rows of pending ids are left to the pending version, which may
		// have changed since the row was written.
		pendingIDs = append(pendingIDs, id)
		if earlier(p.rec) {
			h.add(p.rec.StartedAt)
		}
	}
	s.mu.Unlock()
	query := `SELECT COUNT(*), MAX(started_at) FROM calls
		WHERE contact_id = ? AND (started_at < ? OR (started_at = ? AND id < ?))`
	args := []any{contactID, ms, ms, r.ID}
	if r.CallID != "" {
		query += ` AND call_id <> ?`
		args = append(args, r.CallID)
	}
	if len(pendingIDs) > 0 {
		query += ` AND id NOT IN (?` + strings.Repeat(", ?", len(pendingIDs)-1) + `)`
		args = append(args, pendingIDs...)
	}
	var n int64
	var last sql.NullInt64
	if err := s.db.QueryRowContext(ctx, s.db.Rebind(query), args...).Scan(&n, &last); err != nil {
		return History{}, fmt.Errorf("callstore: calls of contact %d before %s: %w", contactID, r.ID, err)
	}
	if n > 0 && last.Valid {
		h.Calls += n - 1
		h.add(fromMillis(last.Int64))
	}
	return h, nil
}

func (h *History) add(t time.Time) {
	h.Calls++
	if h.Last == nil || t.After(*h.Last) {
		h.Last = &t
	}
}
