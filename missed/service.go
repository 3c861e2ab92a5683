package missed

import (
	"github.com/switchboard-sip/switchboard/cdr"

	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/switchboard-sip/switchboard/callctl"
	"github.com/switchboard-sip/switchboard/configs"
	"github.com/switchboard-sip/switchboard/contacts"
	"github.com/switchboard-sip/switchboard/storage"
)

// Retry of one event when the database fails (locked, disk full): a few
// tries spread over seconds ride out a busy database; after that the event
// is logged and dropped, so that one bad event cannot stall the queue.
const (
	handleAttempts   = 5
	handleBackoff    = 200 * time.Millisecond
	maxHandleBackoff = 5 * time.Second
)

// maxQueue bounds the events waiting for the worker, which holds them while
// the database is away: beyond it an event is dropped, counted and logged.
const maxQueue = 100_000

// contactWait bounds how long the worker waits for a contact that a call
// created a moment ago and that the contact cache has not written yet.
const contactWait = 2 * time.Second

// Options configure a Service. DB and Config are required.
type Options struct {
	DB     *storage.DB
	Config *configs.Config
	// Notifier queues notifications; nil creates entries and sends nothing.
	Notifier Notifier
	// Contacts reads the caller's contact; nil treats every caller as
	// having none.
	Contacts Contacts
	// Records is the call store: it links an entry to its record, and its
	// writer saves the record with its missed_id so that a pending write
	// of the record cannot undo the link. nil: entries are not linked.
	Records Records
	// SignIns tells when a receptionist last signed in; nil counts them as
	// present (the absent exception never applies).
	SignIns SignIns
	Log     *zap.Logger
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Service detects missed and short calls, keeps their entries and resolves
// them. It is safe for concurrent use.
type Service struct {
	st       store
	open     *openSet
	unlisten func()
	cfg      atomic.Pointer[configs.Config]
	notifier Notifier
	contacts Contacts
	records  Records
	signIns  SignIns
	log      *zap.Logger
	now      func() time.Time

	subMu sync.RWMutex
	subs  map[int]func(Event)
	subID int

	mu       sync.Mutex
	maxQueue int
	dropped  atomic.Uint64
	queue    []callctl.Event
	queued   uint64        // events ever queued
	handled  uint64        // events ever handled (done or dropped)
	progress chan struct{} // closed and replaced when handled moves
	wake     chan struct{}
	closed   bool
	stop     context.CancelFunc
	done     chan struct{}
}

// New migrates the entries table and starts the worker that handles the
// queued call events.
func New(ctx context.Context, o Options) (*Service, error) {
	if o.DB == nil {
		return nil, errors.New("missed: no database")
	}
	if o.Config == nil {
		return nil, errors.New("missed: no config")
	}
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if err := o.DB.Migrate(ctx, "missed", migrations); err != nil {
		return nil, fmt.Errorf("missed: %w", err)
	}
	wctx, cancel := context.WithCancel(context.Background())
	s := &Service{
		st:       store{db: o.DB},
		open:     newOpenSet(),
		notifier: o.Notifier,
		contacts: o.Contacts,
		records:  o.Records,
		signIns:  o.SignIns,
		log:      o.Log,
		now:      o.Now,
		subs:     map[int]func(Event){},
		maxQueue: maxQueue,
		progress: make(chan struct{}),
		wake:     make(chan struct{}, 1),
		stop:     cancel,
		done:     make(chan struct{}),
	}
	s.cfg.Store(o.Config)
	s.unlisten = s.listenOpen(o.DB)
	if err := s.loadOpen(ctx); err != nil {
		// Until a load succeeds every answered call asks the database.
		s.log.Warn("open missed calls not loaded", zap.Error(err))
	}
	go s.run(wctx)
	if err := s.recoverLost(ctx, o.Config.Node, s.now()); err != nil {
		s.log.Error("missed calls of an unclean stop not recovered", zap.Error(err))
	}
	return s, nil
}

// SetConfig applies a reloaded config to the calls that end from now on.
func (s *Service) SetConfig(cfg *configs.Config) {
	if cfg != nil {
		s.cfg.Store(cfg)
	}
}

// Observe is the tracker observer (callctl.NewTracker). It runs on the SIP
// path, so it only queues the event: the queue grows, up to maxQueue while
// the database is away, rather than block or drop a call end.
func (s *Service) Observe(e callctl.Event) {
	if e.Type == callctl.EventRinging {
		return
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.log.Error("call event after close dropped", zap.String("record", e.Record.ID), zap.String("type", string(e.Type)))
		return
	}
	if len(s.queue) >= s.maxQueue {
		s.mu.Unlock()
		if n := s.dropped.Add(1); n&(n-1) == 0 {
			s.log.Error("call event dropped: the local queue is full while the database is away",
				zap.String("record", e.Record.ID), zap.String("type", string(e.Type)), zap.Uint64("dropped", n))
		}
		return
	}
	s.queue = append(s.queue, e)
	s.queued++
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Pending is how many call events wait for the worker: the local queue
// that holds them while the database is away.
func (s *Service) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue)
}

