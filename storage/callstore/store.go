// Package callstore keeps call records (SPEC §3, §8): one writer goroutine
// batches saves so the SIP path never waits for the disk, and reads see a
// saved record at once, written or not. It sits above storage and cdr and
// imports no domain package: callctl and contacts use it through small
// interfaces they declare (the agent checks that it implements them), so
// every arrow between them points down.
package callstore

import (
	"github.com/switchboard-sip/switchboard/cdr"

	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/switchboard-sip/switchboard/storage"
)

// Batching limits of the call record writer. A batch is written when the
// window has passed since the first unwritten save, or at once when it holds
// maxBatch records: the window keeps the INVITE path free of per-call commits,
// the cap keeps one transaction short enough not to starve readers.
const (
	batchWindow   = 20 * time.Millisecond
	maxBatch      = 500
	minRetryDelay = 50 * time.Millisecond
	maxRetryDelay = 5 * time.Second
	defaultLimit  = 50
	maxLimit      = 1000
)

// callMigrations are the schema steps of the "calls" component. Append only.
//
// Every write of a record updates each index, so each one is here for a
// query that needs it:
//
//	calls_started          List without filter (the board), retention (DeleteBefore)
//	calls_call_id          ByCallID (a BYE after a restart)
//	calls_disposition      List ?disposition=
//	calls_missed           List ?missed (the board's missed list), UnlinkedMissed
//	calls_caller_raw,      List ?number= matches four columns with OR: each one
//	calls_called_raw       needs an index or the OR becomes a table scan
//	calls_contact_time     trace, List ?contact_id=, call history, Before
//	calls_caller_contact,  trace (per number, by contact), List ?number=
//	calls_called_contact
//	calls_stats            /api/stats
//	calls_wrapup           /api/stats reasons and satisfaction
//
// Times are unix milliseconds in UTC: integers order correctly, compare
// cheaply in keyset pagination and need no parsing on PostgreSQL or SQLite.
var callMigrations = []string{
	`CREATE TABLE calls (
		id          TEXT    NOT NULL PRIMARY KEY,
		call_id     TEXT    NOT NULL DEFAULT '',
		direction   TEXT    NOT NULL DEFAULT '',
		trunk       TEXT    NOT NULL DEFAULT '',
		caller      TEXT    NOT NULL DEFAULT '',
		caller_raw  TEXT    NOT NULL DEFAULT '',
		caller_name TEXT    NOT NULL DEFAULT '',
		called      TEXT    NOT NULL DEFAULT '',
		called_raw  TEXT    NOT NULL DEFAULT '',
		hotline     TEXT    NOT NULL DEFAULT '',
		contact_id  INTEGER,
		node        TEXT    NOT NULL DEFAULT '',
		started_at  INTEGER NOT NULL,
		ringing_at  INTEGER,
		answered_at INTEGER,
		ended_at    INTEGER,
		ring_ms     INTEGER NOT NULL DEFAULT 0,
		talk_ms     INTEGER NOT NULL DEFAULT 0,
		sip_status  INTEGER NOT NULL DEFAULT 0,
		disposition TEXT    NOT NULL DEFAULT '',
		reason      TEXT    NOT NULL DEFAULT '',
		missed_id   TEXT    NOT NULL DEFAULT '',
		recording   TEXT    NOT NULL DEFAULT ''
	);
	CREATE INDEX calls_started ON calls(started_at, id);
	CREATE INDEX calls_call_id ON calls(call_id, started_at);
	CREATE INDEX calls_caller ON calls(caller, started_at);
	CREATE INDEX calls_called ON calls(called, started_at);
	CREATE INDEX calls_caller_raw ON calls(caller_raw, started_at);
	CREATE INDEX calls_called_raw ON calls(called_raw, started_at);
	CREATE INDEX calls_contact ON calls(contact_id, started_at);
	CREATE INDEX calls_disposition ON calls(disposition, started_at);`,
	// Missed calls are two dispositions of one direction: an IN over the
	// disposition index cannot return them in start order, so they get a
	// partial index of their own (the board and --missed read it).
	`CREATE INDEX calls_missed ON calls(started_at, id)
		WHERE direction = 'inbound' AND disposition IN ('no_answer', 'busy');`,
	// The contact trace (contacts.Store.Trace) pages through a contact's
	// calls in (started_at, id) order as a union of index range scans that
	// each yield page order and stop at the page's end: the contact's calls,
	// and per number its calls not linked to the contact (contact_id right
	// after the number, so those are found without walking the contact's
	// own). These indexes replace the narrower ones they extend.
	`CREATE INDEX calls_contact_time ON calls(contact_id, started_at, id);
	DROP INDEX calls_contact;
	CREATE INDEX calls_caller_contact ON calls(caller, contact_id, started_at, id);
	DROP INDEX calls_caller;
	CREATE INDEX calls_called_contact ON calls(called, contact_id, started_at, id);
	DROP INDEX calls_called;`,
	// Front-desk insight (SPEC §2, §10): who answered, the hotline's
	// campaign and the wrap-up. Switchboard's own end reason moves to
	// end_reason so that "reason" is the front desk's, as in SPEC §8.
	// satisfaction is 0 until scored; wrapup_at orders wrap-up versions.
	`ALTER TABLE calls RENAME COLUMN reason TO end_reason;
	ALTER TABLE calls ADD COLUMN campaign TEXT NOT NULL DEFAULT '';
	ALTER TABLE calls ADD COLUMN answered_by TEXT NOT NULL DEFAULT '';
	ALTER TABLE calls ADD COLUMN reason TEXT NOT NULL DEFAULT '';
	ALTER TABLE calls ADD COLUMN satisfaction INTEGER NOT NULL DEFAULT 0;
	ALTER TABLE calls ADD COLUMN notes TEXT NOT NULL DEFAULT '';
	ALTER TABLE calls ADD COLUMN wrapup_at INTEGER;`,
	statsMigration,
	wrapUpMigration,
	wrapUpIndexMigration,
	// Emergency calls and the calls back to them (SPEC §1): a flag and
	// the emergency call's record id.
	`ALTER TABLE calls ADD COLUMN emergency INTEGER NOT NULL DEFAULT 0;
	ALTER TABLE calls ADD COLUMN emergency_callback TEXT NOT NULL DEFAULT '';`,
}

