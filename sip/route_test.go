package sip

import (
	"net/netip"
	"strings"
	"testing"

	gosip "github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/callctl"
)

func parseReq(t *testing.T, lines ...string) *gosip.Request {
	t.Helper()
	msg, err := gosip.ParseMessage([]byte(strings.Join(lines, "\r\n") + "\r\n\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	return msg.(*gosip.Request)
}

func invite(t *testing.T, extra ...string) *gosip.Request {
	lines := []string{
		"INVITE sip:+4930123456@127.0.0.1:5060 SIP/2.0",
		"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1",
		"From: \"Jane\" <sip:+4915112345678@127.0.0.1>;tag=a",
		"To: <sip:+4930123456@127.0.0.1>",
		"Call-ID: c1@test",
		"CSeq: 1 INVITE",
		"Max-Forwards: 70",
	}
	lines = append(lines, extra...)
	lines = append(lines, "Content-Length: 0")
	return parseReq(t, lines...)
}

func TestLoopDetection(t *testing.T) {
	req := invite(t)
	h := loopHash(req)
	if looped(req, h) {
		t.Fatal("fresh request seen as a loop")
	}
	p := &Proxy{opts: Options{Advertise: "127.0.0.1"}, ports: map[string]int{"udp": 5060}}
	fwd := req.Clone()
	p.addVia(fwd, h)
	if !looped(fwd, loopHash(fwd)) {
		t.Fatal("request that came back unchanged not seen as a loop")
	}
	spiral := fwd.Clone()
	spiral.Recipient.User = "+4930999999"
	if looped(spiral, loopHash(spiral)) {
		t.Fatal("a spiral (new Request-URI) is not a loop")
	}
}

func TestElsewhere(t *testing.T) {
	tests := []struct {
		reason string
		want   bool
	}{
		{`SIP;cause=200;text="Call completed elsewhere"`, true},
		{`Q.850;cause=16, SIP;cause=200`, true},
		{`SIP ; cause = 200`, true},
		{`SIP;cause=487`, false},
		{`Q.850;cause=200`, false},
		{``, false},
	}
	for _, tc := range tests {
		t.Run(tc.reason, func(t *testing.T) {
			extra := []string{}
			if tc.reason != "" {
				extra = append(extra, "Reason: "+tc.reason)
			}
			if got := elsewhere(invite(t, extra...)); got != tc.want {
				t.Errorf("elsewhere(%q) = %v", tc.reason, got)
			}
		})
	}
}

func TestSplitListAndDisplay(t *testing.T) {
	got := splitList(`"Doe, Jane" <sip:1@a>, <tel:+491>;x=1`)
	if len(got) != 2 || got[0] != `"Doe, Jane" <sip:1@a>` {
		t.Fatalf("splitList = %q", got)
	}
	if w := withDisplay(`"Old" <sip:1@a>;tag=x`, `"ACME: Jane"`); w != `"ACME: Jane" <sip:1@a>;tag=x` {
		t.Errorf("withDisplay = %q", w)
	}
	if w := withDisplay(`sip:1@a`, `"X"`); w != `"X" <sip:1@a>` {
		t.Errorf("withDisplay bare = %q", w)
	}
}

func TestClassify(t *testing.T) {
	r := &Routing{
		PBX: netip.MustParseAddrPort("127.0.0.1:5080"),
		Trunks: []Trunk{{Name: "carrier", Match: func(a netip.AddrPort) bool {
			return a.Addr() == netip.MustParseAddr("127.0.0.1")
		}}},
	}
	tests := []struct {
		src  string
		want callctl.Direction
	}{
		{"127.0.0.1:5080", callctl.Outbound}, // the PBX shares the trunk's address
		{"127.0.0.1:5070", callctl.Inbound},
		{"127.0.0.2:5080", ""},
	}
	for _, tc := range tests {
		if got, _ := r.Classify(netip.MustParseAddrPort(tc.src)); got != tc.want {
			t.Errorf("Classify(%s) = %q, want %q", tc.src, got, tc.want)
		}
	}
}

func TestRouteTokenAndPop(t *testing.T) {
	p := &Proxy{opts: Options{Advertise: "127.0.0.1", RouteKey: []byte("k")}, ports: map[string]int{"udp": 5060}}
	p.self.add("127.0.0.1", 5060)
	req := invite(t)
	p.addRecordRoute(req, "UDP")
	rr := req.RecordRoute().Value()
	tok := p.routeToken(req)
	if !strings.Contains(rr, "sb="+tok) {
		t.Fatalf("Record-Route %q lacks the token %s", rr, tok)
	}
	good := invite(t, "Route: "+rr)
	if !p.popOwnRoutes(good) || good.Route() != nil {
		t.Error("signed Route not accepted and popped")
	}
	forged := invite(t, "Route: <sip:127.0.0.1:5060;sb=0000000000000000;lr>", "Route: <sip:10.0.0.9;lr>")
	if p.popOwnRoutes(forged) {
		t.Error("forged token accepted")
	}
	if r := forged.Route(); r == nil || r.Address.Host != "10.0.0.9" {
		t.Error("our Route entry not removed, or the next one lost")
	}
}
