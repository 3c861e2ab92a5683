package sip

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
	"time"

	gosip "github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/cdr"
	"github.com/switchboard-sip/switchboard/metrics"
)

// messageShapes are ways real user agents write a message that the fast
// path's index does not take (or did not, as a missing Content-Length over
// UDP, RFC 3261 §18.3), each legal SIP: sipgo's parser reads them all.
var messageShapes = []struct {
	name   string
	mangle func([]byte) []byte
}{
	{"no-content-length", func(b []byte) []byte {
		return dropHeader(b, "Content-Length")
	}},
	{"folded", func(b []byte) []byte {
		return addHeaderLines(b, "Subject: a subject\r\n  folded on a second line")
	}},
	{"space-before-colon", func(b []byte) []byte {
		return bytes.Replace(b, []byte("\r\nCall-ID:"), []byte("\r\nCall-ID :"), 1)
	}},
	{"many-headers", func(b []byte) []byte {
		var pad []string
		for i := range 100 { // more than the index once held
			pad = append(pad, "X-Pad-"+strconv.Itoa(i)+": "+strconv.Itoa(i))
		}
		return addHeaderLines(b, strings.Join(pad, "\r\n"))
	}},
	{"spaces-around-separators", func(b []byte) []byte {
		return bytes.ReplaceAll(b, []byte(";tag="), []byte(" ; tag = "))
	}},
	{"lowercase-names", func(b []byte) []byte {
		for _, n := range []string{"Via:", "Call-ID:", "Content-Length:", "From:", "To:"} {
			b = bytes.ReplaceAll(b, []byte("\r\n"+n), []byte("\r\n"+strings.ToLower(n)))
		}
		return b
	}},
	{"compact-lowercase", func(b []byte) []byte {
		for _, r := range [][2]string{{"\r\nFrom:", "\r\nf:"}, {"\r\nTo:", "\r\nt:"}, {"\r\nCall-ID:", "\r\ni:"}, {"\r\nCSeq:", "\r\ncseq:"}} {
			b = bytes.Replace(b, []byte(r[0]), []byte(r[1]), 1)
		}
		return b
	}},
}

// dropHeader removes every line of a header from raw message bytes.
func dropHeader(b []byte, name string) []byte {
	head, body, _ := bytes.Cut(b, []byte("\r\n\r\n"))
	var out [][]byte
	for _, l := range bytes.Split(head, []byte("\r\n")) {
		n, _, _ := bytes.Cut(l, []byte(":"))
		if !strings.EqualFold(strings.TrimSpace(string(n)), name) {
			out = append(out, l)
		}
	}
	return append(append(bytes.Join(out, []byte("\r\n")), "\r\n\r\n"...), body...)
}

// addHeaderLines inserts lines after the start line.
func addHeaderLines(b []byte, lines string) []byte {
	i := bytes.Index(b, []byte("\r\n"))
	out := append([]byte(nil), b[:i+2]...)
	out = append(out, lines+"\r\n"...)
	return append(out, b[i+2:]...)
}

// shapedPBX answers as pbxTrying does, every response written in shape:
// INVITEs of "call-" calls are answered, others ring until cancelled.
func shapedPBX(mangle func([]byte) []byte) func(*udpPeer, datagram) {
	invites := map[string]*gosip.Request{}
	return func(p *udpPeer, d datagram) {
		req, ok := peerRequest(d)
		if !ok {
			return
		}
		send := func(res *gosip.Response) { _, _ = p.conn.WriteToUDP(mangle([]byte(res.String())), d.from) }
		id := req.CallID().Value()
		withTag := func(code int, reason string, body []byte) *gosip.Response {
			res := gosip.NewResponseFromRequest(req, code, reason, body)
			res.To().Params.Add("tag", "pbx-shaped")
			return res
		}
		switch {
		case req.IsInvite():
			invites[id] = req
			send(gosip.NewResponseFromRequest(req, gosip.StatusTrying, "Trying", nil))
			send(withTag(180, "Ringing", nil))
			if strings.HasPrefix(id, "call-") {
				time.Sleep(20 * time.Millisecond)
				res := withTag(200, "OK", []byte(testSDP))
				res.AppendHeader(gosip.NewHeader("Contact", "<sip:pbx@"+p.addr().String()+">"))
				res.AppendHeader(gosip.NewHeader("Content-Type", "application/sdp"))
				send(res)
			}
		case req.IsCancel():
			send(gosip.NewResponseFromRequest(req, 200, "OK", nil))
			if inv := invites[id]; inv != nil {
				res := gosip.NewResponseFromRequest(inv, 487, "Request Terminated", nil)
				res.To().Params.Add("tag", "pbx-shaped")
				send(res)
			}
		default:
			send(gosip.NewResponseFromRequest(req, 200, "OK", nil))
		}
	}
}

