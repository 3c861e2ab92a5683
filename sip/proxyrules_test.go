package sip

// One test per proxy rule (SPEC §1, "It follows RFC 3261 as
// a proxy"): each sends real SIP over loopback to a proxy started in the
// test and asserts on what the peers received.

import (
	"bufio"
	"github.com/switchboard-sip/switchboard/cdr"

	"context"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gosip "github.com/emiago/sipgo/sip"
	"go.uber.org/zap"

	"github.com/switchboard-sip/switchboard/callctl"
)

// rawReq is a request written by hand, so that a test controls every byte
// a peer sends.
type rawReq struct {
	method, ruri string
	via          []string // values, top first
	route        []string
	from, to     string
	callID       string
	cseq         int
	extra        []string
	body         string
}

func (m rawReq) bytes() []byte {
	var b strings.Builder
	b.WriteString(m.method + " " + m.ruri + " SIP/2.0\r\n")
	for _, v := range m.via {
		b.WriteString("Via: " + v + "\r\n")
	}
	for _, r := range m.route {
		b.WriteString("Route: " + r + "\r\n")
	}
	cseqMethod := m.method
	b.WriteString("Max-Forwards: 70\r\nFrom: " + m.from + "\r\nTo: " + m.to + "\r\nCall-ID: " + m.callID +
		"\r\nCSeq: " + strconv.Itoa(m.cseq) + " " + cseqMethod + "\r\n")
	for _, e := range m.extra {
		b.WriteString(e + "\r\n")
	}
	if m.body != "" {
		b.WriteString("Content-Type: application/sdp\r\n")
	}
	b.WriteString("Content-Length: " + strconv.Itoa(len(m.body)) + "\r\n\r\n" + m.body)
	return []byte(b.String())
}

// callerInvite is an initial INVITE from the trunk peer tr.
func callerInvite(tr *udpPeer, proxy *net.UDPAddr, id, from string) rawReq {
	me := tr.addr().String()
	return rawReq{method: "INVITE", ruri: "sip:+49301234560@" + proxy.String(),
		via:  []string{"SIP/2.0/UDP " + me + ";branch=z9hG4bK-" + id + ";rport"},
		from: from, to: "<sip:+49301234560@" + proxy.String() + ">", callID: id, cseq: 1,
		extra: []string{"Contact: <sip:caller@" + me + ">"}, body: testSDP}
}

func parseRawReq(t testing.TB, b []byte) *gosip.Request {
	t.Helper()
	m, err := gosip.ParseMessage(b)
	if err != nil {
		t.Fatalf("parse %q: %v", rawFirstLine(b), err)
	}
	r, ok := m.(*gosip.Request)
	if !ok {
		t.Fatalf("not a request: %q", rawFirstLine(b))
	}
	return r
}

func parseRes(t testing.TB, b []byte) *gosip.Response {
	t.Helper()
	m, err := gosip.ParseMessage(b)
	if err != nil {
		t.Fatalf("parse %q: %v", rawFirstLine(b), err)
	}
	r, ok := m.(*gosip.Response)
	if !ok {
		t.Fatalf("not a response: %q", rawFirstLine(b))
	}
	return r
}

// rawHeaders returns every value of a header in raw message bytes.
func rawHeaders(b []byte, name string) []string {
	head, _, _ := strings.Cut(string(b), "\r\n\r\n")
	var out []string
	for _, l := range strings.Split(head, "\r\n")[1:] {
		n, v, ok := strings.Cut(l, ":")
		if ok && strings.EqualFold(strings.TrimSpace(n), name) {
			out = append(out, strings.TrimSpace(v))
		}
	}
	return out
}

func isReq(method, id string) func(datagram) bool {
	return func(d datagram) bool {
		return rawCallID(d.b) == id && strings.HasPrefix(rawFirstLine(d.b), method+" ")
	}
}

func isRes(code int, method, id string) func(datagram) bool {
	return func(d datagram) bool {
		return rawCallID(d.b) == id && resStatus(d.b) == code && strings.HasSuffix(rawHeader(d.b, "CSeq"), method)
	}
}

func reply(p *udpPeer, to *net.UDPAddr, res *gosip.Response) {
	_, _ = p.conn.WriteToUDP([]byte(res.String()), to)
}

// ringingPBX rings on every INVITE and answers a CANCEL with 200 and the
// INVITE with 487; it never answers a call.
func ringingPBX() func(*udpPeer, datagram) {
	var mu sync.Mutex
	invites := map[string]*gosip.Request{}
	return func(p *udpPeer, d datagram) {
		req, ok := peerRequest(d)
		if !ok {
			return
		}
		id := req.CallID().Value()
		switch {
		case req.IsInvite():
			mu.Lock()
			invites[id] = req
			mu.Unlock()
			ring := gosip.NewResponseFromRequest(req, 180, "Ringing", nil)
			ring.To().Params.Add("tag", "pbx-ring")
			reply(p, d.from, ring)
		case req.IsCancel():
			reply(p, d.from, gosip.NewResponseFromRequest(req, 200, "OK", nil))
			mu.Lock()
			inv := invites[id]
			mu.Unlock()
			if inv != nil {
				res := gosip.NewResponseFromRequest(inv, 487, "Request Terminated", nil)
				res.To().Params.Add("tag", "pbx-ring")
				reply(p, d.from, res)
			}
		default:
			reply(p, d.from, gosip.NewResponseFromRequest(req, 200, "OK", nil))
		}
	}
}