// Dropped is how many call events the full local queue could not take.
func (s *Service) Dropped() uint64 { return s.dropped.Load() }

// Subscribe registers f for entry events (the board's event stream). f runs
// on the worker goroutine and must not block. The returned function
// unsubscribes.
func (s *Service) Subscribe(f func(Event)) (cancel func()) {
	s.subMu.Lock()
	s.subID++
	id := s.subID
	s.subs[id] = f
	s.subMu.Unlock()
	return func() {
		s.subMu.Lock()
		delete(s.subs, id)
		s.subMu.Unlock()
	}
}

func (s *Service) publish(t EventType, entries ...Entry) {
	s.subMu.RLock()
	defer s.subMu.RUnlock()
	for _, e := range entries {
		for _, f := range s.subs {
			f(Event{Type: t, Entry: e})
		}
	}
}

// Flush waits until every event queued before the call has been handled.
func (s *Service) Flush(ctx context.Context) error {
	s.mu.Lock()
	target := s.queued
	s.mu.Unlock()
	for {
		s.mu.Lock()
		handled, progress := s.handled, s.progress
		s.mu.Unlock()
		if handled >= target {
			return nil
		}
		select {
		case <-progress:
		case <-s.done:
			s.mu.Lock()
			handled = s.handled
			s.mu.Unlock()
			if handled >= target {
				return nil
			}
			return fmt.Errorf("missed: flush: worker stopped with %d events unhandled", target-handled)
		case <-ctx.Done():
			return fmt.Errorf("missed: flush: %d events unhandled: %w", target-handled, ctx.Err())
		}
	}
}

// Close handles what is queued (until ctx ends) and stops the worker.
func (s *Service) Close(ctx context.Context) error {
	s.mu.Lock()
	already := s.closed
	s.closed = true
	s.mu.Unlock()
	if already {
		<-s.done
		return nil
	}
	err := s.Flush(ctx)
	s.stop()
	<-s.done
	s.unlisten()
	return err
}

func (s *Service) run(ctx context.Context) {
	defer close(s.done)
	for {
		s.mu.Lock()
		batch := s.queue
		s.queue = nil
		s.mu.Unlock()
		for _, e := range batch {
			s.handleWithRetry(ctx, e)
			s.mu.Lock()
			s.handled++
			close(s.progress)
			s.progress = make(chan struct{})
			s.mu.Unlock()
		}
		if len(batch) > 0 {
			continue
		}
		select {
		case <-s.wake:
		case <-ctx.Done():
			return
		}
	}
}

func (s *Service) handleWithRetry(ctx context.Context, e callctl.Event) {
	delay := handleBackoff
	for attempt := 1; ; attempt++ {
		err := s.handle(ctx, e)
		if err == nil {
			return
		}
		if ctx.Err() != nil {
			s.log.Error("missed-call event dropped at close", zap.String("record", e.Record.ID),
				zap.String("call_id", e.Record.CallID), zap.String("type", string(e.Type)), zap.Error(err))
			return
		}
		// While the database is away the event waits for it (SPEC §11),
		// however long that takes; only an event that fails against a
		// database that answers is given up, so it cannot stall the queue.
		away := s.st.db.PingContext(ctx) != nil
		if attempt >= handleAttempts && !away {
			s.log.Error("missed-call event dropped", zap.String("record", e.Record.ID),
				zap.String("call_id", e.Record.CallID), zap.String("type", string(e.Type)), zap.Int("attempts", attempt), zap.Error(err))
			return
		}
		s.log.Warn("missed-call event failed, retrying", zap.String("record", e.Record.ID), zap.Bool("database_away", away), zap.Error(err))
		select {
		case <-time.After(delay):
		case <-ctx.Done():
		}
		delay = min(2*delay, maxHandleBackoff)
	}
}

