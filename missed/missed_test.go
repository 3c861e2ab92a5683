package missed_test

import (
	"github.com/switchboard-sip/switchboard/cdr"

	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-sip/switchboard/callctl"
	"github.com/switchboard-sip/switchboard/configs"
	"github.com/switchboard-sip/switchboard/contacts"
	"github.com/switchboard-sip/switchboard/missed"
	"github.com/switchboard-sip/switchboard/notify"
	"github.com/switchboard-sip/switchboard/storage"
	"github.com/switchboard-sip/switchboard/storage/callstore"
	"github.com/switchboard-sip/switchboard/storage/storagetest"
)

const baseConfig = `
timezone: UTC
sip:
  listen: [udp://127.0.0.1:5060]
  pbx: sip:127.0.0.1:5080
  trunks:
    - {name: carrier, match: [127.0.0.1/32], outbound: "sip:127.0.0.1:5090", region: DE}
numbers: {region: DE, internal: ["1xx"]}
hotlines:
  - name: acme
    numbers: ["+49301234560"]
    company: ACME GmbH
    timezone: Europe/Berlin
    recipients: [desk@acme.example]
missed:
  webhook: {url: "%s", secret: s3cret}
`

// hookCounter is a real HTTP receiver that counts webhook deliveries by
// entry id.
type hookCounter struct {
	srv *httptest.Server
	mu  sync.Mutex
	n   int
}

func newHookCounter(t testing.TB) *hookCounter {
	h := &hookCounter{}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		h.mu.Lock()
		h.n++
		h.mu.Unlock()
	}))
	t.Cleanup(h.srv.Close)
	return h
}

// signIns is a settable board sign-in clock.
type signIns struct{ at atomic.Pointer[time.Time] }

func (s *signIns) LastSignIn() time.Time {
	if t := s.at.Load(); t != nil {
		return *t
	}
	return time.Time{}
}

type env struct {
	hook     *hookCounter
	t        testing.TB
	cfg      *configs.Config
	db       *storage.DB
	calls    *callstore.Store
	contacts *contacts.Store
	notifier missed.Notifier
	svc      *missed.Service
	events   chan missed.Event
	clock    *clock
}

// clock is a settable time for the service; it moves only when told.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

type envOptions struct {
	tweak   func(*configs.Config)
	signIns missed.SignIns
	wrap    func(missed.Notifier) missed.Notifier
	// driver and dsn, when set, name the database instead of storagetest.
	driver, dsn string
}

