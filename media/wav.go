package media

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"os"
	"time"
)

// Announcement audio is sent as G.711 at 8 kHz in 20 ms packets (RFC 3551 §4.5.14, §4.2:
// the default packetization interval is 20 ms), so every frame is 160 samples = 160 bytes.
const (
	announceRate        = 8000
	announceFrame       = 160
	announcePtime       = 20 * time.Millisecond
	maxWAVBytes         = 64 << 20 // a 6-minute 44.1 kHz stereo file; bounds memory on a bad config
	maxWAVChannels      = 8
	minWAVRate          = 8000
	maxWAVRate          = 192000
	wavFormatPCM        = 0x0001
	wavFormatFloat      = 0x0003
	wavFormatALaw       = 0x0006
	wavFormatMuLaw      = 0x0007
	wavFormatExtensible = 0xFFFE
)

// AudioCodec is a G.711 variant an announcement can be sent in; its value is the static
// RTP payload type assigned by RFC 3551 §6.
type AudioCodec uint8

const (
	// CodecPCMU is G.711 µ-law, static payload type 0 (RFC 3551 §4.5.14).
	CodecPCMU AudioCodec = 0
	// CodecPCMA is G.711 A-law, static payload type 8 (RFC 3551 §4.5.14).
	CodecPCMA AudioCodec = 8
)

// String returns the RTP encoding name used in a=rtpmap (RFC 3551 §6).
func (c AudioCodec) String() string {
	switch c {
	case CodecPCMU:
		return "PCMU"
	case CodecPCMA:
		return "PCMA"
	}
	return fmt.Sprintf("codec(%d)", uint8(c))
}

// Audio is an announcement loaded once at config load and played to many callers: 8 kHz
// mono samples pre-encoded to both G.711 laws, so that playing it costs no CPU per call.
type Audio struct {
	// Path is the file the audio came from, for log lines.
	Path string
	// SourceRate and SourceChannels describe the file before conversion to 8 kHz mono.
	SourceRate, SourceChannels int
	// Samples is the linear 16-bit audio at 8 kHz mono, padded with silence to whole frames.
	Samples []int16

	pcmu, pcma []byte
}

// Frames returns the number of 20 ms frames (RTP packets) the announcement takes.
func (a *Audio) Frames() int { return len(a.Samples) / announceFrame }

// Duration returns how long the announcement plays.
func (a *Audio) Duration() time.Duration { return time.Duration(a.Frames()) * announcePtime }

// Frame returns the i-th 160-byte payload in codec c; nil when i or c is out of range.
func (a *Audio) Frame(c AudioCodec, i int) []byte {
	if i < 0 || i >= a.Frames() {
		return nil
	}
	var enc []byte
	switch c {
	case CodecPCMU:
		enc = a.pcmu
	case CodecPCMA:
		enc = a.pcma
	default:
		return nil
	}
	return enc[i*announceFrame : (i+1)*announceFrame : (i+1)*announceFrame]
}

// LoadWAV reads an announcement from a RIFF/WAVE file holding linear PCM, 16-bit. 8 kHz mono is
// used as is; other rates (8–192 kHz) and channel counts (up to 8) are converted at load
// (channels mixed down to mono, rate converted by averaging/interpolation to 8 kHz), because
// administrators record announcements with ordinary tools that default to 44.1 kHz stereo.
// Everything else (8-bit, 24-bit, float, A-law or µ-law WAV, truncated files, not RIFF) is
// rejected with an error naming the file and what is wrong.
func LoadWAV(path string) (*Audio, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("announcement %s: %w", path, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxWAVBytes+1))
	if err != nil {
		return nil, fmt.Errorf("announcement %s: read: %w", path, err)
	}
	if len(data) > maxWAVBytes {
		return nil, fmt.Errorf("announcement %s: file larger than %d MiB", path, maxWAVBytes>>20)
	}
	a, err := ParseWAV(data)
	if err != nil {
		return nil, fmt.Errorf("announcement %s: %w", path, err)
	}
	a.Path = path
	return a, nil
}

