package media

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/pion/rtp"
	"go.uber.org/zap/zaptest"
)

// annCaller is the caller's side of an announcement: a real UDP socket on loopback and the
// SDP offer that points at it.
type annCaller struct {
	conn  *net.UDPConn
	offer Offer
}

func newAnnCaller(t *testing.T, ip, codecs string) *annCaller {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip)})
	if err != nil {
		t.Skipf("cannot bind %s: %v", ip, err)
	}
	t.Cleanup(func() { conn.Close() })
	family := "IP4"
	if net.ParseIP(ip).To4() == nil {
		family = "IP6"
	}
	offer, err := ParseOffer(annSDP("v=0", "o=- 1 1 IN "+family+" "+ip, "s=-", "c=IN "+family+" "+ip, "t=0 0",
		fmt.Sprintf("m=audio %d RTP/AVP %s", conn.LocalAddr().(*net.UDPAddr).Port, codecs)))
	if err != nil {
		t.Fatal(err)
	}
	return &annCaller{conn: conn, offer: offer}
}

// read returns the next RTP packet, failing the test if none comes within a generous bound.
func (c *annCaller) read(t *testing.T) rtp.Packet {
	t.Helper()
	buf := make([]byte, 1500)
	_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := c.conn.Read(buf)
	if err != nil {
		t.Fatalf("reading RTP: %v", err)
	}
	var p rtp.Packet
	if err := p.Unmarshal(buf[:n]); err != nil {
		t.Fatalf("not RTP: %v", err)
	}
	return p
}

func annTestAudio(t *testing.T) *Audio {
	t.Helper()
	a, err := LoadWAV(filepath.Join("..", "configs", "announcement.wav"))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func annTestPool(t *testing.T, ip string) *PortPool {
	t.Helper()
	low, high := annFreeEvenRange(t, 4)
	p, err := NewPortPool(low, high, ip)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func annWaitDone(t *testing.T, pb *Playback) {
	t.Helper()
	select {
	case <-pb.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("playback never finished")
	}
}

func TestAnnouncerStreamsRTP(t *testing.T) {
	for _, tt := range []struct {
		name, ip, codecs string
		codec            AudioCodec
	}{
		{"PCMU over IPv4", "127.0.0.1", "0 8", CodecPCMU},
		{"PCMA preferred", "127.0.0.1", "18 8 0", CodecPCMA},
		{"IPv6", "::1", "8", CodecPCMA},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			caller := newAnnCaller(t, tt.ip, tt.codecs)
			pool := annTestPool(t, tt.ip)
			audio := annTestAudio(t)
			ann := NewAnnouncer(pool, zaptest.NewLogger(t))

			start := time.Now()
			pb, err := ann.Start(t.Context(), caller.offer, audio)
			if err != nil {
				t.Fatal(err)
			}
			if pb.Codec != tt.codec || pb.PT != uint8(tt.codec) {
				t.Fatalf("codec %v pt %d, want %v", pb.Codec, pb.PT, tt.codec)
			}
			answer, err := ParseOffer(pb.AnswerSDP)
			if err != nil {
				t.Fatalf("answer SDP: %v\n%s", err, pb.AnswerSDP)
			}
			if m := answer.Media[0]; m.Port != pb.LocalPort || m.Addr != pool.IP() || m.Direction != "sendonly" {
				t.Fatalf("answer stream %+v, want port %d on %s sendonly", m, pb.LocalPort, pool.IP())
			}

			const frames = 100 // 2 s of 20 ms packets
			var first rtp.Packet
			for i := range frames {
				p := caller.read(t)
				if i == 0 {
					first = p
				}
				h := p.Header
				switch {
				case h.Version != 2 || h.Padding || h.Extension || len(h.CSRC) != 0:
					t.Fatalf("packet %d: unexpected header %+v", i, h)
				case h.PayloadType != uint8(tt.codec):
					t.Fatalf("packet %d: payload type %d, want %d", i, h.PayloadType, tt.codec)
				case h.Marker != (i == 0):
					t.Fatalf("packet %d: marker %v", i, h.Marker)
				case h.SSRC != first.SSRC:
					t.Fatalf("packet %d: SSRC %#x, first was %#x", i, h.SSRC, first.SSRC)
				case h.SequenceNumber != first.SequenceNumber+uint16(i): // wraps like the wire
					t.Fatalf("packet %d: seq %d, first %d", i, h.SequenceNumber, first.SequenceNumber)
				case h.Timestamp != first.Timestamp+uint32(160*i):
					t.Fatalf("packet %d: timestamp %d, first %d", i, h.Timestamp, first.Timestamp)
				case !bytes.Equal(p.Payload, audio.Frame(tt.codec, i)):
					t.Fatalf("packet %d: payload is not frame %d of the audio", i, i)
				}
			}
			annWaitDone(t, pb)
			if err := pb.Err(); err != nil {
				t.Fatalf("playback error: %v", err)
			}
			// Done waits for the last packet's 20 ms to play, so it cannot close before 2 s.
			if d := time.Since(start); d < audio.Duration() {
				t.Fatalf("played %d packets in %v, faster than real time", frames, d)
			}
			if n := pool.InUse(); n != 0 {
				t.Fatalf("%d ports still in use", n)
			}
			// No packet after the last one.
			_ = caller.conn.SetReadDeadline(time.Now())
			if n, err := caller.conn.Read(make([]byte, 1500)); err == nil {
				t.Fatalf("extra %d-byte packet after the announcement", n)
			}
		})
	}
}

