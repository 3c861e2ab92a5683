package sip

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-sip/switchboard/callctl"
	"github.com/switchboard-sip/switchboard/cdr"
)

// countStage counts the calls it decides and rejects each with 486 and an
// announcement (which sends a fast-path call to the sipgo path).
type countStage struct{ n *atomic.Int32 }

func (countStage) Name() string { return "count" }
func (s countStage) Handle(_ context.Context, c *callctl.Call) callctl.Decision {
	s.n.Add(1)
	return callctl.Decision{Verdict: callctl.Reject, Code: 486, Reason: "test", Announcement: "busy.wav"}
}

// TestDecidedOnce: an INVITE the fast path takes and then hands to the
// sipgo path (here: an announcement to play) is decided once: one run of
// the pipeline, one CPS token (with sip.max_cps 1 the call is not shed
// with 503), one record (SPEC §1).
func TestDecidedOnce(t *testing.T) { onBothPaths(t, testDecidedOnce) }

func testDecidedOnce(t *testing.T) {
	var n atomic.Int32
	h := startProxy(t, harnessOpts{
		pipeline: append(identifyPipeline(t), countStage{&n}),
		options:  func(o *Options) { o.MaxCPS = 1 },
		routing: func(r *Routing) {
			r.Announce = func(context.Context, string, []byte) ([]byte, <-chan struct{}, error) {
				return nil, nil, errors.New("no codec in common")
			}
		},
	})
	tr := h.trunk
	const id = "call-decided-once"
	tr.send(t, h.addr, callerInvite(tr, h.addr, id, "<sip:+4930111222@"+tr.addr().String()+">;tag=c1").bytes())
	d, ok := tr.waitFor(0, 5*time.Second, func(d datagram) bool { return rawCallID(d.b) == id && resStatus(d.b) >= 200 })
	if !ok {
		t.Fatal("no final response")
	}
	if c := resStatus(d.b); c != 486 {
		t.Errorf("answered %d, want the pipeline's 486 (503: a second CPS token was taken)", c)
	}
	h.waitRecord(t, id, cdr.Busy)
	if got := n.Load(); got != 1 {
		t.Errorf("the pipeline ran %d times for one INVITE, want once", got)
	}
	trying := 0
	for _, d := range tr.since(0) {
		if resStatus(d.b) == 100 {
			trying++
		}
	}
	if trying != 1 {
		t.Errorf("the caller got %d 100 Trying, want one", trying)
	}
}
