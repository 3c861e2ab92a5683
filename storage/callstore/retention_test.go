package callstore

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/switchboard-sip/switchboard/contacts"
)

// Retain deletes the calls past the retention, then the contacts that
// only those calls had created; an imported contact stays, and keep 0
// deletes nothing.
func TestRetain(t *testing.T) {
	s, tg := newStore(t)
	ctx := context.Background()
	cs, err := contacts.NewStore(ctx, openRaw(t, tg))
	if err != nil {
		t.Fatal(err)
	}
	cs.UseCalls(s)
	byCall, err := cs.Create(ctx, contacts.Contact{Name: "Caller", Source: contacts.SourceCall,
		Numbers: []contacts.Phone{{E164: "+4930111222", Raw: "+4930111222"}}})
	if err != nil {
		t.Fatal(err)
	}
	imported, err := cs.Create(ctx, contacts.Contact{Name: "Imported", Source: contacts.Source("import"),
		Numbers: []contacts.Phone{{E164: "+4930333444", Raw: "+4930333444"}}})
	if err != nil {
		t.Fatal(err)
	}
	old := rec("old", base)
	old.ContactID = byCall.ID
	s.Save(old)
	// The cut, now-keep, falls after both contacts were created and
	// between the two calls.
	now, keep := time.Now().AddDate(0, 0, 10), 5*24*time.Hour
	s.Save(rec("new", now.Add(-time.Hour)))
	flush(t, s)

	s.Retain(ctx, now, 0, cs)
	if n := countRows(t, tg); n != 2 {
		t.Fatalf("keep 0: %d rows left, want 2", n)
	}
	s.Retain(ctx, now, keep, cs)
	if n := countRows(t, tg); n != 1 {
		t.Errorf("%d rows left, want the newer call only", n)
	}
	if _, err := cs.Get(ctx, byCall.ID); !errors.Is(err, contacts.ErrNotFound) {
		t.Errorf("contact created by the pruned call: %v, want it deleted", err)
	}
	if _, err := cs.Get(ctx, imported.ID); err != nil {
		t.Errorf("imported contact: %v, want it kept", err)
	}
}