// handle decides what a call event means for the entries.
func (s *Service) handle(ctx context.Context, e callctl.Event) error {
	cfg := s.cfg.Load()
	m := cfg.Missed
	r := e.Record
	switch e.Type {
	case callctl.EventAnswered:
		// Without short-call notification an answer settles it; with it,
		// the end tells whether the call was too short to count.
		if m.AutoResolve && !m.NotifyShort {
			return s.resolve(ctx, r)
		}
	case callctl.EventEnded:
		switch {
		case IsMissed(r):
			return s.create(ctx, cfg, e, KindMissed)
		case r.Disposition == cdr.Answered && r.Direction == callctl.Inbound && m.NotifyShort && IsShort(r, m.ShortCall.D()):
			return s.create(ctx, cfg, e, KindShort)
		case r.Disposition == cdr.Answered && m.AutoResolve && m.NotifyShort:
			return s.resolve(ctx, r)
		}
	}
	return nil
}

// IsMissed tells whether a record is a missed call (SPEC §3): inbound and
// no_answer or busy. Whether the caller is external is an exception of its
// own (internal), so that the board still shows internal misses.
func IsMissed(r cdr.Record) bool {
	return r.Direction == callctl.Inbound && (r.Disposition == cdr.NoAnswer || r.Disposition == cdr.Busy)
}

// IsShort tells whether an answered call talked less than limit (SPEC §3).
func IsShort(r cdr.Record, limit time.Duration) bool {
	return r.Disposition == cdr.Answered && r.AnsweredAt != nil && r.EndedAt != nil &&
		time.Duration(r.TalkMS)*time.Millisecond < limit
}

// caller is the calling party of an event, from the parsed call when there
// is one (calls completed after a restart have only their record).
func caller(e callctl.Event) callctl.Party {
	if e.Call != nil {
		return e.Call.Caller
	}
	return recordedCaller(e.Record)
}

// hotlineOf returns the hotline config of a record and the time zone its
// days are counted in.
func hotlineOf(cfg *configs.Config, name string) (*configs.Hotline, *time.Location) {
	loc := cfg.Location
	if loc == nil {
		loc = time.UTC
	}
	for i := range cfg.Hotlines {
		h := &cfg.Hotlines[i]
		if h.Name == name {
			if h.Location != nil {
				loc = h.Location
			}
			return h, loc
		}
	}
	return nil, loc
}

// contactOf reads the caller's contact: by the call's link, else by number.
// A contact created by this very call may still sit in the contact cache's
// write-behind queue, so a missing linked contact is waited for a moment.
func (s *Service) contactOf(ctx context.Context, r cdr.Record, p callctl.Party) *contacts.Contact {
	if s.contacts == nil {
		return nil
	}
	if r.ContactID != 0 {
		deadline := s.now().Add(contactWait)
		delay := 50 * time.Millisecond
		for {
			c, err := s.contacts.Get(ctx, r.ContactID)
			if err == nil {
				return &c
			}
			if !errors.Is(err, contacts.ErrNotFound) || s.now().Add(delay).After(deadline) {
				s.log.Warn("contact of a missed call not readable", zap.Int64("contact", r.ContactID), zap.Error(err))
				break
			}
			select {
			case <-time.After(delay):
			case <-ctx.Done():
				return nil
			}
			delay *= 2
		}
	}
	if p.E164 != "" && !p.Anonymous && !p.Internal {
		if c, err := s.contacts.FindByNumber(ctx, p.E164); err == nil {
			return &c
		} else if !errors.Is(err, contacts.ErrNotFound) {
			s.log.Warn("contact lookup for a missed call failed", zap.String("caller", p.E164), zap.Error(err))
		}
	}
	return nil
}