// wavFormat is the part of the "fmt " chunk we need (RIFF WAVE, Microsoft multimedia spec).
type wavFormat struct {
	tag, channels, bitsPerSample, blockAlign uint16
	rate                                     uint32
}

// ParseWAV is LoadWAV on bytes already in memory; errors do not name a file.
func ParseWAV(data []byte) (*Audio, error) {
	if len(data) < 12 || string(data[0:4]) != "RIFF" || string(data[8:12]) != "WAVE" {
		if len(data) >= 4 && string(data[0:4]) == "RIFX" {
			return nil, errors.New("big-endian RIFX WAV is not supported, need little-endian RIFF/WAVE")
		}
		return nil, errors.New("not a WAV file (no RIFF/WAVE header)")
	}
	var (
		fmtc    *wavFormat
		pcm     []byte
		gotData bool
	)
	for rest := data[12:]; len(rest) > 0 && !gotData; {
		if len(rest) < 8 {
			return nil, errors.New("truncated chunk header")
		}
		id, size := string(rest[0:4]), binary.LittleEndian.Uint32(rest[4:8])
		rest = rest[8:]
		if uint64(size) > uint64(len(rest)) {
			return nil, fmt.Errorf("truncated: chunk %q declares %d bytes, %d present", id, size, len(rest))
		}
		body := rest[:size]
		// Chunks are padded to an even length (RIFF); the pad byte may be missing at EOF.
		rest = rest[min(uint64(size)+uint64(size&1), uint64(len(rest))):]
		switch id {
		case "fmt ":
			f, err := parseWAVFormat(body)
			if err != nil {
				return nil, err
			}
			fmtc = &f
		case "data":
			if fmtc == nil {
				return nil, errors.New(`"data" chunk before "fmt " chunk`)
			}
			pcm, gotData = body, true
		}
	}
	if fmtc == nil {
		return nil, errors.New(`no "fmt " chunk`)
	}
	if !gotData {
		return nil, errors.New(`no "data" chunk`)
	}
	if len(pcm)%int(fmtc.blockAlign) != 0 {
		return nil, fmt.Errorf("truncated: data is %d bytes, not a whole number of %d-byte sample frames", len(pcm), fmtc.blockAlign)
	}
	n := len(pcm) / int(fmtc.blockAlign)
	if n == 0 {
		return nil, errors.New("no audio in data chunk")
	}
	mono := make([]int16, n)
	ch := int(fmtc.channels)
	for i := range n {
		var sum int32
		for c := range ch {
			off := i*int(fmtc.blockAlign) + 2*c
			sum += int32(int16(binary.LittleEndian.Uint16(pcm[off:])))
		}
		mono[i] = int16(sum / int32(ch))
	}
	samples := resampleTo8k(mono, int(fmtc.rate))
	if pad := len(samples) % announceFrame; pad != 0 {
		samples = append(samples, make([]int16, announceFrame-pad)...)
	}
	a := &Audio{
		SourceRate:     int(fmtc.rate),
		SourceChannels: ch,
		Samples:        samples,
		pcmu:           make([]byte, len(samples)),
		pcma:           make([]byte, len(samples)),
	}
	for i, s := range samples {
		a.pcmu[i] = LinearToMuLaw(s)
		a.pcma[i] = LinearToALaw(s)
	}
	return a, nil
}

