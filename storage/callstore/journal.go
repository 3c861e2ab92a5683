package callstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"go.uber.org/zap"

	"github.com/switchboard-sip/switchboard/cdr"
	"github.com/switchboard-sip/switchboard/storage"
)

// The journal lets a call in progress stay out of the database: the record
// is written once, when the call has ended, instead of at its start, its
// answer and its end (each write updates every index of the calls table).
// Every version the call path saves is appended to a small local file, in
// groups (one write and one fdatasync for all the saves that came while
// the previous group was written), so that a SIGKILL loses no record: the
// next start reads the file back and puts the calls that were open at the
// crash into the database, where a BYE through the signed Record-Route
// completes them as it did before (callctl.Tracker.Bye). A clean stop
// writes the open calls to the database and empties the file.
//
// One node owns the file: only for SQLite, whose database is this node's
// alone. With PostgreSQL an open call must be in the shared database, so
// that another node can complete it or close it as node lost (SPEC §11).

// checkpointSize is the journal size past which it is rewritten with just
// the records still pending (a variable for the tests).
var checkpointSize int64 = 8 << 20

// maxSpare bounds the queue kept for the next group: a burst of saves
// must not leave its high-water mark allocated.
const maxSpare = 1024

// JournalPath is the journal file of a SQLite database: beside it, named
// after it. It is "" for an in-memory database or another driver.
func JournalPath(driver, dsn string) string {
	if driver != storage.SQLite {
		return ""
	}
	path, query, _ := strings.Cut(dsn, "?")
	path = strings.TrimPrefix(path, "file:")
	if path == "" || path == ":memory:" || strings.Contains(query, "mode=memory") {
		return ""
	}
	return path + ".calls-journal"
}

// journal is the open journal file; its goroutine is the only writer.
type journal struct {
	path  string
	f     *os.File
	size  int64
	next  int64 // the size past which the file is rewritten
	buf   []byte
	spare []cdr.Record
	wake  chan struct{}
	stop  chan struct{}
	done  chan struct{}
}

// readJournal returns the newest version of each record in the file at
// path, in the order of their last save. A missing file has none; a
// damaged tail (a write cut by a crash) ends the reading.
func readJournal(path string) ([]cdr.Record, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("callstore: read journal: %w", err)
	}
	at := map[string]int{}
	var out []cdr.Record
	for {
		r, rest, ok := nextFrame(b)
		if !ok {
			break
		}
		b = rest
		if i, seen := at[r.ID]; seen {
			out[i] = r
			continue
		}
		at[r.ID] = len(out)
		out = append(out, r)
	}
	return out, nil
}

