package contacts

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/switchboard-sip/switchboard/cdr"
	"github.com/switchboard-sip/switchboard/storage"
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
	CallCounts(ctx context.Context, ids []int64) (map[int64]cdr.Span, error)
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

// MessageLog is the messages table (SPEC §2 text messages) as a
// contact's trace, export and deletion read it; storage/callstore owns
// the table and implements it.
type MessageLog interface {
	// TraceTimeline returns a page of calls and messages together, newest
	// first across both, selected as TraceCalls selects calls; next leads
	// to the following page.
	TraceTimeline(ctx context.Context, id int64, numbers []string, since, until time.Time, cursor string, limit int) (calls []cdr.Record, msgs []cdr.Message, next string, err error)
	// ContactMessages returns every message linked to contact id, newest
	// first.
	ContactMessages(ctx context.Context, id int64) ([]cdr.Message, error)
	// DeleteContactMessages deletes the messages of contact id inside tx
	// and returns how many went.
	DeleteContactMessages(ctx context.Context, tx *sql.Tx, id int64) (int64, error)
}

// UseMessages gives the store the messages its Trace, Export and Delete
// read. Without it a contact's trace holds calls only.
func (s *Store) UseMessages(m MessageLog) { s.texts = m }

// UseMissed gives the store the missed-call entries its contacts'
// open_missed counts and deletion read. Without it a contact has none.
func (s *Store) UseMissed(m MissedLog) { s.missed = m }

// UseCalls gives the store the calls table its Trace and Export read.
// Without it a contact has no calls: the CLI may open contacts alone.
func (s *Store) UseCalls(c CallLog) { s.calls = c }

// Export is a contact with all its calls and messages, for a privacy
// request.
type Export struct {
	Contact  Contact
	Calls    []cdr.Record
	Messages []cdr.Message
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
// is the cursor of the following page, empty on the last. Items are the
// page's calls and Messages its text messages (with UseMessages): one page
// of a timeline ordered on time across both, which Timeline merges.
type Trace struct {
	Number   string
	Contact  *Contact
	Since    time.Time
	Until    time.Time
	Items    []cdr.Record
	Messages []cdr.Message
	Next     string
}

// Entry is one item of a trace's timeline: a call or a message.
type Entry struct {
	Call    *cdr.Record  // nil for a message
	Message *cdr.Message // nil for a call
}

// At is when the entry happened: a call's start, a message's time.
func (e Entry) At() time.Time {
	if e.Message != nil {
		return e.Message.At
	}
	return e.Call.StartedAt
}

func (e Entry) key() (time.Time, string) {
	if e.Message != nil {
		return e.Message.At, e.Message.ID
	}
	return e.Call.StartedAt, e.Call.ID
}

// Timeline merges the page's calls and messages, newest first, in the
// order the pages follow (time, then id).
func (t Trace) Timeline() []Entry {
	out := make([]Entry, 0, len(t.Items)+len(t.Messages))
	i, j := 0, 0
	for i < len(t.Items) || j < len(t.Messages) {
		if j >= len(t.Messages) {
			out = append(out, Entry{Call: &t.Items[i]})
			i++
			continue
		}
		m := Entry{Message: &t.Messages[j]}
		if i < len(t.Items) {
			c := Entry{Call: &t.Items[i]}
			ct, cid := c.key()
			mt, mid := m.key()
			if ct.UnixMilli() > mt.UnixMilli() || (ct.UnixMilli() == mt.UnixMilli() && cid > mid) {
				out = append(out, c)
				i++
				continue
			}
		}
		out = append(out, m)
		j++
	}
	return out
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
	msgs := []cdr.Message{}
	if s.texts != nil {
		if msgs, err = s.texts.ContactMessages(ctx, id); err != nil {
			return Export{}, fmt.Errorf("contacts: export %d: %w", id, err)
		}
	}
	if msgs == nil {
		msgs = []cdr.Message{}
	}
	return Export{Contact: c, Calls: calls, Messages: msgs}, nil
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
	items, msgs, next := []cdr.Record{}, []cdr.Message{}, ""
	var err error
	switch {
	case s.texts != nil:
		items, msgs, next, err = s.texts.TraceTimeline(ctx, id, numbers, t.Since, t.Until, q.Cursor, limit)
	case s.calls != nil:
		items, next, err = s.calls.TraceCalls(ctx, id, numbers, t.Since, t.Until, q.Cursor, limit)
	}
	if errors.Is(err, storage.ErrInvalidCursor) {
		return Trace{}, &FieldError{Field: "cursor", Reason: "not a cursor of this trace"}
	}
	if err != nil {
		return Trace{}, fmt.Errorf("contacts: trace %s/%d: %w", q.E164, id, err)
	}
	if items == nil {
		items = []cdr.Record{}
	}
	if msgs == nil {
		msgs = []cdr.Message{}
	}
	for i := range items {
		inZone(&items[i], loc)
	}
	for i := range msgs {
		msgs[i].At = msgs[i].At.In(loc)
	}
	t.Next = next
	t.Items = items
	t.Messages = msgs
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

// TraceAll reads every page of a trace, for a reader that shows all calls
// of the window at once (the command line). The window is fixed at the
// first page's end, so the pages fit.
func (s *Store) TraceAll(ctx context.Context, q TraceQuery) (Trace, error) {
	if q.Now.IsZero() {
		q.Now = time.Now()
	}
	q.Limit = MaxTraceLimit
	t, err := s.Trace(ctx, q)
	for err == nil && t.Next != "" {
		q.Cursor = t.Next
		var page Trace
		if page, err = s.Trace(ctx, q); err == nil {
			t.Items = append(t.Items, page.Items...)
			t.Messages = append(t.Messages, page.Messages...)
			t.Next = page.Next
		}
	}
	return t, err
}
