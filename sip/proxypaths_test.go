package sip

// Paths of the proxy that no other test reached: the answer
// when the PBX cannot be reached, the bound on remembered dialogs,
// stateless relaying of 2xx retransmissions (RFC 3261 §16.11), strict
// routers and requests that name switchboard with no Route left.

import (
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	gosip "github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/cdr"
)

// dialog is what the caller knows after its call was answered.
type callerDialog struct {
	id, from, to string
	contact      string   // the callee's Contact
	routes       []string // the route set, in order
}

// answerCall places a call from the trunk peer and returns the dialog
// once the 200 arrived (no ACK sent yet).
func (h *proxyHarness) answerCall(t *testing.T, id string) callerDialog {
	t.Helper()
	tr := h.trunk
	inv := callerInvite(tr, h.addr, id, "<sip:+4930111222@"+tr.addr().String()+">;tag=c-"+id)
	start := tr.count()
	tr.send(t, h.addr, inv.bytes())
	d, ok := tr.waitFor(start, 5*time.Second, isRes(200, "INVITE", id))
	if !ok {
		t.Fatalf("call %s: no 200", id)
	}
	res := parseRes(t, d.b)
	dl := callerDialog{id: id, from: inv.from, to: res.To().Value(), contact: res.Contact().Address.String()}
	rrs := res.GetHeaders("Record-Route")
	for i := len(rrs) - 1; i >= 0; i-- {
		dl.routes = append(dl.routes, rrs[i].Value())
	}
	return dl
}

// send sends an in-dialog request from the caller with the given
// Request-URI and Route set.
func (dl callerDialog) send(t *testing.T, h *proxyHarness, method, ruri string, routes []string, cseq int) {
	t.Helper()
	me := h.trunk.addr().String()
	m := rawReq{method: method, ruri: ruri, via: []string{"SIP/2.0/UDP " + me + ";branch=z9hG4bK-" + dl.id + "-" + method + strconv.Itoa(cseq) + ";rport"},
		route: routes, from: dl.from, to: dl.to, callID: dl.id, cseq: cseq}
	h.trunk.send(t, h.addr, m.bytes())
}

// TestPBXUnreachable: a PBX that cannot be reached over TCP gets the
// caller a 503 at once and a failed record; one that never answers over
// UDP a 408 (noFinal, bounded by invite_timeout).
func TestPBXUnreachable(t *testing.T) { onBothPaths(t, testPBXUnreachable) }

func testPBXUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	h := startProxy(t, harnessOpts{routing: func(r *Routing) {
		if err := gosip.ParseUri("sip:"+closed+";transport=tcp", &r.PBXURI); err != nil {
			t.Fatal(err)
		}
	}, options: func(o *Options) {
		o.Listen = append(o.Listen, Listen{Network: "tcp", Host: "127.0.0.1", Port: 0})
	}})
	tr := h.trunk
	const id = "call-no-pbx"
	tr.send(t, h.addr, callerInvite(tr, h.addr, id, "<sip:+4930111222@"+tr.addr().String()+">;tag=c1").bytes())
	d, ok := tr.waitFor(0, 5*time.Second, func(d datagram) bool { return rawCallID(d.b) == id && resStatus(d.b) >= 300 })
	if !ok || resStatus(d.b) != 503 {
		t.Fatalf("answered %d, want 503", resStatus(d.b))
	}
	h.waitRecord(t, id, cdr.Failed)
}

// TestExpireDialogs: a dialog switchboard remembers lets a request that
// names switchboard with no Route reach the other side (resolveSelf);
// once expired, the same request is refused.
func TestExpireDialogs(t *testing.T) { onBothPaths(t, testExpireDialogs) }

func testExpireDialogs(t *testing.T) {
	h := startProxy(t, harnessOpts{})
	dl := h.answerCall(t, "call-expire")
	self := "sip:" + h.addr.String()
	pbx0 := h.pbx.count()
	dl.send(t, h, "INFO", self, nil, 2)
	d, ok := h.pbx.waitFor(pbx0, 5*time.Second, isReq("INFO", dl.id))
	if !ok {
		t.Fatal("INFO naming switchboard did not reach the PBX of the remembered dialog")
	}
	if r := parseRawReq(t, d.b); r.Recipient.String() != dl.contact {
		t.Errorf("INFO went to %s, want the callee's Contact %s", r.Recipient.String(), dl.contact)
	}
	h.p.ExpireDialogs(time.Hour)
	dl.send(t, h, "INFO", self, nil, 3)
	if _, ok := h.pbx.waitFor(pbx0, 5*time.Second, func(d datagram) bool {
		return isReq("INFO", dl.id)(d) && strings.HasSuffix(rawHeader(d.b, "CSeq"), "3 INFO")
	}); !ok {
		t.Fatal("a dialog younger than the bound was forgotten")
	}
	h.p.ExpireDialogs(0)
	start := h.trunk.count()
	dl.send(t, h, "INFO", self, nil, 4)
	res, ok := h.trunk.waitFor(start, 5*time.Second, func(d datagram) bool {
		return rawCallID(d.b) == dl.id && resStatus(d.b) >= 200 && strings.HasSuffix(rawHeader(d.b, "CSeq"), "4 INFO")
	})
	if !ok || (resStatus(res.b) != 403 && resStatus(res.b) != 481) {
		t.Errorf("after expiry: answered %d, want 403 or 481", resStatus(res.b))
	}
}

