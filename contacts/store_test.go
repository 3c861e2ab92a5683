package contacts_test

import (
	"github.com/switchboard-sip/switchboard/cdr"

	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/switchboard-sip/switchboard/callctl"
	"github.com/switchboard-sip/switchboard/contacts"
	"github.com/switchboard-sip/switchboard/missed"
	"github.com/switchboard-sip/switchboard/storage"
	"github.com/switchboard-sip/switchboard/storage/callstore"
	"github.com/switchboard-sip/switchboard/storage/storagetest"
)

func TestMain(m *testing.M) { os.Exit(storagetest.Main(m)) }

// env is a real database (SQLite in a temporary directory, then PostgreSQL:
// see storagetest) with the contacts and calls schemas.
type env struct {
	driver, dsn string
	db          *storage.DB
	store       *contacts.Store
	calls       *callstore.Store
}

func newEnv(t testing.TB) *env {
	t.Helper()
	driver, dsn := storagetest.Target(t, "switchboard")
	return openEnv(t, driver, dsn)
}

func openEnv(t testing.TB, driver, dsn string) *env {
	t.Helper()
	ctx := context.Background()
	db, err := storage.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	calls, err := callstore.New(ctx, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { calls.Close(context.Background()) })
	store, err := contacts.NewStore(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	store.UseCalls(calls)
	store.UseMessages(calls) // the trace reads calls and messages, as in the agent
	return &env{driver: driver, dsn: dsn, db: db, store: store, calls: calls}
}

// addCall saves a call record and waits until it is in the database.
func (e *env) addCall(t testing.TB, r cdr.Record) {
	t.Helper()
	e.calls.Save(r)
	if err := e.calls.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func ptr[T any](v T) *T { return &v }

func TestStoreCRUD(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	s := e.store

	jane, err := s.Create(ctx, contacts.Contact{
		Name: " Jane Doe ", Company: "ACME", Email: "jane@acme.example",
		Tags: []string{"vip", "vip", "b2b"}, Fields: map[string]string{"crm_id": "42"},
		Numbers: []contacts.Phone{{E164: "+4930123456", Raw: "030 123456"}, {E164: "+4915112345678"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if jane.ID == 0 || jane.Name != "Jane Doe" || jane.Source != contacts.SourceAPI {
		t.Fatalf("created %+v", jane)
	}
	if fmt.Sprint(jane.Tags) != "[vip b2b]" {
		t.Errorf("tags %v, want duplicates removed", jane.Tags)
	}

	t.Run("get", func(t *testing.T) {
		got, err := s.Get(ctx, jane.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Name != "Jane Doe" || got.Fields["crm_id"] != "42" || len(got.Numbers) != 2 || got.Numbers[1].Raw != "030 123456" {
			t.Errorf("got %+v", got)
		}
		if got.Numbers[0].Raw != "+4915112345678" {
			t.Errorf("raw defaults to E.164, got %q", got.Numbers[0].Raw)
		}
	})
	t.Run("find by number", func(t *testing.T) {
		got, err := s.FindByNumber(ctx, "+4915112345678")
		if err != nil || got.ID != jane.ID {
			t.Fatalf("got %d, %v", got.ID, err)
		}
		_, err = s.FindByNumber(ctx, "+4930999999")
		if !errors.Is(err, contacts.ErrNotFound) {
			t.Errorf("unknown number: %v, want ErrNotFound", err)
		}
	})
	t.Run("number unique", func(t *testing.T) {
		_, err := s.Create(ctx, contacts.Contact{Name: "Other", Numbers: []contacts.Phone{{E164: "+4930123456"}}})
		var taken *contacts.NumberTakenError
		if !errors.As(err, &taken) || taken.ContactID != jane.ID {
			t.Errorf("got %v, want NumberTakenError for %d", err, jane.ID)
		}
	})
	t.Run("patch", func(t *testing.T) {
		got, err := s.Update(ctx, jane.ID, contacts.Patch{
			Company: ptr("ACME GmbH"),
			Fields:  map[string]*string{"crm_id": nil, "vat": ptr("DE1")},
		})
		if err != nil {
			t.Fatal(err)
		}
		if got.Name != "Jane Doe" || got.Company != "ACME GmbH" || got.Email != "jane@acme.example" {
			t.Errorf("patch changed more than asked: %+v", got)
		}
		if _, ok := got.Fields["crm_id"]; ok || got.Fields["vat"] != "DE1" {
			t.Errorf("fields %v", got.Fields)
		}
		if len(got.Numbers) != 2 || fmt.Sprint(got.Tags) != "[vip b2b]" {
			t.Errorf("numbers or tags changed: %+v", got)
		}
	})
	t.Run("patch numbers", func(t *testing.T) {
		got, err := s.Update(ctx, jane.ID, contacts.Patch{Numbers: &[]contacts.Phone{{E164: "+4930123456"}, {E164: "+4940555"}}})
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Numbers) != 2 {
			t.Fatalf("numbers %v", got.Numbers)
		}
		if _, err := s.FindByNumber(ctx, "+4915112345678"); !errors.Is(err, contacts.ErrNotFound) {
			t.Errorf("removed number still found: %v", err)
		}
	})
	t.Run("add number", func(t *testing.T) {
		if err := s.AddNumber(ctx, jane.ID, contacts.Phone{E164: "+12125550100", Raw: "(212) 555-0100", Ext: "12"}); err != nil {
			t.Fatal(err)
		}
		got, _ := s.FindByNumber(ctx, "+12125550100")
		if got.ID != jane.ID {
			t.Errorf("added number not found")
		}
		if err := s.AddNumber(ctx, 9999, contacts.Phone{E164: "+12125550101"}); !errors.Is(err, contacts.ErrNotFound) {
			t.Errorf("add to unknown contact: %v", err)
		}
	})
	t.Run("delete", func(t *testing.T) {
		if _, err := s.Delete(ctx, jane.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get(ctx, jane.ID); !errors.Is(err, contacts.ErrNotFound) {
			t.Errorf("get after delete: %v", err)
		}
		if _, err := s.FindByNumber(ctx, "+4930123456"); !errors.Is(err, contacts.ErrNotFound) {
			t.Errorf("number after delete: %v", err)
		}
		if _, err := s.Delete(ctx, jane.ID); !errors.Is(err, contacts.ErrNotFound) {
			t.Errorf("second delete: %v", err)
		}
	})
}

func TestStoreValidation(t *testing.T) {
	ctx := context.Background()
	s := newEnv(t).store
	cases := []struct {
		name  string
		c     contacts.Contact
		field string
	}{
		{"bad e164", contacts.Contact{Numbers: []contacts.Phone{{E164: "030123"}}}, "numbers[0].e164"},
		{"leading zero cc", contacts.Contact{Numbers: []contacts.Phone{{E164: "+0301234"}}}, "numbers[0].e164"},
		{"too long", contacts.Contact{Numbers: []contacts.Phone{{E164: "+1234567890123456"}}}, "numbers[0].e164"},
		{"ext letters", contacts.Contact{Numbers: []contacts.Phone{{E164: "+4930123456", Ext: "1a"}}}, "numbers[0].ext"},
		{"control in name", contacts.Contact{Name: "Jane\r\nX-Evil: 1"}, "name"},
		{"email", contacts.Contact{Email: "not an address"}, "email"},
		{"long tag", contacts.Contact{Tags: []string{string(make([]byte, 65))}}, "tags[0]"},
		{"bad source", contacts.Contact{Source: "fax"}, "source"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Create(ctx, tc.c)
			var fe *contacts.FieldError
			if !errors.As(err, &fe) || fe.Field != tc.field {
				t.Errorf("got %v, want a FieldError on %s", err, tc.field)
			}
		})
	}
}

func TestSearch(t *testing.T) {
	ctx := context.Background()
	s := newEnv(t).store
	for i := range 25 {
		name := fmt.Sprintf("Person %02d", i)
		if i%5 == 0 {
			name = fmt.Sprintf("Müller %02d", i)
		}
		_, err := s.Create(ctx, contacts.Contact{Name: name, Numbers: []contacts.Phone{{E164: fmt.Sprintf("+49301000%02d", i)}}})
		if err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		q    string
		want int
	}{
		{"", 25},
		{"müller", 5},
		{"person 1", 8}, // 10 and 15 are Müller
		{"+49 30 100012", 1},
		{"100_", 0}, // LIKE wildcards are literal
		{"nobody", 0},
	}
	for _, tc := range cases {
		t.Run(tc.q, func(t *testing.T) {
			var all []contacts.Contact
			cursor := ""
			for pages := 0; ; pages++ {
				items, next, err := s.Search(ctx, tc.q, 4, cursor)
				if err != nil {
					t.Fatal(err)
				}
				all = append(all, items...)
				if next == "" {
					break
				}
				if pages > 10 {
					t.Fatal("cursor does not advance")
				}
				cursor = next
			}
			if len(all) != tc.want {
				t.Errorf("got %d contacts, want %d", len(all), tc.want)
			}
			for i := 1; i < len(all); i++ {
				if all[i].ID <= all[i-1].ID {
					t.Errorf("not in id order or repeated: %d after %d", all[i].ID, all[i-1].ID)
				}
			}
		})
	}
	if _, _, err := s.Search(ctx, "", 10, "x"); err == nil {
		t.Error("bad cursor accepted")
	}
}

func TestHistoryExportDelete(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	s := e.store
	c, err := s.Create(ctx, contacts.Contact{Name: "Caller", Numbers: []contacts.Phone{{E164: "+4930111"}}})
	if err != nil {
		t.Fatal(err)
	}
	other, err := s.Create(ctx, contacts.Contact{Name: "Other", Numbers: []contacts.Phone{{E164: "+4930222"}}})
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	for i := range 3 {
		e.addCall(t, cdr.Record{ID: fmt.Sprintf("c%d", i), Direction: callctl.Inbound, Trunk: "carrier", Caller: "+4930111",
			Called: "+4930999", ContactID: c.ID, StartedAt: base.Add(time.Duration(i) * time.Hour), Disposition: cdr.Answered})
	}
	e.addCall(t, cdr.Record{ID: "o1", Direction: callctl.Inbound, Caller: "+4930222", ContactID: other.ID, StartedAt: base})

	got, err := s.Get(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.CallsCount != 3 || !got.FirstCallAt.Equal(base) || !got.LastCallAt.Equal(base.Add(2*time.Hour)) || got.OpenMissed != 0 {
		t.Errorf("history %+v", got.History)
	}

	ex, err := s.Export(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if ex.Contact.ID != c.ID || len(ex.Calls) != 3 || ex.Calls[0].ID != "c2" {
		t.Errorf("export %+v", ex)
	}
	// Trace rows are whole records: the trunk is not lost.
	tr, err := s.Trace(ctx, contacts.TraceQuery{ContactID: c.ID, Now: base.Add(24 * time.Hour)})
	if err != nil || len(tr.Items) != 3 || tr.Items[0].Trunk != "carrier" || ex.Calls[0].Trunk != "carrier" {
		t.Errorf("trace %+v, %v: want the trunk on every row", tr.Items, err)
	}

	n, err := s.Delete(ctx, c.ID)
	if err != nil || n != 3 {
		t.Fatalf("delete: %d calls, %v", n, err)
	}
	if h, _ := s.History(ctx, c.ID); h.CallsCount != 0 {
		t.Errorf("calls left after delete: %+v", h)
	}
	if h, _ := s.History(ctx, other.ID); h.CallsCount != 1 {
		t.Errorf("other contact's calls touched: %+v", h)
	}
}

func TestTrace(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	s := e.store
	c, err := s.Create(ctx, contacts.Contact{Name: "Traced", Numbers: []contacts.Phone{{E164: "+4930111"}, {E164: "+4917000"}}})
	if err != nil {
		t.Fatal(err)
	}
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skip("no tzdata:", err)
	}
	now := time.Date(2025, 6, 15, 12, 0, 0, 0, time.UTC)
	calls := []cdr.Record{
		{ID: "in-linked", Direction: callctl.Inbound, Caller: "+4930111", Called: "+4930999", ContactID: c.ID, StartedAt: now.AddDate(0, -1, 0), Disposition: cdr.NoAnswer, SIPStatus: 487, RingMS: 12000},
		{ID: "out-linked", Direction: callctl.Outbound, Caller: "101", Called: "+4917000", ContactID: c.ID, StartedAt: now.AddDate(0, 0, -1), Disposition: cdr.Answered, SIPStatus: 200, TalkMS: 60000},
		{ID: "unlinked", Direction: callctl.Inbound, Caller: "+4917000", Called: "+4930999", StartedAt: now.AddDate(0, -2, 0), Disposition: cdr.Busy, SIPStatus: 486},
		{ID: "too-old", Direction: callctl.Inbound, Caller: "+4930111", ContactID: c.ID, StartedAt: now.AddDate(0, -13, 0)},
		{ID: "someone-else", Direction: callctl.Inbound, Caller: "+4930555", StartedAt: now.AddDate(0, 0, -2)},
		{ID: "future", Direction: callctl.Inbound, Caller: "+4930111", ContactID: c.ID, StartedAt: now.Add(time.Hour)},
	}
	for _, r := range calls {
		e.addCall(t, r)
	}
	cases := []struct {
		name   string
		q      contacts.TraceQuery
		want   []string
		wantID int64
	}{
		{"by number", contacts.TraceQuery{E164: "+4930111", Months: 12, Loc: berlin, Now: now}, []string{"out-linked", "in-linked", "unlinked"}, c.ID},
		{"by other number", contacts.TraceQuery{E164: "+4917000", Now: now, Loc: berlin}, []string{"out-linked", "in-linked", "unlinked"}, c.ID},
		{"by contact", contacts.TraceQuery{ContactID: c.ID, Months: 1, Now: now}, []string{"out-linked", "in-linked"}, c.ID},
		{"14 months", contacts.TraceQuery{ContactID: c.ID, Months: 14, Now: now}, []string{"out-linked", "in-linked", "unlinked", "too-old"}, c.ID},
		{"number without contact", contacts.TraceQuery{E164: "+4930555", Now: now}, []string{"someone-else"}, 0},
		{"unknown number", contacts.TraceQuery{E164: "+4930777", Now: now}, []string{}, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := s.Trace(ctx, tc.q)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, it := range tr.Items {
				ids = append(ids, it.ID)
			}
			if fmt.Sprint(ids) != fmt.Sprint(tc.want) {
				t.Errorf("got %v, want %v", ids, tc.want)
			}
			if (tr.Contact == nil && tc.wantID != 0) || (tr.Contact != nil && tr.Contact.ID != tc.wantID) {
				t.Errorf("contact %+v, want %d", tr.Contact, tc.wantID)
			}
			if tc.q.Loc != nil && len(tr.Items) > 0 && tr.Items[0].StartedAt.Location() != tc.q.Loc {
				t.Errorf("times in %v, want %v", tr.Items[0].StartedAt.Location(), tc.q.Loc)
			}
		})
	}
	tr, _ := s.Trace(ctx, contacts.TraceQuery{E164: "+4930111", Loc: berlin, Now: now})
	if got := tr.Items[1]; got.Disposition != "no_answer" || got.SIPStatus != 487 || got.RingMS != 12000 || got.StartedAt.Hour() != 14 {
		t.Errorf("entry %+v (want 14:00 Berlin summer time)", got)
	}
}

// TestStoreWithoutCalls: a store given no calls (the contacts component
// alone) shows contacts with no history and an empty trace.
func TestStoreWithoutCalls(t *testing.T) {
	ctx := context.Background()
	db := storagetest.Open(t, "c")
	s, err := contacts.NewStore(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.Create(ctx, contacts.Contact{Numbers: []contacts.Phone{{E164: "+4930111"}}})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.Get(ctx, c.ID); err != nil || got.CallsCount != 0 {
		t.Errorf("get: %+v %v", got, err)
	}
	if tr, err := s.Trace(ctx, contacts.TraceQuery{E164: "+4930111"}); err != nil || len(tr.Items) != 0 {
		t.Errorf("trace: %+v %v", tr, err)
	}
	if _, err := s.Delete(ctx, c.ID); err != nil {
		t.Errorf("delete: %v", err)
	}
}

func TestPurgeCallContacts(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	cache := newCache(t, e.store)
	expired, _ := cache.FindOrCreate(contacts.Phone{E164: "+4930601"}, "") // its calls are gone
	called, _ := cache.FindOrCreate(contacts.Phone{E164: "+4930602"}, "")  // still has a call
	imported, err := e.store.Create(ctx, contacts.Contact{Source: contacts.SourceImport, Numbers: []contacts.Phone{{E164: "+4930603"}}})
	if err != nil {
		t.Fatal(err)
	}
	e.addCall(t, cdr.Record{ID: "k", Caller: "+4930602", ContactID: called.ID, StartedAt: time.Now()})
	n, err := e.store.PurgeCallContacts(ctx, time.Now().Add(time.Minute))
	if err != nil || n != 1 {
		t.Fatalf("purged %d, %v; want 1", n, err)
	}
	for id, want := range map[int64]bool{expired.ID: false, called.ID: true, imported.ID: true} {
		_, err := e.store.Get(ctx, id)
		if got := err == nil; got != want {
			t.Errorf("contact %d kept = %v, want %v (%v)", id, got, want, err)
		}
	}
	if cache.Lookup("+4930601") != nil {
		t.Error("purged contact still cached")
	}
	// A contact younger than the bound stays even without calls: its first
	// call record may still be on its way.
	fresh, _ := cache.FindOrCreate(contacts.Phone{E164: "+4930604"}, "")
	if n, _ := e.store.PurgeCallContacts(ctx, time.Now().Add(-time.Hour)); n != 0 {
		t.Errorf("purged %d fresh contacts", n)
	}
	if _, err := e.store.Get(ctx, fresh.ID); err != nil {
		t.Error(err)
	}
}

// TestOpenMissedAndPrivacyDelete: a contact shows its open missed calls, and
// deleting it (a privacy request) takes its missed-call entries along.
func TestOpenMissedAndPrivacyDelete(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c, err := e.store.Create(ctx, contacts.Contact{Name: "Jane", Numbers: []contacts.Phone{{E164: "+4930111222"}}})
	if err != nil {
		t.Fatal(err)
	}
	// The missed package owns the table and reads it for the store.
	log, err := missed.NewContactLog(ctx, e.db)
	if err != nil {
		t.Fatal(err)
	}
	e.store.UseMissed(log)
	for i, st := range []string{"open", "open", "processed"} {
		if _, err := e.db.ExecContext(ctx, e.db.Rebind(`INSERT INTO missed_calls (id, record_id, contact_id, status, created_at)
			VALUES (?, ?, ?, ?, 1)`), fmt.Sprint(i), fmt.Sprint("r", i), c.ID, st); err != nil {
			t.Fatal(err)
		}
	}
	got, err := e.store.Get(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.OpenMissed != 2 {
		t.Errorf("open_missed = %d, want 2", got.OpenMissed)
	}
	if _, err := e.store.Delete(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	var left int
	if err := e.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM missed_calls`).Scan(&left); err != nil || left != 0 {
		t.Errorf("missed entries left after delete: %d (%v)", left, err)
	}
}
