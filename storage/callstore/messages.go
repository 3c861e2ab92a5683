package callstore

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/switchboard-sip/switchboard/cdr"
	"github.com/switchboard-sip/switchboard/storage"
)

// messageMigrations are the schema steps of the "messages" component: the
// records of routed MESSAGE requests (SPEC §2). Append only. Times are unix
// milliseconds like the calls table, so that a trace orders calls and
// messages on one key, (time, id).
var messageMigrations = []string{
	`CREATE TABLE messages (
		id           TEXT    NOT NULL PRIMARY KEY,
		call_id      TEXT    NOT NULL DEFAULT '',
		direction    TEXT    NOT NULL DEFAULT '',
		caller       TEXT    NOT NULL DEFAULT '',
		caller_raw   TEXT    NOT NULL DEFAULT '',
		called       TEXT    NOT NULL DEFAULT '',
		called_raw   TEXT    NOT NULL DEFAULT '',
		contact_id   INTEGER,
		content      TEXT    NOT NULL DEFAULT '',
		truncated    INTEGER NOT NULL DEFAULT 0,
		size         INTEGER NOT NULL DEFAULT 0,
		content_type TEXT    NOT NULL DEFAULT '',
		trunk        TEXT    NOT NULL DEFAULT '',
		source       TEXT    NOT NULL DEFAULT '',
		node         TEXT    NOT NULL DEFAULT '',
		status       INTEGER NOT NULL DEFAULT 0,
		occurred_at  INTEGER NOT NULL
	);
	CREATE INDEX messages_time ON messages(occurred_at, id);
	CREATE INDEX messages_contact ON messages(contact_id, occurred_at, id);
	CREATE INDEX messages_caller ON messages(caller, occurred_at, id);
	CREATE INDEX messages_called ON messages(called, occurred_at, id);`,
}

const messageColumns = `id, call_id, direction, caller, caller_raw, called, called_raw, contact_id,
	content, truncated, size, content_type, trunk, source, node, status, occurred_at`

// A message is written once: a second save of an id (a retried batch
// that did commit) changes nothing.
const insertMessage = `INSERT INTO messages (` + messageColumns + `)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
	ON CONFLICT (id) DO NOTHING`

// messageQueue holds saved messages until the message writer has them in
// the database; it is the messages' twin of the call records' pending
// map, simpler because a message is saved once and never changes.
type messageQueue struct {
	mu      sync.Mutex
	pending []cdr.Message
	saved   uint64        // messages queued so far
	written uint64        // of those, written (the queue is FIFO)
	moved   chan struct{} // closed and replaced whenever written moves
	wake    chan struct{}
	lastErr error
	// writing is set while the writer commits a batch; deleted are the
	// contacts whose messages were deleted meanwhile (deleteAgain).
	writing bool
	deleted map[int64]bool
	done    chan struct{}
	dropped atomic.Uint64
}

func newMessageQueue() *messageQueue {
	return &messageQueue{moved: make(chan struct{}), wake: make(chan struct{}, 1), done: make(chan struct{})}
}

// SaveMessage queues a message record to be written. It never waits for
// the database: the SIP path calls it. Beyond the local queue's bound
// (the database away for long) messages are dropped, counted and logged.
func (s *Store) SaveMessage(m cdr.Message) {
	q := s.msgs
	m.At = fromMillis(toMillis(m.At))
	s.mu.Lock()
	closing := s.closing
	if into, ok := s.merged[m.ContactID]; ok {
		m.ContactID = into
	}
	s.mu.Unlock()
	if closing || m.ID == "" {
		s.log.Error("message record dropped", zap.String("id", m.ID), zap.Bool("closing", closing))
		return
	}
	q.mu.Lock()
	if len(q.pending) >= s.maxPending {
		q.mu.Unlock()
		if n := q.dropped.Add(1); n&(n-1) == 0 {
			s.log.Error("message record dropped: the local queue is full while the database is away",
				zap.String("id", m.ID), zap.Uint64("dropped", n))
		}
		return
	}
	q.pending = append(q.pending, m)
	q.saved++
	q.mu.Unlock()
	signal(q.wake)
}

// PendingMessages is how many saved messages wait for the database.
func (s *Store) PendingMessages() int {
	s.msgs.mu.Lock()
	defer s.msgs.mu.Unlock()
	return len(s.msgs.pending)
}

// DroppedMessages is how many messages the full local queue could not take.
func (s *Store) DroppedMessages() uint64 { return s.msgs.dropped.Load() }