func newEnv(t testing.TB, o envOptions) *env {
	t.Helper()
	ctx := context.Background()
	hook := newHookCounter(t)
	cfg, err := configs.Parse([]byte(fmt.Sprintf(baseConfig, hook.srv.URL)))
	if err != nil {
		t.Fatal(err)
	}
	if o.tweak != nil {
		o.tweak(cfg)
	}
	if o.driver == "" {
		o.driver, o.dsn = storagetest.Target(t, "sb")
	}
	db, err := storage.Open(o.driver, o.dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	calls, err := callstore.New(ctx, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { calls.Close(context.Background()) })
	cs, err := contacts.NewStore(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	n, err := notify.New(ctx, notify.Options{DB: db, Config: cfg, BaseDelay: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close(context.Background()) })
	var notifier missed.Notifier = n
	if o.wrap != nil {
		notifier = o.wrap(n)
	}
	e := &env{t: t, cfg: cfg, db: db, calls: calls, hook: hook, contacts: cs, notifier: notifier,
		events: make(chan missed.Event, 100), clock: &clock{t: day(10, 0)}}
	e.svc, err = missed.New(ctx, missed.Options{DB: db, Config: cfg, Notifier: notifier, Contacts: cs,
		Records: calls, SignIns: o.signIns, Now: e.clock.now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.svc.Close(context.Background()) })
	e.svc.Subscribe(func(ev missed.Event) {
		select { // a subscriber must not block the worker
		case e.events <- ev:
		default:
		}
	})
	return e
}

// day is a time on 2030-03-04 (UTC).
func day(h, m int) time.Time { return time.Date(2030, 3, 4, h, m, 0, 0, time.UTC) }

var recordSeq atomic.Int64

// call describes a finished call for the tests.
type call struct {
	dir       callctl.Direction
	caller    callctl.Party
	called    string
	disp      cdr.Disposition
	ring      time.Duration
	talk      time.Duration
	at        time.Time
	contactID int64
	hotline   string
	skip      bool // a rule said skip_notify
}

func external(n string) callctl.Party { return callctl.Party{E164: n, Raw: n} }

func (c call) event() callctl.Event {
	if c.dir == "" {
		c.dir = callctl.Inbound
	}
	if c.disp == "" {
		c.disp = cdr.NoAnswer
	}
	if c.at.IsZero() {
		c.at = day(10, 0)
	}
	if c.hotline == "" {
		c.hotline = "acme"
	}
	if c.called == "" {
		c.called = "+49301234560"
	}
	id := fmt.Sprintf("r%04d", recordSeq.Add(1))
	ringing := c.at.Add(100 * time.Millisecond)
	ended := ringing.Add(c.ring)
	r := cdr.Record{
		ID: id, CallID: "cid-" + id, Direction: c.dir, Caller: c.caller.E164, CallerRaw: c.caller.Raw,
		CallerName: c.caller.Name, Called: c.called, CalledRaw: c.called, Hotline: c.hotline,
		ContactID: c.contactID, StartedAt: c.at, RingingAt: &ringing, RingMS: c.ring.Milliseconds(),
		Disposition: c.disp,
	}
	call := &callctl.Call{ID: id, CallID: r.CallID, Direction: c.dir, Caller: c.caller,
		Called: external(c.called), Hotline: c.hotline, ContactID: c.contactID, SkipNotify: c.skip}
	if c.dir == callctl.Outbound {
		call.Caller, call.Called = external(c.called), c.caller
		r.Caller, r.CallerRaw, r.Called, r.CalledRaw = c.called, c.called, c.caller.E164, c.caller.Raw
	}
	if c.disp == cdr.Answered {
		answered := ended
		ended = answered.Add(c.talk)
		r.AnsweredAt, r.TalkMS, r.SIPStatus = &answered, c.talk.Milliseconds(), 200
	} else {
		r.SIPStatus = 487
	}
	r.EndedAt = &ended
	return callctl.Event{Type: callctl.EventEnded, Record: r, Call: call}
}

// end feeds a finished call (answered calls get their answer event first,
// as the tracker sends them) and waits until the service handled it.
func (e *env) end(c call) cdr.Record {
	e.t.Helper()
	ev := c.event()
	e.calls.Save(ev.Record)
	if ev.Record.Disposition == cdr.Answered {
		a := ev
		a.Type = callctl.EventAnswered
		e.svc.Observe(a)
	}
	e.svc.Observe(ev)
	e.flush()
	return ev.Record
}

func (e *env) flush() {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.svc.Flush(ctx); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) entries(status missed.Status) []missed.Entry {
	e.t.Helper()
	items, _, err := e.svc.List(context.Background(), status, 100, "")
	if err != nil {
		e.t.Fatal(err)
	}
	return items
}

func (e *env) only() missed.Entry {
	e.t.Helper()
	items := e.entries("")
	if len(items) != 1 {
		e.t.Fatalf("want 1 entry, have %d: %+v", len(items), items)
	}
	return items[0]
}

func (e *env) outboxRows(missedID string) int {
	e.t.Helper()
	var n int
	q := `SELECT COUNT(*) FROM outbox`
	var args []any
	if missedID != "" {
		q += ` WHERE missed_id = ?`
		args = append(args, missedID)
	}
	if err := e.db.QueryRow(e.db.Rebind(q), args...).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

func (e *env) contact(name, number string) int64 {
	e.t.Helper()
	c, err := e.contacts.Create(context.Background(), contacts.Contact{Name: name, Email: "jane@example.com",
		Numbers: []contacts.Phone{{E164: number, Raw: number}}})
	if err != nil {
		e.t.Fatal(err)
	}
	return c.ID
}

const jane = "+4930111222"

func TestExceptions(t *testing.T) {
	t.Parallel()
	long := 3 * time.Second
	cases := []struct {
		name      string
		tweak     func(*configs.Config)
		named     bool // the caller has a contact with a name
		nameless  bool // the caller has a contact without a name
		call      call
		want      missed.Exception
		noEntry   bool
		wantShort bool
	}{
		{name: "plain missed call", call: call{caller: external(jane), ring: long}},
		{name: "busy", call: call{caller: external(jane), ring: long, disp: cdr.Busy}},
		{name: "internal", call: call{caller: callctl.Party{Raw: "123", Internal: true}, ring: long}, want: missed.Internal},
		{name: "internal switched off", tweak: func(c *configs.Config) { c.Missed.Exceptions.Internal = false },
			call: call{caller: callctl.Party{Raw: "123", Internal: true}, ring: long}},
		{name: "anonymous", call: call{caller: callctl.Party{Raw: "anonymous", Anonymous: true}, ring: long}, want: missed.Anonymous},
		{name: "anonymous switched off", tweak: func(c *configs.Config) { c.Missed.Exceptions.Anonymous = false },
			call: call{caller: callctl.Party{Raw: "anonymous", Anonymous: true}, ring: long}},
		{name: "excluded number", tweak: func(c *configs.Config) { c.Missed.Exceptions.Exclude = []string{jane} },
			call: call{caller: external(jane), ring: long}, want: missed.Excluded},
		{name: "excluded prefix", tweak: func(c *configs.Config) { c.Missed.Exceptions.Exclude = []string{"+4930*"} },
			call: call{caller: external(jane), ring: long}, want: missed.Excluded},
		{name: "other prefix not excluded", tweak: func(c *configs.Config) { c.Missed.Exceptions.Exclude = []string{"+4989*"} },
			call: call{caller: external(jane), ring: long}},
		{name: "ring below min_ring", call: call{caller: external(jane), ring: 1999 * time.Millisecond}, want: missed.MinRing},
		{name: "ring of exactly min_ring", call: call{caller: external(jane), ring: 2 * time.Second}},
		{name: "min_ring zero", tweak: func(c *configs.Config) { c.Missed.MinRing = 0 }, call: call{caller: external(jane)}},
		{name: "unknown contact", tweak: func(c *configs.Config) { c.Missed.Exceptions.UnknownContact = true },
			call: call{caller: external(jane), ring: long}, want: missed.UnknownContact},
		{name: "contact without a name", tweak: func(c *configs.Config) { c.Missed.Exceptions.UnknownContact = true },
			nameless: true, call: call{caller: external(jane), ring: long}, want: missed.UnknownContact},
		{name: "named contact", tweak: func(c *configs.Config) { c.Missed.Exceptions.UnknownContact = true },
			named: true, call: call{caller: external(jane), ring: long}},
		{name: "rule skip_notify", call: call{caller: external(jane), ring: long, skip: true}, want: missed.SkippedByRule},
		{name: "answered elsewhere", call: call{caller: external(jane), ring: long, disp: cdr.Elsewhere}, noEntry: true},
		{name: "rejected", call: call{caller: external(jane), ring: long, disp: cdr.Rejected}, noEntry: true},
		{name: "outbound not answered", call: call{dir: callctl.Outbound, caller: external(jane), ring: long}, noEntry: true},
		{name: "answered", call: call{caller: external(jane), ring: long, disp: cdr.Answered, talk: time.Second}, noEntry: true},
		{name: "short call", tweak: func(c *configs.Config) { c.Missed.NotifyShort = true },
			call: call{caller: external(jane), ring: 0, disp: cdr.Answered, talk: 4 * time.Second}, wantShort: true},
		{name: "long enough call", tweak: func(c *configs.Config) { c.Missed.NotifyShort = true },
			call: call{caller: external(jane), ring: long, disp: cdr.Answered, talk: 5 * time.Second}, noEntry: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, envOptions{tweak: c.tweak})
			switch {
			case c.named:
				e.contact("Jane Doe", jane)
			case c.nameless:
				e.contact("", jane)
			}
			rec := e.end(c.call)
			if c.noEntry {
				if got := e.entries(""); len(got) != 0 {
					t.Fatalf("want no entry, have %+v", got)
				}
				return
			}
			got := e.only()
			if got.Exception != c.want {
				t.Errorf("exception %q, want %q", got.Exception, c.want)
			}
			if got.Status != missed.Open || got.Count != 1 || got.RecordID != rec.ID || got.CallID != rec.CallID || got.Day != "2030-03-04" {
				t.Errorf("entry %+v: want open, count 1, record %s, day 2030-03-04", got, rec.ID)
			}
			wantKind := missed.KindMissed
			if c.wantShort {
				wantKind = missed.KindShort
			}
			if got.Kind != wantKind {
				t.Errorf("kind %q, want %q", got.Kind, wantKind)
			}
			rows := e.outboxRows(got.ID)
			if c.want == missed.None {
				if rows != 1 || got.NotifiedAt == nil {
					t.Errorf("notified_at %v, %d outbox rows: want set and 1 (the webhook)", got.NotifiedAt, rows)
				}
			} else if rows != 0 || got.NotifiedAt != nil {
				t.Errorf("excepted entry: notified_at %v, %d outbox rows, want none", got.NotifiedAt, rows)
			}
			if c.named && got.ContactID == 0 {
				t.Errorf("entry not linked to the caller's contact")
			}
			// The record carries the entry id.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := e.calls.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			r, err := e.calls.Get(ctx, rec.ID)
			if err != nil || r.MissedID != got.ID {
				t.Errorf("record missed_id %q (%v), want %s", r.MissedID, err, got.ID)
			}
		})
	}
}

func TestSameDayRepeat(t *testing.T) {
	t.Parallel()
	long := 3 * time.Second
	cases := []struct {
		name       string
		off        bool
		first      call
		second     call
		wantRepeat bool
	}{
		{name: "same day", first: call{caller: external(jane), ring: long, at: day(9, 0)},
			second: call{caller: external(jane), ring: long, at: day(15, 0)}, wantRepeat: true},
		{name: "switched off", off: true, first: call{caller: external(jane), ring: long, at: day(9, 0)},
			second: call{caller: external(jane), ring: long, at: day(15, 0)}},
		{name: "other caller", first: call{caller: external(jane), ring: long, at: day(9, 0)},
			second: call{caller: external("+4930999888"), ring: long, at: day(9, 5)}},
		// 23:30 UTC on the 3rd is 00:30 on the 4th in Berlin, the hotline's
		// zone: the same day as 09:00 UTC on the 4th.
		{name: "same day in the hotline's zone", first: call{caller: external(jane), ring: long, at: day(0, 0).Add(-30 * time.Minute)},
			second: call{caller: external(jane), ring: long, at: day(9, 0)}, wantRepeat: true},
		// 23:30 UTC on the 4th is the 5th in Berlin.
		{name: "next day in the hotline's zone", first: call{caller: external(jane), ring: long, at: day(9, 0)},
			second: call{caller: external(jane), ring: long, at: day(23, 30)}},
		// A first call that was never notified does not make the second a
		// repeat: the second is the one the front desk hears about.
		{name: "first excepted", first: call{caller: external(jane), ring: time.Second, at: day(9, 0)},
			second: call{caller: external(jane), ring: long, at: day(9, 5)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, envOptions{tweak: func(cfg *configs.Config) { cfg.Missed.Exceptions.SameDayRepeat = !c.off }})
			r1 := e.end(c.first)
			r2 := e.end(c.second)
			list := e.entries("")
			if len(list) != 2 {
				t.Fatalf("want 2 entries, have %+v", list)
			}
			byRecord := map[string]missed.Entry{}
			for _, x := range list {
				byRecord[x.RecordID] = x
			}
			first, second := byRecord[r1.ID], byRecord[r2.ID]
			if c.wantRepeat {
				if first.Count != 2 || first.NotifiedAt == nil || e.outboxRows(first.ID) != 1 {
					t.Errorf("first entry %+v: want count 2, notified once", first)
				}
				if second.Exception != missed.SameDayRepeat || second.NotifiedAt != nil || e.outboxRows(second.ID) != 0 {
					t.Errorf("second entry %+v: want same_day_repeat, not notified", second)
				}
				return
			}
			if first.Count != 1 || second.Count != 1 {
				t.Errorf("counts %d and %d, want 1 and 1", first.Count, second.Count)
			}
			if second.Exception != missed.None || e.outboxRows(second.ID) != 1 {
				t.Errorf("second entry %+v: want notified", second)
			}
		})
	}
}

