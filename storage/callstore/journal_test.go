package callstore

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/switchboard-sip/switchboard/cdr"
	"github.com/switchboard-sip/switchboard/storage"
)

// journalStore opens a store on a fresh SQLite file with its journal.
func journalStore(t *testing.T, tg target) *Store {
	t.Helper()
	s, _ := openStore(t, tg)
	if err := s.OpenJournal(context.Background(), JournalPath(tg.driver, tg.dsn)); err != nil {
		t.Fatal(err)
	}
	return s
}

func sqliteTarget(t *testing.T) target {
	return target{storage.SQLite, filepath.Join(t.TempDir(), "calls.db")}
}

// crash stops a store as SIGKILL would: nothing more reaches the database,
// the journal keeps what it has written.
func crash(s *Store) {
	s.mu.Lock()
	s.closing = true
	j := s.jn
	s.mu.Unlock()
	s.abort()
	<-s.done
	if j != nil {
		close(j.stop)
		<-j.done
		j.f.Close()
	}
}

// phases are the versions of one answered call that the tracker saves.
func phases(id string) (start, answered, ended cdr.Record) {
	start = rec(id, base)
	start.Disposition, start.SIPStatus = "", 0
	answered = start
	at := base.Add(2 * time.Second)
	answered.AnsweredAt, answered.Disposition, answered.SIPStatus = &at, cdr.Answered, 200
	ended = answered
	end := at.Add(time.Minute)
	ended.EndedAt, ended.TalkMS = &end, 60000
	return
}

func storedRow(t *testing.T, tg target, id string) (found bool, answered, ended bool) {
	t.Helper()
	var a, e any
	err := openRaw(t, tg).QueryRow(`SELECT answered_at, ended_at FROM calls WHERE id = ?`, id).Scan(&a, &e)
	if err != nil {
		return false, false, false
	}
	return true, a != nil, e != nil
}

// TestJournalOneWritePerCall: with the journal a call reaches the
// database once, when it has ended, and is readable meanwhile; without it
// (the control) each of the three versions is written.
func TestJournalOneWritePerCall(t *testing.T) {
	ctx := context.Background()
	for _, withJournal := range []bool{true, false} {
		t.Run(fmt.Sprint("journal=", withJournal), func(t *testing.T) {
			tg := sqliteTarget(t)
			var s *Store
			if withJournal {
				s = journalStore(t, tg)
			} else {
				s, _ = openStore(t, tg)
			}
			start, answered, ended := phases("j1")
			for _, r := range []cdr.Record{start, answered} {
				s.Save(r)
				flush(t, s)
				got, err := s.ByCallID(ctx, r.CallID)
				if err != nil || got.ID != r.ID || (got.AnsweredAt == nil) != (r.AnsweredAt == nil) {
					t.Fatalf("call in progress not readable: %+v, %v", got, err)
				}
			}
			s.Save(ended)
			flush(t, s)
			want := uint64(3)
			if withJournal {
				want = 1
			}
			if n := s.rows.Load(); n != want {
				t.Errorf("%d rows written for one call, want %d", n, want)
			}
			if found, _, isEnded := storedRow(t, tg, "j1"); !found || !isEnded {
				t.Errorf("the ended call is not in the database (found %v, ended %v)", found, isEnded)
			}
		})
	}
}

