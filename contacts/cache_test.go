package contacts_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-sip/switchboard/contacts"
	"github.com/switchboard-sip/switchboard/storage"
)

func newCache(t testing.TB, s *contacts.Store) *contacts.Cache {
	t.Helper()
	// A long poll: tests call Sync when they want the change log read.
	c, err := contacts.NewCache(context.Background(), s, contacts.CacheOptions{Poll: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func TestFindOrCreateConcurrent(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	cache := newCache(t, e.store)

	const n = 100
	ids := make([]int64, n)
	created := make([]bool, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			in, c := cache.FindOrCreate(contacts.Phone{E164: "+4930555000", Raw: "030 555000"}, fmt.Sprintf("Caller %d", i))
			if in != nil {
				ids[i] = in.ID
			}
			created[i] = c
		}()
	}
	close(start)
	wg.Wait()
	creators := 0
	for i := range n {
		if ids[i] == 0 || ids[i] != ids[0] {
			t.Fatalf("goroutine %d got contact %d, goroutine 0 got %d", i, ids[i], ids[0])
		}
		if created[i] {
			creators++
		}
	}
	if creators != 1 {
		t.Errorf("%d goroutines created the contact, want 1", creators)
	}
	if err := cache.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := e.store.FindByNumber(ctx, "+4930555000")
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != ids[0] || got.Source != contacts.SourceCall || got.Numbers[0].Raw != "030 555000" {
		t.Errorf("stored %+v", got)
	}
	items, _, err := e.store.Search(ctx, "", 100, "")
	if err != nil || len(items) != 1 {
		t.Errorf("%d contacts stored, want 1 (%v)", len(items), err)
	}
}

func TestCacheFollowsStoreWrites(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	// A contact that exists before the cache is loaded.
	old, err := e.store.Create(ctx, contacts.Contact{Name: "Before", Tags: []string{"vip"}, Numbers: []contacts.Phone{{E164: "+4930100"}}})
	if err != nil {
		t.Fatal(err)
	}
	cache := newCache(t, e.store)
	steps := []struct {
		name  string
		write func(t *testing.T)
		check map[string]string // number -> "id name" or "" for none
	}{
		{"loaded", func(t *testing.T) {}, map[string]string{"+4930100": fmt.Sprintf("%d Before [vip]", old.ID)}},
		{"create", func(t *testing.T) {
			_, err := e.store.Create(ctx, contacts.Contact{ID: 0, Name: "New", Numbers: []contacts.Phone{{E164: "+4930200"}, {E164: "+4930201"}}})
			if err != nil {
				t.Fatal(err)
			}
		}, map[string]string{"+4930200": "New", "+4930201": "New"}},
		{"rename", func(t *testing.T) {
			if _, err := e.store.Update(ctx, old.ID, contacts.Patch{Name: ptr("After"), Tags: &[]string{}}); err != nil {
				t.Fatal(err)
			}
		}, map[string]string{"+4930100": fmt.Sprintf("%d After []", old.ID)}},
		{"renumber", func(t *testing.T) {
			if _, err := e.store.Update(ctx, old.ID, contacts.Patch{Numbers: &[]contacts.Phone{{E164: "+4930101"}}}); err != nil {
				t.Fatal(err)
			}
		}, map[string]string{"+4930100": "", "+4930101": "After"}},
		{"add number", func(t *testing.T) {
			if err := e.store.AddNumber(ctx, old.ID, contacts.Phone{E164: "+4930102"}); err != nil {
				t.Fatal(err)
			}
		}, map[string]string{"+4930101": "After", "+4930102": "After"}},
		{"delete", func(t *testing.T) {
			if _, err := e.store.Delete(ctx, old.ID); err != nil {
				t.Fatal(err)
			}
		}, map[string]string{"+4930101": "", "+4930102": "", "+4930200": "New"}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			st.write(t)
			for number, want := range st.check {
				in := cache.Lookup(number)
				got := ""
				if in != nil {
					got = in.Name
					if len(want) > 0 && want[0] >= '0' && want[0] <= '9' {
						got = fmt.Sprintf("%d %s %v", in.ID, in.Name, in.Tags)
					}
				}
				if got != want {
					t.Errorf("Lookup(%s) = %q, want %q", number, got, want)
				}
			}
		})
	}
}

// TestCacheFollowsOtherProcess writes through a second Store on the same
// file, as `switchboard contacts import` does while the agent runs.
func TestCacheFollowsOtherProcess(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	cache := newCache(t, e.store)
	other := openEnv(t, e.driver, e.dsn).store

	c, err := other.Create(ctx, contacts.Contact{Name: "From CLI", Numbers: []contacts.Phone{{E164: "+4930300"}}})
	if err != nil {
		t.Fatal(err)
	}
	if e.driver == storage.SQLite && cache.Lookup("+4930300") != nil {
		t.Fatal("seen before the change log was read") // on PostgreSQL it is pushed
	}
	if err := cache.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if in := cache.Lookup("+4930300"); in == nil || in.ID != c.ID || in.Name != "From CLI" {
		t.Fatalf("after sync: %+v", in)
	}
	if _, err := other.Delete(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	if err := cache.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if in := cache.Lookup("+4930300"); in != nil {
		t.Errorf("deleted contact still cached: %+v", in)
	}
}

// TestCachePushedFromOtherNode: on PostgreSQL another node's edit reaches
// the cache without polling or Sync (SPEC §11, LISTEN/NOTIFY).
func TestCachePushedFromOtherNode(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	if e.driver != storage.Postgres {
		t.Skip("one node per SQLite file: the command line's writes are polled")
	}
	cache := newCache(t, e.store)
	select {
	case <-e.db.Bus().Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("the cache's node does not listen")
	}
	other := openEnv(t, e.driver, e.dsn).store
	c, err := other.Create(ctx, contacts.Contact{Name: "Jane", Numbers: []contacts.Phone{{E164: "+4930300"}}})
	if err != nil {
		t.Fatal(err)
	}
	name := "Jane Doe"
	if _, err := other.Update(ctx, c.ID, contacts.Patch{Name: &name}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for in := cache.Lookup("+4930300"); in == nil || in.Name != name; in = cache.Lookup("+4930300") {
		if time.Now().After(deadline) {
			t.Fatalf("cache has %+v, want the edit of the other node", in)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestCacheConflict: a call creates a contact in memory while another
// process stores the same number; the number ends up with the stored one.
func TestCacheConflict(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	// The writer holds the new contact back for an hour: the other
	// process wins the number for sure, as it can in production.
	type move struct{ from, into int64 }
	var moves []move
	cache, err := contacts.NewCache(ctx, e.store, contacts.CacheOptions{Poll: time.Hour, Batch: time.Hour,
		Merged: func(from, into int64) { moves = append(moves, move{from, into}) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cache.Close(context.Background()) })
	other := openEnv(t, e.driver, e.dsn).store

	mine, created := cache.FindOrCreate(contacts.Phone{E164: "+4930400"}, "Caller")
	if !created {
		t.Fatal("not created")
	}
	theirs, err := other.Create(ctx, contacts.Contact{Name: "Imported", Numbers: []contacts.Phone{{E164: "+4930400"}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := cache.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if in := cache.Lookup("+4930400"); in == nil || in.ID != theirs.ID {
		t.Errorf("number points to %+v, want %d", in, theirs.ID)
	}
	if cache.ByID(mine.ID) != nil {
		t.Error("call-created contact still cached")
	}
	if _, err := e.store.Get(ctx, mine.ID); !errors.Is(err, contacts.ErrNotFound) {
		t.Errorf("call-created contact written: %v", err)
	}
	if st := cache.Stats(); st.Conflicts != 1 || st.Pending != 0 {
		t.Errorf("stats %+v", st)
	}
	// The call's record must follow: the cache says where its contact went.
	if len(moves) != 1 || moves[0] != (move{mine.ID, theirs.ID}) {
		t.Errorf("Merged heard %v, want exactly {%d %d}", moves, mine.ID, theirs.ID)
	}
}

func TestCacheCloseWritesPending(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	cache, err := contacts.NewCache(ctx, e.store, contacts.CacheOptions{Poll: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	in, _ := cache.FindOrCreate(contacts.Phone{E164: "+4930500"}, "")
	if err := cache.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := e.store.Get(ctx, in.ID); err != nil || got.Numbers[0].E164 != "+4930500" {
		t.Errorf("after close: %+v, %v", got, err)
	}
	// A new cache over the same store loads it, and ids keep growing.
	c2 := newCache(t, e.store)
	if got := c2.Lookup("+4930500"); got == nil || got.ID != in.ID {
		t.Errorf("reloaded %+v", got)
	}
	next, _ := c2.FindOrCreate(contacts.Phone{E164: "+4930501"}, "")
	if next.ID <= in.ID {
		t.Errorf("new id %d not above %d", next.ID, in.ID)
	}
	if _, err := contacts.NewCache(ctx, e.store, contacts.CacheOptions{}); err == nil {
		t.Error("second cache on one store accepted")
	}
}

func TestCacheRejectsNonE164(t *testing.T) {
	e := newEnv(t)
	cache := newCache(t, e.store)
	for _, n := range []string{"", "101", "030123", "+0301", "+12345678901234567"} {
		if in, _ := cache.FindOrCreate(contacts.Phone{E164: n}, ""); in != nil {
			t.Errorf("FindOrCreate(%q) = %+v", n, in)
		}
	}
}

// TestKnownCallerTakesNoIDs: calls from a caller the cache knows reserve no
// contact ids and write nothing (on PostgreSQL too: the id reserve is a
// row, contact_seq, that only a new contact's block moves), while a new
// caller still gets a contact written (the positive control).
func TestKnownCallerTakesNoIDs(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	cache := newCache(t, e.store)
	seq := func() int64 {
		t.Helper()
		var next int64
		if err := e.store.DB().QueryRowContext(ctx, `SELECT next FROM contact_seq WHERE id = 1`).Scan(&next); err != nil {
			t.Fatal(err)
		}
		return next
	}
	known := contacts.Phone{E164: "+4915112345678", Raw: "015112345678"}
	first, created := cache.FindOrCreate(known, "Jane")
	if first == nil || !created {
		t.Fatalf("first call: %v, created %v; want a new contact", first, created)
	}
	if err := cache.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.Get(ctx, first.ID); err != nil {
		t.Fatalf("the new caller's contact was not written: %v", err)
	}
	before := seq()
	for range 100 {
		if in, created := cache.FindOrCreate(known, "Jane"); in == nil || created || in.ID != first.ID {
			t.Fatalf("a known caller: %v, created %v; want contact %d", in, created, first.ID)
		}
	}
	if err := cache.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if after := seq(); after != before {
		t.Errorf("contact_seq moved from %d to %d over 100 calls from a known caller", before, after)
	}
}
