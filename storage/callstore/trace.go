package callstore

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard-sip/switchboard/cdr"
	"github.com/switchboard-sip/switchboard/storage"
)

// ContactCalls returns every call linked to a contact, newest first: the
// calls of a privacy export (contacts.Store.Export).
func (s *Store) ContactCalls(ctx context.Context, id int64) ([]cdr.Record, error) {
	rows, err := s.db.QueryContext(ctx, s.db.Rebind(`SELECT `+callColumns+` FROM calls WHERE contact_id = ?
		ORDER BY started_at DESC, id DESC`), id)
	if err != nil {
		return nil, fmt.Errorf("callstore: calls of contact %d: %w", id, err)
	}
	out, err := scanCalls(rows)
	if err != nil {
		return nil, fmt.Errorf("callstore: calls of contact %d: %w", id, err)
	}
	return out, nil
}

// TraceCalls returns a page of up to limit calls of a contact trace (SPEC
// §8), newest first: the calls linked to contact id (0 for none) and those
// with one of numbers as caller or called, started in [since, until] and
// after the cursor (empty for the first page). next is the cursor of the
// following page, empty on the last.
func (s *Store) TraceCalls(ctx context.Context, id int64, numbers []string, since, until time.Time, cur string, limit int) (items []cdr.Record, next string, err error) {
	var after *cursor
	if cur != "" {
		c, err := decodeCursor(cur)
		if err != nil {
			return nil, "", fmt.Errorf("callstore: trace cursor: %w", storage.ErrInvalidCursor)
		}
		after = &c
	}
	// Records not yet written (calls in progress held in the journal, and
	// the writer's batch) count as they are; their written rows are stale.
	fresh, pendingIDs := s.pendingTrace(id, numbers, since, until, after)
	query, args := traceSQL(id, numbers, since.UnixMilli(), until.UnixMilli(), after, limit+1+len(pendingIDs))
	rows, err := s.db.QueryContext(ctx, s.db.Rebind(query), args...)
	if err != nil {
		return nil, "", fmt.Errorf("callstore: trace: %w", err)
	}
	stored, err := scanCalls(rows)
	if err != nil {
		return nil, "", fmt.Errorf("callstore: trace: %w", err)
	}
	items = fresh
	for _, r := range stored {
		if !pendingIDs[r.ID] {
			items = append(items, r)
		}
	}
	if len(fresh) > 0 {
		sort.Slice(items, func(i, j int) bool { return before(items[j], items[i]) })
	}
	if len(items) > limit {
		items = items[:limit]
		last := items[limit-1]
		next = encodeCursor(cursor{ms: last.StartedAt.UnixMilli(), id: last.ID})
	}
	return items, next, nil
}

// pendingTrace returns the pending records of a trace and the ids of all
// pending records.
func (s *Store) pendingTrace(id int64, numbers []string, since, until time.Time, after *cursor) ([]cdr.Record, map[string]bool) {
	lo, hi := since.UnixMilli(), until.UnixMilli()
	s.mu.Lock()
	defer s.mu.Unlock()
	var fresh []cdr.Record
	ids := make(map[string]bool, len(s.pending))
	for _, p := range s.pending {
		r := p.rec
		ids[r.ID] = true
		ms := toMillis(r.StartedAt)
		if ms < lo || ms > hi {
			continue
		}
		if after != nil && (ms > after.ms || (ms == after.ms && r.ID >= after.id)) {
			continue
		}
		if (id != 0 && r.ContactID == id) || slices.Contains(numbers, r.Caller) || slices.Contains(numbers, r.Called) {
			fresh = append(fresh, r)
		}
	}
	return fresh, ids
}

// traceSQL builds the trace query: a UNION ALL of disjoint parts, each a
// range scan of one index. The contact's calls come from calls_contact_time
// (contact_id, started_at, id) in page order. Per number, the calls with it
// as caller that are not the contact's come from calls_caller_contact
// (caller, contact_id, started_at, id): unlinked ones (contact_id NULL) in
// page order, those of other contacts (a number that moved; rare) from the
// ranges below and above the contact's id, sorted. The same for the number
// as called party (calls_called_contact), leaving out calls whose caller is
// one of the numbers, already counted. SQLite merges the ordered parts and
// stops after limit rows, instead of reading and sorting every call of the
// window; a contact's own calls are never scanned twice. The SQL is plain
// enough for PostgreSQL too.
func traceSQL(id int64, numbers []string, since, until int64, after *cursor, limit int) (string, []any) {
	var b strings.Builder
	var args []any
	upper := until
	if after != nil && after.ms < upper {
		upper = after.ms
	}
	part := func(cond string, condArgs ...any) {
		if b.Len() > 0 {
			b.WriteString("\nUNION ALL\n")
		}
		b.WriteString(`SELECT ` + callColumns + ` FROM calls WHERE ` + cond + ` AND started_at >= ? AND started_at <= ?`)
		args = append(args, condArgs...)
		args = append(args, since, upper)
		if after != nil {
			b.WriteString(` AND (started_at < ? OR (started_at = ? AND id < ?))`)
			args = append(args, after.ms, after.ms, after.id)
		}
	}
	if id != 0 {
		part(`contact_id = ?`, id)
	}
	// A contact id is positive: with none (id 0) the last range holds
	// every linked call of the number.
	notContact := []string{`contact_id IS NULL`, `contact_id < ?`, `contact_id > ?`}
	for _, n := range numbers {
		part(`caller = ? AND `+notContact[0], n)
		part(`caller = ? AND `+notContact[1], n, id)
		part(`caller = ? AND `+notContact[2], n, id)
	}
	callers := make([]any, len(numbers))
	for i, n := range numbers {
		callers[i] = n
	}
	notCaller := ` AND caller NOT IN (` + placeholders(len(numbers)) + `)`
	for _, n := range numbers {
		part(`called = ? AND `+notContact[0]+notCaller, append([]any{n}, callers...)...)
		part(`called = ? AND `+notContact[1]+notCaller, append([]any{n, id}, callers...)...)
		part(`called = ? AND `+notContact[2]+notCaller, append([]any{n, id}, callers...)...)
	}
	b.WriteString("\nORDER BY started_at DESC, id DESC LIMIT " + strconv.Itoa(limit))
	return b.String(), args
}

func placeholders(n int) string {
	if n <= 0 {
		return ""
	}
	return strings.Repeat("?, ", n-1) + "?"
}