// TestJournalRecoversAfterKill: calls in progress at a SIGKILL, which
// never reached the database, are there after the next start (open, for
// the BYE to complete), and so is a call whose end the writer had not
// written yet; a clean stop then writes the open calls and empties the
// journal.
func TestJournalRecoversAfterKill(t *testing.T) {
	ctx := context.Background()
	tg := sqliteTarget(t)
	path := JournalPath(tg.driver, tg.dsn)
	s := journalStore(t, tg)
	_, answered, _ := phases("open1")
	ringing, _, _ := phases("open2")
	_, _, ended := phases("ended1")
	s.Save(answered)
	s.Save(ringing)
	s.abort() // the writer stops before the end reaches the database
	<-s.done
	s.Save(ended)
	deadline := time.Now().Add(10 * time.Second)
	for {
		recs, err := readJournal(path)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("journal holds %d records, want 3", len(recs))
		}
		time.Sleep(5 * time.Millisecond) // the journal's group write: poll the file
	}
	crash(s)
	if found, _, _ := storedRow(t, tg, "open1"); found {
		t.Fatal("control: the open call reached the database before the crash")
	}

	s2 := journalStore(t, tg)
	flush(t, s2)
	for id, want := range map[string][2]bool{"open1": {true, false}, "open2": {false, false}, "ended1": {true, true}} {
		found, a, e := storedRow(t, tg, id)
		if !found || a != want[0] || e != want[1] {
			t.Errorf("%s after restart: found %v answered %v ended %v, want answered %v ended %v", id, found, a, e, want[0], want[1])
		}
	}
	r, err := s2.ByCallID(ctx, answered.CallID)
	if err != nil || r.AnsweredAt == nil || r.EndedAt != nil {
		t.Fatalf("recovered call for its BYE: %+v, %v", r, err)
	}
	// A call in progress at a clean stop is written, and the file emptied.
	_, live, _ := phases("live")
	s2.Save(live)
	if err := s2.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if found, a, _ := storedRow(t, tg, "live"); !found || !a {
		t.Error("a call in progress at a clean stop is not in the database")
	}
	if recs, err := readJournal(path); err != nil || len(recs) != 0 {
		t.Errorf("journal after a clean stop: %d records, %v", len(recs), err)
	}
}

// TestJournalTornTail: a frame cut by a crash, or damaged, ends the
// reading; the frames before it count.
func TestJournalTornTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j")
	var b []byte
	start, answered, ended := phases("t1")
	for _, r := range []cdr.Record{start, answered, ended} {
		b = appendFrame(b, &r)
	}
	for _, cut := range []int{len(b), len(b) - 1, len(b) - 30} {
		if err := os.WriteFile(path, b[:cut], 0o600); err != nil {
			t.Fatal(err)
		}
		recs, err := readJournal(path)
		if err != nil || len(recs) != 1 {
			t.Fatalf("cut at %d: %d records, %v", cut, len(recs), err)
		}
		if cut == len(b) && recs[0].EndedAt == nil {
			t.Errorf("whole journal: newest version not ended: %+v", recs[0])
		}
		if cut < len(b) && (recs[0].AnsweredAt == nil || recs[0].EndedAt != nil) {
			t.Errorf("cut at %d: want the answered version, got %+v", cut, recs[0])
		}
	}
	if got, _ := decodeRecord(b[frameHeader : len(b)/3]); got.ID != "" {
		t.Error("a truncated payload decoded")
	}
	r, rest, ok := nextFrame(b)
	if !ok || len(rest) == 0 || r.ID != "t1" || !r.StartedAt.Equal(start.StartedAt) || r.Caller != start.Caller {
		t.Errorf("first frame: %+v ok %v", r, ok)
	}
}

