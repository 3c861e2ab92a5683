package e2e

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-sip/switchboard/internal/simsip"
)

// TestSimulatedPBXAndTrunk places calls through the switchboard binary
// with the demo's simulated PBX and trunk (sipgo dialogs on both sides,
// not SIPp scripts): an answered call the PBX hangs up, a busy one and a
// missed one, each recorded with the disposition the caller saw.
func TestSimulatedPBXAndTrunk(t *testing.T) {
	t.Parallel()
	n := newNode(t, nodeOptions{})
	plans := map[string]simsip.Plan{}
	var mu sync.Mutex
	pbx, err := simsip.StartPBX(n.pbxPort, 1, func(callID string) simsip.Plan {
		mu.Lock()
		defer mu.Unlock()
		return plans[callID]
	})
	if err != nil {
		t.Fatal(err)
	}
	defer pbx.Close()
	trunk, err := simsip.StartTrunk(n.trunkPort, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer trunk.Close()

	cases := []struct {
		plan        simsip.Plan
		outcome     string
		disposition string
		status      int
	}{
		{simsip.Plan{Outcome: simsip.Answer, Ring: 300 * time.Millisecond, Talk: 700 * time.Millisecond}, "answered", "answered", 200},
		{simsip.Plan{Outcome: simsip.Busy, Ring: 200 * time.Millisecond}, "busy", "busy", 486},
		{simsip.Plan{Outcome: simsip.Missed, Ring: 500 * time.Millisecond}, "missed", "no_answer", 487},
	}
	for _, c := range cases {
		t.Run(c.outcome, func(t *testing.T) {
			id := trunk.NewCallID()
			mu.Lock()
			plans[id] = c.plan
			mu.Unlock()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			res := trunk.Place(ctx, simsip.Call{CallID: id, From: trunkCaller, Name: "Sim Caller", To: hotlineNumber,
				Target: n.sipAddr(), Plan: c.plan, Identity: true})
			if res.Outcome != c.outcome {
				t.Fatalf("caller saw %s (%d, %v), want %s", res.Outcome, res.Status, res.Err, c.outcome)
			}
			r := n.waitEnded(id)
			if r.Disposition != c.disposition || r.SIPStatus != c.status || r.Caller != trunkCaller || r.Called != hotlineNumber {
				t.Errorf("record %s: %s %d, %s → %s; want %s %d, %s → %s", id, r.Disposition, r.SIPStatus,
					r.Caller, r.Called, c.disposition, c.status, trunkCaller, hotlineNumber)
			}
			if c.outcome == "answered" {
				within(t, "talk_ms", r.TalkMS, c.plan.Talk)
			}
		})
	}
}
