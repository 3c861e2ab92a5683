package sip

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	gosip "github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/callctl"
	"github.com/switchboard-sip/switchboard/cdr"
)

// fastDialog sets up a call from the trunk through a fast-path proxy
// (INVITE → 200 → ACK) and returns the BYE the caller would send, as a
// function of its Via's sent-by and extra header lines.
func fastDialog(t *testing.T, h *proxyHarness, id string) func(sentBy, extra string) []byte {
	t.Helper()
	tr := h.trunk
	me := tr.addr().String()
	from := "From: \"Trunk Caller\" <sip:+4930111222@" + me + ">;tag=uac-" + id + "\r\n"
	start := tr.count()
	tr.send(t, h.addr, []byte("INVITE sip:+49301234560@"+h.addr.String()+" SIP/2.0\r\n"+
		"Via: SIP/2.0/UDP "+me+";branch=z9hG4bK-"+id+";rport\r\nMax-Forwards: 70\r\n"+from+
		"To: <sip:+49301234560@"+h.addr.String()+">\r\nCall-ID: "+id+"\r\nCSeq: 1 INVITE\r\n"+
		"Contact: <sip:caller@"+me+">\r\nContent-Type: application/sdp\r\n"+
		"Content-Length: "+strconv.Itoa(len(testSDP))+"\r\n\r\n"+testSDP))
	ok, found := tr.waitFor(start, 5*time.Second, func(d datagram) bool {
		return rawCallID(d.b) == id && resStatus(d.b) == 200
	})
	if !found {
		t.Fatal("no 200 for the INVITE")
	}
	msg, err := gosip.ParseMessage(ok.b)
	if err != nil {
		t.Fatal(err)
	}
	res := msg.(*gosip.Response)
	var routes []string
	rrs := res.GetHeaders("Record-Route")
	for i := len(rrs) - 1; i >= 0; i-- {
		routes = append(routes, rrs[i].Value())
	}
	inDialog := func(method, cseq, sentBy, extra string) []byte {
		return []byte(method + " " + res.Contact().Address.String() + " SIP/2.0\r\n" +
			"Via: SIP/2.0/UDP " + sentBy + ";branch=z9hG4bK-" + id + method + ";rport\r\n" +
			"Route: " + strings.Join(routes, ", ") + "\r\nMax-Forwards: 70\r\n" + from +
			"To: " + res.To().Value() + "\r\nCall-ID: " + id + "\r\nCSeq: " + cseq + " " + method + "\r\n" +
			extra + "Content-Length: 0\r\n\r\n")
	}
	tr.send(t, h.addr, inDialog("ACK", "1", me, ""))
	return func(sentBy, extra string) []byte { return inDialog("BYE", "2", sentBy, extra) }
}

// byeThrough sends a BYE and returns the BYE the PBX got and the response
// the caller got.
func byeThrough(t *testing.T, h *proxyHarness, id string, bye []byte) (got, res []byte) {
	t.Helper()
	tr, pbx := h.trunk, h.pbx
	ts, ps := tr.count(), pbx.count()
	tr.send(t, h.addr, bye)
	d, ok := pbx.waitFor(ps, 5*time.Second, func(d datagram) bool {
		return rawCallID(d.b) == id && strings.HasPrefix(rawFirstLine(d.b), "BYE ")
	})
	if !ok {
		t.Fatal("the BYE did not reach the PBX")
	}
	r, ok := tr.waitFor(ts, 5*time.Second, func(d datagram) bool {
		return rawCallID(d.b) == id && resStatus(d.b) == 200 && strings.HasSuffix(rawHeader(d.b, "CSeq"), "BYE")
	})
	if !ok {
		t.Fatal("the 200 for the BYE did not reach the caller's source address")
	}
	return d.b, r.b
}

func viaLines(b []byte) []string {
	var out []string
	for _, l := range strings.Split(string(b), "\r\n") {
		if n, v, ok := strings.Cut(l, ":"); ok && (strings.EqualFold(n, "Via") || n == "v") {
			out = append(out, strings.TrimSpace(v))
		}
	}
	return out
}

