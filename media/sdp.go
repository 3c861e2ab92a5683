package media

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Errors from Offer.ChooseAudio. Either means the caller cannot hear an announcement, so the
// call is rejected without one (SPEC §1).
var (
	// ErrNoCommonCodec: the offer has an audio stream we could send to, but neither PCMU nor PCMA.
	ErrNoCommonCodec = errors.New("sdp: no codec in common (need PCMU or PCMA)")
	// ErrNoUsableAudio: no audio stream we could send plain RTP to (none, port 0, SRTP only,
	// sendonly/inactive, or no IP connection address).
	ErrNoUsableAudio = errors.New("sdp: no usable audio stream")
)

// maxSDPBytes bounds the offer we read; SIP over UDP cannot carry more anyway.
const maxSDPBytes = 64 << 10

// Offer is the part of an SDP offer (RFC 4566, RFC 3264) needed to answer it with an
// announcement: every m= line, in order, since an answer must mirror them (RFC 3264 §6).
type Offer struct {
	Media []OfferMedia
}

// OfferMedia is one m= line of an offer with the attributes that apply to it.
type OfferMedia struct {
	// Type is the media type: audio, video, …
	Type string
	// Port is the RTP port the offerer receives on; 0 means the stream is disabled (RFC 3264 §5.1).
	Port int
	// Proto is the transport, e.g. RTP/AVP.
	Proto string
	// Formats are the raw format tokens of the m= line, in the offerer's order of preference.
	Formats []string
	// RTPMap maps payload types to their "encoding/clock[/channels]" from a=rtpmap (RFC 4566 §6).
	RTPMap map[uint8]string
	// Addr is the connection address in force for this stream: the media c= line, else the
	// session one (RFC 4566 §5.7). Invalid when absent or not an IP address (e.g. a host name).
	Addr netip.Addr
	// Direction is sendrecv, sendonly, recvonly or inactive (RFC 3264 §5.1; default sendrecv).
	Direction string
}

// AudioChoice is the stream and codec picked from an offer for an announcement.
type AudioChoice struct {
	// Index is the position of the chosen m= line in Offer.Media.
	Index int
	// Codec is the G.711 law the audio is sent in.
	Codec AudioCodec
	// PT is the payload type the offer uses for Codec (usually 0 or 8, possibly dynamic).
	PT uint8
	// Remote is where RTP goes: the stream's connection address and port.
	Remote netip.AddrPort
}

// ParseOffer reads the SDP body of an INVITE. It is lenient about attributes it does not
// need and strict about what it uses: a malformed m= or c= line is an error. It never panics.
func ParseOffer(body []byte) (Offer, error) {
	if len(body) > maxSDPBytes {
		return Offer{}, fmt.Errorf("sdp: body of %d bytes exceeds %d", len(body), maxSDPBytes)
	}
	var (
		o          Offer
		sessAddr   netip.Addr
		sessDir    = "sendrecv"
		cur        *OfferMedia
		mediaAddr  []bool // whether each stream had its own c= line
		mediaDir   []bool // whether each stream had its own direction attribute
		sawVersion bool
	)
	for n, line := range bytes.Split(body, []byte("\n")) {
		line = bytes.TrimRight(line, "\r")
		if len(line) == 0 {
			continue
		}
		if len(line) < 2 || line[1] != '=' {
			return Offer{}, fmt.Errorf("sdp: line %d: not <type>=<value>", n+1)
		}
		val := string(line[2:])
		switch line[0] {
		case 'v':
			if val != "0" {
				return Offer{}, fmt.Errorf("sdp: line %d: unsupported version %q", n+1, val)
			}
			sawVersion = true
		case 'c':
			addr, err := parseConnection(val)
			if err != nil {
				return Offer{}, fmt.Errorf("sdp: line %d: %w", n+1, err)
			}
			if cur == nil {
				sessAddr = addr
			} else {
				cur.Addr = addr
				mediaAddr[len(mediaAddr)-1] = true
			}
		case 'm':
			m, err := parseMediaLine(val)
			if err != nil {
				return Offer{}, fmt.Errorf("sdp: line %d: %w", n+1, err)
			}
			o.Media = append(o.Media, m)
			mediaAddr = append(mediaAddr, false)
			mediaDir = append(mediaDir, false)
			cur = &o.Media[len(o.Media)-1]
		case 'a':
			name, value, _ := strings.Cut(strings.TrimSpace(val), ":")
			switch name {
			case "sendrecv", "sendonly", "recvonly", "inactive":
				if cur == nil {
					sessDir = name
				} else {
					cur.Direction = name
					mediaDir[len(mediaDir)-1] = true
				}
			case "rtpmap":
				if cur == nil {
					continue // rtpmap is a media-level attribute only (RFC 4566 §6)
				}
				pt, enc, ok := parseRTPMap(value)
				if ok {
					cur.RTPMap[pt] = enc
				}
			}
		}
	}
	if !sawVersion {
		return Offer{}, errors.New("sdp: no v= line")
	}
	if len(o.Media) == 0 {
		return Offer{}, errors.New("sdp: no m= line")
	}
	for i := range o.Media {
		if !mediaAddr[i] {
			o.Media[i].Addr = sessAddr
		}
		if !mediaDir[i] {
			o.Media[i].Direction = sessDir
		}
	}
	return o, nil
}