// TestStrictRouter: a caller that routes strictly puts switchboard's
// Record-Route in the Request-URI and the callee's Contact last in Route;
// the request reaches the callee with its Contact as Request-URI.
func TestStrictRouter(t *testing.T) { onBothPaths(t, testStrictRouter) }

func testStrictRouter(t *testing.T) {
	h := startProxy(t, harnessOpts{})
	dl := h.answerCall(t, "call-strict")
	var rr gosip.Uri
	first := strings.Trim(dl.routes[0], "<>")
	if err := gosip.ParseUri(first, &rr); err != nil {
		t.Fatal(err)
	}
	rr.UriParams.Remove("lr")
	pbx0 := h.pbx.count()
	dl.send(t, h, "INFO", rr.String(), append(dl.routes[1:], "<"+dl.contact+">"), 2)
	d, ok := h.pbx.waitFor(pbx0, 5*time.Second, isReq("INFO", dl.id))
	if !ok {
		t.Fatal("a strictly routed INFO did not reach the PBX")
	}
	if r := parseRawReq(t, d.b); r.Recipient.String() != dl.contact || len(rawHeaders(d.b, "Route")) != 0 {
		t.Errorf("forwarded %q with Route %q, want Request-URI %s and no Route", rawFirstLine(d.b), rawHeaders(d.b, "Route"), dl.contact)
	}
}

// TestStrayResponse: after a restart the INVITE's client transaction is
// gone; the PBX's 2xx retransmission is relayed statelessly to the caller
// (RFC 3261 §16.11), a response whose top Via is not ours is dropped.
func TestStrayResponse(t *testing.T) { onBothPaths(t, testStrayResponse) }

func testStrayResponse(t *testing.T) {
	var mu sync.Mutex
	var last []byte
	var lastTo *net.UDPAddr
	h := startProxy(t, harnessOpts{log: testLog(), pbx: func(p *udpPeer, d datagram) {
		pbxAnswer(p, d)
		if isReq("INVITE", "call-stray")(d) {
			req := parseRawReq(t, d.b)
			res := gosip.NewResponseFromRequest(req, 200, "OK", []byte(testSDP))
			res.To().Params.Add("tag", "pbx10")
			res.AppendHeader(gosip.NewHeader("Contact", "<sip:pbx@"+p.addr().String()+">"))
			mu.Lock()
			last, lastTo = []byte(res.String()), d.from
			mu.Unlock()
		}
	}})
	h.answerCall(t, "call-stray")
	h.restart(t)
	mu.Lock()
	defer mu.Unlock()
	start := h.trunk.count()
	_, _ = h.pbx.conn.WriteToUDP(last, lastTo)
	if _, ok := h.trunk.waitFor(start, 5*time.Second, isRes(200, "INVITE", "call-stray")); !ok {
		t.Error("the 2xx retransmission did not reach the caller after the restart")
	}
	// The same response without our Via: not ours to relay.
	res, err := gosip.ParseMessage(last)
	if err != nil {
		t.Fatal(err)
	}
	foreign := res.(*gosip.Response)
	foreign.RemoveHeader("Via")
	start = h.trunk.count()
	_, _ = h.pbx.conn.WriteToUDP([]byte(foreign.String()), lastTo)
	if d, ok := h.trunk.waitFor(start, 300*time.Millisecond, isRes(200, "INVITE", "call-stray")); ok {
		t.Errorf("a response without our Via was relayed: %q", rawFirstLine(d.b))
	}
	// Two Vias, the top one someone else's (another branch, or our branch
	// prefix on another host): the second one names the caller, but the
	// response is not ours to relay (RFC 3261 §16.7 item 3).
	ours := parseRes(t, last).Via()
	for _, top := range []string{
		"SIP/2.0/UDP 192.0.2.7:5060;branch=z9hG4bK-elsewhere",
		"SIP/2.0/UDP 192.0.2.7:" + strconv.Itoa(ours.Port) + ";branch=" + ours.Params.GetOr("branch", ""),
	} {
		other := parseRes(t, last)
		other.RemoveHeader("Via")
		other.PrependHeader(gosip.NewHeader("Via", top))
		if n := len(other.GetHeaders("Via")); n != 2 {
			t.Fatalf("the test response has %d Vias, want 2", n)
		}
		start = h.trunk.count()
		_, _ = h.pbx.conn.WriteToUDP([]byte(other.String()), lastTo)
		if d, ok := h.trunk.waitFor(start, 300*time.Millisecond, isRes(200, "INVITE", "call-stray")); ok {
			t.Errorf("a response whose top Via is %q was relayed: %q", top, rawFirstLine(d.b))
		}
	}
}
