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
// CANCEL still reaches the caller, which ACKs and BYEs it through the
// proxy (RFC 3261 §9.1, §15): the call was answered, briefly.
func TestAnswerCrossingCancel(t *testing.T) { onBothPaths(t, testAnswerCrossingCancel) }

func testAnswerCrossingCancel(t *testing.T) {
	h := startProxy(t, harnessOpts{pbx: pbxAnswersOnCancel(make(chan *gosip.Request, 1))})
	tr := h.trunk
	me := tr.addr().String()
	head := func(method string) string {
		return method + " sip:+49301234560@" + h.addr.String() + " SIP/2.0\r\n" +
			"Via: SIP/2.0/UDP " + me + ";branch=z9hG4bK-cross;rport\r\n" +
			"Max-Forwards: 70\r\n" +
			"From: <sip:+4930111222@" + me + ">;tag=caller\r\n" +
			"To: <sip:+49301234560@" + h.addr.String() + ">\r\n" +
			"Call-ID: cross-1\r\nCSeq: 1 " + method + "\r\n"
	}
	start := tr.count()
	tr.send(t, h.addr, []byte(head("INVITE")+"Contact: <sip:caller@"+me+">\r\nContent-Type: application/sdp\r\n"+
		"Content-Length: "+itoaLen(testSDP)+"\r\n\r\n"+testSDP))
	if _, ok := tr.waitFor(start, 5*time.Second, func(d datagram) bool { return resStatus(d.b) == 180 }); !ok {
		t.Fatal("no 180")
	}
	tr.send(t, h.addr, []byte(head("CANCEL")+"Content-Length: 0\r\n\r\n"))
	ok, found := tr.waitFor(start, 5*time.Second, func(d datagram) bool {
		return resStatus(d.b) == 200 && strings.Contains(rawHeader(d.b, "CSeq"), "INVITE")
	})
	if !found {
		var got []int
		for _, d := range tr.since(start) {
			got = append(got, resStatus(d.b))
		}
		t.Fatalf("the callee's 200 for the INVITE never reached the caller; got %v", got)
	}
	res := parseRes(t, ok.b)
	var routes []string
	rrs := res.GetHeaders("Record-Route")
	for i := len(rrs) - 1; i >= 0; i-- {
		routes = append(routes, rrs[i].Value())
	}
	if len(routes) == 0 || res.Contact() == nil {
		t.Fatal("the relayed 200 lacks Record-Route or Contact: the caller could not reach the callee to hang up")
	}
	for i, method := range []string{"ACK", "BYE"} {
		m := rawReq{method: method, ruri: res.Contact().Address.String(),
			via:   []string{"SIP/2.0/UDP " + me + ";branch=z9hG4bK-cross-" + method + ";rport"},
			route: routes, from: "<sip:+4930111222@" + me + ">;tag=caller", to: res.To().Value(), callID: "cross-1", cseq: 2 + i}
		if method == "ACK" {
			m.cseq = 1
		}
		tr.send(t, h.addr, m.bytes())
		if _, ok := h.pbx.waitFor(0, 5*time.Second, isReq(method, "cross-1")); !ok {
			t.Fatalf("the caller's %s did not reach the callee", method)
		}
	}
	if _, ok := tr.waitFor(start, 5*time.Second, isRes(200, "BYE", "cross-1")); !ok {
		t.Error("no 200 for the caller's BYE")
	}
	h.waitRecord(t, "cross-1", cdr.Answered)
}

func itoaLen(s string) string { return strconv.Itoa(len(s)) }