func TestAbsent(t *testing.T) {
	t.Parallel()
	long := 3 * time.Second
	cases := []struct {
		name    string
		signIns func(notified time.Time) *time.Time // nil: no board
		off     bool
		want    missed.Exception
	}{
		{name: "never signed in", signIns: func(time.Time) *time.Time { return &time.Time{} }, want: missed.Absent},
		{name: "signed in before the notification", signIns: func(n time.Time) *time.Time { t := n.Add(-time.Minute); return &t }, want: missed.Absent},
		{name: "signed in since", signIns: func(n time.Time) *time.Time { t := n.Add(time.Minute); return &t }},
		{name: "switched off", off: true, signIns: func(time.Time) *time.Time { return &time.Time{} }},
		{name: "no board"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var si *signIns
			var opt missed.SignIns
			if c.signIns != nil {
				si = &signIns{}
				opt = si
			}
			e := newEnv(t, envOptions{signIns: opt, tweak: func(cfg *configs.Config) { cfg.Missed.Exceptions.Absent = !c.off }})
			e.end(call{caller: external(jane), ring: long, at: day(9, 0)})
			first := e.only()
			if first.NotifiedAt == nil {
				t.Fatalf("first call not notified: %+v", first)
			}
			// Processed, so the next call is not a same-day repeat.
			if _, err := e.svc.Process(context.Background(), first.ID, "test"); err != nil {
				t.Fatal(err)
			}
			if si != nil {
				si.at.Store(c.signIns(*first.NotifiedAt))
			}
			e.clock.set(day(11, 0))
			r := e.end(call{caller: external(jane), ring: long, at: day(11, 0)})
			// Excepted or not, the second call has exactly one entry (the
			// board shows it); only an excepted one is not notified.
			var second []missed.Entry
			for _, x := range e.entries("") {
				if x.RecordID == r.ID {
					second = append(second, x)
				}
			}
			if len(second) != 1 {
				t.Fatalf("%d entries for the second call, want 1", len(second))
			}
			if got := second[0]; got.Exception != c.want || got.Status != missed.Open {
				t.Errorf("second entry %s with exception %q, want open with %q", got.Status, got.Exception, c.want)
			}
			if notified := second[0].NotifiedAt != nil; notified != (c.want == missed.None) {
				t.Errorf("second entry notified %v, want %v", notified, c.want == missed.None)
			}
		})
	}
}