// parseConnection reads "IN IP4 192.0.2.1[/ttl[/n]]" or "IN IP6 2001:db8::1" (RFC 4566 §5.7).
// A host name is allowed by the RFC; it yields an invalid Addr, since resolving names is not
// something to do while a call waits.
func parseConnection(v string) (netip.Addr, error) {
	f := strings.Fields(v)
	if len(f) != 3 || f[0] != "IN" || (f[1] != "IP4" && f[1] != "IP6") {
		return netip.Addr{}, fmt.Errorf("bad c= line %q", v)
	}
	host, _, _ := strings.Cut(f[2], "/")
	addr, err := netip.ParseAddr(host)
	if err != nil || addr.Zone() != "" {
		return netip.Addr{}, nil
	}
	if (f[1] == "IP4") != addr.Unmap().Is4() {
		return netip.Addr{}, fmt.Errorf("c= address %s does not match address type %s", host, f[1])
	}
	return addr.Unmap(), nil
}

// parseMediaLine reads "audio 49170[/2] RTP/AVP 0 8 97" (RFC 4566 §5.14).
func parseMediaLine(v string) (OfferMedia, error) {
	f := strings.Fields(v)
	if len(f) < 4 {
		return OfferMedia{}, fmt.Errorf("bad m= line %q: need media, port, proto and a format", v)
	}
	portStr, _, _ := strings.Cut(f[1], "/")
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return OfferMedia{}, fmt.Errorf("bad m= port %q", f[1])
	}
	return OfferMedia{
		Type:    f[0],
		Port:    int(port),
		Proto:   f[2],
		Formats: f[3:],
		RTPMap:  map[uint8]string{},
	}, nil
}

// parseRTPMap reads "97 PCMU/8000[/1]".
func parseRTPMap(v string) (uint8, string, bool) {
	ptStr, enc, ok := strings.Cut(strings.TrimSpace(v), " ")
	if !ok {
		return 0, "", false
	}
	pt, err := strconv.ParseUint(ptStr, 10, 7)
	if err != nil {
		return 0, "", false
	}
	return uint8(pt), strings.TrimSpace(enc), true
}

// PayloadTypes returns the m= line's formats that are RTP payload types (0–127), in order.
func (m OfferMedia) PayloadTypes() []uint8 {
	pts := make([]uint8, 0, len(m.Formats))
	for _, f := range m.Formats {
		if pt, err := strconv.ParseUint(f, 10, 7); err == nil {
			pts = append(pts, uint8(pt))
		}
	}
	return pts
}

// codecFor says which G.711 law payload type pt carries: its a=rtpmap when present, else the
// static assignments of RFC 3551 §6 (0 = PCMU, 8 = PCMA).
func (m OfferMedia) codecFor(pt uint8) (AudioCodec, bool) {
	enc, ok := m.RTPMap[pt]
	if !ok {
		switch pt {
		case 0:
			return CodecPCMU, true
		case 8:
			return CodecPCMA, true
		}
		return 0, false
	}
	parts := strings.Split(enc, "/")
	if len(parts) < 2 || parts[1] != "8000" || (len(parts) == 3 && parts[2] != "1") || len(parts) > 3 {
		return 0, false
	}
	switch {
	case strings.EqualFold(parts[0], "PCMU"):
		return CodecPCMU, true
	case strings.EqualFold(parts[0], "PCMA"):
		return CodecPCMA, true
	}
	return 0, false
}

// usableForAnnouncement says whether we can send plain RTP on this stream.
func (m OfferMedia) usableForAnnouncement() bool {
	switch {
	case m.Type != "audio" || m.Port == 0:
		return false
	case m.Proto != "RTP/AVP" && m.Proto != "RTP/AVPF": // SRTP needs keys we do not negotiate
		return false
	case m.Direction == "sendonly" || m.Direction == "inactive":
		// RFC 3264 §6.1: the answer to sendonly/inactive cannot be sendonly, so we may not send.
		return false
	case !m.Addr.IsValid() || m.Addr.IsUnspecified() || m.Addr.IsMulticast():
		// 0.0.0.0 is the old hold convention (RFC 3264 §8.4); multicast is not a caller.
		return false
	}
	return true
}

