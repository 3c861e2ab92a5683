package sip

import (
	"strings"
	"testing"
	"time"
)

// TestOptionsWhileDraining: a load balancer's OPTIONS probe gets 200 from a
// serving node and 503 with Retry-After from a draining one, which takes it
// out of rotation before it stops (SPEC §11).
func TestOptionsWhileDraining(t *testing.T) {
	h := startProxy(t, harnessOpts{})
	lb := h.trunk
	probe := func(id string) []byte {
		t.Helper()
		me := lb.addr().String()
		m := rawReq{method: "OPTIONS", ruri: "sip:" + h.addr.String(), via: []string{"SIP/2.0/UDP " + me + ";branch=z9hG4bK-" + id},
			from: "<sip:dispatcher@" + me + ">;tag=" + id, to: "<sip:" + h.addr.String() + ">", callID: id, cseq: 1}
		start := lb.count()
		lb.send(t, h.addr, m.bytes())
		d, ok := lb.waitFor(start, 5*time.Second, func(d datagram) bool { return rawCallID(d.b) == id && resStatus(d.b) >= 200 })
		if !ok {
			t.Fatalf("probe %s not answered", id)
		}
		return d.b
	}
	if b := probe("serving"); resStatus(b) != 200 {
		t.Fatalf("serving node answered %d, want 200", resStatus(b))
	}
	h.p.Drain()
	b := probe("draining")
	if resStatus(b) != 503 || !strings.Contains(string(b), "Retry-After:") {
		t.Fatalf("draining node answered %q, want 503 with Retry-After", rawFirstLine(b))
	}
}

// TestRecordRouteNamesTheBalancer: with sip.record_route set, the dialog's
// route names the load balancer, and a BYE routed through it (to any node)
// is taken as ours and reaches the PBX (SPEC §11).
func TestRecordRouteNamesTheBalancer(t *testing.T) {
	const lb = "127.0.0.1:5999"
	h := startProxy(t, harnessOpts{options: func(o *Options) { o.RecordRoute = lb }})
	tr := h.trunk
	const id = "call-rr-balancer"
	inv := callerInvite(tr, h.addr, id, "<sip:+4930111222@"+tr.addr().String()+">;tag=c1")
	tr.send(t, h.addr, inv.bytes())
	d, ok := h.pbx.waitFor(0, 5*time.Second, isReq("INVITE", id))
	if !ok {
		t.Fatal("INVITE did not reach the PBX")
	}
	rr := parseRawReq(t, d.b).GetHeader("Record-Route")
	if rr == nil || !strings.Contains(rr.Value(), "sip:"+lb+";") || !strings.Contains(rr.Value(), "sb=") {
		t.Fatalf("Record-Route %v, want the balancer %s, signed", rr, lb)
	}
	if _, ok := tr.waitFor(0, 5*time.Second, isRes(200, "INVITE", id)); !ok {
		t.Fatal("no 200 for the INVITE")
	}
	me := tr.addr().String()
	bye := rawReq{method: "BYE", ruri: "sip:callee@" + h.pbx.addr().String(),
		via: []string{"SIP/2.0/UDP " + me + ";branch=z9hG4bKd8a8.6b121bf2ae8558714b17d250399b276d.1",
			"SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK-" + id + "-bye;rport"},
		route: []string{"<" + strings.Trim(rr.Value(), "<>") + ">"},
		from:  "<sip:+4930111222@" + me + ">;tag=c1", to: "<sip:+49301234560@" + h.addr.String() + ">;tag=pbx16",
		callID: id, cseq: 2}
	// The node that set the call up is gone: the balancer hands the BYE
	// to another node, which shares the route key but never saw the call.
	h.stop()
	other := startProxy(t, harnessOpts{options: func(o *Options) { o.RecordRoute = lb }})
	tr.send(t, other.addr, bye.bytes())
	d, ok = h.pbx.waitFor(0, 5*time.Second, isReq("BYE", id))
	if !ok {
		t.Fatal("BYE through the balancer's route did not reach the PBX")
	}
	if r := parseRawReq(t, d.b); r.GetHeader("Route") != nil {
		t.Errorf("BYE reached the PBX with Route %s: the balancer's entry is ours to remove", r.GetHeader("Route").Value())
	}
	if _, ok := tr.waitFor(0, 5*time.Second, isRes(200, "BYE", id)); !ok {
		t.Error("the PBX's 200 to the BYE did not come back")
	}
}
