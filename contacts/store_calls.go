package contacts

import (
	"context"
	"database/sql"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// CallEntry is one call record as the contact history and trace show it,
// with the field names of SPEC §8. Times are in the zone asked for.
type CallEntry struct {
	ID          string     `json:"id"`
	CallID      string     `json:"call_id"`
	Direction   string     `json:"direction"`
	Caller      string     `json:"caller"`
	CallerRaw   string     `json:"caller_raw"`
	CallerName  string     `json:"caller_name"`
	Called      string     `json:"called"`
	CalledRaw   string     `json:"called_raw"`
	Hotline     string     `json:"hotline"`
	Campaign    string     `json:"campaign"`
	ContactID   int64      `json:"contact_id,omitempty"`
	Node        string     `json:"node"`
	StartedAt   time.Time  `json:"started_at"`
	RingingAt   *time.Time `json:"ringing_at"`
	AnsweredAt  *time.Time `json:"answered_at"`
	EndedAt     *time.Time `json:"ended_at"`
	RingMS      int64      `json:"ring_ms"`
	TalkMS      int64      `json:"talk_ms"`
	SIPStatus   int        `json:"sip_status"`
	Disposition string     `json:"disposition"`
	MissedID    string     `json:"missed_id,omitempty"`
	Recording   string     `json:"recording,omitempty"`
	AnsweredBy  string     `json:"answered_by"`
	EndReason   string     `json:"end_reason,omitempty"`
	// The front desk's wrap-up (SPEC §10); Satisfaction 0 is not scored.
	Reason       string     `json:"reason"`
	Satisfaction int        `json:"satisfaction,omitempty"`
	Notes        string     `json:"notes"`
	WrappedUpAt  *time.Time `json:"wrapped_up_at,omitempty"`
}

// Export is a contact with all its calls, for a privacy request.
type Export struct {
	Contact Contact     `json:"contact"`
	Calls   []CallEntry `json:"calls"`
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
	Number  string      `json:"number,omitempty"`
	Contact *Contact    `json:"contact"`
	Since   time.Time   `json:"since"`
	Until   time.Time   `json:"until"`
	Items   []CallEntry `json:"items"`
	Next    string      `json:"next"`
}

// traceCursor is the keyset position after the last call of a page: pages
// are ordered by (started_at, id), newest first.
type traceCursor struct {
	ms int64
	id string
}

func (c traceCursor) String() string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(c.ms, 10) + "." + c.id))
}

func parseTraceCursor(s string) (traceCursor, error) {
	bad := &FieldError{Field: "cursor", Reason: "not a cursor of this trace"}
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return traceCursor{}, bad
	}
	ms, id, ok := strings.Cut(string(raw), ".")
	if !ok || id == "" {
		return traceCursor{}, bad
	}
	n, err := strconv.ParseInt(ms, 10, 64)
	if err != nil {
		return traceCursor{}, bad
	}
	return traceCursor{ms: n, id: id}, nil
}

const traceColumns = `id, call_id, direction, caller, caller_raw, caller_name, called, called_raw,
	hotline, contact_id, node, started_at, ringing_at, answered_at, ended_at, ring_ms, talk_ms,
	sip_status, disposition, missed_id, recording, campaign, answered_by, end_reason, reason,
	satisfaction, notes, wrapup_at`

// callScanner reads call rows of traceColumns into CallEntry values. Its
// scan destinations are reused from row to row, and the optional times of
// a page share one backing array, so a row costs only what the driver
// allocates for its values.
type callScanner struct {
	loc   *time.Location
	e     CallEntry
	nulls [5]sql.NullInt64 // contact_id, ringing_at, answered_at, ended_at, wrapup_at
	start int64
	dest  []any
	times []time.Time // backing array of the entries' optional times
}

func newCallScanner(loc *time.Location) *callScanner {
	c := &callScanner{loc: loc}
	e := &c.e
	c.dest = []any{&e.ID, &e.CallID, &e.Direction, &e.Caller, &e.CallerRaw, &e.CallerName, &e.Called,
		&e.CalledRaw, &e.Hotline, &c.nulls[0], &e.Node, &c.start, &c.nulls[1], &c.nulls[2], &c.nulls[3],
		&e.RingMS, &e.TalkMS, &e.SIPStatus, &e.Disposition, &e.MissedID, &e.Recording,
		&e.Campaign, &e.AnsweredBy, &e.EndReason, &e.Reason, &e.Satisfaction, &e.Notes, &c.nulls[4]}
	return c
}

func (c *callScanner) scan(r scanner) (CallEntry, error) {
	if err := r.Scan(c.dest...); err != nil {
		return CallEntry{}, err
	}
	e := c.e
	e.ContactID = c.nulls[0].Int64
	e.StartedAt = time.UnixMilli(c.start).In(c.loc)
	e.RingingAt, e.AnsweredAt, e.EndedAt = c.opt(c.nulls[1]), c.opt(c.nulls[2]), c.opt(c.nulls[3])
	e.WrappedUpAt = c.opt(c.nulls[4])
	return e, nil
}

func (c *callScanner) opt(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	if len(c.times) == cap(c.times) {
		c.times = make([]time.Time, 0, 4*128)
	}
	c.times = append(c.times, time.UnixMilli(v.Int64).In(c.loc))
	return &c.times[len(c.times)-1]
}

// queryCalls runs a query of traceColumns. sizeHint is the most rows the
// query returns, 0 when unknown.
func (s *Store) queryCalls(ctx context.Context, loc *time.Location, sizeHint int, query string, args ...any) ([]CallEntry, error) {
	items := make([]CallEntry, 0, sizeHint)
	ok, err := s.callsTable(ctx)
	if err != nil || !ok {
		return items, err
	}
	rows, err := s.db.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, fmt.Errorf("contacts: calls: %w", err)
	}
	defer rows.Close()
	sc := newCallScanner(loc)
	for rows.Next() {
		e, err := sc.scan(rows)
		if err != nil {
			return nil, fmt.Errorf("contacts: calls: %w", err)
		}
		items = append(items, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("contacts: calls: %w", err)
	}
	return items, nil
}

// Export returns a contact with every call linked to it, newest first, for
// a privacy request (times in UTC).
func (s *Store) Export(ctx context.Context, id int64) (Export, error) {
	c, err := s.Get(ctx, id)
	if err != nil {
		return Export{}, err
	}
	calls, err := s.queryCalls(ctx, time.UTC, 0, `SELECT `+traceColumns+` FROM calls WHERE contact_id = ?
		ORDER BY started_at DESC, id DESC`, id)
	if err != nil {
		return Export{}, fmt.Errorf("contacts: export %d: %w", id, err)
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
	var after *traceCursor
	if q.Cursor != "" {
		c, err := parseTraceCursor(q.Cursor)
		if err != nil {
			return Trace{}, err
		}
		after = &c
	}
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
	query, args := traceSQL(id, numbers, millis(t.Since), millis(t.Until), after, limit+1)
	items, err := s.queryCalls(ctx, loc, limit+1, query, args...)
	if err != nil {
		return Trace{}, fmt.Errorf("contacts: trace %s/%d: %w", q.E164, id, err)
	}
	if len(items) > limit {
		items = items[:limit]
		last := items[limit-1]
		t.Next = traceCursor{ms: millis(last.StartedAt), id: last.ID}.String()
	}
	t.Items = items
	return t, nil
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
func traceSQL(id int64, numbers []string, since, until int64, after *traceCursor, limit int) (string, []any) {
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
		b.WriteString(`SELECT ` + traceColumns + ` FROM calls WHERE ` + cond + ` AND started_at >= ? AND started_at <= ?`)
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