// missedSQL must repeat the partial index's condition word for word, with
// literals, for the planner to use that index.
const missedSQL = `direction = 'inbound' AND disposition IN ('no_answer', 'busy')`

const callColumns = `id, call_id, direction, trunk, caller, caller_raw, caller_name, called,
	called_raw, hotline, contact_id, node, started_at, ringing_at, answered_at, ended_at,
	ring_ms, talk_ms, sip_status, disposition, end_reason, missed_id, recording,
	campaign, answered_by, reason, satisfaction, notes, wrapup_at, resolved, transcript,
	emergency, emergency_callback`

// upsertCall inserts or replaces a record, except its wrap-up: the front
// desk sets that through SetWrapUp while the call path may still save
// versions that never saw it, so the version with the later wrapup_at
// keeps it (a NULL wrapup_at never wins). Nor does a version without a
// missed_id clear one: the missed-call service links a record in its own
// transaction, and a version saved (or recovered from the journal) from
// before that link must not undo it.
const upsertCall = `INSERT INTO calls (` + callColumns + `)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
	ON CONFLICT (id) DO UPDATE SET
		call_id = excluded.call_id, direction = excluded.direction, trunk = excluded.trunk,
		caller = excluded.caller, caller_raw = excluded.caller_raw,
		caller_name = excluded.caller_name, called = excluded.called,
		called_raw = excluded.called_raw, hotline = excluded.hotline,
		contact_id = excluded.contact_id, node = excluded.node,
		started_at = excluded.started_at, ringing_at = excluded.ringing_at,
		answered_at = excluded.answered_at, ended_at = excluded.ended_at,
		ring_ms = excluded.ring_ms, talk_ms = excluded.talk_ms,
		sip_status = excluded.sip_status, disposition = excluded.disposition,
		end_reason = excluded.end_reason,
		missed_id = CASE WHEN excluded.missed_id = '' THEN calls.missed_id ELSE excluded.missed_id END,
		recording = excluded.recording, campaign = excluded.campaign,
		answered_by = excluded.answered_by,
		emergency = excluded.emergency, emergency_callback = excluded.emergency_callback,
		reason = CASE WHEN ` + newerWrapUp + ` THEN excluded.reason ELSE calls.reason END,
		satisfaction = CASE WHEN ` + newerWrapUp + ` THEN excluded.satisfaction ELSE calls.satisfaction END,
		notes = CASE WHEN ` + newerWrapUp + ` THEN excluded.notes ELSE calls.notes END,
		resolved = CASE WHEN ` + newerWrapUp + ` THEN excluded.resolved ELSE calls.resolved END,
		transcript = CASE WHEN ` + newerWrapUp + ` OR calls.transcript = '' THEN excluded.transcript ELSE calls.transcript END,
		wrapup_at = CASE WHEN ` + newerWrapUp + ` THEN excluded.wrapup_at ELSE calls.wrapup_at END`