// TestJournalReadOnTheCommandLine: another process's journal shows its
// calls in progress and is never written from here.
func TestJournalReadOnTheCommandLine(t *testing.T) {
	ctx := context.Background()
	tg := sqliteTarget(t)
	s := journalStore(t, tg)
	_, answered, _ := phases("cli1")
	s.Save(answered)
	path := JournalPath(tg.driver, tg.dsn)
	deadline := time.Now().Add(10 * time.Second)
	for recs, _ := readJournal(path); len(recs) == 0; recs, _ = readJournal(path) {
		if time.Now().After(deadline) {
			t.Fatal("the call never reached the journal")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cli, _ := openStore(t, tg)
	if err := cli.ReadJournal(ctx, path); err != nil {
		t.Fatal(err)
	}
	items, _, err := cli.List(ctx, Query{})
	if err != nil || len(items) != 1 || items[0].AnsweredAt == nil {
		t.Fatalf("list on the command line: %+v, %v", items, err)
	}
	if err := cli.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if found, _, _ := storedRow(t, tg, "cli1"); found {
		t.Error("the command line wrote another process's call")
	}
}

// TestJournalCallsInTrace: a call held in the journal, and one ended but
// not yet written, are in the contact trace as they are now.
func TestJournalCallsInTrace(t *testing.T) {
	ctx := context.Background()
	s := journalStore(t, sqliteTarget(t))
	_, answered, _ := phases("tr1")
	s.Save(answered)
	from, to := base.Add(-time.Hour), base.Add(time.Hour)
	items, _, err := s.TraceCalls(ctx, 0, []string{answered.Caller}, from, to, "", 10)
	if err != nil || len(items) != 1 || items[0].AnsweredAt == nil {
		t.Fatalf("trace of a call in progress: %+v, %v", items, err)
	}
	_, _, ended := phases("tr1")
	s.Save(ended)
	flush(t, s)
	other := rec("tr0", base.Add(-time.Minute))
	s.Save(other)
	items, _, err = s.TraceCalls(ctx, 0, []string{answered.Caller}, from, to, "", 10)
	if err != nil || len(items) != 2 || items[0].ID != "tr1" || items[0].EndedAt == nil || items[1].ID != "tr0" {
		t.Fatalf("trace after the end: %+v, %v", items, err)
	}
}

// TestJournalRecoveryKeepsNewerRows: a journal version never replaces a
// newer row: an open call the database has (written when the store let go
// of it) keeps its answer, an ended one stays ended; a journal's end
// completes an open row.
func TestJournalRecoveryKeepsNewerRows(t *testing.T) {
	tg := sqliteTarget(t)
	plain, _ := openStore(t, tg)
	ringing, answered, _ := phases("k1")
	_, _, ended2 := phases("k2")
	_, answered3, _ := phases("k3")
	plain.Save(answered)
	plain.Save(ended2)
	plain.Save(answered3)
	flush(t, plain)
	var b []byte
	_, answered2, _ := phases("k2")
	_, _, ended3 := phases("k3")
	for _, r := range []cdr.Record{ringing, answered2, ended3} {
		b = appendFrame(b, &r)
	}
	if err := os.WriteFile(JournalPath(tg.driver, tg.dsn), b, 0o600); err != nil {
		t.Fatal(err)
	}
	s := journalStore(t, tg)
	flush(t, s)
	for id, want := range map[string][2]bool{"k1": {true, false}, "k2": {true, true}, "k3": {true, true}} {
		if found, a, e := storedRow(t, tg, id); !found || a != want[0] || e != want[1] {
			t.Errorf("%s: answered %v ended %v, want %v %v", id, a, e, want[0], want[1])
		}
	}
}

// TestLinkSavedWritesOnce: a missed call's record takes its entry id
// without a second write when it still waits for the writer, or when the
// entry's transaction reached its row; otherwise it is saved again.
func TestLinkSavedWritesOnce(t *testing.T) {
	ctx := context.Background()
	link := func(s *Store, id, missed string) {
		t.Helper()
		tx, err := s.db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.LinkMissed(ctx, tx, id, missed); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("pending", func(t *testing.T) {
		s, _ := openStore(t, sqliteTarget(t))
		s.abort() // the writer has not come round to the record yet
		<-s.done
		_, _, r := phases("m1")
		s.Save(r)
		link(s, r.ID, "e-m1")
		s.LinkSaved(ctx, r, "e-m1")
		s.mu.Lock()
		p, n := s.pending[r.ID], len(s.pending)
		s.closing = true // stopped: nothing to flush at the end
		s.mu.Unlock()
		if n != 1 || p.rec.MissedID != "e-m1" || p.rec.EndedAt == nil {
			t.Errorf("pending %d records, %+v: want the ended record with its entry id", n, p.rec)
		}
	})
	tg := sqliteTarget(t)
	s, _ := openStore(t, tg)
	for _, c := range []struct {
		id       string
		linkInTx bool
		rows     uint64 // rows written after the first write
	}{
		{"m2", true, 0},  // linked in the entry's transaction
		{"m3", false, 1}, // link missing: saved again
	} {
		_, _, r := phases(c.id)
		s.Save(r)
		flush(t, s)
		before := s.rows.Load()
		if c.linkInTx {
			link(s, c.id, "e-"+c.id)
		}
		s.LinkSaved(ctx, r, "e-"+c.id)
		flush(t, s)
		if n := s.rows.Load() - before; n != c.rows {
			t.Errorf("%s: %d more rows written, want %d", c.id, n, c.rows)
		}
		var m string
		if err := openRaw(t, tg).QueryRow(`SELECT missed_id FROM calls WHERE id = ?`, c.id).Scan(&m); err != nil || m != "e-"+c.id {
			t.Errorf("%s: missed_id %q (%v)", c.id, m, err)
		}
	}
}

// TestJournalCheckpoint: a journal past its size is rewritten with only
// the records still pending, and a crash after that loses none of them.
func TestJournalCheckpoint(t *testing.T) {
	defer func(n int64) { checkpointSize = n }(checkpointSize)
	checkpointSize = 4096
	tg := sqliteTarget(t)
	path := JournalPath(tg.driver, tg.dsn)
	s := journalStore(t, tg)
	for i := range 200 {
		_, answered, ended := phases(fmt.Sprintf("c%03d", i))
		if i%4 == 0 {
			s.Save(answered) // a call still in progress
			continue
		}
		s.Save(answered)
		s.Save(ended)
	}
	flush(t, s)
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.mu.Lock()
		queued := len(s.jqueue)
		s.mu.Unlock()
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if queued == 0 && st.Size() < 200*2*100 {
			break // rewritten: far less than 350 frames of ~100+ bytes
		}
		if time.Now().After(deadline) {
			t.Fatalf("journal %d bytes, %d queued: never rewritten", st.Size(), queued)
		}
		time.Sleep(5 * time.Millisecond) // the journal goroutine's group: poll
	}
	crash(s)
	s2 := journalStore(t, tg)
	flush(t, s2)
	for i := 0; i < 200; i += 4 {
		if found, a, e := storedRow(t, tg, fmt.Sprintf("c%03d", i)); !found || !a || e {
			t.Fatalf("c%03d after the crash: found %v answered %v ended %v", i, found, a, e)
		}
	}
}

// TestJournalCodecEveryField: every field of a record comes back from the
// journal, so a field added to cdr.Record and not to the codec fails here.
func TestJournalCodecEveryField(t *testing.T) {
	var r cdr.Record
	fill(reflect.ValueOf(&r).Elem(), 1)
	b := appendFrame(nil, &r)
	got, rest, ok := nextFrame(b)
	if !ok || len(rest) != 0 {
		t.Fatalf("frame not read back (ok %v, %d bytes left)", ok, len(rest))
	}
	if !reflect.DeepEqual(normalize(got), normalize(r)) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, r)
	}
}

// fill sets every field of v to a value that is not its zero value.
func fill(v reflect.Value, n int) int {
	switch v.Kind() {
	case reflect.Struct:
		if v.Type() == reflect.TypeOf(time.Time{}) {
			v.Set(reflect.ValueOf(base.Add(time.Duration(n) * time.Minute)))
			return n + 1
		}
		for i := range v.NumField() {
			n = fill(v.Field(i), n)
		}
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		n = fill(v.Elem(), n)
	case reflect.String:
		v.SetString(fmt.Sprintf("s%d", n))
		n++
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int64, reflect.Int32:
		v.SetInt(int64(n))
		n++
	default:
		panic("fill: add " + v.Kind().String())
	}
	return n
}