// TestFastPathBye: with sip.fast_path on, the caller's BYE is forwarded by
// the fast path (our Via carries its branch mark), with our Route popped,
// Max-Forwards decremented and received/rport on the caller's Via; the 200
// goes back to the address the BYE came from (the Via names another), with
// only the caller's Via; the record is ended.
func TestFastPathBye(t *testing.T) {
	if !fastPathSupported {
		t.Skip("the fast path needs Linux")
	}
	h := startProxy(t, harnessOpts{fast: true})
	id := "call-fast-bye"
	bye := fastDialog(t, h, id)
	got, res := byeThrough(t, h, id, bye("127.0.0.99:5099", ""))
	vias := viaLines(got)
	if len(vias) != 2 || !strings.Contains(vias[0], "branch="+fastBranch) {
		t.Fatalf("Vias of the forwarded BYE: %q, want ours with a %s branch on top", vias, fastBranch)
	}
	port := strconv.Itoa(h.trunk.addr().Port)
	if want := "SIP/2.0/UDP 127.0.0.99:5099;branch=z9hG4bK-" + id + "BYE;rport=" + port + ";received=127.0.0.1"; vias[1] != want {
		t.Errorf("caller's Via %q, want %q", vias[1], want)
	}
	if mf := rawHeader(got, "Max-Forwards"); mf != "69" {
		t.Errorf("Max-Forwards %q, want 69", mf)
	}
	if r := rawHeader(got, "Route"); r != "" {
		t.Errorf("Route %q left in the BYE: only our own entries were there", r)
	}
	if v := viaLines(res); len(v) != 1 || !strings.HasPrefix(v[0], "SIP/2.0/UDP 127.0.0.99:5099;branch=z9hG4bK-"+id+"BYE") {
		t.Errorf("Vias of the relayed 200: %q, want the caller's only", v)
	}
	h.waitRecord(t, id, cdr.Answered)
}

// TestFastPathFallback: a BYE the index cannot take (a folded header line,
// RFC 3261 §7.3.1) goes the sipgo way and is still routed, and the call's
// record is still ended.
func TestFastPathFallback(t *testing.T) {
	if !fastPathSupported {
		t.Skip("the fast path needs Linux")
	}
	h := startProxy(t, harnessOpts{fast: true})
	id := "call-fast-fallback"
	// The Via names the real source: the sipgo path's rport handling is
	// tested there.
	bye := fastDialog(t, h, id)(h.trunk.addr().String(), "Subject: folded\r\n line\r\n")
	var m msgIndex
	if m.index(bye) {
		t.Fatal("the index took a folded header line")
	}
	got, res := byeThrough(t, h, id, bye)
	vias := viaLines(got)
	if len(vias) != 2 || !strings.Contains(vias[0], "branch="+branchPrefix) || strings.Contains(vias[0], fastBranch) {
		t.Fatalf("Vias of the forwarded BYE: %q, want ours from the sipgo path on top", vias)
	}
	if v := viaLines(res); len(v) != 1 {
		t.Errorf("Vias of the relayed 200: %q, want the caller's only", v)
	}
	h.waitRecord(t, id, cdr.Answered)
}

// TestFastTokenMatchesRouteToken: the fast path checks the same signature
// the sipgo path writes into Record-Route.
func TestFastTokenMatchesRouteToken(t *testing.T) {
	p := &Proxy{opts: Options{RouteKey: []byte("0123456789abcdef0123456789abcdef")}}
	req := invite(t)
	if got, want := string((&fastPath{p: p}).fastToken(nil, []byte(req.CallID().Value()))), p.routeToken(req); got != want {
		t.Fatalf("fastToken %q, routeToken %q", got, want)
	}
}

// nameStage plays the hotline stage: a caller-name prefix and a header.
type nameStage struct{}

func (nameStage) Name() string { return "name" }
func (nameStage) Handle(_ context.Context, c *callctl.Call) callctl.Decision {
	c.DisplayName = "ACME: Jane"
	c.Headers = map[string]string{"X-Priority": "1"}
	return callctl.Decision{}
}

// rawInvite is an initial INVITE from the trunk peer.
func rawInvite(h *proxyHarness, id, branch string) []byte {
	me := h.trunk.addr().String()
	return []byte("INVITE sip:+49301234560@" + h.addr.String() + " SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP 127.0.0.99:5099;branch=" + branch + ";rport\r\nMax-Forwards: 70\r\n" +
		"From: \"Trunk Caller\" <sip:+4930111222@" + me + ">;tag=uac-" + id + "\r\n" +
		"To: <sip:+49301234560@" + h.addr.String() + ">\r\nCall-ID: " + id + "\r\nCSeq: 1 INVITE\r\n" +
		"P-Asserted-Identity: <sip:+4930111222@" + me + ">\r\n" +
		"Contact: <sip:caller@" + me + ">\r\nContent-Type: application/sdp\r\n" +
		"Content-Length: " + strconv.Itoa(len(testSDP)) + "\r\n\r\n" + testSDP)
}

