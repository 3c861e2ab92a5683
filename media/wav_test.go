package media

import (
	"bytes"
	"encoding/binary"
	"flag"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var updateAnnouncement = flag.Bool("update-announcement", false, "regenerate configs/announcement.wav")

// annWAVSpec describes a WAV file for annBuildWAV; the test writes its own files rather than
// shipping binary fixtures, so each case says exactly what is in it.
type annWAVSpec struct {
	tag      uint16
	channels uint16
	rate     uint32
	bits     uint16
	data     []byte
	extra    [][]byte // raw chunks (id+size+body) inserted before "fmt "
	noFmt    bool
	noData   bool
	dataSize int // declared size of the data chunk when >= 0 and different from len(data)
}

func annBuildWAV(s annWAVSpec) []byte {
	var body bytes.Buffer
	body.WriteString("WAVE")
	for _, c := range s.extra {
		body.Write(c)
	}
	le := binary.LittleEndian
	if !s.noFmt {
		align := s.channels * (s.bits / 8)
		f := make([]byte, 16)
		le.PutUint16(f[0:], s.tag)
		le.PutUint16(f[2:], s.channels)
		le.PutUint32(f[4:], s.rate)
		le.PutUint32(f[8:], s.rate*uint32(align))
		le.PutUint16(f[12:], align)
		le.PutUint16(f[14:], s.bits)
		body.WriteString("fmt ")
		_ = binary.Write(&body, le, uint32(len(f)))
		body.Write(f)
	}
	if !s.noData {
		size := len(s.data)
		if s.dataSize > 0 {
			size = s.dataSize
		}
		body.WriteString("data")
		_ = binary.Write(&body, le, uint32(size))
		body.Write(s.data)
	}
	var out bytes.Buffer
	out.WriteString("RIFF")
	_ = binary.Write(&out, le, uint32(body.Len()))
	out.Write(body.Bytes())
	return out.Bytes()
}

// annPCM16 encodes samples as little-endian 16-bit; with channels > 1 each sample is repeated.
func annPCM16(samples []int16, channels int) []byte {
	b := make([]byte, 0, 2*len(samples)*channels)
	for _, s := range samples {
		for range channels {
			b = binary.LittleEndian.AppendUint16(b, uint16(s))
		}
	}
	return b
}

func annTone(hz float64, rate, n int, amp float64) []int16 {
	s := make([]int16, n)
	for i := range s {
		s[i] = int16(math.Round(amp * math.Sin(2*math.Pi*hz*float64(i)/float64(rate))))
	}
	return s
}

func TestLoadWAV(t *testing.T) {
	oneSec := annTone(440, 8000, 8000, 8000)
	tests := []struct {
		name    string
		file    []byte
		frames  int    // expected frames when accepted
		wantErr string // substring of the error when rejected
	}{
		{name: "8 kHz mono", file: annBuildWAV(annWAVSpec{tag: 1, channels: 1, rate: 8000, bits: 16, data: annPCM16(oneSec, 1)}), frames: 50},
		{name: "partial frame padded", file: annBuildWAV(annWAVSpec{tag: 1, channels: 1, rate: 8000, bits: 16, data: annPCM16(oneSec[:170], 1)}), frames: 2},
		{name: "16 kHz mono resampled", file: annBuildWAV(annWAVSpec{tag: 1, channels: 1, rate: 16000, bits: 16, data: annPCM16(annTone(440, 16000, 16000, 8000), 1)}), frames: 50},
		{name: "44.1 kHz stereo converted", file: annBuildWAV(annWAVSpec{tag: 1, channels: 2, rate: 44100, bits: 16, data: annPCM16(annTone(440, 44100, 44100, 8000), 2)}), frames: 50},
		{name: "extensible PCM", file: annExtensibleWAV(1, annPCM16(oneSec, 1)), frames: 50},
		{name: "odd-sized chunk before fmt", file: annBuildWAV(annWAVSpec{tag: 1, channels: 1, rate: 8000, bits: 16, data: annPCM16(oneSec, 1),
			extra: [][]byte{[]byte("LIST\x03\x00\x00\x00abc\x00")}}), frames: 50},

		{name: "not RIFF", file: []byte("ID3\x03hello this is an mp3"), wantErr: "not a WAV file"},
		{name: "empty", file: nil, wantErr: "not a WAV file"},
		{name: "RIFX", file: []byte("RIFX\x00\x00\x00\x00WAVE"), wantErr: "big-endian"},
		{name: "8-bit", file: annBuildWAV(annWAVSpec{tag: 1, channels: 1, rate: 8000, bits: 8, data: make([]byte, 800)}), wantErr: "8-bit PCM is not supported"},
		{name: "24-bit", file: annBuildWAV(annWAVSpec{tag: 1, channels: 1, rate: 8000, bits: 24, data: make([]byte, 2400)}), wantErr: "24-bit PCM is not supported"},
		{name: "A-law WAV", file: annBuildWAV(annWAVSpec{tag: 6, channels: 1, rate: 8000, bits: 8, data: make([]byte, 800)}), wantErr: "A-law WAV is not supported"},
		{name: "µ-law WAV", file: annBuildWAV(annWAVSpec{tag: 7, channels: 1, rate: 8000, bits: 8, data: make([]byte, 800)}), wantErr: "µ-law WAV is not supported"},
		{name: "float WAV", file: annBuildWAV(annWAVSpec{tag: 3, channels: 1, rate: 8000, bits: 32, data: make([]byte, 3200)}), wantErr: "floating-point"},
		{name: "ADPCM", file: annBuildWAV(annWAVSpec{tag: 2, channels: 1, rate: 8000, bits: 4, data: make([]byte, 400)}), wantErr: "format 0x0002"},
		{name: "extensible A-law", file: annExtensibleWAV(6, make([]byte, 800)), wantErr: "A-law WAV"},
		{name: "4 kHz", file: annBuildWAV(annWAVSpec{tag: 1, channels: 1, rate: 4000, bits: 16, data: make([]byte, 800)}), wantErr: "sample rate 4000 Hz"},
		{name: "no channels", file: annBuildWAV(annWAVSpec{tag: 1, channels: 0, rate: 8000, bits: 16, data: make([]byte, 800)}), wantErr: "0 channels"},
		{name: "truncated data", file: annBuildWAV(annWAVSpec{tag: 1, channels: 1, rate: 8000, bits: 16, data: make([]byte, 800), dataSize: 16000}), wantErr: "truncated"},
		{name: "half a sample", file: annBuildWAV(annWAVSpec{tag: 1, channels: 1, rate: 8000, bits: 16, data: make([]byte, 801)}), wantErr: "truncated"},
		{name: "truncated header", file: annBuildWAV(annWAVSpec{tag: 1, channels: 1, rate: 8000, bits: 16, data: make([]byte, 800)})[:30], wantErr: "truncated"},
		{name: "no fmt", file: annBuildWAV(annWAVSpec{noFmt: true, data: make([]byte, 800)}), wantErr: `"data" chunk before "fmt "`},
		{name: "no data", file: annBuildWAV(annWAVSpec{tag: 1, channels: 1, rate: 8000, bits: 16, noData: true}), wantErr: `no "data" chunk`},
		{name: "empty data", file: annBuildWAV(annWAVSpec{tag: 1, channels: 1, rate: 8000, bits: 16}), wantErr: "no audio"},
	}
	dir := t.TempDir()
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "_")+".wav")
			if err := os.WriteFile(path, tt.file, 0o600); err != nil {
				t.Fatal(err)
			}
			a, err := LoadWAV(path)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("case %d: accepted, want error containing %q", i, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), path) {
					t.Fatalf("error %q should name %s and contain %q", err, path, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if a.Frames() != tt.frames || len(a.Samples) != tt.frames*160 || a.Path != path {
				t.Fatalf("frames = %d, samples = %d, path %q; want %d frames", a.Frames(), len(a.Samples), a.Path, tt.frames)
			}
			for f := range a.Frames() {
				u, al := a.Frame(CodecPCMU, f), a.Frame(CodecPCMA, f)
				if len(u) != 160 || len(al) != 160 {
					t.Fatalf("frame %d: %d/%d bytes, want 160", f, len(u), len(al))
				}
				for j := range 160 {
					s := a.Samples[f*160+j]
					if u[j] != LinearToMuLaw(s) || al[j] != LinearToALaw(s) {
						t.Fatalf("frame %d byte %d not the G.711 encoding of sample %d", f, j, s)
					}
				}
			}
		})
	}
}

