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