func TestAnnouncerCancel(t *testing.T) {
	caller := newAnnCaller(t, "127.0.0.1", "0")
	pool := annTestPool(t, "127.0.0.1")
	ctx, cancel := context.WithCancel(t.Context())
	pb, err := NewAnnouncer(pool, zaptest.NewLogger(t)).Start(ctx, caller.offer, annTestAudio(t))
	if err != nil {
		t.Fatal(err)
	}
	caller.read(t) // playing
	cancel()       // the caller sent CANCEL
	annWaitDone(t, pb)
	if err := pb.Err(); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if n := pool.InUse(); n != 0 {
		t.Fatalf("%d ports still in use", n)
	}
}

func TestAnnouncerRejects(t *testing.T) {
	pool := annTestPool(t, "127.0.0.1")
	audio := annTestAudio(t)
	ann := NewAnnouncer(pool, nil)
	for _, tt := range []struct {
		name    string
		ip      string
		codecs  string
		wantErr error
	}{
		{"no common codec", "127.0.0.1", "9 18", ErrNoCommonCodec},
		{"IPv6 caller, IPv4 media", "::1", "0", ErrNoUsableAudio},
	} {
		t.Run(tt.name, func(t *testing.T) {
			caller := newAnnCaller(t, tt.ip, tt.codecs)
			if _, err := ann.Start(t.Context(), caller.offer, audio); !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if n := pool.InUse(); n != 0 {
				t.Fatalf("%d ports in use after a refused start", n)
			}
		})
	}
	caller := newAnnCaller(t, "127.0.0.1", "0")
	if _, err := ann.Start(t.Context(), caller.offer, nil); err == nil {
		t.Fatal("started without audio")
	}
	if _, err := NewAnnouncer(nil, nil).Start(t.Context(), caller.offer, audio); err == nil {
		t.Fatal("started without a port pool")
	}
}

func TestAnnouncerPortsExhausted(t *testing.T) {
	caller := newAnnCaller(t, "127.0.0.1", "0")
	low, _ := annFreeEvenRange(t, 1)
	pool, err := NewPortPool(low, low, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	ann := NewAnnouncer(pool, nil)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	first, err := ann.Start(ctx, caller.offer, annTestAudio(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ann.Start(t.Context(), caller.offer, annTestAudio(t)); !errors.Is(err, ErrPortsExhausted) {
		t.Fatalf("second start: err = %v, want ErrPortsExhausted", err)
	}
	cancel()
	annWaitDone(t, first)
}
