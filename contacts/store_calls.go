package contacts

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/switchboard-sip/switchboard/cdr"
)

// CallLog is the calls table as a contact's trace and export read it;
// storage/callstore owns the table and implements it.
type CallLog interface {
	// TraceCalls returns a page of calls, newest first, linked to contact
	// id or with one of numbers as caller or called, started in
	// [since, until], after cursor; next leads to the following page.
	TraceCalls(ctx context.Context, id int64, numbers []string, since, until time.Time, cursor string, limit int) (items []cdr.Record, next string, err error)
	// ContactCalls returns every call linked to contact id, newest first.
	ContactCalls(ctx context.Context, id int64) ([]cdr.Record, error)
	// CallCounts returns the call summary of each of ids that has calls.
	CallCounts(ctx context.Context, ids []int64) (map[int64]History, error)
	// DeleteContactCalls deletes the calls of contact id inside tx and
	// returns how many went.
	DeleteContactCalls(ctx context.Context, tx *sql.Tx, id int64) (int64, error)
	// WithoutCalls returns those of ids that no call links to.
	WithoutCalls(ctx context.Context, ids []int64) ([]int64, error)
}

// MissedLog is the missed_calls table as the contact store reads it;
// package missed owns the table and implements it (missed.ContactLog).
type MissedLog interface {
	// OpenMissed returns the open entries of each of ids that has some.
	OpenMissed(ctx context.Context, ids []int64) (map[int64]int64, error)
	// DeleteContactMissed deletes the entries of contact id inside tx.
	DeleteContactMissed(ctx context.Context, tx *sql.Tx, id int64) error
}

// UseMissed gives the store the missed-call entries its contacts'
// open_missed counts and deletion read. Without it a contact has none.
func (s *Store) UseMissed(m MissedLog) { s.missed = m }

// UseCalls gives the store the calls table its Trace and Export read.
// Without it a contact has no calls: the CLI may open contacts alone.
func (s *Store) UseCalls(c CallLog) { s.calls = c }

// Export is a contact with all its calls, for a privacy request.
type Export struct {
	Contact Contact      `json:"contact"`
	Calls   []cdr.Record `json:"calls"`
}

// TraceQuery selects a contact trace: every call of the contact (or, with
// no contact, of the number) in the last Months months, one page at a time.
type TraceQuery struct {
	E164      string         // the number; used when ContactID is 0, and for unlinked calls
	ContactID int64          // the contact; found from E164 when 0
	Months    int            // window; 0 means 12
	Loc       *time.Location // zone of the returned times; nil means UTC
	Now       time.Time      // end of the window; zero means now
	Limit     int            // page size; 0 means DefaultTraceLimit, capped at MaxTraceLimit
	Cursor    string         // Trace.Next of the previous page; empty for the first
}

// Page sizes of a trace. The trace's latency target (p99 under 10 ms for a
// contact with 10,000 calls among 1,000,000) holds for a page, not for a
// whole busy trace: every call costs a random table page read and its
// decoding, so a page of 1000 takes about 10 ms on two shared cores and the
// default page of 250 about 4.5 ms (BENCHMARKS.md, "Contact trace"). Callers
// that want every call follow Trace.Next.
const (
	DefaultTraceLimit = 250
	MaxTraceLimit     = 1000
)

// Trace is one page of the answer to a TraceQuery, newest call first. Next
// is the cursor of the following page, empty on the last.
type Trace struct {
	Number  string       `json:"number,omitempty"`
	Contact *Contact     `json:"contact"`
	Since   time.Time    `json:"since"`
	Until   time.Time    `json:"until"`
	Items   []cdr.Record `json:"items"`
	Next    string       `json:"next"`
}

// Export returns a contact with every call linked to it, newest first, for
// a privacy request (times in UTC).
func (s *Store) Export(ctx context.Context, id int64) (Export, error) {
	c, err := s.Get(ctx, id)
	if err != nil {
		return Export{}, err
	}
	calls := []cdr.Record{}
	if s.calls != nil {
		calls, err = s.calls.ContactCalls(ctx, id)
	}
	if err != nil {
		return Export{}, fmt.Errorf("contacts: export %d: %w", id, err)
	}
	if calls == nil {
		calls = []cdr.Record{}
	}
	return Export{Contact: c, Calls: calls}, nil
}

// Trace returns a page of the call attempts, inbound and outbound, of a
// contact or number in the window, newest first. Calls of the number that
// were never linked to a contact (made before it existed) are included too.
// The contact is resolved again on every page; the cursor alone carries the
// position, so the window may move between pages without repeating calls.
func (s *Store) Trace(ctx context.Context, q TraceQuery) (Trace, error) {
	loc := q.Loc
	if loc == nil {
		loc = time.UTC
	}
	months := q.Months
	if months <= 0 {
		months = 12
	}
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultTraceLimit
	}
	limit = min(limit, MaxTraceLimit)
	now := q.Now
	if now.IsZero() {
		now = s.now()
	}
	now = now.In(loc)
	t := Trace{Number: q.E164, Since: now.AddDate(0, -months, 0), Until: now}
	id := q.ContactID
	if id == 0 && q.E164 != "" {
		if err := s.flushPending(ctx); err != nil {
			return Trace{}, err
		}
		owner, err := s.owner(ctx, s.db, q.E164)
		if err != nil {
			return Trace{}, err
		}
		id = owner
	}
	var numbers []string
	if q.E164 != "" {
		numbers = append(numbers, q.E164)
	}
	if id != 0 {
		c, err := s.Get(ctx, id)
		if err != nil {
			return Trace{}, err
		}
		t.Contact = &c
		numbers = numbers[:0]
		for _, p := range c.Numbers {
			numbers = append(numbers, p.E164)
		}
	}
	if id == 0 && len(numbers) == 0 {
		return Trace{}, &FieldError{Field: "number", Reason: "a number or a contact is needed"}
	}
	items, next := []cdr.Record{}, ""
	if s.calls != nil {
		var err error
		items, next, err = s.calls.TraceCalls(ctx, id, numbers, t.Since, t.Until, q.Cursor, limit)
		if err != nil {
			return Trace{}, fmt.Errorf("contacts: trace %s/%d: %w", q.E164, id, err)
		}
	}
	if items == nil {
		items = []cdr.Record{}
	}
	for i := range items {
		inZone(&items[i], loc)
	}
	t.Next = next
	t.Items = items
	return t, nil
}

// inZone shows a record's times in loc.
func inZone(r *cdr.Record, loc *time.Location) {
	r.StartedAt = r.StartedAt.In(loc)
	for _, p := range []*time.Time{r.RingingAt, r.AnsweredAt, r.EndedAt, r.WrapUp.At} {
		if p != nil {
			*p = p.In(loc)
		}
	}
}
