package sip

// Robustness against hostile and unusual input: a sample of the PROTOS
// c07-sip INVITE cases sent in-process (the full 4,527 run is
// bench/protos.sh), and regression tests for the defects the torture and
// PROTOS runs found, each built from the structure of the message that
// showed it.

import (
	"context"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-sip/switchboard/bench/protos"
)

// protosSample picks about ten cases per PROTOS group: the first, the last
// and evenly spaced ones between (the groups mutate one element with
// growing sizes, so the spread covers short and overlong values).
func protosSample(gs []protos.Group) func(int) bool {
	keep := map[int]bool{}
	for _, g := range gs {
		step := max(1, g.Count/8)
		for i := 0; i < g.Count; i += step {
			keep[g.First+i] = true
		}
		keep[g.First+g.Count-1] = true
	}
	return func(n int) bool { return keep[n] }
}

func TestPROTOSSample(t *testing.T) { onBothPaths(t, testPROTOSSample) }

func testPROTOSSample(t *testing.T) {
	dir := filepath.Join(filepath.Dir(tortureCorpus(t, "protos-c07-sip")), "protos-c07-sip")
	gs, err := protos.Groups(dir)
	if err != nil {
		t.Fatal(err)
	}
	cases, err := protos.Load(dir, protosSample(gs))
	if err != nil {
		t.Fatal(err)
	}
	h := startProxy(t, harnessOpts{})
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	start := time.Now()
	res, err := protos.Run(ctx, cases, protos.Options{Target: h.addr, Wait: 300 * time.Millisecond, Workers: 16})
	if err != nil {
		t.Fatalf("PROTOS sample did not finish: %v", err)
	}
	answered, dropped, codes := 0, 0, map[int]int{}
	for _, r := range res {
		if r.Err != nil {
			t.Logf("case %d not sent: %v", r.N, r.Err)
			continue
		}
		if r.Answered() {
			answered++
			codes[r.Final()]++
		} else {
			dropped++
		}
	}
	t.Logf("%d PROTOS cases in %s: %d answered (final codes %v), %d dropped",
		len(res), time.Since(start).Round(time.Millisecond), answered, codes, dropped)
	if res[0].N != 0 || res[0].Final() == 0 {
		t.Errorf("case 0 (the valid reference INVITE) got %v, want a final response", res[0].Codes)
	}
	if err := protos.Ping(h.addr, 3*time.Second); err != nil {
		t.Fatalf("after PROTOS: %v", err)
	}
	for i := range 3 {
		if err := h.call(t, "call-after-protos-"+strconv.Itoa(i)); err != nil {
			t.Fatalf("normal call after PROTOS: %v", err)
		}
	}
	// Every forwarded case was answered 486 by the PBX: no call may stay open.
	deadline := time.Now().Add(10 * time.Second)
	for h.track.Pending() > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := h.track.Pending(); n > 0 {
		t.Errorf("%d calls still pending after every case was answered", n)
	}
}