const newerWrapUp = `excluded.wrapup_at >= COALESCE(calls.wrapup_at, 0)`

// Query selects call records for List. Zero fields do not filter.
type Query struct {
	Limit       int    // page size; 0 means 50, capped at 1000
	Disposition string // exact disposition
	Number      string // caller or called, E.164 or as received
	Since       time.Time
	Cursor      string // from a previous List; empty for the first page
	Missed      bool   // inbound calls that were not answered (no_answer, busy)
	ContactID   int64  // calls linked to this contact
}

// pendingRecord is a saved record not yet known to be in the database. seq
// orders saves, so the writer can tell whether the version it wrote is still
// the newest one.
type pendingRecord struct {
	rec cdr.Record
	seq uint64
	// held: a call in progress kept in the journal, not yet for the
	// database (or, on the command line, another process's open call).
	held bool
}

// Store keeps call records. Saves go through one writer goroutine that
// batches them, so the SIP path never waits for the disk; reads see saved
// records at once, written or not.
type Store struct {
	db  *storage.DB
	log *zap.Logger

	mu        sync.Mutex
	pending   map[string]pendingRecord
	seq       uint64        // last seq handed out
	lowest    uint64        // smallest seq still pending; seq+1 when none
	written   chan struct{} // closed and replaced whenever lowest moves
	wake      chan struct{} // a save arrived
	urgent    chan struct{} // a flush or a full batch: skip the window
	closing   bool
	abort     context.CancelFunc
	done      chan struct{}
	lastError error
	merged    map[int64]int64 // contact ids merged away → the surviving contact
	// writing is when the writer's current pass began; zero between
	// passes. A pass that takes long is a database that holds it (locked,
	// a disk that does not answer) before any error says so.
	writing time.Time
	rollLoc atomic.Pointer[time.Location] // zone of the statistics' rollups; nil: off (rollup.go)

	// upsert is upsertCall prepared once, by the writer, for all batches:
	// preparing the 29-column statement again per batch cost as much as
	// several rows.
	upsert *sql.Stmt

	// The journal (journal.go): while hold is set, calls in progress are
	// held out of the database and every saved version is queued in
	// jqueue for the file. nheld counts the held pending records.
	jn     *journal
	hold   bool
	jqueue []cdr.Record
	nheld  int
	// rows counts the records the writer has put in the database.
	rows atomic.Uint64

	// maxPending bounds the local queue: records of distinct calls held
	// while the database is away. Saves of a queued call always go in.
	maxPending int
	dropped    atomic.Uint64

	// msgs queues message records for their own writer (messages.go).
	msgs *messageQueue
}

// maxMerged bounds the remembered contact merges; they matter only for
// calls still in progress when their contact was merged away.
const maxMerged = 10000

// DefaultMaxPending is the local queue's bound: at 100 calls per second,
// over a quarter of an hour of calls without a database.
const DefaultMaxPending = 100_000

// New migrates the calls schema and starts the writer.
func New(ctx context.Context, db *storage.DB, log *zap.Logger) (*Store, error) {
	if db == nil {
		return nil, errors.New("callstore: no database")
	}
	if log == nil {
		log = zap.NewNop()
	}
	if err := db.Migrate(ctx, "calls", callMigrations); err != nil {
		return nil, fmt.Errorf("callstore: %w", err)
	}
	if err := db.Migrate(ctx, "nodes", nodeMigrations); err != nil {
		return nil, fmt.Errorf("callstore: %w", err)
	}
	if err := db.Migrate(ctx, "messages", messageMigrations); err != nil {
		return nil, fmt.Errorf("callstore: %w", err)
	}
	wctx, cancel := context.WithCancel(context.Background())
	s := &Store{
		db:      db,
		log:     log.Named("calls"),
		pending: make(map[string]pendingRecord),
		lowest:  1,
		written: make(chan struct{}),
		wake:    make(chan struct{}, 1),
		urgent:  make(chan struct{}, 1),
		abort:   cancel,
		done:    make(chan struct{}),

		maxPending: DefaultMaxPending,
		msgs:       newMessageQueue(),
	}
	go s.run(wctx)
	go s.runMessages(wctx)
	return s, nil
}

// normalize makes a record look the way it will come back from the
// database, so a pending record and a written one are indistinguishable.
func normalize(r cdr.Record) cdr.Record {
	r.StartedAt = fromMillis(toMillis(r.StartedAt))
	var ts *[4]time.Time // one allocation for all of the record's times
	for i, p := range [...]**time.Time{&r.RingingAt, &r.AnsweredAt, &r.EndedAt, &r.WrapUp.At} {
		if *p != nil {
			if ts == nil {
				ts = new([4]time.Time)
			}
			ts[i] = fromMillis(toMillis(**p))
			*p = &ts[i]
		}
	}
	return r
}