func TestAutoResolve(t *testing.T) {
	t.Parallel()
	long := 3 * time.Second
	cases := []struct {
		name        string
		notifyShort bool
		withContact bool
		later       call
		resolved    bool
	}{
		{name: "call-back to the number", later: call{dir: callctl.Outbound, caller: external(jane), disp: cdr.Answered, talk: time.Minute}, resolved: true},
		{name: "caller reached on a new call", later: call{caller: external(jane), disp: cdr.Answered, talk: time.Minute}, resolved: true},
		{name: "same contact, other number", withContact: true,
			later: call{dir: callctl.Outbound, caller: external("+4915100000"), disp: cdr.Answered, talk: time.Minute}, resolved: true},
		{name: "call-back not answered", later: call{dir: callctl.Outbound, caller: external(jane), ring: long}},
		{name: "other number", later: call{dir: callctl.Outbound, caller: external("+4989000111"), disp: cdr.Answered, talk: time.Minute}},
		{name: "with notify_short, a real talk", notifyShort: true,
			later: call{caller: external(jane), disp: cdr.Answered, talk: time.Minute}, resolved: true},
		{name: "with notify_short, a short call", notifyShort: true,
			later: call{caller: external(jane), disp: cdr.Answered, talk: time.Second}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, envOptions{tweak: func(cfg *configs.Config) { cfg.Missed.NotifyShort = c.notifyShort }})
			var id int64
			if c.withContact {
				id = e.contact("Jane Doe", jane)
			}
			e.clock.set(day(9, 0))
			e.end(call{caller: external(jane), ring: long, at: day(9, 0), contactID: id})
			first := e.only()
			<-e.events // created
			e.clock.set(day(9, 30))
			later := c.later
			later.at, later.contactID = day(9, 30), id
			r := e.end(later)
			got, err := e.svc.Get(context.Background(), first.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !c.resolved {
				if got.Status != missed.Open {
					t.Errorf("entry %+v: want still open", got)
				}
				return
			}
			if got.Status != missed.Processed || got.ResolvedBy != r.ID || got.ProcessedAt == nil {
				t.Errorf("entry %+v: want processed, resolved by %s", got, r.ID)
			}
			// Events are published before the flush returns.
			for len(e.events) > 0 {
				if ev := <-e.events; ev.Type == missed.EventProcessed {
					if ev.Entry.ID != first.ID {
						t.Errorf("processed event for %s, want %s", ev.Entry.ID, first.ID)
					}
					return
				}
			}
			t.Errorf("no missed.processed event")
		})
	}
}

