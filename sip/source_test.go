package sip

import (
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	gosip "github.com/emiago/sipgo/sip"
)

// TestSourceBehindBalancer: a listed balancer's X-Switchboard-Source is
// the source a request is judged by (SPEC §11): the PBX's call through the
// balancer goes out to the trunk, a trunk's comes in to the PBX, a
// stranger behind the balancer is dropped; the header never goes on, and
// from anyone but a balancer it is ignored.
func TestSourceBehindBalancer(t *testing.T) {
	for _, fast := range []bool{false, true} {
		t.Run("fast="+strconv.FormatBool(fast), func(t *testing.T) {
			lb := newLoopbackPeer(t, "127.0.0.5")
			carrier := newPeer(t, pbxAnswer)
			lbAddr := lb.addr().AddrPort()
			h := startProxy(t, harnessOpts{fast: fast, routing: func(r *Routing) {
				r.Balancers = func(a netip.AddrPort) bool { return a.Addr() == lbAddr.Addr() }
				var out gosip.Uri
				if err := gosip.ParseUri("sip:"+carrier.addr().String(), &out); err != nil {
					t.Fatal(err)
				}
				r.Trunks[0].Outbound = &out
			}})
			pbx := h.pbx.addr().String()
			via := func(p *udpPeer, id string) []string {
				return []string{"SIP/2.0/UDP " + p.addr().String() + ";branch=z9hG4bK-" + id + ";rport"}
			}
			invite := func(from *udpPeer, id, dialled, claimed string) {
				t.Helper()
				m := rawReq{method: "INVITE", ruri: "sip:" + dialled + "@" + h.addr.String(), via: via(from, id),
					from: "<sip:+4930111222@" + from.addr().String() + ">;tag=" + id, to: "<sip:" + dialled + "@" + h.addr.String() + ">",
					callID: id, cseq: 1, extra: []string{"Contact: <sip:c@" + from.addr().String() + ">"}, body: testSDP}
				if claimed != "" {
					m.extra = append(m.extra, SourceHeader+": "+claimed)
				}
				from.send(t, h.addr, m.bytes())
			}

			// The PBX's outbound call, passed on by the balancer.
			invite(lb, "call-out", "+4940123456", pbx)
			d, ok := carrier.waitFor(0, 5*time.Second, isReq("INVITE", "call-out"))
			if !ok {
				t.Fatal("the PBX's call through the balancer did not reach the trunk")
			}
			if strings.Contains(string(d.b), SourceHeader) {
				t.Errorf("%s went on to the trunk", SourceHeader)
			}
			// A trunk's call through the balancer comes in to the PBX.
			invite(lb, "call-in", "+49301234560", h.trunk.addr().String())
			if _, ok := h.pbx.waitFor(0, 5*time.Second, isReq("INVITE", "call-in")); !ok {
				t.Fatal("a trunk's call through the balancer did not reach the PBX")
			}
			// A stranger behind the balancer is still a stranger.
			invite(lb, "call-stranger", "+49301234560", "127.0.0.9:5060")
			// The header from a trunk (no balancer) is not believed: the
			// call is the trunk's, inbound to the PBX, not the PBX's.
			invite(h.trunk, "call-claims-pbx", "+4940123456", pbx)
			if _, ok := h.pbx.waitFor(0, 5*time.Second, isReq("INVITE", "call-claims-pbx")); !ok {
				t.Fatal("a trunk claiming to be the PBX: its call did not go in to the PBX")
			}
			if _, ok := carrier.waitFor(0, 10*time.Millisecond, isReq("INVITE", "call-claims-pbx")); ok {
				t.Error("a trunk claiming to be the PBX sent a call out")
			}
			stranger := func(d datagram) bool { return rawCallID(d.b) == "call-stranger" }
			if _, ok := h.pbx.waitFor(0, 10*time.Millisecond, stranger); ok {
				t.Error("the stranger's call behind the balancer reached the PBX")
			}
			if _, ok := carrier.waitFor(0, 10*time.Millisecond, stranger); ok {
				t.Error("the stranger's call behind the balancer reached the trunk")
			}
			if _, ok := lb.waitFor(0, 100*time.Millisecond, stranger); ok {
				t.Error("the stranger behind the balancer got an answer")
			}
		})
	}
}

func TestParseSource(t *testing.T) {
	for _, c := range []struct {
		in   string
		want string
	}{
		{"192.0.2.1:5060", "192.0.2.1:5060"},
		{" 192.0.2.1:5062 ", "192.0.2.1:5062"},
		{"[2001:db8::1]:5060", "[2001:db8::1]:5060"},
		{"2001:db8::1:5060", "[2001:db8::1]:5060"},
		{"::ffff:192.0.2.1:5060", "192.0.2.1:5060"},
		{"192.0.2.1", ""},
		{"192.0.2.1:0", ""},
		{"example.com:5060", ""},
		{"", ""},
	} {
		ap, ok := parseSource([]byte(c.in))
		got := ""
		if ok {
			got = ap.String()
		}
		if got != c.want {
			t.Errorf("parseSource(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
