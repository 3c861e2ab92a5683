package sip

import (
	"bufio"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/switchboard-sip/switchboard/metrics"
)

// strangerReqs are what a scanner sends: an INVITE, a REGISTER and an
// OPTIONS ping to switchboard itself.
func strangerReqs(from *udpPeer, proxy *net.UDPAddr, id string) [][]byte {
	me := from.addr().String()
	mk := func(method, ruri, n string) []byte {
		m := rawReq{method: method, ruri: ruri, via: []string{"SIP/2.0/UDP " + me + ";branch=z9hG4bK-" + id + n},
			from: "<sip:100@" + me + ">;tag=s" + n, to: "<sip:100@" + proxy.String() + ">", callID: id + "-" + n, cseq: 1,
			extra: []string{"User-Agent: friendly-scanner"}}
		return m.bytes()
	}
	return [][]byte{
		mk("INVITE", "sip:0049301234560@"+proxy.String(), "inv"),
		mk("REGISTER", "sip:"+proxy.String(), "reg"),
		mk("OPTIONS", "sip:"+proxy.String(), "opt"),
	}
}

// optionsFrom is an OPTIONS ping to switchboard itself.
func optionsFrom(p *udpPeer, proxy *net.UDPAddr, id string) []byte {
	me := p.addr().String()
	return rawReq{method: "OPTIONS", ruri: "sip:" + proxy.String(), via: []string{"SIP/2.0/UDP " + me + ";branch=z9hG4bK-" + id},
		from: "<sip:ping@" + me + ">;tag=" + id, to: "<sip:" + proxy.String() + ">", callID: id, cseq: 1}.bytes()
}

// TestStrangersDropped: requests from an address that is no trunk and not
// the PBX get no answer and never reach the PBX, on the fast path and the
// sipgo path alike, and are counted; the trunk's own INVITE and OPTIONS,
// sent after them on the same socket, still pass (SPEC §1).
func TestStrangersDropped(t *testing.T) {
	for _, fast := range []bool{false, true} {
		t.Run("fast="+strconv.FormatBool(fast), func(t *testing.T) {
			met := metrics.New()
			h := startProxy(t, harnessOpts{fast: fast, options: func(o *Options) { o.Metrics = met }})
			scanner := newLoopbackPeer(t, "127.0.0.2")
			for _, b := range strangerReqs(scanner, h.addr, "scan") {
				scanner.send(t, h.addr, b)
			}
			// A BYE with a forged route mark is parsed, its signature
			// checked, and dropped all the same.
			me := scanner.addr().String()
			scanner.send(t, h.addr, rawReq{method: "BYE", ruri: "sip:x@" + h.addr.String(), via: []string{"SIP/2.0/UDP " + me + ";branch=z9hG4bK-forged"},
				route: []string{"<sip:" + h.addr.String() + ";sb=0123456789abcdef;lr>"},
				from:  "<sip:a@" + me + ">;tag=f", to: "<sip:x@" + h.addr.String() + ">;tag=t", callID: "scan-forged", cseq: 1}.bytes())
			// Positive control: the trunk's ping and call, sent after.
			h.trunk.send(t, h.addr, optionsFrom(h.trunk, h.addr, "trunk-ping"))
			if _, ok := h.trunk.waitFor(0, 5*time.Second, isRes(200, "OPTIONS", "trunk-ping")); !ok {
				t.Fatal("the trunk's OPTIONS got no 200")
			}
			const id = "trunk-call"
			h.trunk.send(t, h.addr, callerInvite(h.trunk, h.addr, id, "<sip:+4930111222@"+h.trunk.addr().String()+">;tag=c1").bytes())
			if _, ok := h.pbx.waitFor(0, 5*time.Second, isReq("INVITE", id)); !ok {
				t.Fatal("the trunk's INVITE did not reach the PBX")
			}
			if d, ok := scanner.waitFor(0, 200*time.Millisecond, func(datagram) bool { return true }); ok {
				t.Errorf("the stranger got an answer: %q", rawFirstLine(d.b))
			}
			if _, ok := h.pbx.waitFor(0, 10*time.Millisecond, func(d datagram) bool { return strings.HasPrefix(rawCallID(d.b), "scan") }); ok {
				t.Error("a stranger's request reached the PBX")
			}
			var m dto.Metric
			if err := h.p.gate.dropped.WithLabelValues(dropStranger).Write(&m); err != nil {
				t.Fatal(err)
			}
			if n := m.GetCounter().GetValue(); n != 4 {
				t.Errorf("switchboard_sip_dropped_total{reason=stranger} = %v, want 4", n)
			}
		})
	}
}