func annExtensibleWAV(subformat uint16, data []byte) []byte {
	le := binary.LittleEndian
	f := make([]byte, 40)
	le.PutUint16(f[0:], 0xFFFE)
	le.PutUint16(f[2:], 1)
	le.PutUint32(f[4:], 8000)
	le.PutUint32(f[8:], 16000)
	le.PutUint16(f[12:], 2)
	le.PutUint16(f[14:], 16)
	le.PutUint16(f[16:], 22)
	le.PutUint16(f[18:], 16)
	le.PutUint16(f[24:], subformat) // SubFormat GUID starts with the format tag
	var b bytes.Buffer
	b.WriteString("WAVEfmt ")
	_ = binary.Write(&b, le, uint32(len(f)))
	b.Write(f)
	b.WriteString("data")
	_ = binary.Write(&b, le, uint32(len(data)))
	b.Write(data)
	return append(append([]byte("RIFF"), le.AppendUint32(nil, uint32(b.Len()))...), b.Bytes()...)
}

func TestLoadWAVMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.wav")
	if _, err := LoadWAV(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("err = %v, want one naming %s", err, path)
	}
}

func TestWAVConversion(t *testing.T) {
	// Stereo with different channels: the mixdown is their mean.
	left, right := int16(1000), int16(-3000)
	var data []byte
	for range 441 {
		data = binary.LittleEndian.AppendUint16(data, uint16(left))
		data = binary.LittleEndian.AppendUint16(data, uint16(right))
	}
	a, err := ParseWAV(annBuildWAV(annWAVSpec{tag: 1, channels: 2, rate: 44100, bits: 16, data: data}))
	if err != nil {
		t.Fatal(err)
	}
	if a.SourceRate != 44100 || a.SourceChannels != 2 {
		t.Fatalf("source = %d Hz × %d", a.SourceRate, a.SourceChannels)
	}
	// 441 samples at 44.1 kHz are 10 ms: 80 samples at 8 kHz, then silence to a whole frame.
	for i, s := range a.Samples {
		want := int16(-1000)
		if i >= 80 {
			want = 0
		}
		if s != want {
			t.Fatalf("sample %d = %d, want %d", i, s, want)
		}
	}
	// A 1 kHz tone at 48 kHz keeps its frequency: count zero crossings in one second.
	a, err = ParseWAV(annBuildWAV(annWAVSpec{tag: 1, channels: 1, rate: 48000, bits: 16, data: annPCM16(annTone(1000, 48000, 48000, 10000), 1)}))
	if err != nil {
		t.Fatal(err)
	}
	crossings := 0
	for i := 1; i < 8000; i++ {
		if (a.Samples[i-1] < 0) != (a.Samples[i] < 0) {
			crossings++
		}
	}
	if crossings < 1990 || crossings > 2010 {
		t.Fatalf("%d zero crossings in 1 s, want about 2000 for 1 kHz", crossings)
	}
}