// inviteFrom builds an initial INVITE from a trunk peer with extra header
// lines and an SDP body padded to bodyLen bytes (0: the plain test SDP).
func inviteFrom(tr *udpPeer, proxy *net.UDPAddr, id string, extra []string, bodyLen int) []byte {
	me := tr.addr().String()
	body := testSDP
	for len(body) < bodyLen {
		body += "a=x-pad:" + strings.Repeat("p", 60) + "\r\n"
	}
	var b strings.Builder
	b.WriteString("INVITE sip:+49301234560@" + proxy.String() + " SIP/2.0\r\n")
	b.WriteString("Via: SIP/2.0/UDP " + me + ";branch=z9hG4bK-" + id + ";rport\r\n")
	for _, e := range extra {
		b.WriteString(e + "\r\n")
	}
	b.WriteString("Max-Forwards: 70\r\nFrom: <sip:+4930111222@" + me + ">;tag=f-" + id + "\r\n" +
		"To: <sip:+49301234560@" + proxy.String() + ">\r\nCall-ID: " + id + "\r\nCSeq: 1 INVITE\r\n" +
		"Contact: <sip:caller@" + me + ">\r\nContent-Type: application/sdp\r\n" +
		"Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body)
	return []byte(b.String())
}

// TestLargeInviteOverUDP: a valid INVITE larger than 1,300 bytes (carrier
// INVITEs with SIP-I ISUP bodies, many Via or long SDP; RFC 4475 longreq.dat
// and mpart01.dat) must still be answered and forwarded over UDP. sipgo
// refuses to write UDP datagrams above sip.UDPMTUSize-200 bytes, so the 100
// Trying (it copies the Vias) and the forwarded INVITE are never sent.
func TestLargeInviteOverUDP(t *testing.T) { onBothPaths(t, testLargeInviteOverUDP) }

func testLargeInviteOverUDP(t *testing.T) {
	h := startProxy(t, harnessOpts{})
	for _, size := range []int{1200, 2000, 8000} {
		t.Run(strconv.Itoa(size), func(t *testing.T) {
			tr := newPeer(t, nil)
			id := "big-" + strconv.Itoa(size)
			msg := inviteFrom(tr, h.addr, id, nil, size)
			tr.send(t, h.addr, msg)
			if _, ok := h.pbx.waitFor(0, 2*time.Second, func(d datagram) bool { return rawCallID(d.b) == id }); !ok {
				t.Errorf("INVITE of %d bytes did not reach the PBX", len(msg))
			}
			if _, ok := tr.waitFor(0, 2*time.Second, func(d datagram) bool { return resStatus(d.b) >= 100 }); !ok {
				t.Errorf("INVITE of %d bytes got no response at all", len(msg))
			}
		})
	}
}

// TestPreloadedRouteFromTrunk: an initial INVITE from a trunk that carries
// a Route header naming another host must still go to the PBX (SPEC §1:
// requests from a trunk are inbound, sent to the PBX); following the
// pre-loaded Route lets anyone on a trunk address steer calls through
// switchboard to any destination (RFC 4475 wsinv.dat carries such a Route).
func TestPreloadedRouteFromTrunk(t *testing.T) { onBothPaths(t, testPreloadedRouteFromTrunk) }

func testPreloadedRouteFromTrunk(t *testing.T) {
	h := startProxy(t, harnessOpts{})
	elsewhere := newLoopbackPeer(t, "127.0.0.3")
	tr := newPeer(t, nil)
	id := "preloaded-route"
	tr.send(t, h.addr, inviteFrom(tr, h.addr, id, []string{"Route: <sip:" + elsewhere.addr().String() + ";lr>"}, 0))
	_, atPBX := h.pbx.waitFor(0, 2*time.Second, func(d datagram) bool { return rawCallID(d.b) == id })
	if _, ok := elsewhere.waitFor(0, 200*time.Millisecond, func(d datagram) bool { return rawCallID(d.b) == id }); ok {
		t.Errorf("the INVITE went to the pre-loaded Route %s instead of the PBX", elsewhere.addr())
	}
	if !atPBX {
		t.Errorf("the INVITE did not reach the PBX")
	}
}

// TestInDialogRelayToAnyHost: a request with a To tag (so, "in a dialog")
// from a trunk address, with no Route naming switchboard, is relayed to
// whatever its Request-URI names. A dialog that switchboard never
// record-routed must not be a way to send requests anywhere (SPEC §1: no
// open relay); it should answer 403 or 481 (RFC 3261 §16.4 is for Routes
// that name the proxy).
func TestInDialogRelayToAnyHost(t *testing.T) { onBothPaths(t, testInDialogRelayToAnyHost) }

func testInDialogRelayToAnyHost(t *testing.T) {
	h := startProxy(t, harnessOpts{})
	elsewhere := newLoopbackPeer(t, "127.0.0.3")
	tr := newPeer(t, nil)
	me := tr.addr().String()
	id := "forged-dialog"
	msg := "MESSAGE sip:victim@" + elsewhere.addr().String() + " SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP " + me + ";branch=z9hG4bK-" + id + ";rport\r\n" +
		"Max-Forwards: 70\r\nFrom: <sip:spam@" + me + ">;tag=a\r\nTo: <sip:victim@example.net>;tag=b\r\n" +
		"Call-ID: " + id + "\r\nCSeq: 1 MESSAGE\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello"
	tr.send(t, h.addr, []byte(msg))
	d, ok := tr.waitFor(0, 5*time.Second, func(d datagram) bool { return rawCallID(d.b) == id && resStatus(d.b) >= 200 })
	if !ok {
		t.Error("no answer: want 403 or 481, not a silent drop")
	} else if c := resStatus(d.b); c != 403 && c != 481 {
		t.Errorf("answered %d, want 403 or 481", c)
	}
	if d, ok := elsewhere.waitFor(0, 100*time.Millisecond, func(d datagram) bool { return rawCallID(d.b) == id }); ok {
		t.Errorf("relayed to %s: %q", elsewhere.addr(), rawFirstLine(d.b))
	}
}

// newLoopbackPeer is a peer on another loopback address (127.0.0.0/8 is all
// loopback on Linux); skipped where that address cannot be bound.
func newLoopbackPeer(t *testing.T, ip string) *udpPeer {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip)})
	if err != nil {
		t.Skipf("cannot bind %s: %v", ip, err)
	}
	p := &udpPeer{conn: c, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go p.read()
	t.Cleanup(func() { c.Close(); <-p.done })
	return p
}