// ChooseAudio picks the first usable audio stream and, on it, the first of PCMU or PCMA in the
// caller's order of preference (RFC 3264 §6.1: the answerer should honour the offer's order).
// The error wraps ErrNoCommonCodec or ErrNoUsableAudio.
func (o Offer) ChooseAudio() (AudioChoice, error) {
	usable := false
	for i, m := range o.Media {
		if !m.usableForAnnouncement() {
			continue
		}
		usable = true
		for _, pt := range m.PayloadTypes() {
			if c, ok := m.codecFor(pt); ok {
				return AudioChoice{
					Index:  i,
					Codec:  c,
					PT:     pt,
					Remote: netip.AddrPortFrom(m.Addr, uint16(m.Port)),
				}, nil
			}
		}
	}
	if usable {
		return AudioChoice{}, ErrNoCommonCodec
	}
	return AudioChoice{}, ErrNoUsableAudio
}

// Answer builds the SDP answer for an announcement sent from local:port. Following RFC 3264
// §6 it has one m= line per offered stream, in order: the chosen one with its single codec and
// a=sendonly (we only play), every other one rejected with port 0.
func (o Offer) Answer(ch AudioChoice, local netip.Addr, port int) ([]byte, error) {
	if !local.IsValid() || local.IsUnspecified() {
		return nil, fmt.Errorf("sdp: answer needs a concrete local address, got %v", local)
	}
	if port <= 0 || port > 65535 {
		return nil, fmt.Errorf("sdp: answer port %d out of range", port)
	}
	if ch.Index < 0 || ch.Index >= len(o.Media) {
		return nil, fmt.Errorf("sdp: chosen stream %d not in offer of %d streams", ch.Index, len(o.Media))
	}
	local = local.Unmap()
	family := "IP4"
	if local.Is6() {
		family = "IP6"
	}
	var id [8]byte
	_, _ = rand.Read(id[:]) // never fails (crypto/rand)
	// o= session id: any number unique enough; version starts at it (RFC 4566 §5.2).
	sess := binary.BigEndian.Uint64(id[:]) >> 2
	var b strings.Builder
	fmt.Fprintf(&b, "v=0\r\no=switchboard %d %d IN %s %s\r\ns=switchboard\r\nc=IN %s %s\r\nt=0 0\r\n",
		sess, sess, family, local, family, local)
	for i, m := range o.Media {
		if i != ch.Index {
			fmt.Fprintf(&b, "m=%s 0 %s %s\r\n", sanitizeToken(m.Type), sanitizeToken(m.Proto), sanitizeToken(m.Formats[0]))
			continue
		}
		fmt.Fprintf(&b, "m=audio %d %s %d\r\na=rtpmap:%d %s/8000\r\na=sendonly\r\na=ptime:20\r\n",
			port, sanitizeToken(m.Proto), ch.PT, ch.PT, ch.Codec)
	}
	return []byte(b.String()), nil
}

// sanitizeToken keeps offer tokens echoed into the answer from carrying line breaks or
// spaces; ParseOffer's field splitting already guarantees that, this is belt and braces.
func sanitizeToken(s string) string {
	return strings.Map(func(r rune) rune {
		if r <= ' ' || r == 0x7f {
			return -1
		}
		return r
	}, s)
}

// AnswerSDP builds a one-stream answer: audio on localIP:localPort in codec c (static
// payload type 0 or 8), sendonly, 20 ms packets. Use Offer.Answer to answer a real offer,
// which mirrors the offer's other streams as RFC 3264 §6 requires.
func AnswerSDP(localIP string, localPort int, c AudioCodec) ([]byte, error) {
	if c != CodecPCMU && c != CodecPCMA {
		return nil, fmt.Errorf("sdp: unsupported codec %v", c)
	}
	ip, err := netip.ParseAddr(localIP)
	if err != nil {
		return nil, fmt.Errorf("sdp: local address: %w", err)
	}
	o := Offer{Media: []OfferMedia{{Type: "audio", Port: 1, Proto: "RTP/AVP", Formats: []string{strconv.Itoa(int(c))}}}}
	return o.Answer(AudioChoice{Codec: c, PT: uint8(c)}, ip, localPort)
}