// TestStrangersRejected: with sip.strangers: reject a stranger gets 403,
// but at most stranger_replies a second; the rest are dropped.
func TestStrangersRejected(t *testing.T) {
	for _, fast := range []bool{false, true} {
		t.Run("fast="+strconv.FormatBool(fast), func(t *testing.T) {
			h := startProxy(t, harnessOpts{fast: fast, routing: func(r *Routing) {
				r.RejectStrangers, r.StrangerReplies = true, 2
			}})
			scanner := newLoopbackPeer(t, "127.0.0.2")
			for i := range 5 {
				scanner.send(t, h.addr, optionsFrom(scanner, h.addr, "scan-"+strconv.Itoa(i)))
			}
			h.trunk.send(t, h.addr, optionsFrom(h.trunk, h.addr, "trunk-ping"))
			if _, ok := h.trunk.waitFor(0, 5*time.Second, isRes(200, "OPTIONS", "trunk-ping")); !ok {
				t.Fatal("the trunk's OPTIONS got no 200")
			}
			time.Sleep(100 * time.Millisecond) // nothing to await: more 403s must not come
			got := scanner.since(0)
			if len(got) != 2 {
				t.Fatalf("the stranger got %d answers, want 2 (stranger_replies)", len(got))
			}
			for _, d := range got {
				if resStatus(d.b) != 403 {
					t.Errorf("answered %q, want 403", rawFirstLine(d.b))
				}
			}
		})
	}
}

// tcpSIP is a SIP client over TCP from a chosen loopback address.
type tcpSIP struct {
	c net.Conn
	r *bufio.Reader
}

func dialTCP(t *testing.T, from string, to int) *tcpSIP {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 2 * time.Second}
	c, err := d.Dial("tcp", "127.0.0.1:"+strconv.Itoa(to))
	if err != nil {
		t.Skipf("cannot dial from %s: %v", from, err)
	}
	t.Cleanup(func() { c.Close() })
	return &tcpSIP{c: c, r: bufio.NewReader(c)}
}

// options sends an OPTIONS ping to the proxy and returns the status of
// the answer, 0 when none came within wait.
func (s *tcpSIP) options(t *testing.T, proxy, id string, wait time.Duration) int {
	return s.request(t, "OPTIONS", proxy, id, wait)
}

// request sends a request for the proxy itself (an INVITE with no SDP for
// a scanner's probe) and returns the status of the first answer.
func (s *tcpSIP) request(t *testing.T, method, proxy, id string, wait time.Duration) int {
	t.Helper()
	me := s.c.LocalAddr().String()
	m := rawReq{method: method, ruri: "sip:" + proxy + ";transport=tcp", via: []string{"SIP/2.0/TCP " + me + ";branch=z9hG4bK-" + id},
		from: "<sip:ping@" + me + ">;tag=" + id, to: "<sip:" + proxy + ">", callID: id, cseq: 1}
	if _, err := s.c.Write(m.bytes()); err != nil {
		t.Fatal(err)
	}
	_ = s.c.SetReadDeadline(time.Now().Add(wait))
	line, err := s.r.ReadString('\n')
	if err != nil {
		return 0
	}
	code, _ := strconv.Atoi(strings.Fields(line + " x 0")[1])
	for line != "\r\n" && err == nil { // the rest of the head; no body
		line, err = s.r.ReadString('\n')
	}
	return code
}