// TestResponsesGoToSource: a caller whose Via names an address it does not
// receive on (behind NAT) gets every response at the address it sent from:
// switchboard's 100, the relayed 180 and 200, and a retransmitted 200
// (RFC 3261 §18.2.1, RFC 3581 §4).
func TestResponsesGoToSource(t *testing.T) { onBothPaths(t, testResponsesGoToSource) }

func testResponsesGoToSource(t *testing.T) {
	var mu sync.Mutex
	ok200 := map[string][]byte{}
	var okTo *net.UDPAddr
	h := startProxy(t, harnessOpts{log: testLog(), pbx: func(p *udpPeer, d datagram) {
		if !isReq("INVITE", rawCallID(d.b))(d) {
			pbxAnswer(p, d)
			return
		}
		req := parseRawReq(t, d.b)
		ring := gosip.NewResponseFromRequest(req, 180, "Ringing", nil)
		ring.To().Params.Add("tag", "pbx")
		reply(p, d.from, ring)
		time.Sleep(20 * time.Millisecond) // the 180 first, as a phone rings before it is answered
		res := gosip.NewResponseFromRequest(req, 200, "OK", []byte(testSDP))
		res.To().Params.Add("tag", "pbx")
		res.AppendHeader(gosip.NewHeader("Contact", "<sip:pbx@"+p.addr().String()+">"))
		res.AppendHeader(gosip.NewHeader("Content-Type", "application/sdp"))
		reply(p, d.from, res)
		mu.Lock()
		ok200[req.CallID().Value()], okTo = []byte(res.String()), d.from
		mu.Unlock()
	}})
	tr := h.trunk
	port := strconv.Itoa(tr.addr().Port)
	// want is the caller's Via as forwarded, the same on both paths: rport
	// filled in and received added whenever rport was asked for, even when
	// sent-by is the source (RFC 3581 §4); received alone when sent-by is
	// not the source (RFC 3261 §18.2.1).
	for _, c := range []struct{ id, via, want string }{
		{"call-nat", "SIP/2.0/UDP 127.0.0.99:5099;branch=z9hG4bK-nat;rport",
			"SIP/2.0/UDP 127.0.0.99:5099;branch=z9hG4bK-nat;rport=" + port + ";received=127.0.0.1"},
		{"call-via", "SIP/2.0/UDP 127.0.0.99:" + port + ";branch=z9hG4bK-via",
			"SIP/2.0/UDP 127.0.0.99:" + port + ";branch=z9hG4bK-via;received=127.0.0.1"},
		{"call-same", "SIP/2.0/UDP 127.0.0.1:" + port + ";branch=z9hG4bK-same;rport",
			"SIP/2.0/UDP 127.0.0.1:" + port + ";branch=z9hG4bK-same;rport=" + port + ";received=127.0.0.1"},
		{"call-plain", "SIP/2.0/UDP 127.0.0.1:" + port + ";branch=z9hG4bK-plain",
			"SIP/2.0/UDP 127.0.0.1:" + port + ";branch=z9hG4bK-plain"},
	} {
		t.Run(c.id, func(t *testing.T) {
			m := callerInvite(tr, h.addr, c.id, "<sip:+4930111222@127.0.0.99>;tag=nat")
			m.via = []string{c.via}
			start := tr.count()
			tr.send(t, h.addr, m.bytes())
			for _, code := range []int{100, 180, 200} {
				if _, ok := tr.waitFor(start, 5*time.Second, isRes(code, "INVITE", c.id)); !ok {
					t.Fatalf("the caller got no %d at the address it sent from", code)
				}
			}
			fwd, ok := h.pbx.waitFor(0, time.Second, isReq("INVITE", c.id))
			if !ok {
				t.Fatal("INVITE not forwarded")
			}
			vias := rawHeaders(fwd.b, "Via")
			if len(vias) != 2 {
				t.Fatalf("forwarded Vias %q, want ours and the caller's", vias)
			}
			if len(vias) == 2 && vias[1] != c.want {
				t.Errorf("the caller's Via went on as %q, want %q", vias[1], c.want)
			}
		})
	}
	// The PBX sends its 200 again (its ACK got lost): it reaches the caller too.
	mu.Lock()
	b, to := ok200["call-nat"], okTo
	mu.Unlock()
	start := tr.count()
	_, _ = h.pbx.conn.WriteToUDP(b, to)
	if _, ok := tr.waitFor(start, 5*time.Second, isRes(200, "INVITE", "call-nat")); !ok {
		t.Error("the retransmitted 200 did not reach the caller's source address")
	}
}

