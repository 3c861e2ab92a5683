package callstore

import (
	"github.com/switchboard-sip/switchboard/cdr"

	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/switchboard-sip/switchboard/callctl"
	"github.com/switchboard-sip/switchboard/storage"
	"github.com/switchboard-sip/switchboard/storage/storagetest"
)

// target names a test database: its driver and DSN.
type target struct{ driver, dsn string }

// newStore opens a store on a fresh database of the pass's driver (see
// storagetest).
func newStore(t testing.TB) (*Store, target) {
	t.Helper()
	driver, dsn := storagetest.Target(t, "calls")
	return openStore(t, target{driver, dsn})
}

// newSQLiteStore opens a store on a fresh SQLite file, for tests of SQLite's
// own behaviour (triggers, locks). query is appended to the DSN (a short
// busy timeout makes lock failures quick).
func newSQLiteStore(t testing.TB, query string) (*Store, target) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "calls.db")
	s, _ := openStore(t, target{storage.SQLite, path + "?" + query})
	return s, target{storage.SQLite, path}
}

func openStore(t testing.TB, tg target) (*Store, target) {
	t.Helper()
	db, err := storage.Open(tg.driver, tg.dsn)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(context.Background(), db, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Close(ctx); err != nil {
			t.Error(err)
		}
		db.Close()
	})
	return s, tg
}

