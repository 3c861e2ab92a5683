package e2e

import (
	"testing"
	"time"
)

// TestAnswerCrossingCancel: the PBX picks up just as the trunk caller's
// CANCEL arrives (RFC 3261 §9.1). The caller, who hung up, gets its 487;
// switchboard ACKs the PBX's 200 and ends it with a BYE (the SIPp PBX
// fails without both); the record is a cancelled call with its ring time,
// never an answered one left open, over UDP and TCP (SPEC §1).
func TestAnswerCrossingCancel(t *testing.T) {
	t.Parallel()
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			t.Parallel()
			n := newNode(t, nodeOptions{transport: tr})
			pbx := n.pbx(t, "uas_answer_on_cancel.xml", 0)
			const ring = 500 * time.Millisecond
			call := n.trunkCall(t, "uac_cancel.xml", ring)
			call.succeed(t)
			pbx.succeed(t)
			r := n.waitEnded(call.callID)
			checkInbound(t, r)
			if r.Disposition != "no_answer" || r.AnsweredAt != nil || r.TalkMS != 0 {
				t.Errorf("disposition %q answered_at %v talk_ms %d, want a cancelled call never answered", r.Disposition, r.AnsweredAt, r.TalkMS)
			}
			if r.EndReason != "cancelled" {
				t.Errorf("end_reason %q, want cancelled", r.EndReason)
			}
			within(t, "ring_ms", r.RingMS, ring)
		})
	}
}