// TestTransactionMessagesInEveryShape: the callee's responses and the
// caller's CANCEL and ACK, written in every shape the fast path's index
// refuses, carry an answered and a cancelled call as plain ones would
// (records with their ring time and end reason), and on the fast path not
// one of them is passed to sipgo (SPEC §1: a transaction stays on its path).
func TestTransactionMessagesInEveryShape(t *testing.T) {
	onBothPaths(t, testTransactionMessagesInEveryShape)
}

func testTransactionMessagesInEveryShape(t *testing.T) {
	for _, shape := range messageShapes {
		t.Run(shape.name, func(t *testing.T) {
			h := startProxy(t, harnessOpts{pbx: shapedPBX(shape.mangle)})
			before := h.p.fellBack.total()
			answeredInShape(t, h, "call-"+shape.name)
			cancelledInShape(t, h, "ring-"+shape.name, shape.mangle)
			if pathIsFast(t) {
				if n := h.p.fellBack.total() - before; n != 0 {
					t.Errorf("%d messages of fast-path transactions went to sipgo: %v", n, fallbackCounts(h.p))
				}
			}
		})
	}
}

func fallbackCounts(p *Proxy) map[string]uint64 {
	m := map[string]uint64{}
	for r := fbUnindexed; r < nFallbacks; r++ {
		m[fallbackNames[r]] = p.fellBack.n(r)
	}
	return m
}

// answeredInShape: an answered call, ACKed and ended by the caller.
func answeredInShape(t *testing.T, h *proxyHarness, id string) {
	tr := h.trunk
	start := tr.count()
	dl := h.answerCall(t, id)
	if _, ok := tr.waitFor(start, time.Second, isRes(180, "INVITE", id)); !ok {
		t.Error("the callee's 180 did not reach the caller")
	}
	ack := rawReq{method: "ACK", ruri: dl.contact, via: []string{"SIP/2.0/UDP " + tr.addr().String() + ";branch=z9hG4bK-ack-" + id},
		route: dl.routes, from: dl.from, to: dl.to, callID: id, cseq: 1}
	tr.send(t, h.addr, ack.bytes())
	dl.send(t, h, "BYE", dl.contact, dl.routes, 2)
	if _, ok := tr.waitFor(start, 5*time.Second, isRes(200, "BYE", id)); !ok {
		t.Fatal("the callee's 200 for the BYE did not reach the caller")
	}
	for _, d := range tr.since(start) {
		if resStatus(d.b) == gosip.StatusTrying && rawHeader(d.b, "To") != "" && strings.Contains(rawHeader(d.b, "To", "t"), "pbx-shaped") {
			t.Errorf("the callee's 100 was relayed")
		}
		if resStatus(d.b) >= 200 && h.pbx.count() > 0 && strings.Contains(rawHeader(d.b, "From", "f"), "ACME") {
			t.Errorf("a response reached the caller with a changed From")
		}
	}
	h.waitRecord(t, id, cdr.Answered)
	if r, _ := h.sink.get(id); r.RingMS <= 0 || r.RingingAt == nil {
		t.Errorf("answered record: ring_ms %d, ringing_at %v; want the time it rang", r.RingMS, r.RingingAt)
	}
}

