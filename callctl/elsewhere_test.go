package callctl

import (
	"context"
	"testing"
	"time"
)

// TestDrainEndsWhenBYEPassedElsewhere: a draining node holding an answered
// call stops waiting once the shared store says another node ended it,
// and writes nothing over that record; a call still up keeps it waiting.
func TestDrainEndsWhenBYEPassedElsewhere(t *testing.T) {
	tr, sink, c, _ := newTestTracker()
	up := tr.Start(&Call{CallID: "up", StartedAt: c.t})
	up.Answered(200, "", "")
	gone := tr.Start(&Call{CallID: "gone", StartedAt: c.t})
	gone.Answered(200, "", "")
	// Another node ends "gone" when its BYE passes there.
	r := gone.Record()
	end := c.t.Add(time.Minute)
	r.EndedAt, r.TalkMS = &end, 60000
	sink.Save(r)

	if n := tr.SettleEndedElsewhere(context.Background()); n != 1 {
		t.Fatalf("pending after settling = %d, want 1 (the call still up)", n)
	}
	if got := sink.get(r.ID); got.TalkMS != 60000 || got.EndedAt == nil || !got.EndedAt.Equal(end) {
		t.Errorf("the other node's record was overwritten: %+v", got)
	}
	if left := tr.DrainWait(time.Now().Add(300 * time.Millisecond)); left != 1 {
		t.Errorf("DrainWait with a call up = %d left, want 1", left)
	}
	up.Hangup("")
	start := time.Now()
	if left := tr.DrainWait(time.Now().Add(5 * time.Second)); left != 0 || time.Since(start) > time.Second {
		t.Errorf("DrainWait = %d left after %v, want 0 at once", left, time.Since(start))
	}
	if tr.ActiveCalls() != 0 {
		t.Errorf("active calls = %d, want 0", tr.ActiveCalls())
	}
}