// Save queues a record to be inserted or replaced (by ID). It never blocks on
// the database: the SIP INVITE path calls it. A record without an ID is
// dropped with a logged error, since it could never be read back.
func (s *Store) Save(r cdr.Record) {
	if r.ID == "" {
		s.log.Error("call record without id dropped", zap.String("call_id", r.CallID))
		return
	}
	r = normalize(r)
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		s.log.Error("call record saved after close dropped", zap.String("id", r.ID), zap.String("call_id", r.CallID))
		return
	}
	if into, ok := s.merged[r.ContactID]; ok {
		r.ContactID = into
	}
	old, ok := s.pending[r.ID]
	// Calls in progress held in the journal are bounded by the calls a
	// node carries, not by the database's absence: they do not count.
	if !ok && len(s.pending)-s.nheld >= s.maxPending {
		s.mu.Unlock()
		s.dropLocal(r)
		return
	}
	if ok && newerWrap(old.rec.WrapUp, r.WrapUp) {
		r.WrapUp = keepTranscript(old.rec.WrapUp, r.WrapUp) // the call path never saw the front desk's wrap-up
	}
	full := s.queueLocked(r)
	s.mu.Unlock()
	signal(s.wake)
	if full {
		signal(s.urgent)
	}
}

// Relink moves the calls and messages of contact from to contact into: a contact
// that a call created lost the race for its number to another one (an
// import, another node), and the call must count for the contact that
// survived (contacts export, history). Records saved later with the old
// id, by calls still in progress, are moved as they are saved.
func (s *Store) Relink(ctx context.Context, from, into int64) error {
	if from == 0 || into == 0 || from == into {
		return nil
	}
	s.mu.Lock()
	if s.merged == nil || len(s.merged) >= maxMerged {
		s.merged = map[int64]int64{}
	}
	s.merged[from] = into
	for _, p := range s.pending {
		if p.rec.ContactID == from {
			// Queued again: the writer may be writing the old version now.
			r := p.rec
			r.ContactID = into
			s.queueLocked(r)
		}
	}
	s.mu.Unlock()
	signal(s.wake)
	if err := s.inTx(ctx, func(tx *sql.Tx) error {
		return s.rollupChange(ctx, tx, `contact_id = ?`, []any{from}, false, func() error {
			_, err := tx.ExecContext(ctx, s.db.Rebind(`UPDATE calls SET contact_id = ? WHERE contact_id = ?`), into, from)
			return err
		})
	}); err != nil {
		return fmt.Errorf("callstore: relink contact %d to %d: %w", from, into, err)
	}
	return s.relinkMessages(ctx, from, into)
}

// dropLocal counts and logs a record the full local queue could not take:
// the database has been away for longer than the queue's bound.
func (s *Store) dropLocal(r cdr.Record) {
	if n := s.dropped.Add(1); n&(n-1) == 0 {
		// Logged at powers of two: an outage must not flood the log too.
		s.log.Error("call record dropped: the local queue is full while the database is away",
			zap.String("id", r.ID), zap.String("call_id", r.CallID), zap.Int("queue", s.maxPending), zap.Uint64("dropped", n))
	}
}

// Pending is how many saved records wait for the database: the local
// queue that holds them while it is away (SPEC §11).
func (s *Store) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pending)
}

// Dropped is how many records the full local queue could not take.
func (s *Store) Dropped() uint64 { return s.dropped.Load() }

// Degraded reports the last write error while records wait for the
// database, nil when the writer is keeping up.
func (s *Store) Degraded() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastError
}

// Stalled is how long the writer has been inside one write pass, zero
// when it is not writing: /healthz reports a pass held longer than a
// moment (a database locked by another process waits out its busy
// timeout before it fails).
func (s *Store) Stalled() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.writing.IsZero() {
		return 0
	}
	return time.Since(s.writing)
}

// queueLocked makes r the pending version of its id and reports whether
// the batch is full. A call in progress is held back while the journal
// keeps it. s.mu is held.
func (s *Store) queueLocked(r cdr.Record) bool {
	return s.queueHeldLocked(r, s.hold && r.EndedAt == nil && !s.closing)
}

