//go:build linux

package sip

import (
	"net/netip"
	"strings"
	"testing"
)

// TestFastRelayViaList: a response whose Vias share one line (as SIPp's
// [last_Via:] writes them) loses only our value and goes to the next one.
func TestFastRelayViaList(t *testing.T) {
	f := &fastPath{p: &Proxy{}, self: []selfRef{{host: "127.0.0.1", port: 5060}}}
	res := []byte("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=" + fastBranch + "00ff, SIP/2.0/UDP 10.0.0.9:5070;branch=z9hG4bK-c;rport=5071;received=127.0.0.2\r\n" +
		"From: <sip:a@b>;tag=x\r\nTo: <sip:c@d>;tag=y\r\nCall-ID: abc\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n")
	var m msgIndex
	if !m.index(res) {
		t.Fatal("index refused a Via list")
	}
	out := newBatch(1, fastOutSize, false)
	if !f.relay(&m, out) {
		t.Fatal("not relayed")
	}
	_, to, _ := out.packet(0)
	got := out.bufs[0][:out.lens[0]]
	if want := strings.Replace(string(res), "SIP/2.0/UDP 127.0.0.1:5060;branch="+fastBranch+"00ff, ", "", 1); string(got) != want {
		t.Errorf("relayed\n%q\nwant\n%q", got, want)
	}
	if want := netip.MustParseAddrPort("127.0.0.2:5071"); to != want {
		t.Errorf("sent to %v, want %v (received, rport)", to, want)
	}
}

// TestFastRelayOwnViaOnly: a response whose top Via carries the fast
// path's branch prefix but another sent-by is not ours to relay (RFC 3261
// §16.7 item 3), nor is a 100 (§16.7); the same response with our
// sent-by is (positive control).
func TestFastRelayOwnViaOnly(t *testing.T) {
	f := &fastPath{p: &Proxy{}, self: []selfRef{{host: "127.0.0.1", port: 5060}}}
	res := func(status, top string) []byte {
		return []byte("SIP/2.0 " + status + "\r\nVia: SIP/2.0/UDP " + top + ";branch=" + fastBranch + "00ff\r\n" +
			"Via: SIP/2.0/UDP 10.0.0.9:5070;branch=z9hG4bK-c;rport=5071;received=127.0.0.2\r\n" +
			"From: <sip:a@b>;tag=x\r\nTo: <sip:c@d>;tag=y\r\nCall-ID: abc\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n")
	}
	for _, c := range []struct {
		name, status, top string
		relayed           bool
	}{
		{"ours", "200 OK", "127.0.0.1:5060", true},
		{"other host", "200 OK", "192.0.2.7:5060", false},
		{"other port", "200 OK", "127.0.0.1:5099", false},
		{"trying", "100 Trying", "127.0.0.1:5060", false},
	} {
		var m msgIndex
		if !m.index(res(c.status, c.top)) {
			t.Fatalf("%s: index refused it", c.name)
		}
		out := newBatch(1, fastOutSize, false)
		f.relay(&m, out)
		if got := out.used > 0; got != c.relayed {
			t.Errorf("%s: relayed %v, want %v", c.name, got, c.relayed)
		}
	}
}
