package missed_test

import (
	"testing"
	"time"

	"github.com/switchboard-sip/switchboard/missed"
)

// TestAbsentIsPerCaller: "no receptionist signed in since the last
// notification" is counted per caller (SPEC §4). Another caller's
// notification must not make this caller's first missed call excused.
func TestAbsentIsPerCaller(t *testing.T) {
	t.Parallel()
	si := &signIns{}
	si.at.Store(&time.Time{}) // never signed in
	e := newEnv(t, envOptions{signIns: si})
	long := 3 * time.Second
	const bob = "+4930333444"

	e.end(call{caller: external(jane), ring: long, at: day(9, 0)})
	e.clock.set(day(9, 30))
	r := e.end(call{caller: external(bob), ring: long, at: day(9, 30)})
	e.clock.set(day(10, 0))
	again := e.end(call{caller: external(jane), ring: long, at: day(10, 0)})

	byRecord := map[string]missed.Entry{}
	for _, x := range e.entries("") {
		byRecord[x.RecordID] = x
	}
	if got := byRecord[r.ID]; got.Exception != missed.None || got.NotifiedAt == nil {
		t.Errorf("bob's first missed call: exception %q, notified %v; want notified with no exception", got.Exception, got.NotifiedAt != nil)
	}
	// Positive control: jane's repeat is excused, so the exception works.
	if got := byRecord[again.ID]; got.Exception == missed.None {
		t.Errorf("jane's second call was not excused (want %q or a same-day repeat)", missed.Absent)
	}
}