// queueHeldLocked is queueLocked with held decided by the caller.
func (s *Store) queueHeldLocked(r cdr.Record, held bool) bool {
	s.seq++
	if !held && len(s.pending)-s.nheld == 0 {
		s.lowest = s.seq
	}
	if old, ok := s.pending[r.ID]; ok && old.held {
		s.nheld--
	}
	if held {
		s.nheld++
	}
	s.pending[r.ID] = pendingRecord{rec: r, seq: s.seq, held: held}
	if s.jn != nil && s.hold {
		s.jqueue = append(s.jqueue, r)
		signal(s.jn.wake)
	}
	return len(s.pending)-s.nheld >= maxBatch
}

// releaseHeldLocked sends every held call to the database: at close, or
// when the journal failed. s.mu is held.
func (s *Store) releaseHeldLocked() {
	for _, p := range s.pending {
		if p.held {
			s.queueHeldLocked(p.rec, false)
		}
	}
}

// settleLocked moves lowest to the oldest save not yet written (held
// calls wait for no one) and wakes the flushes. s.mu is held.
func (s *Store) settleLocked() {
	low := s.seq + 1
	for _, p := range s.pending {
		if !p.held {
			low = min(low, p.seq)
		}
	}
	s.lowest = low
	close(s.written)
	s.written = make(chan struct{})
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// Flush waits until every record saved before the call is in the database.
// When the database is failing, it waits for the writer's retries until ctx
// ends.
func (s *Store) Flush(ctx context.Context) error {
	s.mu.Lock()
	target := s.seq
	s.mu.Unlock()
	signal(s.urgent)
	for {
		s.mu.Lock()
		if s.lowest > target {
			s.mu.Unlock()
			return nil
		}
		written := s.written
		s.mu.Unlock()
		select {
		case <-written:
		case <-s.done:
			s.mu.Lock()
			ok, n := s.lowest > target, len(s.pending)
			s.mu.Unlock()
			if ok {
				return nil
			}
			return fmt.Errorf("callstore: flush: writer stopped with %d records unwritten", n)
		case <-ctx.Done():
			s.mu.Lock()
			lastErr, n := s.lastError, len(s.pending)
			s.mu.Unlock()
			if lastErr != nil {
				return fmt.Errorf("callstore: flush: %d records unwritten (last error: %v): %w", n, lastErr, ctx.Err())
			}
			return fmt.Errorf("callstore: flush: %d records unwritten: %w", n, ctx.Err())
		}
	}
}

// Close flushes and stops the writer. When ctx ends first, the writer is
// stopped anyway and the error tells how many records were lost.
func (s *Store) Close(ctx context.Context) error {
	s.mu.Lock()
	already := s.closing
	s.closing = true
	s.mu.Unlock()
	if already {
		<-s.done
		<-s.msgs.done
		return nil
	}
	s.mu.Lock()
	if s.jn != nil {
		s.releaseHeldLocked()
	}
	s.mu.Unlock()
	err := errors.Join(s.Flush(ctx), s.FlushMessages(ctx))
	s.abort()
	<-s.done
	<-s.msgs.done
	s.closeJournal(err == nil)
	return err
}

// run is the single writer. It owns the database side of writes; the
// pending map is shared with readers under mu.
func (s *Store) run(ctx context.Context) {
	defer close(s.done)
	defer func() {
		if s.upsert != nil {
			s.upsert.Close()
		}
	}()
	delay := time.Duration(0)
	for {
		if delay == 0 {
			select {
			case <-s.wake:
			case <-s.urgent:
			case <-ctx.Done():
				return
			}
			// Let more saves join the batch unless someone waits for it.
			t := time.NewTimer(batchWindow)
			select {
			case <-t.C:
			case <-s.urgent:
				t.Stop()
			case <-ctx.Done():
				t.Stop()
				return
			}
		} else {
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return
			}
		}
		s.mu.Lock()
		s.writing = time.Now()
		s.mu.Unlock()
		err := s.writePending(ctx)
		s.mu.Lock()
		s.writing = time.Time{}
		s.mu.Unlock()
		switch {
		case err == nil:
			if delay != 0 {
				s.log.Info("call records written again after database errors")
			}
			delay = 0
		case ctx.Err() != nil:
			return
		default:
			delay = min(max(2*delay, minRetryDelay), maxRetryDelay)
			s.mu.Lock()
			s.lastError = err
			n := len(s.pending)
			s.mu.Unlock()
			s.log.Warn("call records not written, will retry", zap.Error(err), zap.Int("pending", n), zap.Duration("retry_in", delay))
		}
	}
}

