package media

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

// sdp joins lines with CRLF as SDP requires (RFC 4566 §5).
func annSDP(lines ...string) []byte { return []byte(strings.Join(lines, "\r\n") + "\r\n") }

func TestParseOfferChooseAudio(t *testing.T) {
	head := []string{"v=0", "o=- 1 1 IN IP4 192.0.2.10", "s=-", "c=IN IP4 192.0.2.10", "t=0 0"}
	offer := func(lines ...string) []byte { return annSDP(append(append([]string{}, head...), lines...)...) }
	tests := []struct {
		name    string
		body    []byte
		want    AudioChoice
		wantErr error
	}{
		{name: "PCMA only", body: offer("m=audio 4000 RTP/AVP 8", "a=rtpmap:8 PCMA/8000"),
			want: AudioChoice{Codec: CodecPCMA, PT: 8, Remote: netip.MustParseAddrPort("192.0.2.10:4000")}},
		{name: "PCMU then PCMA", body: offer("m=audio 4000 RTP/AVP 0 8 101", "a=rtpmap:101 telephone-event/8000"),
			want: AudioChoice{Codec: CodecPCMU, PT: 0, Remote: netip.MustParseAddrPort("192.0.2.10:4000")}},
		{name: "caller prefers PCMA", body: offer("m=audio 4000 RTP/AVP 9 8 0"),
			want: AudioChoice{Codec: CodecPCMA, PT: 8, Remote: netip.MustParseAddrPort("192.0.2.10:4000")}},
		{name: "dynamic PCMU", body: offer("m=audio 4000 RTP/AVP 96", "a=rtpmap:96 pcmu/8000/1"),
			want: AudioChoice{Codec: CodecPCMU, PT: 96, Remote: netip.MustParseAddrPort("192.0.2.10:4000")}},
		{name: "media c= overrides session", body: offer("m=audio 4000 RTP/AVP 0", "c=IN IP4 198.51.100.7"),
			want: AudioChoice{Codec: CodecPCMU, PT: 0, Remote: netip.MustParseAddrPort("198.51.100.7:4000")}},
		{name: "video first, second audio used", body: offer("m=video 5000 RTP/AVP 96", "m=audio 0 RTP/AVP 0", "m=audio 6000/2 RTP/AVP 8"),
			want: AudioChoice{Index: 2, Codec: CodecPCMA, PT: 8, Remote: netip.MustParseAddrPort("192.0.2.10:6000")}},
		{name: "recvonly caller", body: offer("a=recvonly", "m=audio 4000 RTP/AVP 0"),
			want: AudioChoice{Codec: CodecPCMU, PT: 0, Remote: netip.MustParseAddrPort("192.0.2.10:4000")}},
		{name: "IPv6", body: annSDP("v=0", "o=- 1 1 IN IP6 2001:db8::1", "s=-", "c=IN IP6 2001:db8::1", "t=0 0", "m=audio 4000 RTP/AVP 8 0"),
			want: AudioChoice{Codec: CodecPCMA, PT: 8, Remote: netip.MustParseAddrPort("[2001:db8::1]:4000")}},
		{name: "LF line ends", body: []byte("v=0\nc=IN IP4 192.0.2.1\nm=audio 4000 RTP/AVP 0\n"),
			want: AudioChoice{Codec: CodecPCMU, PT: 0, Remote: netip.MustParseAddrPort("192.0.2.1:4000")}},

		{name: "no common codec", body: offer("m=audio 4000 RTP/AVP 9 18 96", "a=rtpmap:96 opus/48000/2"), wantErr: ErrNoCommonCodec},
		{name: "PCMU at wrong rate", body: offer("m=audio 4000 RTP/AVP 96", "a=rtpmap:96 PCMU/16000"), wantErr: ErrNoCommonCodec},
		{name: "pt 0 remapped", body: offer("m=audio 4000 RTP/AVP 0", "a=rtpmap:0 G722/8000"), wantErr: ErrNoCommonCodec},
		{name: "stream disabled", body: offer("m=audio 0 RTP/AVP 0"), wantErr: ErrNoUsableAudio},
		{name: "SRTP only", body: offer("m=audio 4000 RTP/SAVP 0"), wantErr: ErrNoUsableAudio},
		{name: "sendonly caller", body: offer("m=audio 4000 RTP/AVP 0", "a=sendonly"), wantErr: ErrNoUsableAudio},
		{name: "inactive session", body: offer("a=inactive", "m=audio 4000 RTP/AVP 0"), wantErr: ErrNoUsableAudio},
		{name: "hold address", body: offer("m=audio 4000 RTP/AVP 0", "c=IN IP4 0.0.0.0"), wantErr: ErrNoUsableAudio},
		{name: "host name", body: offer("m=audio 4000 RTP/AVP 0", "c=IN IP4 media.example.com"), wantErr: ErrNoUsableAudio},
		{name: "no c=", body: annSDP("v=0", "m=audio 4000 RTP/AVP 0"), wantErr: ErrNoUsableAudio},
		{name: "video only", body: offer("m=video 4000 RTP/AVP 31"), wantErr: ErrNoUsableAudio},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := ParseOffer(tt.body)
			if err != nil {
				t.Fatal(err)
			}
			got, err := o.ChooseAudio()
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("choice = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseOfferRejects(t *testing.T) {
	for name, body := range map[string]string{
		"empty":        "",
		"no version":   "c=IN IP4 192.0.2.1\r\nm=audio 4000 RTP/AVP 0\r\n",
		"version 1":    "v=1\r\nm=audio 4000 RTP/AVP 0\r\n",
		"no media":     "v=0\r\nc=IN IP4 192.0.2.1\r\n",
		"bad line":     "v=0\r\nhello\r\nm=audio 4000 RTP/AVP 0\r\n",
		"bad port":     "v=0\r\nm=audio 99999 RTP/AVP 0\r\n",
		"no format":    "v=0\r\nm=audio 4000 RTP/AVP\r\n",
		"bad c=":       "v=0\r\nc=IN IP4\r\nm=audio 4000 RTP/AVP 0\r\n",
		"family clash": "v=0\r\nc=IN IP4 2001:db8::1\r\nm=audio 4000 RTP/AVP 0\r\n",
		"binary":       "\x00\x01\x02",
		"too big":      "v=0\r\n" + strings.Repeat("a=x\r\n", 20000),
	} {
		if _, err := ParseOffer([]byte(body)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestOfferAnswer(t *testing.T) {
	o, err := ParseOffer(annSDP("v=0", "o=- 1 1 IN IP4 192.0.2.10", "s=-", "c=IN IP4 192.0.2.10", "t=0 0",
		"m=video 5000 RTP/AVP 96", "m=audio 4000 RTP/AVP 101 8 0", "a=rtpmap:101 telephone-event/8000"))
	if err != nil {
		t.Fatal(err)
	}
	ch, err := o.ChooseAudio()
	if err != nil {
		t.Fatal(err)
	}
	body, err := o.Answer(ch, netip.MustParseAddr("203.0.113.5"), 20002)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(body), "\r\n"), "\r\n")
	want := []string{"v=0", "o=switchboard *", "s=switchboard", "c=IN IP4 203.0.113.5", "t=0 0",
		"m=video 0 RTP/AVP 96", "m=audio 20002 RTP/AVP 8", "a=rtpmap:8 PCMA/8000", "a=sendonly", "a=ptime:20"}
	if len(lines) != len(want) {
		t.Fatalf("answer:\n%s", body)
	}
	for i, w := range want {
		if p, ok := strings.CutSuffix(w, "*"); ok && strings.HasPrefix(lines[i], p) && strings.HasSuffix(lines[i], " IN IP4 203.0.113.5") {
			continue
		}
		if lines[i] != w {
			t.Fatalf("line %d = %q, want %q in\n%s", i, lines[i], w, body)
		}
	}
	// The answer is itself valid SDP that a peer would read back the same way.
	back, err := ParseOffer(body)
	if err != nil {
		t.Fatal(err)
	}
	if m := back.Media[1]; m.Port != 20002 || m.Direction != "sendonly" || m.Addr != netip.MustParseAddr("203.0.113.5") {
		t.Fatalf("answer reads back as %+v", m)
	}
}

func TestAnswerSDP(t *testing.T) {
	body, err := AnswerSDP("2001:db8::5", 20000, CodecPCMU)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"\r\nc=IN IP6 2001:db8::5\r\n", "\r\nm=audio 20000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendonly\r\na=ptime:20\r\n"} {
		if !strings.Contains(string(body), want) {
			t.Fatalf("answer lacks %q:\n%s", want, body)
		}
	}
	for name, call := range map[string]func() ([]byte, error){
		"bad ip":      func() ([]byte, error) { return AnswerSDP("nope", 20000, CodecPCMU) },
		"unspecified": func() ([]byte, error) { return AnswerSDP("0.0.0.0", 20000, CodecPCMU) },
		"port":        func() ([]byte, error) { return AnswerSDP("192.0.2.1", 0, CodecPCMU) },
		"codec":       func() ([]byte, error) { return AnswerSDP("192.0.2.1", 20000, AudioCodec(9)) },
	} {
		if _, err := call(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzParseOffer(f *testing.F) {
	f.Add([]byte("v=0\r\nc=IN IP4 192.0.2.1\r\nm=audio 4000 RTP/AVP 0 8\r\na=rtpmap:0 PCMU/8000\r\n"))
	f.Add([]byte("v=0\r\nc=IN IP6 ::1\r\nm=audio 4000/2 RTP/AVP 96\r\na=rtpmap:96 PCMA/8000/1\r\na=recvonly\r\n"))
	f.Add([]byte("v=0\nm=video 0 RTP/AVP 31\nm=audio 1 RTP/SAVP 8\nc=IN IP4 224.2.1.1/127/3\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		o, err := ParseOffer(body)
		if err != nil {
			return
		}
		ch, err := o.ChooseAudio()
		if err != nil {
			return
		}
		if c := ch.Codec; (c != CodecPCMU && c != CodecPCMA) || !ch.Remote.Addr().IsValid() || ch.Remote.Port() == 0 {
			t.Fatalf("bad choice %+v", ch)
		}
		ans, err := o.Answer(ch, netip.MustParseAddr("192.0.2.99"), 20000)
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseOffer(ans)
		if err != nil || len(back.Media) != len(o.Media) {
			t.Fatalf("answer does not mirror the offer (%v):\n%s", err, ans)
		}
	})
}
