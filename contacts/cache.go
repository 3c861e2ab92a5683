package contacts

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// Info is what the call path knows about a contact: enough for hotline
// templates (.Contact.Name) and rules (contact.tags). An Info is never
// changed once published; a write replaces it. Callers must not modify Tags.
type Info struct {
	ID      int64
	Name    string
	Company string
	Email   string
	Tags    []string

	keys []uint64 // the contact's numbers, as numberKey values
}

func infoOf(c *Contact) *Info {
	tags := c.Tags
	if tags == nil {
		tags = []string{}
	}
	return &Info{ID: c.ID, Name: c.Name, Company: c.Company, Email: c.Email, Tags: tags}
}

// CacheOptions tunes a Cache. Zero values take the defaults.
type CacheOptions struct {
	Log *zap.Logger
	// Poll is how often the cache reads the change log for writes made by
	// other processes (the CLI, other nodes). Default 1s.
	Poll time.Duration
	// Block is how many contact ids the call path reserves at a time.
	// Default 1024.
	Block int
	// Batch is how long the writer lets call-created contacts gather after
	// the first before it writes them in one transaction. Default 10ms.
	Batch time.Duration
	// Merged hears of a call-created contact that was not written because
	// its number went to another contact meanwhile (an import, another
	// node): the calls linked to from belong to into. It must not block.
	Merged func(from, into int64)
}

// CacheStats are counters for metrics and tests.
type CacheStats struct {
	Contacts  int    // contacts in memory
	Numbers   int    // numbers in memory
	Pending   int    // contacts created by calls not yet written
	Exhausted uint64 // creations refused because no id was reserved
	Conflicts uint64 // call-created contacts merged into one made elsewhere
}

type pendingContact struct {
	id      int64
	phone   Phone
	name    string
	created time.Time
}

type idRange struct{ next, end int64 }

// maxBlock bounds the id block size; ids left in a block at shutdown are
// never used, and a gap in ids costs nothing.
const maxBlock = 1 << 20

// Cache is the in-memory index from number to contact that the INVITE path
// uses, so that it never waits on the database. It is loaded once, kept
// current by every write through its Store, and reads the change log for
// writes made elsewhere.
//
// Contacts that calls create get an id from a block reserved in advance and
// are written by one background writer; the cache lock makes two concurrent
// first calls of one number agree on one contact.
type Cache struct {
	store *Store
	log   *zap.Logger
	poll  time.Duration
	batch time.Duration // see CacheOptions.Batch
	block int
	// merged is CacheOptions.Merged.
	merged func(from, into int64)

	mu         sync.RWMutex
	numbers    map[uint64]int64
	byID       map[int64]*Info
	cur, spare idRange
	pending    []pendingContact
	pendingIDs map[int64]struct{}

	exhausted atomic.Uint64
	conflicts atomic.Uint64

	flushMu       sync.Mutex // one writer at a time: background loop or a Store write
	lastSeq       int64      // change log position, under flushMu
	seenExhausted uint64     // exhausted count at the last block size change, under flushMu

	wake chan struct{}
	// unsubscribe ends the cache's subscription to other nodes' changes.
	unsubscribe func()
	stop        chan struct{}
	done        chan struct{}
	closing     sync.Once
}