// FlushMessages waits until every message saved before the call is in the
// database, or ctx ends.
func (s *Store) FlushMessages(ctx context.Context) error {
	q := s.msgs
	q.mu.Lock()
	target := q.saved
	q.mu.Unlock()
	signal(q.wake)
	for {
		q.mu.Lock()
		written, moved, lastErr := q.written, q.moved, q.lastErr
		q.mu.Unlock()
		if written >= target {
			return nil
		}
		select {
		case <-moved:
		case <-q.done:
			return fmt.Errorf("callstore: flush messages: writer stopped with %d unwritten", target-written)
		case <-ctx.Done():
			if lastErr != nil {
				return fmt.Errorf("callstore: flush messages (last error: %v): %w", lastErr, ctx.Err())
			}
			return fmt.Errorf("callstore: flush messages: %w", ctx.Err())
		}
	}
}

// runMessages is the single writer of the messages table: it batches what
// arrived within batchWindow, like the call record writer, and retries
// with back-off while the database fails.
func (s *Store) runMessages(ctx context.Context) {
	q := s.msgs
	defer close(q.done)
	delay := time.Duration(0)
	for {
		wait := delay
		if wait == 0 {
			select {
			case <-q.wake:
			case <-ctx.Done():
				return
			}
			wait = batchWindow
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
		err := s.writeMessages(ctx)
		switch {
		case err == nil:
			delay = 0
		case ctx.Err() != nil:
			return
		default:
			delay = min(max(2*delay, minRetryDelay), maxRetryDelay)
			q.mu.Lock()
			q.lastErr = err
			q.mu.Unlock()
			s.log.Warn("message records not written, will retry", zap.Error(err), zap.Duration("retry_in", delay))
		}
	}
}

// writeMessages writes the queue from its front, maxBatch per transaction.
func (s *Store) writeMessages(ctx context.Context) error {
	q := s.msgs
	for {
		q.mu.Lock()
		batch := append([]cdr.Message(nil), q.pending[:min(len(q.pending), maxBatch)]...)
		q.writing = len(batch) > 0
		q.mu.Unlock()
		if len(batch) == 0 {
			return nil
		}
		err := s.insertMessages(ctx, batch)
		if err == nil {
			err = s.deleteAgain(ctx, batch)
		}
		q.mu.Lock()
		q.writing = false
		q.deleted = nil
		q.mu.Unlock()
		if err != nil {
			return err
		}
		q.mu.Lock()
		// The batch is a prefix of the queue as it was; a contact's
		// deletion may have taken some of it out since (dropContact), and
		// saves only append, so what was written is still a prefix.
		ids := make(map[string]bool, len(batch))
		for _, m := range batch {
			ids[m.ID] = true
		}
		n := 0
		for n < len(q.pending) && ids[q.pending[n].ID] {
			n++
		}
		q.pending = q.pending[n:]
		q.written += uint64(n)
		q.lastErr = nil
		close(q.moved)
		q.moved = make(chan struct{})
		q.mu.Unlock()
	}
}

// deleteAgain deletes the just written messages of contacts deleted while
// the batch was being written: their DELETE may have run before the
// batch's rows existed, and a privacy request must leave nothing behind.
func (s *Store) deleteAgain(ctx context.Context, batch []cdr.Message) error {
	q := s.msgs
	q.mu.Lock()
	var again []int64
	for id := range q.deleted {
		for _, m := range batch {
			if m.ContactID == id {
				again = append(again, id)
				break
			}
		}
	}
	q.mu.Unlock()
	for _, id := range again {
		if _, err := s.db.ExecContext(context.WithoutCancel(ctx), s.db.Rebind(`DELETE FROM messages WHERE contact_id = ?`), id); err != nil {
			return fmt.Errorf("callstore: delete messages of %d again: %w", id, err)
		}
	}
	return nil
}

func (s *Store) insertMessages(ctx context.Context, batch []cdr.Message) error {
	ctx = context.WithoutCancel(ctx) // see writeBatch
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("callstore: begin: %w", err)
	}
	defer tx.Rollback()
	stmt, err := tx.PrepareContext(ctx, s.db.Rebind(insertMessage))
	if err != nil {
		return fmt.Errorf("callstore: prepare: %w", err)
	}
	defer stmt.Close()
	for _, m := range batch {
		var contact any
		if m.ContactID != 0 {
			contact = m.ContactID
		}
		truncated := 0
		if m.Truncated {
			truncated = 1
		}
		if _, err := stmt.ExecContext(ctx, m.ID, m.CallID, string(m.Direction), m.Caller, m.CallerRaw,
			m.Called, m.CalledRaw, contact, m.Content, truncated, m.Size, m.ContentType, m.Trunk,
			m.Source, m.Node, m.Status, toMillis(m.At)); err != nil {
			return fmt.Errorf("callstore: save message %s: %w", m.ID, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("callstore: commit %d messages: %w", len(batch), err)
	}
	return nil
}

func scanMessages(rows *sql.Rows) ([]cdr.Message, error) {
	defer rows.Close()
	var out []cdr.Message
	for rows.Next() {
		var (
			m         cdr.Message
			dir       string
			contact   sql.NullInt64
			truncated int
			at        int64
		)
		if err := rows.Scan(&m.ID, &m.CallID, &dir, &m.Caller, &m.CallerRaw, &m.Called, &m.CalledRaw,
			&contact, &m.Content, &truncated, &m.Size, &m.ContentType, &m.Trunk, &m.Source, &m.Node,
			&m.Status, &at); err != nil {
			return nil, err
		}
		m.Direction = cdr.MessageDirection(dir)
		m.ContactID = contact.Int64
		m.Truncated = truncated != 0
		m.At = fromMillis(at)
		out = append(out, m)
	}
	return out, rows.Err()
}

// ContactMessages returns every message linked to a contact, newest first:
// the messages of a privacy export.
func (s *Store) ContactMessages(ctx context.Context, id int64) ([]cdr.Message, error) {
	rows, err := s.db.QueryContext(ctx, s.db.Rebind(`SELECT `+messageColumns+` FROM messages WHERE contact_id = ?
		ORDER BY occurred_at DESC, id DESC`), id)
	if err != nil {
		return nil, fmt.Errorf("callstore: messages of contact %d: %w", id, err)
	}
	out, err := scanMessages(rows)
	if err != nil {
		return nil, fmt.Errorf("callstore: messages of contact %d: %w", id, err)
	}
	return out, nil
}

// DeleteContactMessages deletes every message of a contact inside tx, the
// transaction that deletes the contact (a privacy request), and those
// still waiting in the queue, and returns how many went.
func (s *Store) DeleteContactMessages(ctx context.Context, tx *sql.Tx, id int64) (int64, error) {
	// The queue first: a message written after the DELETE would outlive
	// the contact. A batch being committed at this very moment is deleted
	// again by the writer once it is in (deleteAgain).
	s.msgs.dropContact(id)
	res, err := tx.ExecContext(ctx, s.db.Rebind(`DELETE FROM messages WHERE contact_id = ?`), id)
	if err != nil {
		return 0, fmt.Errorf("callstore: delete messages of %d: %w", id, err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

// PruneMessages deletes messages older than t (storage.retention) and
// reports how many went.
func (s *Store) PruneMessages(ctx context.Context, t time.Time) (int64, error) {
	res, err := s.db.ExecContext(ctx, s.db.Rebind(`DELETE FROM messages WHERE occurred_at < ?`), toMillis(t))
	if err != nil {
		return 0, fmt.Errorf("callstore: prune messages before %s: %w", t.UTC().Format(time.RFC3339), err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

// dropContact takes the queued messages of contact id out of the queue
// (they count as written for FlushMessages) and, while a batch is being
// written, marks the contact for deleteAgain.
func (q *messageQueue) dropContact(id int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.writing {
		if q.deleted == nil {
			q.deleted = map[int64]bool{}
		}
		q.deleted[id] = true
	}
	kept := q.pending[:0]
	for _, m := range q.pending {
		if m.ContactID != id {
			kept = append(kept, m)
		}
	}
	if gone := len(q.pending) - len(kept); gone > 0 {
		clear(q.pending[len(kept):])
		q.pending = kept
		q.written += uint64(gone)
		close(q.moved)
		q.moved = make(chan struct{})
	}
}

// relinkMessages moves the messages of contact from to contact into, in
// the queue and in the table (see Relink).
func (s *Store) relinkMessages(ctx context.Context, from, into int64) error {
	q := s.msgs
	q.mu.Lock()
	for i := range q.pending {
		if q.pending[i].ContactID == from {
			q.pending[i].ContactID = into
		}
	}
	q.mu.Unlock()
	if _, err := s.db.ExecContext(ctx, s.db.Rebind(`UPDATE messages SET contact_id = ? WHERE contact_id = ?`), into, from); err != nil {
		return fmt.Errorf("callstore: relink messages of contact %d to %d: %w", from, into, err)
	}
	return nil
}

// withMessages returns those of ids that some message links to.
func (s *Store) withMessages(ctx context.Context, ids []int64) (map[int64]bool, error) {
	out := map[int64]bool{}
	if len(ids) == 0 {
		return out, nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	rows, err := s.db.QueryContext(ctx, s.db.Rebind(`SELECT DISTINCT contact_id FROM messages
		WHERE contact_id IN (`+placeholders(len(ids))+`)`), args...)
	if err != nil {
		return nil, fmt.Errorf("callstore: contacts with messages: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("callstore: contacts with messages: %w", err)
		}
		out[id] = true
	}
	return out, rows.Err()
}

// traceMessages returns up to limit messages of a trace, newest first:
// linked to contact id (0 for none) or with one of numbers as caller or
// called, in [since, until] and after the cursor.
func (s *Store) traceMessages(ctx context.Context, id int64, numbers []string, since, until int64, after *cursor, limit int) ([]cdr.Message, error) {
	var who []string
	var args []any
	if id != 0 {
		who = append(who, `contact_id = ?`)
		args = append(args, id)
	}
	if len(numbers) > 0 {
		who = append(who, `caller IN (`+placeholders(len(numbers))+`)`, `called IN (`+placeholders(len(numbers))+`)`)
		for range 2 {
			for _, n := range numbers {
				args = append(args, n)
			}
		}
	}
	if len(who) == 0 {
		return nil, nil
	}
	q := `SELECT ` + messageColumns + ` FROM messages WHERE (` + strings.Join(who, " OR ") + `) AND occurred_at >= ? AND occurred_at <= ?`
	args = append(args, since, until)
	if after != nil {
		q += ` AND (occurred_at < ? OR (occurred_at = ? AND id < ?))`
		args = append(args, after.ms, after.ms, after.id)
	}
	q += ` ORDER BY occurred_at DESC, id DESC LIMIT ` + strconv.Itoa(limit)
	rows, err := s.db.QueryContext(ctx, s.db.Rebind(q), args...)
	if err != nil {
		return nil, fmt.Errorf("callstore: trace messages: %w", err)
	}
	out, err := scanMessages(rows)
	if err != nil {
		return nil, fmt.Errorf("callstore: trace messages: %w", err)
	}
	return out, nil
}

// TraceTimeline returns one page of a contact trace with calls and
// messages together (SPEC §8: newest first): at most limit items in all,
// ordered on (time, id) across both tables, and the cursor of the next
// page, empty on the last. Calls are selected as by TraceCalls, messages
// alike; both read written rows.
func (s *Store) TraceTimeline(ctx context.Context, id int64, numbers []string, since, until time.Time, cur string, limit int) (calls []cdr.Record, msgs []cdr.Message, next string, err error) {
	var after *cursor
	if cur != "" {
		c, err := decodeCursor(cur)
		if err != nil {
			return nil, nil, "", fmt.Errorf("callstore: trace cursor: %w", storage.ErrInvalidCursor)
		}
		after = &c
	}
	allCalls, callsNext, err := s.TraceCalls(ctx, id, numbers, since, until, cur, limit)
	if err != nil {
		return nil, nil, "", err
	}
	allMsgs, err := s.traceMessages(ctx, id, numbers, since.UnixMilli(), until.UnixMilli(), after, limit+1)
	if err != nil {
		return nil, nil, "", err
	}
	// Merge the two newest-first lists up to limit items.
	i, j := 0, 0
	var last cursor
	for i+j < limit && (i < len(allCalls) || j < len(allMsgs)) {
		takeCall := j >= len(allMsgs) || (i < len(allCalls) && newerThan(
			cursor{ms: toMillis(allCalls[i].StartedAt), id: allCalls[i].ID},
			cursor{ms: toMillis(allMsgs[j].At), id: allMsgs[j].ID}))
		if takeCall {
			last = cursor{ms: toMillis(allCalls[i].StartedAt), id: allCalls[i].ID}
			i++
		} else {
			last = cursor{ms: toMillis(allMsgs[j].At), id: allMsgs[j].ID}
			j++
		}
	}
	if callsNext != "" || i < len(allCalls) || j < len(allMsgs) {
		next = encodeCursor(last)
	}
	return allCalls[:i], allMsgs[:j], next, nil
}

// newerThan orders (time, id) keys newest first, as the trace pages.
func newerThan(a, b cursor) bool {
	return a.ms > b.ms || (a.ms == b.ms && a.id > b.id)
}
