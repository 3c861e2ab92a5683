package sip

import (
	"github.com/switchboard-sip/switchboard/cdr"

	"strconv"
	"strings"
	"testing"
	"time"

	gosip "github.com/emiago/sipgo/sip"
)

// pbxAnswersOnCancel plays a callee who picks up just as the caller
// cancels: 180 to the INVITE, then on CANCEL a 200 for the CANCEL and a
// 200 for the INVITE (not 487).
func pbxAnswersOnCancel(invites chan *gosip.Request) func(*udpPeer, datagram) {
	return func(p *udpPeer, d datagram) {
		req, ok := peerRequest(d)
		if !ok {
			return
		}
		reply := func(res *gosip.Response) { _, _ = p.conn.WriteToUDP([]byte(res.String()), d.from) }
		switch {
		case req.IsInvite():
			ring := gosip.NewResponseFromRequest(req, 180, "Ringing", nil)
			ring.To().Params.Add("tag", "callee")
			reply(ring)
			invites <- req
		case req.IsCancel():
			reply(gosip.NewResponseFromRequest(req, 200, "OK", nil))
			inv := <-invites
			ok := gosip.NewResponseFromRequest(inv, 200, "OK", []byte(testSDP))
			ok.To().Params.Add("tag", "callee")
			ok.AppendHeader(gosip.NewHeader("Contact", "<sip:pbx@"+p.addr().String()+">"))
			ok.AppendHeader(gosip.NewHeader("Content-Type", "application/sdp"))
			reply(ok)
		default:
			reply(gosip.NewResponseFromRequest(req, 200, "OK", nil))
		}
	}
}

// TestAnswerCrossingCancel: the callee's 200 that crosses the caller's
// CANCEL (RFC 3261 §9.1) does not connect a caller who hung up: the
// caller gets 487 and no 200, switchboard ACKs the 200 and ends the
// callee's side with a BYE (one Via, its own), the caller's ACK for the
// 487 is not passed on as an ACK for the 200, and the record is a
// cancelled call with the time it rang, not an answered one left open.
func TestAnswerCrossingCancel(t *testing.T) { onBothPaths(t, testAnswerCrossingCancel) }

func testAnswerCrossingCancel(t *testing.T) {
	h := startProxy(t, harnessOpts{pbx: pbxAnswersOnCancel(make(chan *gosip.Request, 1))})
	tr := h.trunk
	me := tr.addr().String()
	head := func(method, to string) string {
		return method + " sip:+49301234560@" + h.addr.String() + " SIP/2.0\r\n" +
			"Via: SIP/2.0/UDP " + me + ";branch=z9hG4bK-cross;rport\r\n" +
			"Max-Forwards: 70\r\n" +
			"From: <sip:+4930111222@" + me + ">;tag=caller\r\n" +
			"To: " + to + "\r\n" +
			"Call-ID: cross-1\r\nCSeq: 1 " + method + "\r\n"
	}
	to := "<sip:+49301234560@" + h.addr.String() + ">"
	start := tr.count()
	tr.send(t, h.addr, []byte(head("INVITE", to)+"Contact: <sip:caller@"+me+">\r\nContent-Type: application/sdp\r\n"+
		"Content-Length: "+itoaLen(testSDP)+"\r\n\r\n"+testSDP))
	if _, ok := tr.waitFor(start, 5*time.Second, func(d datagram) bool { return resStatus(d.b) == 180 }); !ok {
		t.Fatal("no 180")
	}
	time.Sleep(20 * time.Millisecond) // it rings a while
	tr.send(t, h.addr, []byte(head("CANCEL", to)+"Content-Length: 0\r\n\r\n"))
	res, ok := tr.waitFor(start, 5*time.Second, isRes(487, "INVITE", "cross-1"))
	if !ok {
		t.Fatal("the caller got no 487 for its cancelled INVITE")
	}
	for _, method := range []string{"ACK", "BYE"} {
		d, ok := h.pbx.waitFor(0, 5*time.Second, isReq(method, "cross-1"))
		if !ok {
			t.Fatalf("switchboard sent the callee no %s for its 200", method)
		}
		if vias := rawHeaders(d.b, "Via"); len(vias) != 1 {
			t.Errorf("switchboard's %s carries Vias %q, want its own only", method, vias)
		}
		if r := parseRawReq(t, d.b); !strings.Contains(r.To().Value(), "tag=callee") || r.Recipient.User != "pbx" {
			t.Errorf("switchboard's %s is not in the 200's dialog: %q, To %q", method, rawFirstLine(d.b), r.To().Value())
		}
	}
	pbxAcks := func() int {
		n := 0
		for _, d := range h.pbx.since(0) {
			if isReq("ACK", "cross-1")(d) {
				n++
			}
		}
		return n
	}
	acks := pbxAcks()
	tr.send(t, h.addr, []byte(head("ACK", parseRes(t, res.b).To().Value())+"Content-Length: 0\r\n\r\n"))
	h.waitRecord(t, "cross-1", cdr.NoAnswer)
	time.Sleep(200 * time.Millisecond)
	if n := pbxAcks(); n != acks {
		t.Errorf("the caller's ACK for the 487 reached the callee (%d ACKs, want %d)", n, acks)
	}
	for _, d := range tr.since(start) {
		if isRes(200, "INVITE", "cross-1")(d) {
			t.Error("the crossing 200 reached the caller, who had hung up")
		}
	}
	r, _ := h.sink.get("cross-1")
	if r.AnsweredAt != nil || r.EndReason != "cancelled" || r.RingMS <= 0 || r.RingingAt == nil {
		t.Errorf("record: answered_at %v, end_reason %q, ring_ms %d, ringing_at %v; want a cancelled call that rang",
			r.AnsweredAt, r.EndReason, r.RingMS, r.RingingAt)
	}
}

func itoaLen(s string) string { return strconv.Itoa(len(s)) }