func firstRequest(p *udpPeer, from int, id, method string) (datagram, bool) {
	return p.waitFor(from, 5*time.Second, func(d datagram) bool {
		return rawCallID(d.b) == id && strings.HasPrefix(rawFirstLine(d.b), method+" ")
	})
}

// TestFastPathInvite: an initial INVITE is proxied by the fast path: 100
// to the source address, the INVITE at the PBX with our signed
// Record-Route, our transaction's Via, received/rport on the caller's Via,
// Max-Forwards less one, the pipeline's name and header; the caller gets
// 180 and 200 with its own From back and only its Via; a retransmitted
// INVITE is not a second call; the BYE ends the record.
func TestFastPathInvite(t *testing.T) {
	if !fastPathSupported {
		t.Skip("the fast path needs Linux")
	}
	h := startProxy(t, harnessOpts{fast: true, pipeline: append(identifyPipeline(t), nameStage{})})
	id := "call-fast-invite"
	tr, pbx := h.trunk, h.pbx
	inv := rawInvite(h, id, "z9hG4bK-fi1")
	tr.send(t, h.addr, inv)
	got, ok := firstRequest(pbx, 0, id, "INVITE")
	if !ok {
		t.Fatal("the INVITE did not reach the PBX")
	}
	vias := viaLines(got.b)
	if len(vias) != 2 || !strings.Contains(vias[0], "branch="+branchPrefix) {
		t.Fatalf("Vias at the PBX: %q", vias)
	}
	if n := h.p.fast[0].txs.Len(); n != 1 {
		t.Fatalf("%d fast-path transactions, want the INVITE's", n)
	}
	req, err := gosip.ParseMessage(append([]byte(nil), inv...))
	if err != nil {
		t.Fatal(err)
	}
	if want := branchPrefix + loopHash(req.(*gosip.Request)) + "-" + hopHash(req.Via()); !strings.Contains(vias[0], "branch="+want) {
		t.Errorf("our Via %q, want the sipgo path's branch %s (CANCEL after a restart)", vias[0], want)
	}
	port := strconv.Itoa(tr.addr().Port)
	if want := "SIP/2.0/UDP 127.0.0.99:5099;branch=z9hG4bK-fi1;rport=" + port + ";received=127.0.0.1"; vias[1] != want {
		t.Errorf("caller's Via %q, want %q", vias[1], want)
	}
	rr := rawHeader(got.b, "Record-Route")
	prefix := "<sip:" + h.addr.String() + ";sb=" + string(h.p.fast[0].fastToken(nil, []byte(id))) + ";lr;" + swapParam + "="
	if !strings.HasPrefix(rr, prefix) || !strings.HasSuffix(rr, ">") {
		t.Fatalf("Record-Route %q, want %q...>", rr, prefix)
	}
	swap, ok := decodeSwap(h.p.opts.RouteKey, id, strings.TrimSuffix(rr[len(prefix):], ">"))
	if want := (nameSwap{tag: "uac-" + id, original: "Trunk Caller", shown: "ACME: Jane"}); !ok || swap != want {
		t.Errorf("name swap in the Record-Route %+v (%v), want %+v", swap, ok, want)
	}
	for name, want := range map[string]string{"Max-Forwards": "69", "X-Priority": "1",
		"From":                "\"ACME: Jane\" <sip:+4930111222@" + tr.addr().String() + ">;tag=uac-" + id,
		"P-Asserted-Identity": "\"ACME: Jane\" <sip:+4930111222@" + tr.addr().String() + ">"} {
		if v := rawHeader(got.b, name); v != want {
			t.Errorf("%s at the PBX %q, want %q", name, v, want)
		}
	}
	if !bytes.HasSuffix(got.b, []byte(testSDP)) {
		t.Error("the SDP did not arrive unchanged")
	}
	for _, code := range []int{100, 180, 200} {
		res, ok := tr.waitFor(0, 5*time.Second, func(d datagram) bool { return rawCallID(d.b) == id && resStatus(d.b) == code })
		if !ok {
			t.Fatalf("no %d at the caller's source address", code)
		}
		if v := viaLines(res.b); len(v) != 1 || !strings.Contains(v[0], "branch=z9hG4bK-fi1") {
			t.Errorf("%d Vias %q, want the caller's only", code, v)
		}
		if f := rawHeader(res.b, "From"); f != "\"Trunk Caller\" <sip:+4930111222@"+tr.addr().String()+">;tag=uac-"+id {
			t.Errorf("%d From %q: not what the caller sent", code, f)
		}
	}
	ok200, _ := tr.waitFor(0, 5*time.Second, func(d datagram) bool { return rawCallID(d.b) == id && resStatus(d.b) == 200 })
	inDialog := func(method, cseq string) []byte {
		return []byte(method + " sip:pbx@" + pbx.addr().String() + " SIP/2.0\r\n" +
			"Via: SIP/2.0/UDP " + tr.addr().String() + ";branch=z9hG4bK-fi1" + method + "\r\n" +
			"Route: " + rawHeader(ok200.b, "Record-Route") + "\r\nMax-Forwards: 70\r\n" +
			"From: \"Trunk Caller\" <sip:+4930111222@" + tr.addr().String() + ">;tag=uac-" + id + "\r\n" +
			"To: " + rawHeader(ok200.b, "To") + "\r\nCall-ID: " + id + "\r\nCSeq: " + cseq + " " + method + "\r\nContent-Length: 0\r\n\r\n")
	}
	// ACK and BYE go the fast way too, with the name the PBX was shown.
	for _, method := range []string{"ACK", "BYE"} {
		tr.send(t, h.addr, inDialog(method, map[string]string{"ACK": "1", "BYE": "2"}[method]))
		got, ok := firstRequest(pbx, 0, id, method)
		if !ok {
			t.Fatalf("no %s at the PBX", method)
		}
		if v := viaLines(got.b); len(v) != 2 || !strings.Contains(v[0], "branch="+fastBranch) {
			t.Errorf("%s Vias %q, want ours from the fast path on top", method, v)
		}
		if f := rawHeader(got.b, "From"); !strings.HasPrefix(f, "\"ACME: Jane\" <sip:+4930111222@") {
			t.Errorf("%s From at the PBX %q, want the name it was shown", method, f)
		}
	}
	bye, ok := tr.waitFor(0, 5*time.Second, func(d datagram) bool {
		return rawCallID(d.b) == id && resStatus(d.b) == 200 && strings.HasSuffix(rawHeader(d.b, "CSeq"), "BYE")
	})
	if !ok {
		t.Fatal("no 200 for the BYE")
	}
	if f := rawHeader(bye.b, "From"); f != "\"Trunk Caller\" <sip:+4930111222@"+tr.addr().String()+">;tag=uac-"+id {
		t.Errorf("200 for the BYE: From %q, not what the caller sent", f)
	}
	tr.send(t, h.addr, inv) // a retransmission after the call
	time.Sleep(200 * time.Millisecond)
	n := 0
	for _, d := range pbx.since(0) {
		if rawCallID(d.b) == id && strings.HasPrefix(rawFirstLine(d.b), "INVITE ") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("the PBX got %d INVITEs, want 1", n)
	}
	h.waitRecord(t, id, cdr.Answered)
}

