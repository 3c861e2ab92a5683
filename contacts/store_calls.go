package contacts

import (
	"context"
	"database/sql"
	"fmt"
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
}

// Export is a contact with all its calls, for a privacy request.
type Export struct {
	Contact Contact     `json:"contact"`
	Calls   []CallEntry `json:"calls"`
}

// TraceQuery selects a contact trace: every call of the contact (or, with
// no contact, of the number) in the last Months months.
type TraceQuery struct {
	E164      string         // the number; used when ContactID is 0, and for unlinked calls
	ContactID int64          // the contact; found from E164 when 0
	Months    int            // window; 0 means 12
	Loc       *time.Location // zone of the returned times; nil means UTC
	Now       time.Time      // end of the window; zero means now
}

// Trace is the answer to a TraceQuery, newest call first.
type Trace struct {
	Number  string      `json:"number,omitempty"`
	Contact *Contact    `json:"contact"`
	Since   time.Time   `json:"since"`
	Until   time.Time   `json:"until"`
	Items   []CallEntry `json:"items"`
}

const traceColumns = `id, call_id, direction, caller, caller_raw, caller_name, called, called_raw,
	hotline, contact_id, node, started_at, ringing_at, answered_at, ended_at, ring_ms, talk_ms,
	sip_status, disposition, missed_id, recording`

func scanCall(r scanner, loc *time.Location) (CallEntry, error) {
	var (
		e                        CallEntry
		contact                  sql.NullInt64
		started                  int64
		ringing, answered, ended sql.NullInt64
	)
	err := r.Scan(&e.ID, &e.CallID, &e.Direction, &e.Caller, &e.CallerRaw, &e.CallerName, &e.Called, &e.CalledRaw,
		&e.Hotline, &contact, &e.Node, &started, &ringing, &answered, &ended, &e.RingMS, &e.TalkMS,
		&e.SIPStatus, &e.Disposition, &e.MissedID, &e.Recording)
	if err != nil {
		return CallEntry{}, err
	}
	e.ContactID = contact.Int64
	e.StartedAt = time.UnixMilli(started).In(loc)
	opt := func(v sql.NullInt64) *time.Time {
		if !v.Valid {
			return nil
		}
		t := time.UnixMilli(v.Int64).In(loc)
		return &t
	}
	e.RingingAt, e.AnsweredAt, e.EndedAt = opt(ringing), opt(answered), opt(ended)
	return e, nil
}

func (s *Store) queryCalls(ctx context.Context, loc *time.Location, query string, args ...any) ([]CallEntry, error) {
	items := []CallEntry{}
	ok, err := s.callsTable(ctx)
	if err != nil || !ok {
		return items, err
	}
	rows, err := s.db.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, fmt.Errorf("contacts: calls: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		e, err := scanCall(rows, loc)
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
	calls, err := s.queryCalls(ctx, time.UTC, `SELECT `+traceColumns+` FROM calls WHERE contact_id = ?
		ORDER BY started_at DESC, id DESC`, id)
	if err != nil {
		return Export{}, fmt.Errorf("contacts: export %d: %w", id, err)
	}
	return Export{Contact: c, Calls: calls}, nil
}

// Trace returns every call attempt, inbound and outbound, of a contact or
// number in the window, newest first. Calls of the number that were never
// linked to a contact (made before it existed) are included too.
func (s *Store) Trace(ctx context.Context, q TraceQuery) (Trace, error) {
	loc := q.Loc
	if loc == nil {
		loc = time.UTC
	}
	months := q.Months
	if months <= 0 {
		months = 12
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
	// Each OR term has its own index (contact_id, caller, called, each with
	// started_at), so SQLite answers it as a union of index range scans.
	since := millis(t.Since)
	where := `(contact_id = ? AND started_at >= ?)`
	args := []any{id, since}
	for _, n := range numbers {
		where += ` OR (caller = ? AND started_at >= ?) OR (called = ? AND started_at >= ?)`
		args = append(args, n, since, n, since)
	}
	query := `SELECT ` + traceColumns + ` FROM calls WHERE (` + where + `) AND started_at <= ?
		ORDER BY started_at DESC, id DESC`
	args = append(args, millis(t.Until))
	items, err := s.queryCalls(ctx, loc, query, args...)
	if err != nil {
		return Trace{}, fmt.Errorf("contacts: trace %s/%d: %w", q.E164, id, err)
	}
	t.Items = items
	return t, nil
}
