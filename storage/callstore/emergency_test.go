package callstore

import (
	"context"
	"testing"
	"time"

	"github.com/switchboard-sip/switchboard/cdr"
)

// TestEmergencyFlagsRoundTrip: an emergency call's flag and a callback's
// link to it are written and read back.
func TestEmergencyFlagsRoundTrip(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	now := time.Now()
	s.Save(cdr.Record{ID: "e1", CallID: "c1", Direction: cdr.Outbound, Called: "112", StartedAt: now, Emergency: true})
	s.Save(cdr.Record{ID: "b1", CallID: "c2", Direction: cdr.Inbound, StartedAt: now, EmergencyCallback: "e1"})
	s.Save(cdr.Record{ID: "n1", CallID: "c3", Direction: cdr.Outbound, StartedAt: now})
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]cdr.Record{"e1": {Emergency: true}, "b1": {EmergencyCallback: "e1"}, "n1": {}} {
		r, err := s.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if r.Emergency != want.Emergency || r.EmergencyCallback != want.EmergencyCallback {
			t.Errorf("%s: emergency %v callback %q, want %v %q", id, r.Emergency, r.EmergencyCallback, want.Emergency, want.EmergencyCallback)
		}
	}
}