// prefixStage plays a hotline's caller-name lookup: the PBX sees "ACME: "
// before the caller's name.
type prefixStage struct{}

func (prefixStage) Name() string { return "prefix" }
func (prefixStage) Handle(_ context.Context, c *callctl.Call) callctl.Decision {
	c.DisplayName = "ACME: " + c.Caller.Name
	return callctl.Decision{}
}

// TestDisplayNamesKept: a call that no hotline renames keeps the display
// names it came with, UTF-8 and escaped quotes included, in both directions
// (SPEC §1: display names are never dropped).
func TestDisplayNamesKept(t *testing.T) { onBothPaths(t, testDisplayNamesKept) }

func testDisplayNamesKept(t *testing.T) {
	out := newPeer(t, func(p *udpPeer, d datagram) {
		if req, ok := peerRequest(d); ok {
			reply(p, d.from, gosip.NewResponseFromRequest(req, 486, "Busy Here", nil))
		}
	})
	h := startProxy(t, harnessOpts{routing: withOutbound(t, out)})
	const name = `"Jörg \"Jo\" Müller"`
	pbx := h.pbx.addr().String()
	m := rawReq{method: "INVITE", ruri: "sip:+4930999888@" + h.addr.String(),
		via:  []string{"SIP/2.0/UDP " + pbx + ";branch=z9hG4bK-out-names;rport"},
		from: name + " <sip:201@" + pbx + ">;tag=p1", to: "<sip:+4930999888@" + h.addr.String() + ">",
		callID: "out-names", cseq: 1, body: testSDP,
		extra: []string{"Contact: <sip:201@" + pbx + ">", `P-Asserted-Identity: "PBX Phone" <sip:+4930123456@` + pbx + ">"}}
	h.pbx.send(t, h.addr, m.bytes())
	d, ok := out.waitFor(0, 5*time.Second, isReq("INVITE", "out-names"))
	if !ok {
		t.Fatal("the outbound INVITE did not reach the trunk")
	}
	if f := rawHeader(d.b, "From"); !strings.HasPrefix(f, name+" <") {
		t.Errorf("outbound From %q, want the display name %s kept", f, name)
	}
	if pai := rawHeader(d.b, "P-Asserted-Identity"); !strings.HasPrefix(pai, `"PBX Phone" <`) {
		t.Errorf("outbound P-Asserted-Identity %q, want \"PBX Phone\" kept", pai)
	}
	if strings.Contains(string(d.b), `"" <`) {
		t.Errorf("an empty display name was written:\n%s", d.b)
	}

	in := callerInvite(h.trunk, h.addr, "in-names", `"Zoë \"Z\" Ångström" <sip:+4930111222@`+h.trunk.addr().String()+">;tag=t1")
	in.extra = append(in.extra, "P-Asserted-Identity: <sip:+4930111222@"+h.trunk.addr().String()+">")
	h.trunk.send(t, h.addr, in.bytes())
	d, ok = h.pbx.waitFor(0, 5*time.Second, isReq("INVITE", "in-names"))
	if !ok {
		t.Fatal("the inbound INVITE did not reach the PBX")
	}
	if f := rawHeader(d.b, "From"); f != in.from {
		t.Errorf("inbound From %q, want %q", f, in.from)
	}
	if pai := rawHeader(d.b, "P-Asserted-Identity"); strings.Contains(pai, `""`) {
		t.Errorf("inbound P-Asserted-Identity %q got an empty display name", pai)
	}
}

// withOutbound points the harness trunk's outbound target at a peer.
func withOutbound(t testing.TB, out *udpPeer) func(*Routing) {
	return func(r *Routing) {
		var u gosip.Uri
		if err := gosip.ParseUri("sip:"+out.addr().String(), &u); err != nil {
			t.Fatal(err)
		}
		r.Trunks[0].Outbound = &u
	}
}

// TestCallerSeesItsOwnFromTo: the PBX sees the caller-name prefix in From;
// everything that goes back to the caller (responses and the PBX's
// in-dialog requests) carries exactly the From and To the caller sent, and
// the caller's in-dialog requests reach the PBX with the prefixed name
// (SPEC §1 and §5, as Kamailio's uac restore mode).
func TestCallerSeesItsOwnFromTo(t *testing.T) { onBothPaths(t, testCallerSeesItsOwnFromTo) }