// writePending writes everything pending, maxBatch records per transaction.
// Saves arriving meanwhile are taken by the next pass.
func (s *Store) writePending(ctx context.Context) error {
	for {
		s.mu.Lock()
		snapshot := make([]pendingRecord, 0, len(s.pending)-s.nheld)
		for _, p := range s.pending {
			if !p.held {
				snapshot = append(snapshot, p)
			}
		}
		if len(snapshot) == 0 {
			s.settleLocked()
			s.mu.Unlock()
			return nil
		}
		s.mu.Unlock()
		// Map order is random; in start order the rows land on neighbouring
		// B-tree pages of every index, which is several times faster.
		sort.Slice(snapshot, func(i, j int) bool { return before(snapshot[i].rec, snapshot[j].rec) })
		for len(snapshot) > 0 {
			batch := snapshot[:min(len(snapshot), maxBatch)]
			snapshot = snapshot[len(batch):]
			if err := s.writeBatch(ctx, batch); err != nil {
				return err
			}
			s.mu.Lock()
			for _, p := range batch {
				// A newer save of the same id stays pending for the next pass.
				if cur, ok := s.pending[p.rec.ID]; ok && cur.seq == p.seq {
					delete(s.pending, p.rec.ID)
				}
			}
			s.lastError = nil
			s.mu.Unlock()
		}
		s.mu.Lock()
		s.settleLocked()
		more := len(s.pending)-s.nheld > 0
		s.mu.Unlock()
		if !more {
			return nil
		}
	}
}