// TestStrangersDroppedTCP: over TCP (the sipgo path) a stranger's OPTIONS
// ping gets no answer, the trunk's gets 200.
func TestStrangersDroppedTCP(t *testing.T) {
	h := startProxy(t, harnessOpts{options: func(o *Options) {
		o.Listen = append(o.Listen, Listen{Network: "tcp", Host: "127.0.0.1"})
	}})
	port := h.p.ports["tcp"]
	proxy := "127.0.0.1:" + strconv.Itoa(port)
	trunk := dialTCP(t, "127.0.0.1", port)
	if code := trunk.options(t, proxy, "tcp-trunk", 5*time.Second); code != 200 {
		t.Fatalf("the trunk's OPTIONS over TCP got %d, want 200", code)
	}
	scanner := dialTCP(t, "127.0.0.2", port)
	if code := scanner.options(t, proxy, "tcp-scan", 300*time.Millisecond); code != 0 {
		t.Errorf("the stranger's OPTIONS over TCP got %d, want no answer", code)
	}
	// Not even sipgo's own 100 Trying, sent when a handler is slow.
	if code := scanner.request(t, "INVITE", proxy, "tcp-scan-invite", 500*time.Millisecond); code != 0 {
		t.Errorf("the stranger's INVITE over TCP got %d, want no answer", code)
	}
	// An ACK and a BYE with a forged route mark get nothing either, and
	// crash nothing (sipgo hands an ACK its own transaction).
	for _, m := range []string{"ACK", "BYE"} {
		me := scanner.c.LocalAddr().String()
		forged := rawReq{method: m, ruri: "sip:x@" + proxy + ";transport=tcp", via: []string{"SIP/2.0/TCP " + me + ";branch=z9hG4bK-f" + m},
			route: []string{"<sip:" + proxy + ";transport=tcp;sb=0123456789abcdef;lr>"},
			from:  "<sip:a@" + me + ">;tag=f", to: "<sip:x@" + proxy + ">;tag=t", callID: "forged-" + m, cseq: 1}
		if _, err := scanner.c.Write(forged.bytes()); err != nil {
			t.Fatal(err)
		}
	}
	if code := scanner.options(t, proxy, "tcp-scan-2", 300*time.Millisecond); code != 0 {
		t.Errorf("the stranger got %d after its forged requests, want no answer", code)
	}
	// The trunk is still served after the stranger's attempt.
	if code := trunk.options(t, proxy, "tcp-trunk-2", 5*time.Second); code != 200 {
		t.Fatalf("the trunk's second OPTIONS over TCP got %d, want 200", code)
	}
}