func TestG711KnownValues(t *testing.T) {
	tests := []struct {
		in         int16
		ulaw, alaw byte
	}{
		{0, 0xFF, 0xD5},
		{1, 0xFF, 0xD5},
		{-1, 0x7F, 0x55},
		{8, 0xFE, 0xD5},
		{16, 0xFD, 0xD4},
		{-8, 0x7E, 0x55},
		{256, 0xE7, 0xC5},
		{8159, 0x9F, 0x8A},
		{32767, 0x80, 0xAA},
		{-32768, 0x00, 0x2A},
		{-32767, 0x00, 0x2A},
	}
	for _, tt := range tests {
		if got := LinearToMuLaw(tt.in); got != tt.ulaw {
			t.Errorf("µ-law(%d) = %#02x, want %#02x", tt.in, got, tt.ulaw)
		}
		if got := LinearToALaw(tt.in); got != tt.alaw {
			t.Errorf("A-law(%d) = %#02x, want %#02x", tt.in, got, tt.alaw)
		}
	}
}

// Reference decoders written from the G.711 tables, to check the encoders on every input.
func muLawToLinear(b byte) int {
	u := ^b
	exp, mant := int(u>>4)&7, int(u&0x0F)
	mag := ((mant<<3)+0x84)<<exp - 0x84
	if u&0x80 != 0 {
		return -mag
	}
	return mag
}