func testCallerSeesItsOwnFromTo(t *testing.T) {
	h := startProxy(t, harnessOpts{pipeline: append(identifyPipeline(t), prefixStage{})})
	tr := h.trunk
	me := tr.addr().String()
	const id = "call-restore"
	inv := callerInvite(tr, h.addr, id, `"Jane" <sip:+4930111222@`+me+">;tag=caller1")
	tr.send(t, h.addr, inv.bytes())
	okd, ok := tr.waitFor(0, 5*time.Second, isRes(200, "INVITE", id))
	if !ok {
		t.Fatal("no 200")
	}
	at, ok := h.pbx.waitFor(0, time.Second, isReq("INVITE", id))
	if !ok {
		t.Fatal("INVITE not at the PBX")
	}
	if f := rawHeader(at.b, "From"); !strings.HasPrefix(f, `"ACME: Jane" <`) {
		t.Fatalf("the PBX sees From %q, want the prefixed name", f)
	}
	for _, d := range tr.since(0) {
		if resStatus(d.b) == 0 || rawCallID(d.b) != id {
			continue
		}
		if f := rawHeader(d.b, "From"); f != inv.from {
			t.Errorf("%q to the caller has From %q, want %q", rawFirstLine(d.b), f, inv.from)
		}
		if to := rawHeader(d.b, "To"); !strings.HasPrefix(to, inv.to) {
			t.Errorf("%q to the caller has To %q, want %q", rawFirstLine(d.b), to, inv.to)
		}
	}
	res := parseRes(t, okd.b)
	var routes []string
	rrs := res.GetHeaders("Record-Route")
	for i := len(rrs) - 1; i >= 0; i-- {
		routes = append(routes, rrs[i].Value())
	}
	toWithTag := res.To().Value()
	// The caller's INFO reaches the PBX with the prefixed From.
	info := rawReq{method: "INFO", ruri: res.Contact().Address.String(), via: []string{"SIP/2.0/UDP " + me + ";branch=z9hG4bK-info1;rport"},
		route: routes, from: inv.from, to: toWithTag, callID: id, cseq: 2}
	start := tr.count()
	tr.send(t, h.addr, info.bytes())
	if d, ok := h.pbx.waitFor(0, 5*time.Second, isReq("INFO", id)); !ok {
		t.Error("INFO did not reach the PBX")
	} else if f := rawHeader(d.b, "From"); !strings.HasPrefix(f, `"ACME: Jane" <`) {
		t.Errorf("the PBX sees the caller's INFO with From %q, want the prefixed name", f)
	}
	if d, ok := tr.waitFor(start, 5*time.Second, isRes(200, "INFO", id)); !ok {
		t.Error("no 200 for INFO")
	} else if f := rawHeader(d.b, "From"); f != inv.from {
		t.Errorf("200 for INFO has From %q, want %q", f, inv.from)
	}
	// The PBX hangs up: its BYE names the caller as it saw it.
	fwdInv := parseRawReq(t, at.b)
	var pbxRoutes []string
	for _, rr := range fwdInv.GetHeaders("Record-Route") {
		pbxRoutes = append(pbxRoutes, rr.Value())
	}
	pbx := h.pbx.addr().String()
	bye := rawReq{method: "BYE", ruri: "sip:caller@" + me, via: []string{"SIP/2.0/UDP " + pbx + ";branch=z9hG4bK-pbxbye"},
		route: pbxRoutes, from: toWithTag, to: fwdInv.From().Value(), callID: id, cseq: 1}
	start = tr.count()
	h.pbx.send(t, h.addr, bye.bytes())
	d, ok := tr.waitFor(start, 5*time.Second, isReq("BYE", id))
	if !ok {
		t.Fatal("the PBX's BYE did not reach the caller")
	}
	if to := rawHeader(d.b, "To"); to != inv.from {
		t.Errorf("the caller gets the PBX's BYE with To %q, want its own From %q", to, inv.from)
	}
	pbx0 := h.pbx.count()
	byeReq := parseRawReq(t, d.b)
	tr.send(t, h.addr, []byte(gosip.NewResponseFromRequest(byeReq, 200, "OK", nil).String()))
	if d, ok := h.pbx.waitFor(pbx0, 5*time.Second, isRes(200, "BYE", id)); !ok {
		t.Error("the 200 for BYE did not reach the PBX")
	} else if to := rawHeader(d.b, "To"); to != fwdInv.From().Value() {
		t.Errorf("the PBX gets the 200 for its BYE with To %q, want %q", to, fwdInv.From().Value())
	}
}

// TestOutOfDialogByDirection: MESSAGE and OPTIONS addressed to switchboard
// go on by direction (PBX to trunk, trunk to PBX), never to switchboard
// itself; OPTIONS to switchboard with no user is a keep-alive it answers.
func TestOutOfDialogByDirection(t *testing.T) { onBothPaths(t, testOutOfDialogByDirection) }

