package e2e

import (
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp"
)

// TestBlockedCallHearsAnnouncement: a blocked caller whose INVITE offers
// PCMA gets 183 with an SDP answer, the announcement as RTP to the address
// of the offer, then 603 (SPEC §1 Announcements).
func TestBlockedCallHearsAnnouncement(t *testing.T) {
	n := newNode(t, nodeOptions{})
	wav, err := filepath.Abs(filepath.Join("..", "configs", "announcement.wav"))
	if err != nil {
		t.Fatal(err)
	}
	n.reload(t, `media: {rtp_ports: 31000-31099}
blocking:
  announcement: "`+wav+`"
  entries:
    - {number: "`+trunkCaller+`", action: block, reason: spam}
`, true)

	media, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer media.Close()
	sig, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer sig.Close()
	me := sig.LocalAddr().String()
	mport := media.LocalAddr().(*net.UDPAddr).Port
	sdp := "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" +
		"m=audio " + strconv.Itoa(mport) + " RTP/AVP 8 0\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\n"
	invite := "INVITE sip:" + hotlineNumber + "@" + n.sipAddr() + " SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP " + me + ";branch=z9hG4bK-ann-1;rport\r\n" +
		"Max-Forwards: 70\r\n" +
		"From: <sip:" + trunkCaller + "@" + me + ">;tag=ann\r\n" +
		"To: <sip:" + hotlineNumber + "@" + n.sipAddr() + ">\r\n" +
		"Call-ID: announce-1\r\nCSeq: 1 INVITE\r\n" +
		"Contact: <sip:caller@" + me + ">\r\nContent-Type: application/sdp\r\n" +
		"Content-Length: " + strconv.Itoa(len(sdp)) + "\r\n\r\n" + sdp
	dst, _ := net.ResolveUDPAddr("udp", n.sipAddr())
	if _, err := sig.WriteTo([]byte(invite), dst); err != nil {
		t.Fatal(err)
	}

	type packet struct {
		p  rtp.Packet
		at time.Time
	}
	packets := make(chan packet, 512)
	go func() {
		buf := make([]byte, 1500)
		for {
			media.SetReadDeadline(time.Now().Add(10 * time.Second))
			k, _, err := media.ReadFrom(buf)
			if err != nil {
				close(packets)
				return
			}
			var p rtp.Packet
			if p.Unmarshal(buf[:k]) == nil {
				packets <- packet{p, time.Now()}
			}
		}
	}()

	var codes []int
	var answer string
	buf := make([]byte, 8192)
	for len(codes) == 0 || codes[len(codes)-1] < 200 {
		sig.SetReadDeadline(time.Now().Add(10 * time.Second))
		k, _, err := sig.ReadFrom(buf)
		if err != nil {
			t.Fatalf("responses so far %v: %v", codes, err)
		}
		line, _, _ := strings.Cut(string(buf[:k]), "\r\n")
		code, _ := strconv.Atoi(strings.Fields(line + " 0 0")[1])
		codes = append(codes, code)
		if code == 183 {
			_, answer, _ = strings.Cut(string(buf[:k]), "\r\n\r\n")
		}
	}
	if fmt.Sprint(codes) != "[100 183 603]" {
		t.Fatalf("responses %v, want [100 183 603]", codes)
	}
	if !strings.Contains(answer, "m=audio ") || !strings.Contains(answer, "RTP/AVP 8") {
		t.Errorf("183 SDP does not answer PCMA:\n%s", answer)
	}
	// ACK the 603 so the transaction ends cleanly.
	ack := strings.Replace(strings.Replace(invite[:strings.Index(invite, "Contact:")], "INVITE sip:", "ACK sip:", 1), "CSeq: 1 INVITE", "CSeq: 1 ACK", 1) + "Content-Length: 0\r\n\r\n"
	sig.WriteTo([]byte(ack), dst)

	var got []packet
	for p := range packets {
		got = append(got, p)
		if len(got) == 100 {
			break
		}
	}
	// configs/announcement.wav is 2 s: 100 packets of 20 ms.
	if len(got) != 100 {
		t.Fatalf("%d RTP packets, want 100", len(got))
	}
	first := got[0].p
	if !first.Marker || first.PayloadType != 8 || len(first.Payload) != 160 {
		t.Errorf("first packet: marker %v, payload type %d, %d bytes", first.Marker, first.PayloadType, len(first.Payload))
	}
	for i := 1; i < len(got); i++ {
		p, q := got[i-1].p, got[i].p
		if q.SequenceNumber != p.SequenceNumber+1 || q.Timestamp != p.Timestamp+160 || q.SSRC != first.SSRC || q.Marker {
			t.Fatalf("packet %d: seq %d ts %d ssrc %x marker %v after seq %d ts %d", i, q.SequenceNumber, q.Timestamp, q.SSRC, q.Marker, p.SequenceNumber, p.Timestamp)
		}
	}
	if d := got[99].at.Sub(got[0].at); d < 1800*time.Millisecond {
		t.Errorf("100 packets in %v: not paced at 20 ms", d)
	}
	if r := n.waitEnded("announce-1"); r.Disposition != "blocked" || r.SIPStatus != 603 {
		t.Errorf("record %s", r)
	}
}