// TestFastPathBusy: the PBX's 486 is ACKed by the proxy with one Via (RFC
// 3261 §17.1.1.3), relayed to the caller, and ends the record.
func TestFastPathBusy(t *testing.T) {
	if !fastPathSupported {
		t.Skip("the fast path needs Linux")
	}
	h := startProxy(t, harnessOpts{fast: true})
	id := "busy-fast" // pbxAnswer: 486 for Call-IDs not starting with call-
	h.trunk.send(t, h.addr, rawInvite(h, id, "z9hG4bK-fb1"))
	res, ok := h.trunk.waitFor(0, 5*time.Second, func(d datagram) bool { return rawCallID(d.b) == id && resStatus(d.b) == 486 })
	if !ok {
		t.Fatal("no 486 at the caller")
	}
	if v := viaLines(res.b); len(v) != 1 {
		t.Errorf("486 Vias %q", v)
	}
	ack, ok := firstRequest(h.pbx, 0, id, "ACK")
	if !ok {
		t.Fatal("the PBX got no ACK for its 486")
	}
	inv, _ := firstRequest(h.pbx, 0, id, "INVITE")
	if v := viaLines(ack.b); len(v) != 1 || v[0] != viaLines(inv.b)[0] {
		t.Errorf("ACK Vias %q, want only the INVITE's top Via", v)
	}
	if to := rawHeader(ack.b, "To"); !strings.Contains(to, "tag=") {
		t.Errorf("ACK To %q lacks the 486's tag", to)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if r, ok := h.sink.get(id); ok && r.EndedAt != nil && r.SIPStatus == 486 {
			break
		}
		if time.Now().After(deadline) {
			r, _ := h.sink.get(id)
			t.Fatalf("record %+v, want ended with 486", r)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// pbxRings answers INVITE with 180 only, CANCEL with 200 and 487.
func pbxRings(p *udpPeer, d datagram) {
	req, ok := peerRequest(d)
	if !ok {
		return
	}
	reply := func(res *gosip.Response) { _, _ = p.conn.WriteToUDP([]byte(res.String()), d.from) }
	switch {
	case req.IsInvite():
		ring := gosip.NewResponseFromRequest(req, 180, "Ringing", nil)
		ring.To().Params.Add("tag", "ringer")
		reply(ring)
		p.mu.Lock()
		p.pending = req
		p.mu.Unlock()
	case req.IsCancel():
		reply(gosip.NewResponseFromRequest(req, 200, "OK", nil))
		p.mu.Lock()
		inv := p.pending
		p.mu.Unlock()
		if inv != nil {
			res := gosip.NewResponseFromRequest(inv, 487, "Request Terminated", nil)
			res.To().Params.Add("tag", "ringer")
			reply(res)
		}
	}
}

// TestFastPathCancel: the caller's CANCEL gets 200, goes on to the PBX
// with the INVITE's branch and one Via, the PBX's 487 reaches the caller
// and the record says no answer.
func TestFastPathCancel(t *testing.T) {
	if !fastPathSupported {
		t.Skip("the fast path needs Linux")
	}
	h := startProxy(t, harnessOpts{fast: true, pbx: pbxRings})
	id := "call-fast-cancel"
	tr := h.trunk
	inv := rawInvite(h, id, "z9hG4bK-fc1")
	tr.send(t, h.addr, inv)
	if _, ok := tr.waitFor(0, 5*time.Second, func(d datagram) bool { return rawCallID(d.b) == id && resStatus(d.b) == 180 }); !ok {
		t.Fatal("no 180")
	}
	head, _, _ := bytes.Cut(inv, []byte("\r\n\r\n"))
	cancel := strings.NewReplacer("INVITE sip:", "CANCEL sip:", "CSeq: 1 INVITE", "CSeq: 1 CANCEL",
		"Content-Type: application/sdp\r\n", "").Replace(string(head))
	cancel = cancel[:strings.Index(cancel, "Content-Length:")] + "Content-Length: 0\r\n\r\n"
	tr.send(t, h.addr, []byte(cancel))
	if _, ok := tr.waitFor(0, 5*time.Second, func(d datagram) bool {
		return rawCallID(d.b) == id && resStatus(d.b) == 200 && strings.HasSuffix(rawHeader(d.b, "CSeq"), "CANCEL")
	}); !ok {
		t.Fatal("no 200 for the CANCEL")
	}
	got, ok := firstRequest(h.pbx, 0, id, "CANCEL")
	if !ok {
		t.Fatal("the CANCEL did not reach the PBX")
	}
	fwd, _ := firstRequest(h.pbx, 0, id, "INVITE")
	if v := viaLines(got.b); len(v) != 1 || v[0] != viaLines(fwd.b)[0] {
		t.Errorf("CANCEL Vias %q, want the INVITE's top Via", v)
	}
	if _, ok := tr.waitFor(0, 5*time.Second, func(d datagram) bool { return rawCallID(d.b) == id && resStatus(d.b) == 487 }); !ok {
		t.Fatal("no 487 at the caller")
	}
	if _, ok := firstRequest(h.pbx, 0, id, "ACK"); !ok {
		t.Fatal("the PBX got no ACK for its 487")
	}
	h.waitRecord(t, id, cdr.NoAnswer)
}