func (s *Store) writeBatch(ctx context.Context, batch []pendingRecord) error {
	// Statements run without ctx: a cancellable context costs the sqlite
	// driver a goroutine per statement, and aborting is only needed
	// between batches.
	ctx = context.WithoutCancel(ctx)
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("callstore: begin: %w", err)
	}
	defer tx.Rollback()
	if s.upsert == nil {
		if s.upsert, err = s.db.PrepareContext(ctx, s.db.Rebind(upsertCall)); err != nil {
			s.upsert = nil
			return fmt.Errorf("callstore: prepare: %w", err)
		}
	}
	// The statement is prepared on each pooled connection once and
	// reused by every later transaction on it.
	stmt := tx.StmtContext(ctx, s.upsert)
	defer stmt.Close()
	if err := s.rollupBatch(ctx, tx, batch); err != nil {
		return err
	}
	for _, p := range batch {
		r := p.rec
		var contact any
		if r.ContactID != 0 {
			contact = r.ContactID
		}
		_, err := stmt.ExecContext(ctx, r.ID, r.CallID, string(r.Direction), r.Trunk, r.Caller,
			r.CallerRaw, r.CallerName, r.Called, r.CalledRaw, r.Hotline, contact, r.Node,
			toMillis(r.StartedAt), nullMillis(r.RingingAt), nullMillis(r.AnsweredAt),
			nullMillis(r.EndedAt), r.RingMS, r.TalkMS, r.SIPStatus, string(r.Disposition),
			r.EndReason, r.MissedID, r.Recording, r.Campaign, r.AnsweredBy, r.WrapUp.Reason,
			r.Satisfaction, r.Notes, nullMillis(r.WrapUp.At), nullBool(r.Resolved), r.Transcript,
			boolInt(r.Emergency), r.EmergencyCallback)
		if err != nil {
			return fmt.Errorf("callstore: save %s: %w", r.ID, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("callstore: commit %d records: %w", len(batch), err)
	}
	s.rows.Add(uint64(len(batch)))
	return nil
}

// Get returns one record by its id.
func (s *Store) Get(ctx context.Context, id string) (cdr.Record, error) {
	s.mu.Lock()
	p, ok := s.pending[id]
	s.mu.Unlock()
	if ok {
		if p.rec.WrapUp.At == nil {
			if w, err := s.wrapUpOf(ctx, id); err == nil {
				p.rec.WrapUp = keepTranscript(w, p.rec.WrapUp)
			}
		}
		return p.rec, nil
	}
	rows, err := s.db.QueryContext(ctx, s.db.Rebind(`SELECT `+callColumns+` FROM calls WHERE id = ?`), id)
	if err != nil {
		return cdr.Record{}, fmt.Errorf("callstore: get %q: %w", id, err)
	}
	recs, err := scanCalls(rows)
	if err != nil {
		return cdr.Record{}, fmt.Errorf("callstore: get %q: %w", id, err)
	}
	if len(recs) == 0 {
		return cdr.Record{}, fmt.Errorf("callstore: get %q: %w", id, storage.ErrNotFound)
	}
	return recs[0], nil
}

// ByCallID returns the newest record with a SIP Call-ID, so that a BYE for a
// call set up before a restart can complete its record.
func (s *Store) ByCallID(ctx context.Context, callID string) (cdr.Record, error) {
	var best *cdr.Record
	newer := func(r cdr.Record) bool {
		return best == nil || r.StartedAt.After(best.StartedAt) ||
			(r.StartedAt.Equal(best.StartedAt) && r.ID > best.ID)
	}
	s.mu.Lock()
	for _, p := range s.pending {
		if p.rec.CallID == callID && newer(p.rec) {
			r := p.rec
			best = &r
		}
	}
	s.mu.Unlock()
	rows, err := s.db.QueryContext(ctx, s.db.Rebind(`SELECT `+callColumns+` FROM calls
		WHERE call_id = ? ORDER BY started_at DESC, id DESC LIMIT 1`), callID)
	if err != nil {
		return cdr.Record{}, fmt.Errorf("callstore: by call-id %q: %w", callID, err)
	}
	recs, err := scanCalls(rows)
	if err != nil {
		return cdr.Record{}, fmt.Errorf("callstore: by call-id %q: %w", callID, err)
	}
	if len(recs) == 1 && newer(recs[0]) {
		// A pending version of the same id is newer than the written one.
		if best == nil || best.ID != recs[0].ID {
			best = &recs[0]
		}
	}
	if best == nil {
		return cdr.Record{}, fmt.Errorf("callstore: by call-id %q: %w", callID, storage.ErrNotFound)
	}
	return *best, nil
}

// List returns records newest first, and the cursor of the next page (empty
// on the last page). Pending records are merged in, so a call shows up in
// the list as soon as it is saved.
func (s *Store) List(ctx context.Context, q Query) ([]cdr.Record, string, error) {
	if q.Limit <= 0 {
		q.Limit = defaultLimit
	}
	q.Limit = min(q.Limit, maxLimit)
	var after *cursor
	if q.Cursor != "" {
		c, err := decodeCursor(q.Cursor)
		if err != nil {
			return nil, "", fmt.Errorf("callstore: list: %w", err)
		}
		after = &c
	}

	s.mu.Lock()
	var fresh []cdr.Record
	pendingIDs := make(map[string]bool, len(s.pending))
	for id, p := range s.pending {
		pendingIDs[id] = true
		if q.matches(p.rec, after) {
			fresh = append(fresh, p.rec)
		}
	}
	s.mu.Unlock()

	var where []string
	var args []any
	if q.Disposition != "" {
		where = append(where, "disposition = ?")
		args = append(args, q.Disposition)
	}
	if q.Number != "" {
		where = append(where, "(caller = ? OR called = ? OR caller_raw = ? OR called_raw = ?)")
		args = append(args, q.Number, q.Number, q.Number, q.Number)
	}
	if !q.Since.IsZero() {
		where = append(where, "started_at >= ?")
		args = append(args, toMillis(q.Since))
	}
	if q.Missed {
		where = append(where, missedSQL)
	}
	if q.ContactID != 0 {
		where = append(where, "contact_id = ?")
		args = append(args, q.ContactID)
	}
	if after != nil {
		where = append(where, "(started_at < ? OR (started_at = ? AND id < ?))")
		args = append(args, after.ms, after.ms, after.id)
	}
	query := `SELECT ` + callColumns + ` FROM calls`
	if q.Missed && q.Number == "" && q.ContactID == 0 && s.db.Driver == "sqlite" {
		// Without statistics SQLite prefers the disposition index and then
		// sorts every missed call ever recorded (25 ms at 100k rows instead
		// of 0.5 ms); the number and contact indexes are narrower still, so
		// only force the partial index when neither applies.
		query += ` INDEXED BY calls_missed`
	}
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, " AND ")
	}
	// Rows of pending ids are stale and dropped below, so fetch enough extra
	// to still fill the page and to know whether another page follows.
	fetch := q.Limit + 1 + len(pendingIDs)
	query += ` ORDER BY started_at DESC, id DESC LIMIT ` + strconv.Itoa(fetch)
	rows, err := s.db.QueryContext(ctx, s.db.Rebind(query), args...)
	if err != nil {
		return nil, "", fmt.Errorf("callstore: list: %w", err)
	}
	stored, err := scanCalls(rows)
	if err != nil {
		return nil, "", fmt.Errorf("callstore: list: %w", err)
	}
	items := fresh
	for _, r := range stored {
		if !pendingIDs[r.ID] {
			items = append(items, r)
		}
	}
	if len(fresh) > 0 {
		sort.Slice(items, func(i, j int) bool { return before(items[j], items[i]) })
	}
	next := ""
	if len(items) > q.Limit {
		items = items[:q.Limit]
		last := items[len(items)-1]
		next = encodeCursor(cursor{ms: toMillis(last.StartedAt), id: last.ID})
	}
	if items == nil {
		items = []cdr.Record{}
	}
	return items, next, nil
}

