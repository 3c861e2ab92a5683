package missed_test

import (
	"context"
	"testing"
	"time"

	"github.com/switchboard-sip/switchboard/callctl"
	"github.com/switchboard-sip/switchboard/missed"
)

// TestRecoverAfterUncleanStop: a missed call whose record was written but
// whose entry was not (the process died in between) gets its entry when the
// service starts again; one that has its entry is not counted twice.
func TestRecoverAfterUncleanStop(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	done := e.end(call{caller: external(jane), ring: 3 * time.Second, at: day(8, 0)})
	lost := call{caller: external(jane), ring: 3 * time.Second, at: day(9, 0)}.event().Record
	lost.Node = e.cfg.Node
	e.calls.Save(lost) // the record, but the process died before Observe
	if err := e.calls.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	internal := call{caller: callctl.Party{Raw: "123"}, ring: 3 * time.Second, at: day(9, 30)}.event().Record
	internal.Node = e.cfg.Node
	e.calls.Save(internal)
	if err := e.calls.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Close(ctx); err != nil {
		t.Fatal(err)
	}

	svc, err := missed.New(ctx, missed.Options{DB: e.db, Config: e.cfg, Notifier: e.notifier, Contacts: e.contacts,
		Records: e.calls, Now: e.clock.now})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close(ctx)
	if err := svc.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	items, _, err := svc.List(ctx, "", 100, "")
	if err != nil {
		t.Fatal(err)
	}
	byRecord := map[string]missed.Entry{}
	for _, it := range items {
		byRecord[it.RecordID] = it
	}
	if len(items) != 3 {
		t.Fatalf("%d entries, want 3 (the first call's, and the two recovered): %+v", len(items), items)
	}
	if _, ok := byRecord[done.ID]; !ok {
		t.Error("the first call lost its entry")
	}
	if got, ok := byRecord[lost.ID]; !ok || got.Caller != jane {
		t.Errorf("lost call not recovered: %+v", got)
	}
	if got := byRecord[internal.ID]; got.Exception != missed.Internal {
		t.Errorf("recovered internal call: exception %q, want internal", got.Exception)
	}
}