// TestTrunkMaxCPS: new INVITEs from a trunk beyond its max_cps get 503
// with Retry-After at once; those within it reach the PBX.
func TestTrunkMaxCPS(t *testing.T) {
	for _, fast := range []bool{false, true} {
		t.Run("fast="+strconv.FormatBool(fast), func(t *testing.T) {
			h := startProxy(t, harnessOpts{fast: fast, routing: func(r *Routing) { r.Trunks[0].MaxCPS = 2 }})
			tr := h.trunk
			const n = 6
			for i := range n {
				id := "call-cps-" + strconv.Itoa(i)
				tr.send(t, h.addr, callerInvite(tr, h.addr, id, "<sip:+4930111222@"+tr.addr().String()+">;tag=c"+strconv.Itoa(i)).bytes())
			}
			refused, passed := 0, 0
			refusedIDs := map[string]bool{}
			for i := range n {
				id := "call-cps-" + strconv.Itoa(i)
				d, ok := tr.waitFor(0, 5*time.Second, func(d datagram) bool {
					return rawCallID(d.b) == id && (resStatus(d.b) == 503 || resStatus(d.b) == 200)
				})
				if !ok {
					t.Fatalf("%s: no final answer", id)
				}
				if resStatus(d.b) == 503 {
					refused++
					refusedIDs[id] = true
					if ra := rawHeader(d.b, "Retry-After"); ra == "" {
						t.Errorf("%s: 503 without Retry-After", id)
					}
					// The caller's ACK for the 503 (RFC 3261 §17.1.1.3)
					// stays here: the PBX never saw this INVITE.
					ack := callerInvite(tr, h.addr, id, "<sip:+4930111222@"+tr.addr().String()+">;tag=c"+strconv.Itoa(i))
					ack.method, ack.body, ack.extra, ack.to = "ACK", "", nil, rawHeader(d.b, "To")
					tr.send(t, h.addr, ack.bytes())
				} else {
					passed++
				}
			}
			// A burst of one second's worth (2), perhaps one more refilled.
			if passed < 2 || passed > 3 || refused != n-passed {
				t.Errorf("passed %d, refused %d; want 2 (or 3) passed and the rest 503", passed, refused)
			}
			// Positive control: a later call reaches the PBX through the
			// same reader, after the ACKs above were handled.
			time.Sleep(time.Second) // the bucket refills
			pbx0 := h.pbx.count()
			tr.send(t, h.addr, callerInvite(tr, h.addr, "call-cps-late", "<sip:+4930111222@"+tr.addr().String()+">;tag=late").bytes())
			if _, ok := h.pbx.waitFor(pbx0, 5*time.Second, isReq("INVITE", "call-cps-late")); !ok {
				t.Fatal("a call within the limit did not reach the PBX")
			}
			for _, d := range h.pbx.since(0) {
				if strings.HasPrefix(string(d.b), "ACK ") && refusedIDs[rawCallID(d.b)] {
					t.Errorf("the ACK of a refused call reached the PBX: %s", rawCallID(d.b))
				}
			}
		})
	}
}

// BenchmarkStrangerDrop is the work the UDP readers do for a stranger's
// INVITE with sip.strangers: drop: the source checked against the PBX,
// the balancers and the trunks, the datagram searched for our route mark,
// the counter and the (rate-limited) log. Nothing is parsed.
func BenchmarkStrangerDrop(b *testing.B) {
	met := metrics.New()
	trunks := make([]Trunk, 0, 4)
	for i := range 4 { // a few trunks with CIDR matches, as a real config has
		pfx := netip.MustParsePrefix("192.0.2." + strconv.Itoa(i*64) + "/26")
		trunks = append(trunks, Trunk{Name: "t" + strconv.Itoa(i), Match: func(a netip.AddrPort) bool { return pfx.Contains(a.Addr()) }})
	}
	p, err := New(Options{Listen: []Listen{{Network: "udp", Host: "127.0.0.1"}}, Metrics: met},
		&Routing{PBX: netip.MustParseAddrPort("10.0.0.5:5060"), Trunks: trunks})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	from := netip.MustParseAddrPort("203.0.113.7:5070")
	inv := []byte("INVITE sip:100@198.51.100.1 SIP/2.0\r\nVia: SIP/2.0/UDP 203.0.113.7:5070;branch=z9hG4bK-1;rport\r\n" +
		"Max-Forwards: 70\r\nFrom: \"100\" <sip:100@198.51.100.1>;tag=1\r\nTo: <sip:100@198.51.100.1>\r\n" +
		"Call-ID: 123456789\r\nCSeq: 1 INVITE\r\nUser-Agent: friendly-scanner\r\nContact: <sip:100@203.0.113.7:5070>\r\n" +
		"Content-Type: application/sdp\r\nContent-Length: 0\r\n\r\n")
	out := packetSender{}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if !p.strangerDatagram(inv, from, out) {
			b.Fatal("not taken for a stranger's")
		}
	}
}