// failingOnce makes the first Enqueue fail after the rows were written, as
// a database error in the middle of the transaction would.
type failingOnce struct {
	missed.Notifier
	failed atomic.Bool
}

func (f *failingOnce) Enqueue(ctx context.Context, tx *sql.Tx, n missed.Notice) (int, error) {
	k, err := f.Notifier.Enqueue(ctx, tx, n)
	if err == nil && !f.failed.Swap(true) {
		return 0, errors.New("injected failure")
	}
	return k, err
}

func TestOneTransaction(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{wrap: func(n missed.Notifier) missed.Notifier { return &failingOnce{Notifier: n} }})
	e.end(call{caller: external(jane), ring: 3 * time.Second})
	// The failed attempt left nothing behind: one entry, and every outbox
	// row belongs to it.
	got := e.only()
	if all, own := e.outboxRows(""), e.outboxRows(got.ID); all != 1 || own != 1 {
		t.Errorf("outbox rows %d, of the entry %d: want 1 and 1", all, own)
	}
	// The record is linked to that entry: by the transaction that
	// succeeded, and by the call store's writer, whose last write of the
	// record carries the link too.
	if err := e.calls.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	var linked int
	if err := e.db.QueryRow(`SELECT COUNT(*) FROM calls WHERE missed_id != ''`).Scan(&linked); err != nil {
		t.Fatal(err)
	}
	rec, err := e.calls.Get(context.Background(), got.RecordID)
	if err != nil {
		t.Fatal(err)
	}
	if linked != 1 || rec.MissedID != got.ID {
		t.Errorf("%d records linked, the call's to %q: want 1, to %q", linked, rec.MissedID, got.ID)
	}
}