func testOutOfDialogByDirection(t *testing.T) {
	out := newPeer(t, func(p *udpPeer, d datagram) {
		if req, ok := peerRequest(d); ok {
			reply(p, d.from, gosip.NewResponseFromRequest(req, 202, "Accepted", nil))
		}
	})
	h := startProxy(t, harnessOpts{routing: withOutbound(t, out)})
	send := func(from *udpPeer, method, ruri, id string) {
		me := from.addr().String()
		m := rawReq{method: method, ruri: ruri, via: []string{"SIP/2.0/UDP " + me + ";branch=z9hG4bK-" + id + ";rport"},
			from: "<sip:201@" + me + ">;tag=" + id, to: "<" + ruri + ">", callID: id, cseq: 1}
		from.send(t, h.addr, m.bytes())
	}
	self := h.addr.String()
	for _, c := range []struct {
		from     *udpPeer
		method   string
		ruri, id string
		to       *udpPeer
		code     int
	}{
		{h.pbx, "MESSAGE", "sip:+4930999888@" + self, "msg-out", out, 202},
		{h.pbx, "OPTIONS", "sip:+4930999888@" + self, "opt-out", out, 202},
		{h.trunk, "MESSAGE", "sip:201@" + self, "msg-in", h.pbx, 200},
		{h.pbx, "OPTIONS", "sip:" + self, "opt-self", nil, 200},
	} {
		t.Run(c.id, func(t *testing.T) {
			start := c.from.count()
			send(c.from, c.method, c.ruri, c.id)
			if d, ok := c.from.waitFor(start, 5*time.Second, func(d datagram) bool {
				return rawCallID(d.b) == c.id && resStatus(d.b) >= 200
			}); !ok || resStatus(d.b) != c.code {
				t.Errorf("%s %s answered %d, want %d", c.method, c.ruri, resStatus(d.b), c.code)
			}
			if c.to == nil {
				return
			}
			d, ok := c.to.waitFor(0, time.Second, isReq(c.method, c.id))
			if !ok {
				t.Fatalf("%s %s did not reach %s", c.method, c.ruri, c.to.addr())
			}
			r := parseRawReq(t, d.b)
			if r.Recipient.User != strings.TrimPrefix(strings.Split(c.ruri, "@")[0], "sip:") || r.Recipient.Port != c.to.addr().Port {
				t.Errorf("Request-URI %s, want the user of %s at %s", r.Recipient.String(), c.ruri, c.to.addr())
			}
		})
	}
}

// TestCancelAfterRestart: switchboard restarts while a call rings. The
// caller's CANCEL matches no transaction and is forwarded statelessly
// (RFC 3261 §16.10) with the branch of the forwarded INVITE, the PBX's 487
// reaches the caller, the caller's ACK reaches the PBX with one Via, and
// the record ends no_answer.
func TestCancelAfterRestart(t *testing.T) { onBothPaths(t, testCancelAfterRestart) }

func testCancelAfterRestart(t *testing.T) {
	h := startProxy(t, harnessOpts{pbx: ringingPBX(), pipeline: append(identifyPipeline(t), prefixStage{})})
	tr := h.trunk
	const id = "ring-restart"
	inv := callerInvite(tr, h.addr, id, `"Jane" <sip:+4930111222@`+tr.addr().String()+">;tag=c1")
	tr.send(t, h.addr, inv.bytes())
	if _, ok := tr.waitFor(0, 5*time.Second, isRes(180, "INVITE", id)); !ok {
		t.Fatal("no 180")
	}
	d, _ := h.pbx.waitFor(0, time.Second, isReq("INVITE", id))
	fwd := parseRawReq(t, d.b)
	branch, _ := fwd.Via().Params.Get("branch")
	time.Sleep(20 * time.Millisecond) // it rings a while

	h.restart(t)
	cancel := inv
	cancel.method, cancel.body, cancel.extra = "CANCEL", "", nil
	start := tr.count()
	tr.send(t, h.addr, cancel.bytes())
	c, ok := h.pbx.waitFor(0, 5*time.Second, isReq("CANCEL", id))
	if !ok {
		t.Fatal("the CANCEL did not reach the PBX")
	}
	cr := parseRawReq(t, c.b)
	if b, _ := cr.Via().Params.Get("branch"); b != branch || cr.Recipient.String() != fwd.Recipient.String() {
		t.Errorf("CANCEL %s with branch %s, want %s with the INVITE's branch %s", cr.Recipient.String(), b, fwd.Recipient.String(), branch)
	}
	if _, ok := tr.waitFor(start, 5*time.Second, isRes(200, "CANCEL", id)); !ok {
		t.Error("no 200 for the CANCEL")
	}
	fin, ok := tr.waitFor(start, 5*time.Second, isRes(487, "INVITE", id))
	if !ok {
		t.Fatal("the 487 did not reach the caller")
	}
	if from := rawHeader(fin.b, "From"); from != inv.from {
		t.Errorf("after a restart the 487 reaches the caller with From %q, want its own %q", from, inv.from)
	}
	ack := inv
	ack.method, ack.body, ack.extra = "ACK", "", nil
	ack.to = rawHeader(fin.b, "To")
	tr.send(t, h.addr, ack.bytes())
	a, ok := h.pbx.waitFor(0, 5*time.Second, isReq("ACK", id))
	if !ok {
		t.Fatal("the caller's ACK for 487 did not reach the PBX")
	}
	checkNon2xxAck(t, a.b, branch)
	h.waitRecord(t, id, cdr.NoAnswer)
	if r, _ := h.sink.get(id); r.EndReason != "cancelled" || r.RingingAt == nil || r.RingMS <= 0 {
		t.Errorf("record after a restart: end_reason %q, ringing_at %v, ring_ms %d; want a cancelled call that rang",
			r.EndReason, r.RingingAt, r.RingMS)
	}
}