// NewCache loads every contact number into memory, reserves the first block
// of ids, attaches itself to store (one cache per store) and starts the
// background writer.
func NewCache(ctx context.Context, store *Store, opts CacheOptions) (*Cache, error) {
	if store == nil {
		return nil, errors.New("contacts: cache: no store")
	}
	if opts.Log == nil {
		opts.Log = zap.NewNop()
	}
	if opts.Batch <= 0 {
		opts.Batch = 10 * time.Millisecond
	}
	if opts.Poll <= 0 {
		opts.Poll = time.Second
	}
	if opts.Block <= 0 {
		opts.Block = 1024
	}
	c := &Cache{
		store:      store,
		log:        opts.Log.Named("contacts"),
		poll:       opts.Poll,
		batch:      opts.Batch,
		block:      opts.Block,
		merged:     opts.Merged,
		pendingIDs: map[int64]struct{}{},
		wake:       make(chan struct{}, 1),
		stop:       make(chan struct{}),
		done:       make(chan struct{}),
	}
	// The change log position is read before loading, so that a write made
	// during the load is replayed rather than lost.
	if err := store.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM contact_changes`).Scan(&c.lastSeq); err != nil {
		return nil, fmt.Errorf("contacts: cache: read change log: %w", err)
	}
	if err := c.load(ctx); err != nil {
		return nil, err
	}
	first, err := store.reserveIDs(ctx, store.db, c.block)
	if err != nil {
		return nil, fmt.Errorf("contacts: cache: %w", err)
	}
	c.cur = idRange{first, first + int64(c.block)}
	if !store.cache.CompareAndSwap(nil, c) {
		return nil, errors.New("contacts: cache: the store already has a cache")
	}
	// Another node's writes reach this cache at once (SPEC §11); the poll
	// stays for the command line's writes on SQLite.
	c.unsubscribe = store.db.Bus().Subscribe(busTopic, func([]byte) { signal(c.wake) })
	go c.run()
	return c, nil
}

// load reads all contacts and numbers. Tag lists are decoded once per
// distinct JSON text: most contacts share a few tag sets, and a million
// contacts must load in seconds.
func (c *Cache) load(ctx context.Context) error {
	db := c.store.db
	var nContacts, nNumbers int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM contacts`).Scan(&nContacts); err != nil {
		return fmt.Errorf("contacts: cache: count: %w", err)
	}
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM contact_numbers`).Scan(&nNumbers); err != nil {
		return fmt.Errorf("contacts: cache: count: %w", err)
	}
	c.byID = make(map[int64]*Info, nContacts)
	c.numbers = make(map[uint64]int64, nNumbers)
	rows, err := db.QueryContext(ctx, `SELECT id, name, company, email, tags FROM contacts`)
	if err != nil {
		return fmt.Errorf("contacts: cache: load: %w", err)
	}
	defer rows.Close()
	tagSets := map[string][]string{}
	var tags sql.RawBytes // no string per row: most rows share a tag set
	for rows.Next() {
		in := &Info{}
		if err := rows.Scan(&in.ID, &in.Name, &in.Company, &in.Email, &tags); err != nil {
			return fmt.Errorf("contacts: cache: load: %w", err)
		}
		t, ok := tagSets[string(tags)]
		if !ok {
			t = decodeTags(string(tags))
			if len(tagSets) < 10000 {
				tagSets[string(tags)] = t
			}
		}
		in.Tags = t
		c.byID[in.ID] = in
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("contacts: cache: load: %w", err)
	}
	rows.Close()
	nrows, err := db.QueryContext(ctx, `SELECT e164, contact_id FROM contact_numbers`)
	if err != nil {
		return fmt.Errorf("contacts: cache: load numbers: %w", err)
	}
	defer nrows.Close()
	var e164 []byte // scanned as bytes: no string per row
	for nrows.Next() {
		var id int64
		if err := nrows.Scan(&e164, &id); err != nil {
			return fmt.Errorf("contacts: cache: load numbers: %w", err)
		}
		k, ok := numberKeyBytes(e164)
		in := c.byID[id]
		if !ok || in == nil {
			continue
		}
		c.numbers[k] = id
		in.keys = append(in.keys, k)
	}
	if err := nrows.Err(); err != nil {
		return fmt.Errorf("contacts: cache: load numbers: %w", err)
	}
	return nil
}

// numberKey packs an E.164 number into an integer: E.164 has at most 15
// digits and no leading zero, so the digits identify it, and an integer key
// keeps a million-entry map small.
func numberKey(e164 string) (uint64, bool) {
	if !IsE164(e164) {
		return 0, false
	}
	var k uint64
	for i := 1; i < len(e164); i++ {
		k = k*10 + uint64(e164[i]-'0')
	}
	return k, true
}

func numberKeyBytes(b []byte) (uint64, bool) {
	if len(b) < 3 || len(b) > 16 || b[0] != '+' || b[1] == '0' {
		return 0, false
	}
	var k uint64
	for _, d := range b[1:] {
		if d < '0' || d > '9' {
			return 0, false
		}
		k = k*10 + uint64(d-'0')
	}
	return k, true
}

// Lookup returns the contact holding an E.164 number, nil when none.
func (c *Cache) Lookup(e164 string) *Info {
	k, ok := numberKey(e164)
	if !ok {
		return nil
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	if id, ok := c.numbers[k]; ok {
		return c.byID[id]
	}
	return nil
}

// ByID returns a contact by id, nil when unknown.
func (c *Cache) ByID(id int64) *Info {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.byID[id]
}

// FindOrCreate returns the contact holding phone.E164, creating one named
// name (source call) when there is none. It never touches the disk: a new
// contact gets an id from the reserved block and is written later by the
// background writer. created tells whether this call made it. It returns
// nil when phone is not E.164 or when no id is left (a burst beyond the
// reserve: the call then goes on without a contact).
func (c *Cache) FindOrCreate(phone Phone, name string) (info *Info, created bool) {
	k, ok := numberKey(phone.E164)
	if !ok {
		return nil, false
	}
	c.mu.RLock()
	if id, ok := c.numbers[k]; ok {
		if in := c.byID[id]; in != nil {
			c.mu.RUnlock()
			return in, false
		}
	}
	c.mu.RUnlock()

	c.mu.Lock()
	// Checked again under the write lock: a concurrent first call of the
	// same number may have created it meanwhile.
	if id, ok := c.numbers[k]; ok {
		if in := c.byID[id]; in != nil {
			c.mu.Unlock()
			return in, false
		}
	}
	if c.cur.next >= c.cur.end {
		c.cur, c.spare = c.spare, idRange{}
	}
	if c.cur.next >= c.cur.end {
		c.mu.Unlock()
		c.exhausted.Add(1)
		signal(c.wake)
		return nil, false
	}
	id := c.cur.next
	c.cur.next++
	in := &Info{ID: id, Name: name, Tags: []string{}, keys: []uint64{k}}
	c.numbers[k] = id
	c.byID[id] = in
	c.pending = append(c.pending, pendingContact{id: id, phone: phone, name: name, created: c.store.now()})
	c.pendingIDs[id] = struct{}{}
	c.mu.Unlock()
	signal(c.wake)
	return in, true
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// Stats returns the cache's counters.
func (c *Cache) Stats() CacheStats {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return CacheStats{
		Contacts:  len(c.byID),
		Numbers:   len(c.numbers),
		Pending:   len(c.pendingIDs),
		Exhausted: c.exhausted.Load(),
		Conflicts: c.conflicts.Load(),
	}
}

// put publishes a contact written through the store.
func (c *Cache) put(in *Info, phones []Phone) {
	for _, p := range phones {
		if k, ok := numberKey(p.E164); ok {
			in.keys = append(in.keys, k)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.putLocked(in)
}

func (c *Cache) putLocked(in *Info) {
	if old := c.byID[in.ID]; old != nil {
		for _, k := range old.keys {
			if c.numbers[k] == in.ID && !hasKey(in.keys, k) {
				delete(c.numbers, k)
			}
		}
	}
	for _, k := range in.keys {
		c.numbers[k] = in.ID
	}
	c.byID[in.ID] = in
}

func hasKey(keys []uint64, k uint64) bool {
	for _, x := range keys {
		if x == k {
			return true
		}
	}
	return false
}

// drop forgets a deleted contact.
func (c *Cache) drop(id int64, phones []Phone) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dropLocked(id)
	for _, p := range phones {
		if k, ok := numberKey(p.E164); ok && c.numbers[k] == id {
			delete(c.numbers, k)
		}
	}
}

func (c *Cache) dropLocked(id int64) {
	if old := c.byID[id]; old != nil {
		for _, k := range old.keys {
			if c.numbers[k] == id {
				delete(c.numbers, k)
			}
		}
	}
	delete(c.byID, id)
}

// dropNumbers forgets numbers that id held before an update.
func (c *Cache) dropNumbers(id int64, phones []Phone) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range phones {
		if k, ok := numberKey(p.E164); ok && c.numbers[k] == id {
			delete(c.numbers, k)
		}
	}
}

// run is the background writer: it writes call-created contacts, keeps a
// spare id block ready and follows the change log.
func (c *Cache) run() {
	defer close(c.done)
	ticker := time.NewTicker(c.poll)
	defer ticker.Stop()
	prune := time.Now()
	backoff := time.Duration(0)
	for {
		select {
		case <-c.stop:
			return
		case <-c.wake:
			select {
			case <-c.stop:
				return
			case <-time.After(c.batch):
			}
		case <-ticker.C:
		}
		if backoff > 0 {
			select {
			case <-c.stop:
				return
			case <-time.After(backoff):
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		c.flushMu.Lock()
		err := c.refill(ctx)
		c.flushMu.Unlock()
		if err == nil {
			err = c.Flush(ctx)
		}
		if err == nil {
			err = c.follow(ctx)
		}
		if err == nil && time.Since(prune) > time.Hour {
			prune = time.Now()
			err = c.prune(ctx)
		}
		cancel()
		if err != nil {
			c.log.Error("contact writer", zap.Error(err))
			backoff = min(max(2*backoff, 100*time.Millisecond), 10*time.Second)
			signal(c.wake)
		} else {
			backoff = 0
		}
	}
}

// refill reserves a spare id block when there is none and half of the
// current one is used; the caller holds flushMu. After a burst that used
// up every reserved id, blocks grow, up to maxBlock. Reserving the spare
// only when it may be needed keeps a node's start from taking two blocks
// of ids that calls from known callers never use (SPEC §11: several nodes
// restarting share one id space).
func (c *Cache) refill(ctx context.Context) error {
	c.mu.RLock()
	left := c.cur.end - c.cur.next
	need := c.spare.next >= c.spare.end && left <= int64(c.block)/2
	c.mu.RUnlock()
	if !need {
		return nil
	}
	if ex := c.exhausted.Load(); ex > c.seenExhausted {
		c.seenExhausted = ex
		c.block = min(2*c.block, maxBlock)
	}
	first, err := c.store.reserveIDs(ctx, c.store.db, c.block)
	if err != nil {
		return err
	}
	c.mu.Lock()
	if c.cur.next >= c.cur.end {
		c.cur = idRange{first, first + int64(c.block)}
	} else {
		c.spare = idRange{first, first + int64(c.block)}
	}
	c.mu.Unlock()
	return nil
}

// flushChunk bounds one write transaction of call-created contacts, so
// that a spare id block can be reserved between two chunks during a burst.
const flushChunk = 2000

// Flush writes the contacts created by calls so far. When a number was
// meanwhile given to another contact (by the API, an import or another
// node), the call-created contact is not written and the number points to
// the other contact from then on.
func (c *Cache) Flush(ctx context.Context) error {
	c.flushMu.Lock()
	defer c.flushMu.Unlock()
	for {
		c.mu.Lock()
		n := min(len(c.pending), flushChunk)
		batch := c.pending[:n:n]
		c.pending = c.pending[n:]
		if len(c.pending) == 0 {
			c.pending = nil
		}
		c.mu.Unlock()
		if n == 0 {
			return nil
		}
		if err := c.flushBatch(ctx, batch); err != nil {
			return err
		}
		if err := c.refill(ctx); err != nil {
			return err
		}
	}
}

func (c *Cache) flushBatch(ctx context.Context, batch []pendingContact) error {
	conflicts, err := c.write(ctx, batch)
	if err != nil {
		c.mu.Lock()
		c.pending = append(batch, c.pending...)
		c.mu.Unlock()
		return err
	}
	owners := make(map[int64]*Info, len(conflicts))
	for _, owner := range conflicts {
		if _, ok := owners[owner]; ok {
			continue
		}
		o, err := c.store.get(ctx, c.store.db, owner)
		if err != nil && !errors.Is(err, ErrNotFound) {
			c.log.Warn("load contact after conflict", zap.Int64("contact", owner), zap.Error(err))
		}
		if err == nil {
			in := infoOf(&o)
			for _, p := range o.Numbers {
				if k, ok := numberKey(p.E164); ok {
					in.keys = append(in.keys, k)
				}
			}
			owners[owner] = in
		} else {
			owners[owner] = nil
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range batch {
		delete(c.pendingIDs, p.id)
		if owner, ok := conflicts[p.id]; ok {
			c.conflicts.Add(1)
			c.dropLocked(p.id)
			if in := owners[owner]; in != nil {
				c.putLocked(in)
			}
			c.log.Info("call-created contact merged into existing one",
				zap.Int64("contact", p.id), zap.Int64("into", owner), zap.String("number", p.phone.E164))
			if c.merged != nil {
				c.merged(p.id, owner)
			}
		}
	}
	return nil
}

// write stores a batch in one transaction and returns, for contacts whose
// number was taken meanwhile, the id of the number's owner.
func (c *Cache) write(ctx context.Context, batch []pendingContact) (map[int64]int64, error) {
	s := c.store
	tx, err := s.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	conflicts := map[int64]int64{}
	lo, hi := int64(0), int64(0)
	for _, p := range batch {
		owner, err := s.owner(ctx, tx, p.phone.E164)
		if err != nil {
			return nil, err
		}
		if owner != 0 {
			conflicts[p.id] = owner
			continue
		}
		ct := Contact{ID: p.id, Name: p.name, Source: SourceCall, CreatedAt: p.created, UpdatedAt: p.created,
			Numbers: []Phone{p.phone}}
		if err := s.insertContact(ctx, tx, &ct); err != nil {
			return nil, err
		}
		if lo == 0 || p.id < lo {
			lo = p.id
		}
		hi = max(hi, p.id)
	}
	if lo != 0 {
		if err := s.logChange(ctx, tx, lo, hi); err != nil {
			return nil, err
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("contacts: write call contacts: %w", err)
	}
	return conflicts, nil
}

// follow applies the change log written since the last look: contacts
// changed by other processes are reloaded, deleted ones forgotten.
func (c *Cache) follow(ctx context.Context) error {
	c.flushMu.Lock()
	defer c.flushMu.Unlock()
	s := c.store
	for {
		rows, err := s.db.QueryContext(ctx, s.q(`SELECT seq, from_id, to_id FROM contact_changes WHERE seq > ? ORDER BY seq LIMIT 500`), c.lastSeq)
		if err != nil {
			return fmt.Errorf("contacts: cache: read change log: %w", err)
		}
		type change struct{ seq, from, to int64 }
		var changes []change
		for rows.Next() {
			var ch change
			if err := rows.Scan(&ch.seq, &ch.from, &ch.to); err != nil {
				rows.Close()
				return fmt.Errorf("contacts: cache: read change log: %w", err)
			}
			changes = append(changes, ch)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("contacts: cache: read change log: %w", err)
		}
		for _, ch := range changes {
			if err := c.reload(ctx, ch.from, ch.to); err != nil {
				return err
			}
			c.lastSeq = ch.seq
		}
		if len(changes) < 500 {
			return nil
		}
	}
}

// reload replaces the cached contacts with ids from..to by what the
// database holds.
func (c *Cache) reload(ctx context.Context, from, to int64) error {
	s := c.store
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT id, name, company, email, tags FROM contacts WHERE id BETWEEN ? AND ?`), from, to)
	if err != nil {
		return fmt.Errorf("contacts: cache: reload %d-%d: %w", from, to, err)
	}
	found := map[int64]*Info{}
	for rows.Next() {
		in := &Info{}
		var tags string
		if err := rows.Scan(&in.ID, &in.Name, &in.Company, &in.Email, &tags); err != nil {
			rows.Close()
			return fmt.Errorf("contacts: cache: reload %d-%d: %w", from, to, err)
		}
		in.Tags = decodeTags(tags)
		found[in.ID] = in
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("contacts: cache: reload %d-%d: %w", from, to, err)
	}
	nrows, err := s.db.QueryContext(ctx, s.q(`SELECT e164, contact_id FROM contact_numbers WHERE contact_id BETWEEN ? AND ?`), from, to)
	if err != nil {
		return fmt.Errorf("contacts: cache: reload numbers %d-%d: %w", from, to, err)
	}
	for nrows.Next() {
		var e164 string
		var id int64
		if err := nrows.Scan(&e164, &id); err != nil {
			nrows.Close()
			return fmt.Errorf("contacts: cache: reload numbers %d-%d: %w", from, to, err)
		}
		if k, ok := numberKey(e164); ok && found[id] != nil {
			found[id].keys = append(found[id].keys, k)
		}
	}
	nrows.Close()
	if err := nrows.Err(); err != nil {
		return fmt.Errorf("contacts: cache: reload numbers %d-%d: %w", from, to, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	gone := func(id int64) {
		if _, pending := c.pendingIDs[id]; !pending && found[id] == nil {
			c.dropLocked(id)
		}
	}
	if to-from < int64(len(c.byID)) {
		for id := from; id <= to; id++ {
			if _, ok := c.byID[id]; ok {
				gone(id)
			}
		}
	} else {
		for id := range c.byID {
			if id >= from && id <= to {
				gone(id)
			}
		}
	}
	for _, in := range found {
		c.putLocked(in)
	}
	return nil
}

// prune deletes change log entries that every follower has long read.
func (c *Cache) prune(ctx context.Context) error {
	s := c.store
	_, err := s.db.ExecContext(ctx, s.q(`DELETE FROM contact_changes WHERE at < ?`), millis(s.now().Add(-24*time.Hour)))
	if err != nil {
		return fmt.Errorf("contacts: cache: prune change log: %w", err)
	}
	return nil
}

// Sync writes pending contacts and applies the change log now, instead of
// at the next poll. Tests and the CLI's long operations use it.
func (c *Cache) Sync(ctx context.Context) error {
	if err := c.Flush(ctx); err != nil {
		return err
	}
	return c.follow(ctx)
}

// Close stops the background writer, writes what is pending and detaches
// the cache from its store.
func (c *Cache) Close(ctx context.Context) error {
	c.closing.Do(func() {
		c.unsubscribe()
		close(c.stop)
	})
	<-c.done
	err := c.Flush(ctx)
	c.store.cache.CompareAndSwap(c, nil)
	return err
}