func TestProcessByHand(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	e.end(call{caller: external(jane), ring: 3 * time.Second})
	ent := e.only()
	ctx := context.Background()
	cases := []struct {
		name string
		id   string
		want error
	}{
		{"open entry", ent.ID, nil},
		{"again", ent.ID, missed.ErrProcessed},
		{"unknown", "nope", missed.ErrNotFound},
	}
	for _, c := range cases {
		got, err := e.svc.Process(ctx, c.id, "alice")
		if !errors.Is(err, c.want) {
			t.Errorf("%s: err %v, want %v", c.name, err, c.want)
		}
		if c.want == nil && (got.Status != missed.Processed || got.ResolvedBy != "alice" || got.ProcessedAt == nil) {
			t.Errorf("%s: %+v, want processed by alice", c.name, got)
		}
	}
	if open := e.entries(missed.Open); len(open) != 0 {
		t.Errorf("open entries %+v, want none", open)
	}
}

func TestListPages(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{tweak: func(c *configs.Config) { c.Missed.Exceptions.SameDayRepeat = false }})
	for i := range 5 {
		e.clock.set(day(10, i))
		e.end(call{caller: external(fmt.Sprintf("+4930111%03d", i)), ring: 3 * time.Second, at: day(10, i)})
	}
	var seen []string
	cursor := ""
	for page := 0; ; page++ {
		items, next, err := e.svc.List(context.Background(), missed.Open, 2, cursor)
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range items {
			seen = append(seen, x.Caller)
		}
		if next == "" {
			break
		}
		cursor = next
		if page > 5 {
			t.Fatal("pagination does not end")
		}
	}
	want := []string{"+4930111004", "+4930111003", "+4930111002", "+4930111001", "+4930111000"}
	if fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Errorf("pages %v, want %v", seen, want)
	}
	if _, _, err := e.svc.List(context.Background(), "", 10, "garbage!"); !errors.Is(err, storage.ErrInvalidCursor) {
		t.Errorf("bad cursor: %v, want ErrInvalidCursor", err)
	}
}