// checkNon2xxAck: an ACK for a non-2xx final carries one Via, the top Via
// of the INVITE (RFC 3261 §17.1.1.3).
func checkNon2xxAck(t *testing.T, b []byte, branch string) {
	t.Helper()
	vias := rawHeaders(b, "Via")
	if len(vias) != 1 || !strings.Contains(vias[0], "branch="+branch) {
		t.Errorf("ACK Vias %q, want one with branch %s", vias, branch)
	}
}

// TestAckForNon2xx: switchboard's own ACK for a 486 and for a 487 (after
// CANCEL) carries only the INVITE's top Via.
func TestAckForNon2xx(t *testing.T) { onBothPaths(t, testAckForNon2xx) }

func testAckForNon2xx(t *testing.T) {
	for _, c := range []struct {
		name   string
		pbx    func(*udpPeer, datagram)
		cancel bool
	}{{"486", pbxAnswer, false}, {"487", ringingPBX(), true}} {
		t.Run(c.name, func(t *testing.T) {
			h := startProxy(t, harnessOpts{pbx: c.pbx})
			tr := h.trunk
			id := "ack-" + c.name
			inv := callerInvite(tr, h.addr, id, "<sip:+4930111222@"+tr.addr().String()+">;tag=c1")
			tr.send(t, h.addr, inv.bytes())
			if c.cancel {
				if _, ok := tr.waitFor(0, 5*time.Second, isRes(180, "INVITE", id)); !ok {
					t.Fatal("no 180")
				}
				cancel := inv
				cancel.method, cancel.body, cancel.extra = "CANCEL", "", nil
				tr.send(t, h.addr, cancel.bytes())
			}
			d, ok := h.pbx.waitFor(0, 5*time.Second, isReq("INVITE", id))
			if !ok {
				t.Fatal("INVITE not forwarded")
			}
			branch, _ := parseRawReq(t, d.b).Via().Params.Get("branch")
			a, ok := h.pbx.waitFor(0, 5*time.Second, isReq("ACK", id))
			if !ok {
				t.Fatal("no ACK reached the PBX")
			}
			checkNon2xxAck(t, a.b, branch)
		})
	}
}

// TestTimerC: an INVITE that rings past Timer C is cancelled downstream,
// the caller gets a final response and the record ends no_answer
// (RFC 3261 §16.8).
func TestTimerC(t *testing.T) { onBothPaths(t, testTimerC) }

func testTimerC(t *testing.T) {
	h := startProxy(t, harnessOpts{pbx: ringingPBX(), options: func(o *Options) { o.TimerC = 500 * time.Millisecond }})
	tr := h.trunk
	const id = "ring-forever"
	tr.send(t, h.addr, callerInvite(tr, h.addr, id, "<sip:+4930111222@"+tr.addr().String()+">;tag=c1").bytes())
	if _, ok := h.pbx.waitFor(0, 5*time.Second, isReq("CANCEL", id)); !ok {
		t.Fatal("Timer C did not cancel the call at the PBX")
	}
	if _, ok := tr.waitFor(0, 5*time.Second, func(d datagram) bool {
		return rawCallID(d.b) == id && resStatus(d.b) >= 400
	}); !ok {
		t.Error("the caller got no final response")
	}
	h.waitRecord(t, id, cdr.NoAnswer)
}

// TestInviteTimeout: a PBX that never answers costs the caller
// sip.invite_timeout, not 32 s.
func TestInviteTimeout(t *testing.T) { onBothPaths(t, testInviteTimeout) }

func testInviteTimeout(t *testing.T) {
	h := startProxy(t, harnessOpts{pbx: func(*udpPeer, datagram) {}, options: func(o *Options) { o.InviteTimeout = 300 * time.Millisecond }})
	tr := h.trunk
	const id = "call-silent"
	begin := time.Now()
	tr.send(t, h.addr, callerInvite(tr, h.addr, id, "<sip:+4930111222@"+tr.addr().String()+">;tag=c1").bytes())
	d, ok := tr.waitFor(0, 5*time.Second, func(d datagram) bool { return rawCallID(d.b) == id && resStatus(d.b) >= 300 })
	if !ok {
		t.Fatal("no final response within 5 s")
	}
	if c := resStatus(d.b); c != 408 {
		t.Errorf("answered %d, want 408", c)
	}
	t.Logf("final response after %s", time.Since(begin).Round(time.Millisecond))
	h.waitRecord(t, id, cdr.Failed)
}

// fallbackStage gives every call a fallback target, as a hotline with
// `fallback` does.
type fallbackStage struct{ uri string }

func (fallbackStage) Name() string { return "fallback" }
func (s fallbackStage) Handle(_ context.Context, c *callctl.Call) callctl.Decision {
	c.Fallback = s.uri
	return callctl.Decision{}
}