func parseWAVFormat(b []byte) (wavFormat, error) {
	if len(b) < 16 {
		return wavFormat{}, fmt.Errorf(`truncated "fmt " chunk (%d bytes, need 16)`, len(b))
	}
	f := wavFormat{
		tag:           binary.LittleEndian.Uint16(b[0:2]),
		channels:      binary.LittleEndian.Uint16(b[2:4]),
		rate:          binary.LittleEndian.Uint32(b[4:8]),
		blockAlign:    binary.LittleEndian.Uint16(b[12:14]),
		bitsPerSample: binary.LittleEndian.Uint16(b[14:16]),
	}
	if f.tag == wavFormatExtensible {
		// WAVE_FORMAT_EXTENSIBLE: the real format tag is the first two bytes of the SubFormat GUID.
		if len(b) < 26 {
			return wavFormat{}, errors.New(`truncated WAVE_FORMAT_EXTENSIBLE "fmt " chunk`)
		}
		f.tag = binary.LittleEndian.Uint16(b[24:26])
	}
	switch f.tag {
	case wavFormatPCM:
	case wavFormatALaw:
		return f, errors.New("A-law WAV is not supported, need 16-bit linear PCM")
	case wavFormatMuLaw:
		return f, errors.New("µ-law WAV is not supported, need 16-bit linear PCM")
	case wavFormatFloat:
		return f, errors.New("floating-point WAV is not supported, need 16-bit linear PCM")
	default:
		return f, fmt.Errorf("WAV format 0x%04x is not supported, need 16-bit linear PCM", f.tag)
	}
	if f.bitsPerSample != 16 {
		return f, fmt.Errorf("%d-bit PCM is not supported, need 16-bit", f.bitsPerSample)
	}
	if f.channels == 0 || f.channels > maxWAVChannels {
		return f, fmt.Errorf("%d channels is not supported, need 1 to %d", f.channels, maxWAVChannels)
	}
	if f.rate < minWAVRate || f.rate > maxWAVRate {
		return f, fmt.Errorf("sample rate %d Hz is not supported, need %d to %d Hz", f.rate, minWAVRate, maxWAVRate)
	}
	if int(f.blockAlign) != 2*int(f.channels) {
		return f, fmt.Errorf("block align %d does not match %d channels of 16-bit", f.blockAlign, f.channels)
	}
	return f, nil
}

// resampleTo8k converts to 8 kHz. Each output sample is the mean of the input samples in
// its 1/8000 s window: a box filter that removes most of what would alias above 4 kHz,
// which is enough for speech headed for G.711's 300–3400 Hz band. Rates are bounded by
// parseWAVFormat, so the arithmetic below cannot overflow.
func resampleTo8k(in []int16, rate int) []int16 {
	if rate == announceRate {
		return in
	}
	n := len(in) * announceRate / rate
	if n == 0 {
		n = 1
	}
	out := make([]int16, n)
	for i := range out {
		lo := i * rate / announceRate
		hi := max((i+1)*rate/announceRate, lo+1)
		hi = min(hi, len(in))
		var sum int64
		for _, s := range in[lo:hi] {
			sum += int64(s)
		}
		out[i] = int16(sum / int64(hi-lo))
	}
	return out
}

// LinearToMuLaw encodes one 16-bit sample as G.711 µ-law (ITU-T G.711 table 2a): the
// magnitude plus a bias of 132 is coded as a 3-bit segment (position of its top bit) and
// 4 mantissa bits, and the byte is sent inverted.
func LinearToMuLaw(s int16) byte {
	const (
		bias = 0x84
		clip = 32635 // largest magnitude that does not overflow 15 bits with the bias
	)
	v := int32(s)
	var sign byte
	if v < 0 {
		sign, v = 0x80, -v
	}
	v = min(v, clip) + bias
	seg := bits.Len32(uint32(v>>7)) - 1 // v>>7 is in [1, 255]
	mant := byte(v>>(seg+3)) & 0x0F
	return ^(sign | byte(seg)<<4 | mant)
}

// LinearToALaw encodes one 16-bit sample as G.711 A-law (ITU-T G.711 table 1a): the 13-bit
// magnitude is coded as a 3-bit segment and 4 mantissa bits, sign bit set for positive
// values, and the even bits inverted (XOR 0x55).
func LinearToALaw(s int16) byte {
	v := int32(s)
	mask := byte(0xD5) // sign bit set for >= 0, plus the 0x55 inversion
	if v < 0 {
		mask, v = 0x55, ^v // one's complement: -1 → 0, -32768 → 32767
	}
	m := v >> 3 // 13-bit magnitude, 0..4095
	var code byte
	if m < 32 {
		code = byte(m >> 1)
	} else {
		seg := bits.Len32(uint32(m)) - 5 // 1..7
		code = byte(seg)<<4 | byte(m>>seg)&0x0F
	}
	return code ^ mask
}