// TestObserveDoesNotWait checks that the observer returns at once even when
// the database is locked by someone else: the SIP path never waits.
func TestObserveDoesNotWait(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	tx, err := e.db.Begin() // immediate: holds the write lock
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for range 1000 {
		e.svc.Observe(call{caller: external(jane), ring: 3 * time.Second}.event())
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("1000 observed events took %v with the database locked", d)
	}
	tx.Rollback()
	e.flush()
}

// A contact the call path created may reach the database only after the
// call ended (the contact cache batches its writes): the service waits for
// it rather than treat the caller as unknown.
func TestContactWrittenAfterTheCall(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	cache, err := contacts.NewCache(ctx, e.contacts, contacts.CacheOptions{Batch: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cache.Close(context.Background()) })
	in, created := cache.FindOrCreate(contacts.Phone{E164: jane, Raw: jane}, "Jane Later")
	if in == nil || !created {
		t.Fatalf("cache created %+v (%v)", in, created)
	}
	if _, err := e.contacts.Get(ctx, in.ID); !errors.Is(err, contacts.ErrNotFound) {
		t.Fatalf("contact %d readable before the cache wrote it (err %v): the test would not reach the retry", in.ID, err)
	}
	// The record names the contact by id only: the caller's number (a
	// second line of Jane's) finds no contact, so only the retry can.
	e.end(call{caller: external("+4930999000"), ring: 3 * time.Second, contactID: in.ID})
	got := e.only()
	if got.ContactID != in.ID || got.CallerName != "Jane Later" {
		t.Errorf("entry contact %d name %q, want %d %q", got.ContactID, got.CallerName, in.ID, "Jane Later")
	}
}