// TestKeepaliveDownTarget: a PBX that stopped answering OPTIONS is marked
// down; new calls get 503 with Retry-After within a second, or go to the
// hotline's fallback when it has one; once it answers again, calls go to it.
func TestKeepaliveDownTarget(t *testing.T) { onBothPaths(t, testKeepaliveDownTarget) }

func testKeepaliveDownTarget(t *testing.T) {
	var alive atomic.Bool
	alive.Store(true)
	pbx := func(p *udpPeer, d datagram) {
		if alive.Load() {
			pbxAnswer(p, d)
		}
	}
	fallback := newPeer(t, pbxAnswer)
	keep := func(o *Options) { o.Keepalive = 100 * time.Millisecond }
	for _, c := range []struct {
		name     string
		pipeline callctl.Pipeline
	}{{"503", nil}, {"fallback", append(identifyPipeline(t), fallbackStage{"sip:" + fallback.addr().String()})}} {
		t.Run(c.name, func(t *testing.T) {
			alive.Store(true)
			h := startProxy(t, harnessOpts{pbx: pbx, pipeline: c.pipeline, options: keep})
			if _, ok := h.pbx.waitFor(0, 5*time.Second, func(d datagram) bool { return strings.HasPrefix(rawFirstLine(d.b), "OPTIONS ") }); !ok {
				t.Fatal("the PBX was never probed")
			}
			waitTarget(t, h.p, "pbx", true)
			alive.Store(false)
			waitTarget(t, h.p, "pbx", false)
			tr := h.trunk
			id := "call-down-" + c.name
			begin := time.Now()
			tr.send(t, h.addr, callerInvite(tr, h.addr, id, "<sip:+4930111222@"+tr.addr().String()+">;tag=c1").bytes())
			d, ok := tr.waitFor(0, 5*time.Second, func(d datagram) bool { return rawCallID(d.b) == id && resStatus(d.b) >= 200 })
			if !ok {
				t.Fatal("no final response")
			}
			took := time.Since(begin)
			switch c.name {
			case "503":
				if resStatus(d.b) != 503 || rawHeader(d.b, "Retry-After") == "" || took > time.Second {
					t.Errorf("answered %d (Retry-After %q) after %s, want 503 with Retry-After within 1 s",
						resStatus(d.b), rawHeader(d.b, "Retry-After"), took)
				}
			case "fallback":
				if _, ok := fallback.waitFor(0, time.Second, isReq("INVITE", id)); !ok || resStatus(d.b) != 200 {
					t.Errorf("answered %d; the call did not go to the fallback", resStatus(d.b))
				}
			}
			alive.Store(true)
			waitTarget(t, h.p, "pbx", true)
			if err := h.call(t, "call-up-again-"+c.name); err != nil {
				t.Errorf("after the PBX came back: %v", err)
			}
		})
	}
}

// waitTarget waits until the prober reports the named target up or down.
func waitTarget(t *testing.T, p *Proxy, name string, up bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for _, s := range p.Targets() {
			if s.Name == name && s.Up == up {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("target %s never became up=%v: %+v", name, up, p.Targets())
}

func testLog() *zap.Logger {
	if os.Getenv("SWITCHBOARD_TEST_LOG") != "" {
		return zap.Must(zap.NewDevelopment())
	}
	return nil
}

// tcpPeer is a SIP user agent behind NAT over TCP: it opened one
// connection to the proxy and accepts none.
type tcpPeer struct {
	conn net.Conn
	msgs chan []byte
}

func dialTCPPeer(t *testing.T, addr string) *tcpPeer {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpPeer{conn: c, msgs: make(chan []byte, 64)}
	go func() {
		r := bufio.NewReader(c)
		for {
			var head strings.Builder
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					close(p.msgs)
					return
				}
				head.WriteString(l)
				if l == "\r\n" {
					break
				}
			}
			n, _ := strconv.Atoi(rawHeader([]byte(head.String()), "Content-Length", "l"))
			body := make([]byte, n)
			if _, err := io.ReadFull(r, body); err != nil {
				close(p.msgs)
				return
			}
			p.msgs <- append([]byte(head.String()), body...)
		}
	}()
	t.Cleanup(func() { c.Close() })
	return p
}

func (p *tcpPeer) waitFor(t *testing.T, what string, match func([]byte) bool) []byte {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case m, ok := <-p.msgs:
			if !ok {
				t.Fatal("connection closed")
			}
			if match(m) {
				return m
			}
		case <-deadline:
			t.Fatalf("no %s over the caller's connection", what)
		}
	}
}

// TestTCPConnectionReuse: a caller behind NAT over TCP (its Via and
// Contact name a port nobody listens on) gets the PBX's BYE over the
// connection it opened (SPEC §1).
func TestTCPConnectionReuse(t *testing.T) { onBothPaths(t, testTCPConnectionReuse) }