// cancelledInShape: the caller cancels while it rings; its CANCEL and its
// ACK for the 487 are written in shape too.
func cancelledInShape(t *testing.T, h *proxyHarness, id string, mangle func([]byte) []byte) {
	tr := h.trunk
	me := tr.addr().String()
	inv := callerInvite(tr, h.addr, id, "<sip:+4930111222@"+me+">;tag=c-"+id)
	start, pbx0 := tr.count(), h.pbx.count()
	tr.send(t, h.addr, inv.bytes())
	if _, ok := tr.waitFor(start, 5*time.Second, isRes(180, "INVITE", id)); !ok {
		t.Fatal("no 180")
	}
	time.Sleep(20 * time.Millisecond) // it rings a while
	cancel := inv
	cancel.method, cancel.body, cancel.extra = "CANCEL", "", nil
	tr.send(t, h.addr, mangle(cancel.bytes()))
	if _, ok := tr.waitFor(start, 5*time.Second, isRes(200, "CANCEL", id)); !ok {
		t.Error("the CANCEL got no 200")
	}
	if _, ok := h.pbx.waitFor(pbx0, 5*time.Second, isReq("CANCEL", id)); !ok {
		t.Error("the CANCEL did not reach the callee")
	}
	res, ok := tr.waitFor(start, 5*time.Second, isRes(487, "INVITE", id))
	if !ok {
		t.Fatal("no 487")
	}
	ack := inv
	ack.method, ack.body, ack.extra = "ACK", "", nil
	ack.to = parseRes(t, res.b).To().Value()
	tr.send(t, h.addr, mangle(ack.bytes()))
	h.waitRecord(t, id, cdr.NoAnswer)
	if r, _ := h.sink.get(id); r.RingMS <= 0 || r.EndReason != "cancelled" {
		t.Errorf("cancelled record: ring_ms %d, end_reason %q; want the time it rang and \"cancelled\"", r.RingMS, r.EndReason)
	}
	// The callee is not asked again: the INVITE went once.
	time.Sleep(fastT1 + 100*time.Millisecond)
	n := 0
	for _, d := range h.pbx.since(pbx0) {
		if isReq("INVITE", id)(d) {
			n++
		}
	}
	if n != 1 {
		t.Errorf("the callee got the INVITE %d times, want once", n)
	}
}

// TestFallbackMetric: /metrics counts what the fast path passes to sipgo
// by reason; an OPTIONS to switchboard is one (reason "request").
func TestFallbackMetric(t *testing.T) {
	if !fastPathSupported {
		t.Skip("the fast path needs Linux")
	}
	met := metrics.New()
	h := startProxy(t, harnessOpts{fast: true, options: func(o *Options) { o.Metrics = met }})
	read := func() float64 {
		fams, err := met.Registry().Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fams {
			if f.GetName() != "switchboard_sip_fallback_total" {
				continue
			}
			for _, m := range f.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "reason" && l.GetValue() == "request" {
						return m.GetCounter().GetValue()
					}
				}
			}
		}
		t.Fatal("switchboard_sip_fallback_total{reason=\"request\"} is not in the registry")
		return 0
	}
	before := read()
	tr := h.trunk
	opt := rawReq{method: "OPTIONS", ruri: "sip:" + h.addr.String(), via: []string{"SIP/2.0/UDP " + tr.addr().String() + ";branch=z9hG4bK-opt"},
		from: "<sip:probe@" + tr.addr().String() + ">;tag=p", to: "<sip:" + h.addr.String() + ">", callID: "opt-metric", cseq: 1}
	start := tr.count()
	tr.send(t, h.addr, opt.bytes())
	if _, ok := tr.waitFor(start, 5*time.Second, isRes(200, "OPTIONS", "opt-metric")); !ok {
		t.Fatal("the OPTIONS got no 200")
	}
	if got := read(); got != before+1 {
		t.Errorf("fallback{reason=request} went from %v to %v, want one more", before, got)
	}
}

// TestPlainCallsStayFast: the calls of a load test (SIPp's plain INVITE,
// ACK, BYE) pass nothing to sipgo: switchboard_sip_fallback_total stays 0.
func TestPlainCallsStayFast(t *testing.T) {
	if !fastPathSupported {
		t.Skip("the fast path needs Linux")
	}
	h := startProxy(t, harnessOpts{fast: true})
	for i := range 20 {
		id := "call-plain-" + strconv.Itoa(i)
		if err := h.call(t, id); err != nil {
			t.Fatal(err)
		}
		h.waitRecord(t, id, cdr.Answered)
	}
	if n := h.p.fellBack.total(); n != 0 {
		t.Errorf("%d datagrams of plain calls went to sipgo: %v", n, fallbackCounts(h.p))
	}
}