// create writes the entry of a missed or short call with its outbox rows
// and the record's missed_id, in one transaction.
func (s *Service) create(ctx context.Context, cfg *configs.Config, e callctl.Event, kind Kind) error {
	r := e.Record
	p := caller(e)
	m := cfg.Missed
	hotline, loc := hotlineOf(cfg, r.Hotline)
	contact := s.contactOf(ctx, r, p)
	now := s.now().UTC()

	entry := Entry{
		ID: callctl.NewID(now), CallID: r.CallID, RecordID: r.ID, Kind: kind,
		ContactID: r.ContactID, Caller: p.Key(), CallerName: r.CallerName, Hotline: r.Hotline,
		Status: Open, Count: 1, CreatedAt: now, Day: r.StartedAt.In(loc).Format(time.DateOnly),
	}
	if contact != nil {
		entry.ContactID = contact.ID
		if contact.Name != "" {
			entry.CallerName = contact.Name
		}
	}
	entry.Exception = callException(m, kind, p, r, contact)
	var extra []string
	if e.Call != nil {
		extra = e.Call.Notify
		if entry.Exception == None && e.Call.SkipNotify {
			entry.Exception = SkippedByRule
		}
	}
	// Repeats and absence are about one caller: anonymous callers are not
	// one caller, whatever number they come with.
	keyed := entry.Caller != "" && !p.Anonymous

	tx, err := s.st.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("missed: record %s: begin: %w", r.ID, err)
	}
	defer tx.Rollback()

	var repeatOf *Entry
	if entry.Exception == None && keyed && m.Exceptions.SameDayRepeat {
		if repeatOf, err = s.st.openSameDay(ctx, tx, entry.Caller, entry.Day); err != nil {
			return err
		}
		if repeatOf != nil {
			entry.Exception = SameDayRepeat
			if err := s.st.countRepeat(ctx, tx, repeatOf.ID, nil); err != nil {
				return err
			}
			repeatOf.Count++
		}
	}
	if entry.Exception == None && keyed && m.Exceptions.Absent && s.signIns != nil {
		last, err := s.st.lastNotified(ctx, tx, entry.Caller)
		if err != nil {
			return err
		}
		if !last.IsZero() && s.signIns.LastSignIn().Before(last) {
			entry.Exception = Absent
		}
	}
	sent := 0
	if entry.Exception == None && s.notifier != nil {
		entry.NotifiedAt = &now
		if sent, err = s.notifier.Enqueue(ctx, tx, Notice{Entry: entry, Record: withMissed(r, entry.ID), Contact: contact, Hotline: hotline, Extra: extra}); err != nil {
			return fmt.Errorf("missed: record %s: %w", r.ID, err)
		}
		if sent == 0 {
			// No channel is configured: nothing was queued, so nothing counts
			// as notified for the absent exception either.
			entry.NotifiedAt = nil
		}
	}
	if err := s.st.insert(ctx, tx, entry); err != nil {
		return err
	}
	if err := s.announceOpen(ctx, tx, entry); err != nil {
		return fmt.Errorf("missed: record %s: announce: %w", r.ID, err)
	}
	if s.records != nil {
		if err := s.records.LinkMissed(ctx, tx, r.ID, entry.ID); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("missed: record %s: commit: %w", r.ID, err)
	}
	s.open.add(entry.ContactID, entry.Caller)
	if l, ok := s.records.(linker); ok {
		l.LinkSaved(ctx, r, entry.ID)
	} else if s.records != nil {
		s.records.Save(withMissed(r, entry.ID))
	}
	if sent > 0 {
		s.notifier.Kick()
	}
	s.log.Info("missed call", zap.String("entry", entry.ID), zap.String("record", r.ID), zap.String("call_id", r.CallID),
		zap.String("kind", string(kind)), zap.String("caller", entry.Caller), zap.String("hotline", entry.Hotline),
		zap.String("exception", string(entry.Exception)), zap.Int("notifications", sent))
	if repeatOf != nil {
		s.publish(EventCreated, *repeatOf, entry)
	} else {
		s.publish(EventCreated, entry)
	}
	return nil
}

func withMissed(r cdr.Record, id string) cdr.Record {
	r.MissedID = id
	return r
}

// callException is the first exception that the call itself carries, in
// the order of SPEC §4; repeats and absence depend on other entries and are
// checked in the transaction.
func callException(m configs.Missed, kind Kind, p callctl.Party, r cdr.Record, c *contacts.Contact) Exception {
	x := m.Exceptions
	switch {
	case x.Internal && p.Internal:
		return Internal
	case x.Anonymous && p.Anonymous:
		return Anonymous
	case excluded(x.Exclude, p):
		return Excluded
	case kind == KindMissed && time.Duration(r.RingMS)*time.Millisecond < m.MinRing.D():
		return MinRing
	case x.UnknownContact && (c == nil || c.Name == ""):
		return UnknownContact
	}
	return None
}