func testTCPConnectionReuse(t *testing.T) {
	h := startProxy(t, harnessOpts{options: func(o *Options) {
		o.Listen = append(o.Listen, Listen{Network: "tcp", Host: "127.0.0.1", Port: 0})
	}})
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ghost := closed.Addr().String() // where the caller claims to be: nobody accepts there
	closed.Close()
	c := dialTCPPeer(t, "127.0.0.1:"+strconv.Itoa(h.p.ports["tcp"]))
	const id = "call-tcp-nat"
	proxy := "127.0.0.1:" + strconv.Itoa(h.p.ports["tcp"])
	inv := rawReq{method: "INVITE", ruri: "sip:+49301234560@" + proxy + ";transport=tcp",
		via:  []string{"SIP/2.0/TCP " + ghost + ";branch=z9hG4bK-tcpnat;rport"},
		from: "<sip:+4930111222@" + ghost + ">;tag=tc1", to: "<sip:+49301234560@" + proxy + ">", callID: id, cseq: 1,
		extra: []string{"Contact: <sip:caller@" + ghost + ";transport=tcp>"}, body: testSDP}
	if _, err := c.conn.Write(inv.bytes()); err != nil {
		t.Fatal(err)
	}
	c.waitFor(t, "200 for the INVITE", func(m []byte) bool { return resStatus(m) == 200 })
	d, ok := h.pbx.waitFor(0, time.Second, isReq("INVITE", id))
	if !ok {
		t.Fatal("INVITE not at the PBX")
	}
	fwd := parseRawReq(t, d.b)
	var routes []string
	for _, rr := range fwd.GetHeaders("Record-Route") {
		routes = append(routes, rr.Value())
	}
	pbx := h.pbx.addr().String()
	bye := rawReq{method: "BYE", ruri: "sip:caller@" + ghost + ";transport=tcp", via: []string{"SIP/2.0/UDP " + pbx + ";branch=z9hG4bK-tcpbye"},
		route: routes, from: "<sip:+49301234560@" + proxy + ">;tag=pbx12", to: fwd.From().Value(), callID: id, cseq: 1}
	h.pbx.send(t, h.addr, bye.bytes())
	b := c.waitFor(t, "BYE from the PBX", func(m []byte) bool { return strings.HasPrefix(string(m), "BYE ") })
	req := parseRawReq(t, b)
	if _, err := c.conn.Write([]byte(gosip.NewResponseFromRequest(req, 200, "OK", nil).String())); err != nil {
		t.Fatal(err)
	}
	if _, ok := h.pbx.waitFor(0, 5*time.Second, isRes(200, "BYE", id)); !ok {
		t.Error("the caller's 200 for BYE did not reach the PBX")
	}
}

// TestRestoreAfterRestart: the caller-name change travels signed in the
// Record-Route, so a proxy restarted mid-call still gives the caller its
// own name back in the PBX's BYE, and a forged change is ignored.
func TestRestoreAfterRestart(t *testing.T) { onBothPaths(t, testRestoreAfterRestart) }

func testRestoreAfterRestart(t *testing.T) {
	h := startProxy(t, harnessOpts{pipeline: append(identifyPipeline(t), prefixStage{})})
	tr := h.trunk
	me := tr.addr().String()
	const id = "call-restore-restart"
	inv := callerInvite(tr, h.addr, id, `"Jane" <sip:+4930111222@`+me+">;tag=caller2")
	tr.send(t, h.addr, inv.bytes())
	okd, ok := tr.waitFor(0, 5*time.Second, isRes(200, "INVITE", id))
	if !ok {
		t.Fatal("no 200")
	}
	at, _ := h.pbx.waitFor(0, time.Second, isReq("INVITE", id))
	fwdInv := parseRawReq(t, at.b)
	var routes []string
	for _, rr := range fwdInv.GetHeaders("Record-Route") {
		routes = append(routes, rr.Value())
	}
	h.restart(t)
	pbx := h.pbx.addr().String()
	bye := rawReq{method: "BYE", ruri: "sip:caller@" + me, via: []string{"SIP/2.0/UDP " + pbx + ";branch=z9hG4bK-pbxbye2"},
		route: routes, from: parseRes(t, okd.b).To().Value(), to: fwdInv.From().Value(), callID: id, cseq: 1}
	start := tr.count()
	h.pbx.send(t, h.addr, bye.bytes())
	d, ok := tr.waitFor(start, 5*time.Second, isReq("BYE", id))
	if !ok {
		t.Fatal("the PBX's BYE did not reach the caller after the restart")
	}
	if to := rawHeader(d.b, "To"); to != inv.from {
		t.Errorf("after a restart the caller gets To %q, want its own From %q", to, inv.from)
	}
	// A Route whose name change was tampered with fails its signature.
	forged := strings.Replace(routes[0], "sbn=", "sbn=A", 1)
	if _, ok := decodeSwap(h.routeKey, id, strings.TrimSuffix(strings.SplitN(strings.SplitN(forged, "sbn=", 2)[1], ";", 2)[0], ">")); ok {
		t.Error("a tampered name change was accepted")
	}
}
