package sip

import (
	"strings"
	"testing"
	"time"

	gosip "github.com/emiago/sipgo/sip"
)

// pbxTrying answers every request with a 100 of its own (marked, so that
// the caller can tell it from switchboard's) before the real answer.
func pbxTrying(p *udpPeer, d datagram) {
	req, ok := peerRequest(d)
	if !ok {
		return
	}
	trying := gosip.NewResponseFromRequest(req, gosip.StatusTrying, "Trying", nil)
	trying.AppendHeader(gosip.NewHeader("X-Sent-By", "pbx"))
	reply(p, d.from, trying)
	if !req.IsInvite() {
		pbxAnswer(p, d)
		return
	}
	ring := gosip.NewResponseFromRequest(req, 180, "Ringing", nil)
	ring.To().Params.Add("tag", "pbx-trying")
	reply(p, d.from, ring)
	time.Sleep(20 * time.Millisecond) // it rings before it is answered
	res := gosip.NewResponseFromRequest(req, 200, "OK", []byte(testSDP))
	res.To().Params.Add("tag", "pbx-trying")
	res.AppendHeader(gosip.NewHeader("Contact", "<sip:pbx@"+p.addr().String()+">"))
	res.AppendHeader(gosip.NewHeader("Content-Type", "application/sdp"))
	reply(p, d.from, res)
}

// isPBXTrying matches the PBX's marked 100.
func isPBXTrying(d datagram) bool {
	return resStatus(d.b) == gosip.StatusTrying && rawHeader(d.b, "X-Sent-By") == "pbx"
}

// TestTryingNeverRelayed: the PBX's 100 to an INVITE and to a BYE stays
// with switchboard (RFC 3261 §16.7: a proxy never forwards a 100); the
// caller gets switchboard's own 100 and the PBX's 180 and 200 (positive
// controls on the same calls).
func TestTryingNeverRelayed(t *testing.T) { onBothPaths(t, testTryingNeverRelayed) }

func testTryingNeverRelayed(t *testing.T) {
	h := startProxy(t, harnessOpts{pbx: pbxTrying})
	tr := h.trunk
	start := tr.count()
	dl := h.answerCall(t, "call-trying")
	if _, ok := tr.waitFor(start, time.Second, isRes(180, "INVITE", "call-trying")); !ok {
		t.Fatal("the PBX's 180 did not reach the caller")
	}
	if _, ok := tr.waitFor(start, time.Second, func(d datagram) bool {
		return resStatus(d.b) == gosip.StatusTrying && rawHeader(d.b, "X-Sent-By") == ""
	}); !ok {
		t.Error("switchboard sent the caller no 100 of its own")
	}
	ack := rawReq{method: "ACK", ruri: dl.contact, via: []string{"SIP/2.0/UDP " + tr.addr().String() + ";branch=z9hG4bK-ack-trying"},
		route: dl.routes, from: dl.from, to: dl.to, callID: dl.id, cseq: 1}
	tr.send(t, h.addr, ack.bytes())
	dl.send(t, h, "BYE", dl.contact, dl.routes, 2)
	if _, ok := tr.waitFor(start, 5*time.Second, isRes(200, "BYE", "call-trying")); !ok {
		t.Fatal("the PBX's 200 for the BYE did not reach the caller")
	}
	for _, d := range tr.since(start) {
		if isPBXTrying(d) {
			t.Errorf("the PBX's 100 was relayed to the caller: %q (CSeq %s)", rawFirstLine(d.b), rawHeader(d.b, "CSeq"))
		}
	}
	if n := len(h.pbx.since(0)); n == 0 || !strings.HasPrefix(rawFirstLine(h.pbx.since(0)[0].b), "INVITE ") {
		t.Fatal("the PBX saw no INVITE")
	}
}
