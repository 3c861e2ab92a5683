package callctl

import (
	"context"
	"time"
)

// Behind a balancer a call's BYE may pass another node (SPEC §11), which
// ends the call's record in the shared database; this node then never sees
// the end. A draining node asks the database about the calls it still
// holds, so that it stops as soon as they have ended wherever their BYE
// passed.

// SettleEndedElsewhere forgets the answered calls in memory whose stored
// record another node has ended, without writing anything (the record is
// right as it is), and reports how many calls are still pending.
func (t *Tracker) SettleEndedElsewhere(ctx context.Context) int {
	for _, a := range t.answered() {
		r, err := t.sink.ByCallID(ctx, a.Call.CallID)
		if err != nil || r.ID != a.Record().ID || r.EndedAt == nil {
			continue
		}
		a.mu.Lock()
		was := !a.ended
		a.ended = true
		a.mu.Unlock()
		if was {
			t.mu.Lock()
			t.active--
			t.mu.Unlock()
			t.forget(a)
		}
	}
	return t.Pending()
}

// answered lists the answered calls in memory not yet ended.
func (t *Tracker) answered() []*Active {
	t.mu.Lock()
	all := make([]*Active, 0, len(t.byCall))
	for _, a := range t.byCall {
		all = append(all, a)
	}
	t.mu.Unlock()
	out := all[:0]
	for _, a := range all {
		a.mu.Lock()
		up := !a.ended && a.rec.AnsweredAt != nil
		a.mu.Unlock()
		if up {
			out = append(out, a)
		}
	}
	return out
}

// settleEvery is how often a draining node asks the database.
const settleEvery = 200 * time.Millisecond

// DrainWait waits until no call is pending here, counting calls another
// node has ended as ended, or until the deadline; it returns the calls left.
func (t *Tracker) DrainWait(deadline time.Time) int {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	nextAsk := time.Now()
	for t.Pending() > 0 && time.Now().Before(deadline) {
		if time.Now().After(nextAsk) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			t.SettleEndedElsewhere(ctx)
			cancel()
			nextAsk = time.Now().Add(settleEvery)
		}
		<-tick.C
	}
	return t.Pending()
}