func aLawToLinear(b byte) int {
	a := b ^ 0x55
	exp, mant := int(a>>4)&7, int(a&0x0F)
	mag := mant<<4 + 8
	if exp > 0 {
		mag = (mant<<4 + 0x108) << (exp - 1)
	}
	if a&0x80 != 0 {
		return mag
	}
	return -mag
}

func TestG711AllSamples(t *testing.T) {
	for _, law := range []struct {
		name   string
		enc    func(int16) byte
		dec    func(byte) int
		maxErr int
	}{
		{"µ-law", LinearToMuLaw, muLawToLinear, 1024}, // top segment step; clipping above 32635 adds < 700
		{"A-law", LinearToALaw, aLawToLinear, 1024},
	} {
		prev := math.MinInt
		for x := math.MinInt16; x <= math.MaxInt16; x++ {
			code := law.enc(int16(x))
			y := law.dec(code)
			if d := y - x; d > law.maxErr || d < -law.maxErr {
				t.Fatalf("%s: %d → %#02x → %d, error %d", law.name, x, code, y, d)
			}
			if abs := max(x, -x); abs < 64 && max(y-x, x-y) > 16 {
				t.Fatalf("%s: small value %d → %d, too coarse", law.name, x, y)
			}
			if y < prev {
				t.Fatalf("%s: not monotonic at %d: %d after %d", law.name, x, y, prev)
			}
			prev = y
			if law.dec(law.enc(int16(y))) != y { // compare values: µ-law has +0 and -0

				t.Fatalf("%s: decoded value %d of %#02x does not re-encode to it", law.name, y, code)
			}
		}
	}
}

// announcementSamples is the sample announcement in configs/: the ITU-T E.180 special
// information tone (950, 1400, 1800 Hz, 330 ms each) twice, then silence, 2 s in all at
// 8 kHz. It says "this call cannot be completed" in any language.
func announcementSamples() []int16 {
	const rate, segment, ramp = 8000, 2640, 40 // 330 ms segments, 5 ms fades against clicks
	out := make([]int16, 0, 16000)
	for range 2 {
		for _, hz := range []float64{950, 1400, 1800} {
			for i := range segment {
				g := min(1, float64(i)/ramp, float64(segment-1-i)/ramp)
				v := 0.3 * 32767 * g * math.Sin(2*math.Pi*hz*float64(i)/rate)
				out = append(out, int16(math.Round(v)))
			}
		}
	}
	return append(out, make([]int16, 16000-len(out))...)
}

// TestAnnouncementWAV checks the sample file in configs/; -update-announcement rewrites it.
func TestAnnouncementWAV(t *testing.T) {
	path := filepath.Join("..", "configs", "announcement.wav")
	want := announcementSamples()
	if *updateAnnouncement {
		if err := os.WriteFile(path, annBuildWAV(annWAVSpec{tag: 1, channels: 1, rate: 8000, bits: 16, data: annPCM16(want, 1)}), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	a, err := LoadWAV(path)
	if err != nil {
		t.Fatal(err)
	}
	if a.SourceRate != 8000 || a.SourceChannels != 1 || a.Frames() != 100 {
		t.Fatalf("%s: %d Hz × %d, %d frames; want 8000 Hz mono, 100 frames", path, a.SourceRate, a.SourceChannels, a.Frames())
	}
	for i, s := range a.Samples {
		// ±1: fused multiply-add on some CPUs may round the last bit differently.
		if d := int(s) - int(want[i]); d > 1 || d < -1 {
			t.Fatalf("sample %d = %d, want %d (run go test -run TestAnnouncementWAV -update-announcement)", i, s, want[i])
		}
	}
}

func FuzzParseWAV(f *testing.F) {
	f.Add(annBuildWAV(annWAVSpec{tag: 1, channels: 1, rate: 8000, bits: 16, data: make([]byte, 320)}))
	f.Add(annBuildWAV(annWAVSpec{tag: 1, channels: 2, rate: 44100, bits: 16, data: make([]byte, 400)}))
	f.Add(annExtensibleWAV(1, make([]byte, 10)))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := ParseWAV(data)
		if err != nil {
			return
		}
		if a.Frames() == 0 || len(a.Samples)%160 != 0 || len(a.Frame(CodecPCMA, a.Frames()-1)) != 160 {
			t.Fatalf("accepted audio with %d samples", len(a.Samples))
		}
	})
}
