package missed_test

import (
	"context"
	"testing"
	"time"

	"github.com/switchboard-sip/switchboard/callctl"
	"github.com/switchboard-sip/switchboard/cdr"
	"github.com/switchboard-sip/switchboard/missed"
	"github.com/switchboard-sip/switchboard/storage"
	"github.com/switchboard-sip/switchboard/storage/storagetest"
)

// TestAnsweredCallsWithoutQueries: an answered call of a party without an
// open entry asks the database nothing; one with an entry asks once and
// resolves it, after which the party costs nothing again. A restarted
// service knows the open entries from the database.
func TestAnsweredCallsWithoutQueries(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	answered := func(p callctl.Party) {
		t.Helper()
		e.clock.set(day(9, 30))
		e.end(call{caller: p, disp: cdr.Answered, talk: time.Minute, at: day(9, 30)})
	}
	answered(external("+4989000111"))
	if n := e.svc.Lookups(); n != 0 {
		t.Fatalf("%d queries for a party without entries, want 0", n)
	}
	e.clock.set(day(9, 0))
	e.end(call{caller: external(jane), ring: 3 * time.Second, at: day(9, 0)})
	entry := e.only()

	// A restart reads the open entries back.
	if err := e.svc.Close(ctx); err != nil {
		t.Fatal(err)
	}
	svc, err := missed.New(ctx, missed.Options{DB: e.db, Config: e.cfg, Notifier: e.notifier, Contacts: e.contacts,
		Records: e.calls, Now: e.clock.now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close(context.Background()) })
	e.svc = svc
	if !svc.MayHaveOpen(0, jane) {
		t.Fatal("the restarted service does not know the open entry")
	}
	answered(external("+4989000111"))
	if n := svc.Lookups(); n != 0 {
		t.Fatalf("%d queries for a party without entries after a restart, want 0", n)
	}
	answered(external(jane))
	if n := svc.Lookups(); n == 0 {
		t.Fatal("the caller with an open entry was not looked up")
	}
	if got, err := svc.Get(ctx, entry.ID); err != nil || got.Status != missed.Processed {
		t.Fatalf("entry %+v (%v): want processed", got, err)
	}
	before := svc.Lookups()
	answered(external(jane)) // finds none and drops the caller
	answered(external(jane))
	if n := svc.Lookups() - before; n != 1 {
		t.Errorf("%d queries for two calls of a resolved caller, want 1", n)
	}
}

// TestOpenEntryPushedToOtherNodes: on PostgreSQL an entry created on one
// node is known to another at once (SPEC §11, LISTEN/NOTIFY), which then
// resolves it when it carries the call-back.
func TestOpenEntryPushedToOtherNodes(t *testing.T) {
	drv, dsn := storagetest.Target(t, "sb")
	if drv != storage.Postgres {
		t.Skip("one node per SQLite file")
	}
	a := newEnv(t, envOptions{driver: drv, dsn: dsn})
	b := newEnv(t, envOptions{driver: drv, dsn: dsn})
	select {
	case <-b.db.Bus().Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("node b does not listen")
	}
	if b.svc.MayHaveOpen(0, jane) {
		t.Fatal("node b knows an entry before there is one")
	}
	a.clock.set(day(9, 0))
	a.end(call{caller: external(jane), ring: 3 * time.Second, at: day(9, 0)})
	entry := a.only()
	deadline := time.Now().Add(5 * time.Second)
	for !b.svc.MayHaveOpen(0, jane) {
		if time.Now().After(deadline) {
			t.Fatal("node b never learnt of the open entry")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if b.svc.MayHaveOpen(0, "+4989000111") {
		t.Error("node b knows an entry of a caller without one")
	}
	b.clock.set(day(9, 30))
	b.end(call{dir: callctl.Outbound, caller: external(jane), disp: cdr.Answered, talk: time.Minute, at: day(9, 30)})
	if got, err := b.svc.Get(context.Background(), entry.ID); err != nil || got.Status != missed.Processed {
		t.Fatalf("entry %+v (%v): want processed by node b", got, err)
	}
}
