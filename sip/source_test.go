package sip

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	gosip "github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/cdr"
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

// TestByeSentTimeFromBalancer: a BYE the balancer passes on late (it went
// to a dead node first) ends the call when the balancer says it first sent
// it; the header goes no further, and from anyone else it is ignored.
func TestByeSentTimeFromBalancer(t *testing.T) {
	lb := newLoopbackPeer(t, "127.0.0.5")
	lbAddr := lb.addr().AddrPort()
	h := startProxy(t, harnessOpts{routing: func(r *Routing) {
		r.Balancers = func(a netip.AddrPort) bool { return a.Addr() == lbAddr.Addr() }
	}})
	bye := func(from *udpPeer, dl callerDialog, sent time.Time) {
		t.Helper()
		me := from.addr().String()
		m := rawReq{method: "BYE", ruri: dl.contact, via: []string{"SIP/2.0/UDP " + me + ";branch=z9hG4bK-" + dl.id + "-bye;rport"},
			route: dl.routes, from: dl.from, to: dl.to, callID: dl.id, cseq: 2,
			extra: []string{SourceHeader + ": " + h.trunk.addr().String(),
				SentHeader + ": " + strconv.FormatInt(sent.Unix(), 10) + "." + fmt.Sprintf("%06d", sent.Nanosecond()/1000)}}
		from.send(t, h.addr, m.bytes())
	}
	for _, c := range []struct {
		name string
		from *udpPeer
	}{
		{"from the balancer", lb},
		{"from a trunk", h.trunk},
	} {
		t.Run(c.name, func(t *testing.T) {
			from := c.from
			id := "call-sent-" + strings.ReplaceAll(c.name, " ", "-")
			dl := h.answerCall(t, id)
			rec, _ := h.sink.get(id)
			if rec.AnsweredAt == nil {
				t.Fatal("no answer time recorded")
			}
			sent := rec.AnsweredAt.Add(300 * time.Millisecond)
			time.Sleep(1500 * time.Millisecond) // the call's talk time
			start := h.pbx.count()
			bye(from, dl, sent)
			d, ok := h.pbx.waitFor(start, 5*time.Second, isReq("BYE", id))
			if !ok {
				t.Fatal("the BYE did not reach the PBX")
			}
			if strings.Contains(string(d.b), SentHeader) {
				t.Errorf("%s went on to the PBX", SentHeader)
			}
			var r cdr.Record
			deadline := time.Now().Add(5 * time.Second)
			for r, _ = h.sink.get(id); r.EndedAt == nil; r, _ = h.sink.get(id) {
				if time.Now().After(deadline) {
					t.Fatal("the BYE did not end the record")
				}
				time.Sleep(10 * time.Millisecond) // the tracker saves after relaying: poll
			}
			talk := time.Duration(r.TalkMS) * time.Millisecond
			if from == lb && (talk < 250*time.Millisecond || talk > 350*time.Millisecond) {
				t.Errorf("talk %v, want 300ms: the call ended when the balancer first sent the BYE", talk)
			}
			if from != lb && talk < time.Second {
				t.Errorf("talk %v: a trunk's %s was believed", talk, SentHeader)
			}
		})
	}
}