// before orders records by (started_at, id), the key of pagination.
func before(a, b cdr.Record) bool {
	am, bm := toMillis(a.StartedAt), toMillis(b.StartedAt)
	return am < bm || (am == bm && a.ID < b.ID)
}

// matches is the Go twin of List's SQL filter, applied to pending records.
func (q Query) matches(r cdr.Record, after *cursor) bool {
	if q.Disposition != "" && string(r.Disposition) != q.Disposition {
		return false
	}
	if q.Number != "" && r.Caller != q.Number && r.Called != q.Number &&
		r.CallerRaw != q.Number && r.CalledRaw != q.Number {
		return false
	}
	if !q.Since.IsZero() && toMillis(r.StartedAt) < toMillis(q.Since) {
		return false
	}
	if q.Missed && !(r.Direction == cdr.Inbound &&
		(r.Disposition == cdr.NoAnswer || r.Disposition == cdr.Busy)) {
		return false
	}
	if q.ContactID != 0 && r.ContactID != q.ContactID {
		return false
	}
	if after != nil {
		ms := toMillis(r.StartedAt)
		if ms > after.ms || (ms == after.ms && r.ID >= after.id) {
			return false
		}
	}
	return true
}

// Prune deletes records that started before t (storage.retention) and
// reports how many went.
func (s *Store) Prune(ctx context.Context, t time.Time) (int64, error) {
	var n int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		return s.rollupChange(ctx, tx, `started_at < ?`, []any{toMillis(t)}, true, func() error {
			res, err := tx.ExecContext(ctx, s.db.Rebind(`DELETE FROM calls WHERE started_at < ?`), toMillis(t))
			if err == nil {
				n, _ = res.RowsAffected()
			}
			return err
		})
	})
	if err != nil {
		return 0, fmt.Errorf("callstore: prune before %s: %w", t.UTC().Format(time.RFC3339), err)
	}
	return n, nil
}

func scanCalls(rows *sql.Rows) ([]cdr.Record, error) {
	defer rows.Close()
	var out []cdr.Record
	for rows.Next() {
		var (
			r                        cdr.Record
			dir, disp                string
			contact                  sql.NullInt64
			started                  int64
			ringing, answered, ended sql.NullInt64
			wrapped, resolved        sql.NullInt64
			emergency                int64
		)
		if err := rows.Scan(&r.ID, &r.CallID, &dir, &r.Trunk, &r.Caller, &r.CallerRaw,
			&r.CallerName, &r.Called, &r.CalledRaw, &r.Hotline, &contact, &r.Node, &started,
			&ringing, &answered, &ended, &r.RingMS, &r.TalkMS, &r.SIPStatus, &disp, &r.EndReason,
			&r.MissedID, &r.Recording, &r.Campaign, &r.AnsweredBy, &r.WrapUp.Reason,
			&r.Satisfaction, &r.Notes, &wrapped, &resolved, &r.Transcript,
			&emergency, &r.EmergencyCallback); err != nil {
			return nil, err
		}
		r.Direction = cdr.Direction(dir)
		r.Disposition = cdr.Disposition(disp)
		r.ContactID = contact.Int64
		r.StartedAt = fromMillis(started)
		r.RingingAt = timePtr(ringing)
		r.AnsweredAt = timePtr(answered)
		r.EndedAt = timePtr(ended)
		r.WrapUp.At = timePtr(wrapped)
		r.Resolved = boolPtr(resolved)
		r.Emergency = emergency != 0
		out = append(out, r)
	}
	return out, rows.Err()
}

func toMillis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMillis(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

func nullMillis(t *time.Time) any {
	if t == nil {
		return nil
	}
	return toMillis(*t)
}

func timePtr(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := fromMillis(v.Int64)
	return &t
}

// cursor is the last (started_at, id) of a page.
type cursor struct {
	ms int64
	id string
}

func encodeCursor(c cursor) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(c.ms, 10) + ":" + c.id))
}

func decodeCursor(s string) (cursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return cursor{}, storage.ErrInvalidCursor
	}
	ms, id, ok := strings.Cut(string(b), ":")
	if !ok || id == "" {
		return cursor{}, storage.ErrInvalidCursor
	}
	n, err := strconv.ParseInt(ms, 10, 64)
	if err != nil {
		return cursor{}, storage.ErrInvalidCursor
	}
	return cursor{ms: n, id: id}, nil
}

// boolInt is a flag as both drivers store it: 0 or 1.
func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}