// excluded matches the caller against missed.exceptions.exclude: exact
// numbers, and prefixes ending in *.
func excluded(list []string, p callctl.Party) bool {
	for _, pat := range list {
		for _, n := range []string{p.E164, p.Raw} {
			if n == "" {
				continue
			}
			if prefix, ok := cutSuffix(pat, "*"); ok {
				if len(n) >= len(prefix) && n[:len(prefix)] == prefix {
					return true
				}
			} else if n == pat {
				return true
			}
		}
	}
	return false
}

func cutSuffix(s, suffix string) (string, bool) {
	if len(s) >= len(suffix) && s[len(s)-len(suffix):] == suffix {
		return s[:len(s)-len(suffix)], true
	}
	return s, false
}

// resolve marks the open entries of the answered call's remote party
// processed, recording the call as the resolver (SPEC §4 auto-resolve).
func (s *Service) resolve(ctx context.Context, r cdr.Record) error {
	number := r.Caller
	if number == "" {
		number = r.CallerRaw
	}
	if r.Direction == callctl.Outbound {
		number = r.Called
		if number == "" {
			number = r.CalledRaw
		}
	}
	if r.ContactID == 0 && number == "" {
		return nil
	}
	at := s.now().UTC()
	// Most answered calls resolve nothing: the set of parties with open
	// entries says so without the database.
	if !s.open.isLoaded() {
		if err := s.loadOpen(ctx); err != nil {
			s.log.Warn("open missed calls not loaded", zap.Error(err))
		}
	}
	may, epoch := s.open.mayHave(r.ContactID, number)
	if !may {
		return nil
	}
	// Look first without the write lock that a transaction takes (it would
	// queue behind the call record writer), and without the time bound, so
	// that a party found without any open entry can leave the set.
	open, err := s.st.openFor(ctx, s.st.db, r.ContactID, number, time.Time{})
	if err != nil {
		return err
	}
	if len(open) == 0 {
		s.open.drop(r.ContactID, number, epoch)
		return nil
	}
	tx, err := s.st.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("missed: resolve by %s: begin: %w", r.ID, err)
	}
	defer tx.Rollback()
	open, err = s.st.openFor(ctx, tx, r.ContactID, number, at)
	if err != nil || len(open) == 0 {
		return err
	}
	var done []Entry
	for _, e := range open {
		ok, err := s.st.markProcessed(ctx, tx, e.ID, r.ID, at)
		if err != nil {
			return err
		}
		if ok {
			e.Status, e.ProcessedAt, e.ResolvedBy = Processed, &at, r.ID
			done = append(done, e)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("missed: resolve by %s: commit: %w", r.ID, err)
	}
	for _, e := range done {
		s.log.Info("missed call resolved", zap.String("entry", e.ID), zap.String("by", r.ID), zap.String("caller", e.Caller))
	}
	s.publish(EventProcessed, done...)
	return nil
}

// Process marks an open entry processed by hand; by says who (or what) did
// it. It returns ErrNotFound for an unknown id and ErrProcessed for an
// entry already processed.
func (s *Service) Process(ctx context.Context, id, by string) (Entry, error) {
	if by == "" {
		by = "manual"
	}
	at := s.now().UTC()
	tx, err := s.st.db.BeginTx(ctx, nil)
	if err != nil {
		return Entry{}, fmt.Errorf("missed: process %q: begin: %w", id, err)
	}
	defer tx.Rollback()
	e, err := s.st.get(ctx, tx, id)
	if err != nil {
		return Entry{}, err
	}
	ok, err := s.st.markProcessed(ctx, tx, id, by, at)
	if err != nil {
		return Entry{}, err
	}
	if !ok {
		return e, fmt.Errorf("missed: process %q: %w", id, ErrProcessed)
	}
	if err := tx.Commit(); err != nil {
		return Entry{}, fmt.Errorf("missed: process %q: commit: %w", id, err)
	}
	e.Status, e.ProcessedAt, e.ResolvedBy = Processed, &at, by
	s.publish(EventProcessed, e)
	return e, nil
}

// Get returns one entry.
func (s *Service) Get(ctx context.Context, id string) (Entry, error) {
	return s.st.get(ctx, s.st.db, id)
}

// List returns entries newest first, of one status when status is set,
// limit at a time (0 means 50, at most 1000), after cursor; next is the
// cursor of the following page, empty on the last one. A cursor that List
// did not make gives storage.ErrInvalidCursor.
func (s *Service) List(ctx context.Context, status Status, limit int, cursor string) (items []Entry, next string, err error) {
	return s.st.list(ctx, status, limit, cursor)
}