// OpenJournal makes the store keep calls in progress in the journal at
// path instead of the database, after putting the calls that the file
// holds from a crash back on their way to the database. The agent calls it
// before any call arrives.
func (s *Store) OpenJournal(ctx context.Context, path string) error {
	recs, err := readJournal(path)
	if err != nil {
		return err
	}
	if err := s.recoverJournal(ctx, recs); err != nil {
		return err
	}
	j := &journal{path: path, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	s.mu.Lock()
	s.jn, s.hold = j, true
	s.mu.Unlock()
	// The records just recovered are pending: the new file starts with them.
	if err := s.checkpoint(j); err != nil {
		s.mu.Lock()
		s.jn, s.hold = nil, false
		s.mu.Unlock()
		return err
	}
	go s.runJournal(j)
	return nil
}

// recoverJournal queues the records of a crash for the database, except
// those the database has already: ended, or open while the journal's
// version is open too (an open call reaches the database only when the
// store lets go of it, with its newest version). If the database cannot
// say, the record stays held: readable, kept in the journal, written when
// the call ends or the store closes.
func (s *Store) recoverJournal(ctx context.Context, recs []cdr.Record) error {
	n := 0
	for _, r := range recs {
		exists, ended, err := s.inDB(ctx, r.ID)
		if err == nil && exists && (ended || r.EndedAt == nil) {
			continue
		}
		s.mu.Lock()
		s.queueHeldLocked(normalize(r), err != nil)
		s.mu.Unlock()
		n++
	}
	if n > 0 {
		s.log.Warn("calls in progress at an unclean stop recovered from the journal", zap.Int("records", n))
		signal(s.wake)
	}
	return nil
}

// inDB tells whether the database has the record, and ended.
func (s *Store) inDB(ctx context.Context, id string) (exists, ended bool, err error) {
	var at any
	err = s.db.QueryRowContext(ctx, s.db.Rebind(`SELECT ended_at FROM calls WHERE id = ?`), id).Scan(&at)
	if errors.Is(err, sql.ErrNoRows) {
		return false, false, nil
	}
	if err != nil {
		return false, false, err
	}
	return true, at != nil, nil
}

// runJournal appends what the call path saved, a group at a time.
func (s *Store) runJournal(j *journal) {
	defer close(j.done)
	for {
		select {
		case <-j.wake:
		case <-j.stop:
			s.appendQueued(j)
			return
		}
		s.appendQueued(j)
	}
}

// appendQueued writes the queued versions and syncs them. When the file
// fails (disk full), the store stops holding calls back: they go to the
// database at once, as without a journal.
func (s *Store) appendQueued(j *journal) {
	s.mu.Lock()
	batch := s.jqueue
	s.jqueue = j.spare[:0]
	s.mu.Unlock()
	if len(batch) == 0 {
		j.spare = batch
		return
	}
	j.buf = j.buf[:0]
	for i := range batch {
		j.buf = appendFrame(j.buf, &batch[i])
	}
	clear(batch) // the records' strings are not the journal's to keep
	j.spare = nil
	if cap(batch) <= maxSpare {
		j.spare = batch[:0]
	}
	err := s.writeJournal(j, j.buf)
	if cap(j.buf) > maxSpare*512 {
		j.buf = nil // a burst's buffer is not kept for ever
	}
	if err != nil {
		s.dropJournal(j, err)
		return
	}
	if j.size > j.next {
		if err := s.checkpoint(j); err != nil {
			s.dropJournal(j, err)
		}
	}
}

func (s *Store) writeJournal(j *journal, b []byte) error {
	if _, err := j.f.Write(b); err != nil {
		return fmt.Errorf("callstore: journal: %w", err)
	}
	if err := j.f.Sync(); err != nil {
		return fmt.Errorf("callstore: journal: %w", err)
	}
	j.size += int64(len(b))
	return nil
}

// checkpoint rewrites the journal with the records still pending, so that
// it does not grow with every call ever made. Versions queued meanwhile are
// older than those taken here, and later ones are appended to the new file.
func (s *Store) checkpoint(j *journal) error {
	// The records are copied under the lock (the SIP path saves under it)
	// and encoded after.
	s.mu.Lock()
	recs := make([]cdr.Record, 0, len(s.pending))
	for _, p := range s.pending {
		recs = append(recs, p.rec)
	}
	clear(s.jqueue)
	s.jqueue = s.jqueue[:0]
	s.mu.Unlock()
	var b []byte
	for i := range recs {
		b = appendFrame(b, &recs[i])
	}
	tmp := j.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("callstore: journal: %w", err)
	}
	if _, err := f.Write(b); err == nil {
		err = f.Sync()
	}
	if err == nil {
		err = os.Rename(tmp, j.path)
	}
	if err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("callstore: journal: %w", err)
	}
	syncDir(filepath.Dir(j.path))
	if j.f != nil {
		j.f.Close()
	}
	j.f, j.size = f, int64(len(b))
	// While the database is away the pending records grow: the next
	// rewrite waits until the file has doubled, so that rewriting stays
	// linear in what was appended.
	j.next = max(checkpointSize, 2*j.size)
	return nil
}

// syncDir makes a rename in dir durable; where a directory cannot be
// synced the rename is as durable as the file system makes it anyway.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// dropJournal stops holding calls back after the journal failed.
func (s *Store) dropJournal(j *journal, err error) {
	s.log.Error("call journal failed: calls in progress go to the database again", zap.String("path", j.path), zap.Error(err))
	s.mu.Lock()
	s.hold = false
	s.releaseHeldLocked()
	s.mu.Unlock()
	signal(s.wake)
}

// closeJournal ends the journal after the store wrote everything: the
// file is emptied, since the database holds every record. When records
// are left unwritten, the file keeps them for the next start.
func (s *Store) closeJournal(written bool) {
	s.mu.Lock()
	j := s.jn
	s.mu.Unlock()
	if j == nil {
		return
	}
	close(j.stop)
	<-j.done
	if written && s.hold {
		if err := s.checkpoint(j); err != nil {
			s.log.Warn("call journal not emptied", zap.Error(err))
		}
	}
	if j.f != nil {
		j.f.Close()
	}
}

// ReadJournal shows the calls in progress of the node that owns the
// journal at path, for the command line: they are read, never written.
func (s *Store) ReadJournal(ctx context.Context, path string) error {
	recs, err := readJournal(path)
	if err != nil {
		return err
	}
	for _, r := range recs {
		if _, ended, err := s.inDB(ctx, r.ID); err == nil && ended {
			continue
		}
		s.mu.Lock()
		if _, ok := s.pending[r.ID]; !ok {
			s.queueHeldLocked(normalize(r), true)
		}
		s.mu.Unlock()
	}
	return nil
}
