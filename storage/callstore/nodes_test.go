package callstore

import (
	"context"
	"testing"
	"time"

	"github.com/switchboard-sip/switchboard/callctl"
	"github.com/switchboard-sip/switchboard/cdr"
)

// TestCloseLost: the open calls of a node that stopped beating are closed
// by a survivor as failed, "node lost", at its last heartbeat; calls it or
// another node ended, and the calls of live nodes, are left alone.
func TestCloseLost(t *testing.T) {
	ctx := context.Background()
	s, tg := newStore(t)
	b, _ := openStore(t, tg) // the survivor, on its own handle
	t0 := base.Add(time.Hour)

	open := rec("open", base)
	open.Node, open.Disposition, open.SIPStatus = "a", "", 0
	ans := base.Add(10 * time.Second)
	open.AnsweredAt = &ans
	ended := rec("ended", base)
	ended.Node = "a"
	end := base.Add(time.Minute)
	ended.EndedAt = &end
	live := rec("live", base)
	live.Node, live.Disposition = "c", ""
	for _, r := range []cdr.Record{open, ended, live} {
		s.Save(r)
	}
	flush(t, s)
	for node, at := range map[string]time.Time{"a": t0, "c": t0.Add(9 * time.Minute)} {
		if err := s.Beat(ctx, node, at); err != nil {
			t.Fatal(err)
		}
	}
	now := t0.Add(10 * time.Minute)
	if n, err := b.CloseLost(ctx, "a", 5*time.Minute, now); err != nil || n != 0 {
		t.Fatalf("a swept by itself: %d, %v", n, err)
	}
	n, err := b.CloseLost(ctx, "b", 5*time.Minute, now)
	if err != nil || n != 1 {
		t.Fatalf("CloseLost = %d, %v; want 1 call closed", n, err)
	}
	got, err := b.Get(ctx, "open")
	if err != nil {
		t.Fatal(err)
	}
	if got.Disposition != cdr.Failed || got.EndReason != ReasonNodeLost || got.Node != "a" ||
		got.EndedAt == nil || !got.EndedAt.Equal(t0) || got.TalkMS != t0.Sub(ans).Milliseconds() {
		t.Errorf("lost call = %+v; want failed, node lost, node a, ended at the last heartbeat %v", got, t0)
	}
	for _, id := range []string{"ended", "live"} {
		r, err := b.Get(ctx, id)
		if err != nil || r.EndReason == ReasonNodeLost {
			t.Errorf("%s = %+v, %v; want left alone", id, r, err)
		}
	}
	// Node a is forgotten; an hour later node c is lost too.
	if n, err := b.CloseLost(ctx, "b", 5*time.Minute, now.Add(time.Hour)); err != nil || n != 1 {
		t.Errorf("second sweep = %d, %v; want 1 (node c's call)", n, err)
	}
}

// TestNodeLostCorrectedByBye: a call closed as "node lost" whose BYE later
// passes a survivor is corrected there: answered, ended at that BYE, its
// talk time from answer to BYE (SPEC §11).
func TestNodeLostCorrectedByBye(t *testing.T) {
	ctx := context.Background()
	s, tg := newStore(t)
	b, _ := openStore(t, tg) // the survivor
	t0 := time.Now().Add(-10 * time.Minute)
	call := rec("long", t0)
	call.Node, call.Disposition = "a", ""
	ans := t0.Add(5 * time.Second)
	call.AnsweredAt = &ans
	s.Save(call)
	flush(t, s)
	if err := s.Beat(ctx, "a", t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if n, err := b.CloseLost(ctx, "b", 5*time.Minute, time.Now()); err != nil || n != 1 {
		t.Fatalf("CloseLost = %d, %v; want 1", n, err)
	}
	if r, err := b.Get(ctx, "long"); err != nil || r.EndReason != ReasonNodeLost {
		t.Fatalf("before the BYE: %+v, %v; want closed as node lost", r, err)
	}
	ended := make(chan cdr.Record, 1)
	tr := callctl.NewTracker(b, func(e callctl.Event) {
		if e.Type == callctl.EventEnded {
			ended <- e.Record
		}
	})
	bye := time.Now()
	tr.Bye(call.CallID)
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		t.Fatal("the BYE did not end the record")
	}
	flush(t, b)
	got, err := b.Get(ctx, "long")
	if err != nil {
		t.Fatal(err)
	}
	talk := bye.Sub(ans)
	if got.Disposition != cdr.Answered || got.EndReason != "" || got.EndedAt == nil ||
		got.EndedAt.Before(bye.Add(-time.Second)) || got.TalkMS < talk.Milliseconds()-1000 || got.TalkMS > talk.Milliseconds()+1000 {
		t.Errorf("after the BYE: disposition %q reason %q ended %v talk %d ms; want answered, ended at the BYE, talk ≈ %d ms",
			got.Disposition, got.EndReason, got.EndedAt, got.TalkMS, talk.Milliseconds())
	}
	// A second BYE (a retransmission) changes nothing.
	tr.Bye(call.CallID)
}