// openRaw is a second, independent handle on the same database.
func openRaw(t testing.TB, tg target) *storage.DB {
	t.Helper()
	db, err := storage.Open(tg.driver, tg.dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func flush(t testing.TB, s *Store) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

var base = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

func rec(id string, at time.Time) cdr.Record {
	return cdr.Record{
		ID: id, CallID: "cid-" + id, Direction: callctl.Inbound, Trunk: "carrier",
		Caller: "+4915112345678", CallerRaw: "015112345678", CallerName: "Jane",
		Called: "+49301234560", CalledRaw: "0301234560", Hotline: "acme", Node: "sb-1",
		StartedAt: at, Disposition: cdr.Answered, SIPStatus: 200,
	}
}

func countRows(t testing.TB, path target) int {
	t.Helper()
	var n int
	if err := openRaw(t, path).QueryRow(`SELECT count(*) FROM calls`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestCallStoreUpsertRoundTrip(t *testing.T) {
	s, path := newStore(t)
	ctx := context.Background()

	r := rec("a1", base.Add(123456789*time.Nanosecond))
	s.Save(r)
	flush(t, s)

	ring := base.Add(time.Second)
	ans := base.Add(3 * time.Second)
	end := base.Add(63 * time.Second)
	r.RingingAt, r.AnsweredAt, r.EndedAt = &ring, &ans, &end
	r.RingMS, r.TalkMS, r.ContactID, r.MissedID, r.EndReason, r.Recording = 2000, 60000, 42, "m1", "bye", "rec.wav"
	r.Campaign, r.AnsweredBy = "spring", "201"
	s.Save(r)
	flush(t, s)

	got, err := s.Get(ctx, "a1")
	if err != nil {
		t.Fatal(err)
	}
	want := normalize(r)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Get = %+v\nwant  %+v", got, want)
	}
	if got.StartedAt.Location() != time.UTC || got.StartedAt.Nanosecond() != 123000000 {
		t.Errorf("started_at = %v, want UTC with ms precision", got.StartedAt)
	}
	if n := countRows(t, path); n != 1 {
		t.Errorf("rows = %d, want 1 (upsert by id)", n)
	}

	if _, err := s.Get(ctx, "nope"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Get(unknown) error = %v, want storage.ErrNotFound", err)
	}
}

func TestCallStoreBatchingAndCoalescing(t *testing.T) {
	s, path := newSQLiteStore(t, "_busy_timeout=20")
	raw := openRaw(t, path)
	// Count statements that reach the table, to see coalescing happen.
	for _, q := range []string{
		`CREATE TABLE writes (n INTEGER NOT NULL)`,
		`INSERT INTO writes VALUES (0)`,
		`CREATE TRIGGER calls_ins AFTER INSERT ON calls BEGIN UPDATE writes SET n = n + 1; END`,
		`CREATE TRIGGER calls_upd AFTER UPDATE ON calls BEGIN UPDATE writes SET n = n + 1; END`,
	} {
		if _, err := raw.Exec(q); err != nil {
			t.Fatal(err)
		}
	}

	// With the database locked the writer cannot write: every save below
	// is pending at once, so every save of one id must coalesce into one
	// row write, whatever the writer's timing.
	release := lock(t, path)
	const distinct, resaves = 1200, 50
	for i := range distinct {
		s.Save(rec(fmt.Sprintf("r%05d", i), base.Add(time.Duration(i)*time.Second)))
	}
	for i := range resaves {
		r := rec("r00000", base)
		r.TalkMS = int64(i)
		s.Save(r)
	}
	// A write attempt that took its batch before the last save may still
	// be waiting for the lock; once a flush has timed out, every attempt
	// left started after the last save.
	short, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	err := s.Flush(short)
	cancel()
	if err == nil {
		t.Fatal("Flush succeeded while the database was locked")
	}
	release()
	flush(t, s)

	if n := countRows(t, path); n != distinct {
		t.Errorf("rows = %d, want %d", n, distinct)
	}
	var writes int
	if err := raw.QueryRow(`SELECT n FROM writes`).Scan(&writes); err != nil {
		t.Fatal(err)
	}
	if writes != distinct {
		t.Errorf("%d row writes for %d saves of %d ids, want %d: saves of one id were not coalesced", writes, distinct+resaves, distinct, distinct)
	}
	got, err := s.Get(context.Background(), "r00000")
	if err != nil {
		t.Fatal(err)
	}
	if got.TalkMS != resaves-1 {
		t.Errorf("talk_ms = %d, want the last save's %d", got.TalkMS, resaves-1)
	}
}

func TestCallStoreListPagination(t *testing.T) {
	s, _ := newStore(t)
	// Pairs share a start time so that the id breaks ties across pages.
	const total = 25
	for i := range total {
		s.Save(rec(fmt.Sprintf("p%02d", i), base.Add(time.Duration(i/2)*time.Second)))
	}
	flush(t, s)

	for _, limit := range []int{1, 2, 7, 10, 25, 100} {
		t.Run(fmt.Sprint("limit ", limit), func(t *testing.T) {
			var all []cdr.Record
			cur := ""
			for pages := 0; ; pages++ {
				if pages > total+1 {
					t.Fatal("pagination does not end")
				}
				items, next, err := s.List(context.Background(), Query{Limit: limit, Cursor: cur})
				if err != nil {
					t.Fatal(err)
				}
				if len(items) > limit {
					t.Fatalf("page of %d items, limit %d", len(items), limit)
				}
				all = append(all, items...)
				if next == "" {
					break
				}
				cur = next
			}
			if len(all) != total {
				t.Fatalf("got %d records over all pages, want %d", len(all), total)
			}
			for i := 1; i < len(all); i++ {
				if !before(all[i], all[i-1]) {
					t.Fatalf("not newest first at %d: %s then %s", i, all[i-1].ID, all[i].ID)
				}
			}
		})
	}

	if _, _, err := s.List(context.Background(), Query{Cursor: "!!bad"}); !errors.Is(err, storage.ErrInvalidCursor) {
		t.Errorf("bad cursor error = %v, want storage.ErrInvalidCursor", err)
	}
}

func TestCallStoreListFilters(t *testing.T) {
	s, _ := newStore(t)
	mk := func(id string, min int, dir callctl.Direction, disp cdr.Disposition, caller, called string, contact int64) cdr.Record {
		r := rec(id, base.Add(time.Duration(min)*time.Minute))
		r.Direction, r.Disposition, r.Caller, r.CallerRaw, r.Called, r.CalledRaw, r.ContactID =
			dir, disp, caller, "raw-"+id, called, "0301234560", contact
		return r
	}
	records := []cdr.Record{
		mk("f1", 0, callctl.Inbound, cdr.Answered, "+491111", "+49301234560", 1),
		mk("f2", 1, callctl.Inbound, cdr.NoAnswer, "+492222", "+49301234560", 2),
		mk("f3", 2, callctl.Inbound, cdr.Busy, "+491111", "+49301234561", 1),
		mk("f4", 3, callctl.Outbound, cdr.NoAnswer, "201", "+491111", 1),
		mk("f5", 4, callctl.Inbound, cdr.Blocked, "+493333", "+49301234560", 0),
	}
	for _, r := range records {
		s.Save(r)
	}
	flush(t, s)
	// f6 stays pending: filters must treat it like a written record.
	s.Save(mk("f6", 5, callctl.Inbound, cdr.NoAnswer, "+491111", "+49301234560", 1))

	tests := []struct {
		name string
		q    Query
		want string
	}{
		{"all", Query{}, "[f6 f5 f4 f3 f2 f1]"},
		{"disposition", Query{Disposition: "no_answer"}, "[f6 f4 f2]"},
		{"number as caller or called", Query{Number: "+491111"}, "[f6 f4 f3 f1]"},
		{"number raw", Query{Number: "raw-f2"}, "[f2]"},
		{"called number", Query{Number: "+49301234561"}, "[f3]"},
		{"since", Query{Since: base.Add(3 * time.Minute)}, "[f6 f5 f4]"},
		{"missed", Query{Missed: true}, "[f6 f3 f2]"},
		{"contact", Query{ContactID: 1}, "[f6 f4 f3 f1]"},
		{"combined", Query{Missed: true, Number: "+491111"}, "[f6 f3]"},
		{"limit with pending", Query{Limit: 2}, "[f6 f5]"},
		{"nothing", Query{Number: "+000"}, "[]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			items, _, err := s.List(context.Background(), tt.q)
			if err != nil {
				t.Fatal(err)
			}
			ids := make([]string, len(items))
			for i, r := range items {
				ids[i] = r.ID
			}
			if got := fmt.Sprint(ids); got != tt.want {
				t.Errorf("List(%+v) = %s, want %s", tt.q, got, tt.want)
			}
		})
	}
}

func TestCallStoreByCallID(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	old := rec("c1", base)
	newer := rec("c2", base.Add(time.Hour))
	newer.CallID = old.CallID
	other := rec("c3", base.Add(2*time.Hour))
	for _, r := range []cdr.Record{old, newer, other} {
		s.Save(r)
	}
	flush(t, s)

	tests := []struct {
		callID  string
		want    string
		wantErr error
	}{
		{old.CallID, "c2", nil},
		{other.CallID, "c3", nil},
		{"unknown@host", "", storage.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.callID, func(t *testing.T) {
			got, err := s.ByCallID(ctx, tt.callID)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("error = %v, want %v", err, tt.wantErr)
			}
			if got.ID != tt.want {
				t.Errorf("id = %q, want %q", got.ID, tt.want)
			}
		})
	}
}

// lock takes SQLite's write lock from another connection, as a second
// process or a long migration would, and returns its release.
func lock(t *testing.T, path target) func() {
	t.Helper()
	conn, err := openRaw(t, path).Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(context.Background(), `BEGIN EXCLUSIVE`); err != nil {
		t.Fatal(err)
	}
	return func() {
		if _, err := conn.ExecContext(context.Background(), `COMMIT`); err != nil {
			t.Fatal(err)
		}
		conn.Close()
	}
}

func TestCallStoreSurvivesLockedDatabase(t *testing.T) {
	s, path := newSQLiteStore(t, "_busy_timeout=20")
	ctx := context.Background()
	s.Save(rec("before", base))
	flush(t, s)

	release := lock(t, path)
	end := base.Add(time.Minute)
	r := rec("before", base)
	r.EndedAt, r.Disposition = &end, cdr.NoAnswer
	s.Save(r)
	for i := range 20 {
		s.Save(rec(fmt.Sprintf("during%02d", i), base.Add(time.Duration(i+1)*time.Second)))
	}

	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	err := s.Flush(short)
	cancel()
	if err == nil {
		t.Fatal("Flush succeeded while the database was locked")
	}
	t.Logf("flush while locked: %v", err)

	// Pending records are visible to every read while the disk refuses them.
	t.Run("pending visible", func(t *testing.T) {
		got, err := s.Get(ctx, "before")
		if err != nil || got.Disposition != cdr.NoAnswer {
			t.Errorf("Get = %+v, %v; want the pending version", got.Disposition, err)
		}
		got, err = s.ByCallID(ctx, "cid-during05")
		if err != nil || got.ID != "during05" {
			t.Errorf("ByCallID = %q, %v", got.ID, err)
		}
		items, _, err := s.List(ctx, Query{Limit: 100})
		if err != nil || len(items) != 21 {
			t.Errorf("List = %d items, %v; want 21", len(items), err)
		}
		items, _, err = s.List(ctx, Query{Disposition: "no_answer"})
		if err != nil || len(items) != 1 || items[0].ID != "before" {
			t.Errorf("List(no_answer) = %v, %v; want the pending update of 'before'", items, err)
		}
	})

	release()
	flush(t, s)
	if n := countRows(t, path); n != 21 {
		t.Errorf("rows after unlock = %d, want 21", n)
	}
	var disp string
	if err := openRaw(t, path).QueryRow(`SELECT disposition FROM calls WHERE id = 'before'`).Scan(&disp); err != nil || disp != "no_answer" {
		t.Errorf("stored disposition = %q, %v; want no_answer", disp, err)
	}
}

func TestCallStoreCloseFlushes(t *testing.T) {
	driver, dsn := storagetest.Target(t, "calls")
	path := target{driver, dsn}
	db := storagetest.Open(t, "calls")
	s, err := New(context.Background(), db, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		s.Save(rec(fmt.Sprint("x", i), base))
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Errorf("second Close: %v", err)
	}
	s.Save(rec("late", base)) // dropped with a log line, must not block or panic
	if n := countRows(t, path); n != 10 {
		t.Errorf("rows = %d, want 10", n)
	}

	// Reopening migrates nothing twice.
	s2, err := New(context.Background(), db, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close(context.Background())
	if _, err := s2.Get(context.Background(), "x3"); err != nil {
		t.Error(err)
	}
}

func TestCallStorePrune(t *testing.T) {
	s, path := newStore(t)
	for i := range 10 {
		s.Save(rec(fmt.Sprint("old", i), base.AddDate(0, -i, 0)))
	}
	flush(t, s)
	n, err := s.Prune(context.Background(), base.AddDate(0, -5, 0).Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if n != 5 || countRows(t, path) != 5 {
		t.Errorf("pruned %d, %d left; want 5 and 5", n, countRows(t, path))
	}
}

// TestCallStoreRelink: the calls of a contact merged away move to the
// contact that survived: written ones, pending ones, and those saved
// later by a call still in progress with the old id.
func TestCallStoreRelink(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	written, pending, later := rec("r-written", base), rec("r-pending", base.Add(time.Second)), rec("r-later", base.Add(2*time.Second))
	for _, r := range []*cdr.Record{&written, &pending, &later} {
		r.ContactID = 7
	}
	s.Save(written)
	flush(t, s)
	s.Save(pending)
	if err := s.Relink(ctx, 7, 9); err != nil {
		t.Fatal(err)
	}
	s.Save(later)
	flush(t, s)
	for _, id := range []string{written.ID, pending.ID, later.ID} {
		r, err := s.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if r.ContactID != 9 {
			t.Errorf("%s: contact %d, want 9", id, r.ContactID)
		}
	}
	list, _, err := s.List(ctx, Query{ContactID: 9, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 3 {
		t.Errorf("contact 9 has %d calls, want 3", len(list))
	}
}
