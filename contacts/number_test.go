package contacts

import (
	"errors"
	"strings"
	"testing"
)

func newTestNumbers(t testing.TB) *Numbers {
	t.Helper()
	n, err := NewNumbers("DE", []string{"1xx", "2xxx"})
	if err != nil {
		t.Fatalf("NewNumbers: %v", err)
	}
	return n
}

func TestNormalize(t *testing.T) {
	n := newTestNumbers(t)
	tests := []struct {
		raw, region string
		e164        string // expected E.164 when accepted
		national    string // expected national form, when checked
		intl        string // expected international form, when checked
		ext         string
		internal    bool
		reason      string // substring of the rejection reason; empty = accepted
	}{
		// Germany.
		{raw: "030 1234567", region: "DE", e164: "+49301234567", national: "030 1234567", intl: "+49 30 1234567"},
		{raw: "0049 30 1234567", region: "DE", e164: "+49301234567"},
		{raw: "+49 30 1234567", region: "DE", e164: "+49301234567"},
		{raw: "+49 (0)30 1234567", region: "", e164: "+49301234567"},
		{raw: "(030) 1234567", region: "DE", e164: "+49301234567"},
		{raw: "030/1234567", region: "DE", e164: "+49301234567"},
		{raw: "030.123.4567", region: "DE", e164: "+49301234567"},
		{raw: "030-123 45-67", region: "DE", e164: "+49301234567"},
		{raw: "0301234567", region: "", e164: "+49301234567"}, // default region
		{raw: "+49 30 1234567", region: "de", e164: "+49301234567"},
		{raw: "0151 12345678", region: "DE", e164: "+4915112345678", intl: "+49 1511 2345678"},
		{raw: "030\u00a01234567", region: "DE", e164: "+49301234567"},
		{raw: "030\u20131234567", region: "DE", e164: "+49301234567"},
		{raw: "+49 30 1234567 x 99", region: "DE", e164: "+49301234567", ext: "99"},
		{raw: "030 1234567-0", region: "DE", e164: "+493012345670"},
		{raw: "+49 30 12345678901234567", region: "DE", reason: "too many digits"},
		{raw: "030 1234567 #", region: "DE", reason: "unexpected character"},
		{raw: "123", region: "DE", internal: true},
		{raw: "2345", region: "DE", internal: true},
		{raw: "21234", region: "US", reason: "too short for US"}, // not 2xxx: length counts
		// United States.
		{raw: "(212) 555-0100", region: "US", e164: "+12125550100", national: "(212) 555-0100", intl: "+1 212-555-0100"},
		{raw: "212.555.0100", region: "US", e164: "+12125550100"},
		{raw: "1 212 555 0100", region: "US", e164: "+12125550100"},
		{raw: "+1 (212) 555-0100", region: "DE", e164: "+12125550100"},
		{raw: "011 49 30 1234567", region: "US", e164: "+49301234567"},
		{raw: "212-555-0100 x123", region: "US", e164: "+12125550100", ext: "123"},
		{raw: "212-555-0100 ext. 123", region: "US", e164: "+12125550100", ext: "123"},
		{raw: "212-555-0100 extension 7", region: "US", e164: "+12125550100", ext: "7"},
		{raw: "212-555-0100;ext=123", region: "US", e164: "+12125550100", ext: "123"},
		{raw: "437-555-1234", region: "US", e164: "+14375551234"},
		{raw: "437-555-1234567", region: "US", reason: "too long for US"},
		{raw: "437-555-1234 (Jane's Number)", region: "US", reason: "trailing text"},
		{raw: "1-800-FLOWERS", region: "US", reason: "contains letters"},
		{raw: "212 555 010", region: "US", reason: "too short for US"},
		{raw: "555-1234", region: "US", reason: "local number without area code"},
		// United Kingdom.
		{raw: "020 7946 0958", region: "GB", e164: "+442079460958", national: "020 7946 0958", intl: "+44 20 7946 0958"},
		{raw: "+44 (0)20 7946 0958", region: "DE", e164: "+442079460958"},
		{raw: "07700 900123", region: "GB", e164: "+447700900123"},
		{raw: "0800 123 4567", region: "GB", e164: "+448001234567"},
		{raw: "00 44 20 7946 0958", region: "GB", e164: "+442079460958"},
		{raw: "020 7946 09581234", region: "GB", reason: "too long for GB"},
		// France.
		{raw: "01 23 45 67 89", region: "FR", e164: "+33123456789", national: "01 23 45 67 89", intl: "+33 1 23 45 67 89"},
		{raw: "06.12.34.56.78", region: "FR", e164: "+33612345678"},
		{raw: "0033 6 12 34 56 78", region: "FR", e164: "+33612345678"},
		{raw: "01 23 45 67", region: "FR", reason: "too short for FR"},
		{raw: "+33 1 23 45 67 89 0", region: "", reason: "too long for FR"},
		// Switzerland.
		{raw: "044 668 18 00", region: "CH", e164: "+41446681800", national: "044 668 18 00", intl: "+41 44 668 18 00"},
		{raw: "+41 79 123 45 67", region: "DE", e164: "+41791234567"},
		{raw: "0041 44 668 18 00", region: "CH", e164: "+41446681800"},
		{raw: "+41 44 668 18 00 ext. 12", region: "DE", e164: "+41446681800", ext: "12"},
		{raw: "044 668 18", region: "CH", reason: "too short for CH"},
		{raw: "+4199999999", region: "", reason: "too short for CH"}, // masked in a carrier trace
		// tel: URIs (RFC 3966).
		{raw: "tel:+49-30-1234567", region: "", e164: "+49301234567"},
		{raw: "TEL:+33612345678", region: "", e164: "+33612345678"},
		{raw: "tel:+1-201-555-0123;ext=44", region: "DE", e164: "+12015550123", ext: "44"},
		{raw: "tel:1234567;phone-context=+4930", region: "", e164: "+49301234567"},
		{raw: "tel:0301234567;phone-context=example.com", region: "DE", e164: "+49301234567"},
		{raw: "tel:+41446681800;phone-context=+49", region: "", e164: "+41446681800"},
		{raw: "tel:12345678901;phone-context=+86;noa=subscriber", region: "", e164: "+8612345678901"},
		{raw: "tel:7042;phone-context=example.com", region: "DE", reason: "wrong length for DE"},
		{raw: "tel:abc", region: "", reason: "contains letters"},
		{raw: "tel:;ext=1", region: "", reason: "empty"},
		{raw: "tel:1234;phone-context=+", region: "", reason: "phone-context"},
		{raw: "tel:+49301234567;ext=1a", region: "", reason: "extension is not a number"},
		// Anything else.
		{raw: "", region: "DE", reason: "empty"},
		{raw: "   ", region: "DE", reason: "empty"},
		{raw: "+", region: "DE", reason: "no digits"},
		{raw: "++49301234567", region: "", reason: "misplaced '+'"},
		{raw: "+49+301234567", region: "", reason: "misplaced '+'"},
		{raw: "(030 1234567", region: "DE", reason: "unbalanced brackets"},
		{raw: "030) 1234567", region: "DE", reason: "unbalanced brackets"},
		{raw: "+999 123456", region: "", reason: "unknown country code"},
		{raw: "0301234567", region: "XX", reason: "unknown region"},
		{raw: "Jane 030 1234567", region: "DE", reason: "contains letters"},
		{raw: "030 1234567 Zentrale", region: "DE", reason: "trailing text"},
		{raw: "ext 12", region: "DE", reason: "empty"},
		{raw: "2x45", region: "DE", reason: "not a phone number"},
		{raw: strings.Repeat("1", 200), region: "DE", reason: "too long to be a phone number"},
	}
	for _, tc := range tests {
		t.Run(tc.region+"/"+tc.raw, func(t *testing.T) {
			got, err := n.Normalize(tc.raw, tc.region)
			if got.Raw != tc.raw {
				t.Errorf("Raw = %q, want %q", got.Raw, tc.raw)
			}
			if tc.reason != "" {
				var ne *NumberError
				if !errors.As(err, &ne) {
					t.Fatalf("Normalize = %+v, %v; want *NumberError with %q", got, err, tc.reason)
				}
				if !strings.Contains(ne.Reason, tc.reason) {
					t.Errorf("reason = %q, want it to contain %q", ne.Reason, tc.reason)
				}
				if ne.Raw != tc.raw || !errors.Is(err, ErrUnreadable) {
					t.Errorf("error %v: Raw %q, Is(ErrUnreadable) %v", err, ne.Raw, errors.Is(err, ErrUnreadable))
				}
				if got.E164 != "" || got.Ext != "" || got.Internal {
					t.Errorf("rejected number carries %+v", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("Normalize: %v", err)
			}
			if got.E164 != tc.e164 || got.Ext != tc.ext || got.Internal != tc.internal {
				t.Errorf("got E164 %q Ext %q Internal %v, want %q %q %v", got.E164, got.Ext, got.Internal, tc.e164, tc.ext, tc.internal)
			}
			if tc.national != "" && got.National != tc.national {
				t.Errorf("National = %q, want %q", got.National, tc.national)
			}
			if tc.intl != "" && got.International != tc.intl {
				t.Errorf("International = %q, want %q", got.International, tc.intl)
			}
			if tc.internal && (got.National != "" || got.International != "") {
				t.Errorf("internal number has display forms %+v", got)
			}
		})
	}
}

// The cache must not leak one call's Raw or Ext into another's result.
func TestNormalizeCacheKeepsRawAndExt(t *testing.T) {
	n := newTestNumbers(t)
	for _, tc := range []struct{ raw, ext string }{
		{"030 1234567 x1", "1"},
		{"030-1234567", ""},
		{"030 1234567;ext=22", "22"},
	} {
		t.Run(tc.raw, func(t *testing.T) {
			got, err := n.Normalize(tc.raw, "DE")
			if err != nil {
				t.Fatal(err)
			}
			if got.Raw != tc.raw || got.Ext != tc.ext || got.E164 != "+49301234567" {
				t.Errorf("got %+v", got)
			}
		})
	}
}

func TestNormalizeStrict(t *testing.T) {
	n := newTestNumbers(t)
	tests := []struct {
		raw, region, e164, reason string
	}{
		{raw: "020 7946 0958", region: "GB", e164: "+442079460958"},
		{raw: "020 7946 095", region: "GB", reason: "not a valid number for GB"}, // possible length, wrong for London
		{raw: "(555) 123-4567", region: "US", reason: "not a valid number for US"},
		{raw: "2345", region: "DE"}, // internal stays accepted
		{raw: "437-555-1234567", region: "US", reason: "too long"},
	}
	for _, tc := range tests {
		t.Run(tc.raw, func(t *testing.T) {
			lenient, lerr := n.Normalize(tc.raw, tc.region)
			got, err := n.NormalizeStrict(tc.raw, tc.region)
			if tc.reason != "" {
				var ne *NumberError
				if !errors.As(err, &ne) || !strings.Contains(ne.Reason, tc.reason) {
					t.Fatalf("NormalizeStrict = %+v, %v; want reason %q", got, err, tc.reason)
				}
				if lerr == nil && lenient.Valid {
					t.Errorf("lenient result is Valid but strict rejects it")
				}
				return
			}
			if err != nil || got.E164 != tc.e164 {
				t.Errorf("NormalizeStrict = %+v, %v; want %q", got, err, tc.e164)
			}
		})
	}
}

func TestNewNumbers(t *testing.T) {
	tests := []struct {
		name     string
		region   string
		internal []string
		wantErr  string
	}{
		{name: "ok", region: "DE", internal: []string{"1xx", "2XXX", "555"}},
		{name: "no region", region: ""},
		{name: "lower case region", region: "ch"},
		{name: "unknown region", region: "QQ", wantErr: "not a known country"},
		{name: "empty pattern", region: "DE", internal: []string{"1xx", " "}, wantErr: "internal[1]: empty"},
		{name: "bad pattern", region: "DE", internal: []string{"1?x"}, wantErr: "only digits and x"},
		{name: "long pattern", region: "DE", internal: []string{strings.Repeat("x", 21)}, wantErr: "longer than"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewNumbers(tc.region, tc.internal)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("NewNumbers: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("NewNumbers error = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func TestNormalizeWithoutRegion(t *testing.T) {
	n, err := NewNumbers("", nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ raw, e164, reason string }{
		{raw: "+49 30 1234567", e164: "+49301234567"},
		{raw: "030 1234567", reason: "no region"},
		{raw: "123", reason: "no region"}, // no internal patterns configured
	}
	for _, tc := range tests {
		t.Run(tc.raw, func(t *testing.T) {
			got, err := n.Normalize(tc.raw, "")
			if tc.reason != "" {
				if err == nil || !strings.Contains(err.Error(), tc.reason) {
					t.Fatalf("Normalize = %+v, %v; want %q", got, err, tc.reason)
				}
				return
			}
			if err != nil || got.E164 != tc.e164 {
				t.Fatalf("Normalize = %+v, %v; want %q", got, err, tc.e164)
			}
		})
	}
}

func TestNormalizeConcurrent(t *testing.T) {
	n := newTestNumbers(t)
	done := make(chan struct{})
	for g := 0; g < 8; g++ {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := 0; i < 200; i++ {
				if _, err := n.Normalize("030 1234567", "DE"); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	for g := 0; g < 8; g++ {
		<-done
	}
}

func BenchmarkNormalize(b *testing.B) {
	n := newTestNumbers(b)
	cases := []struct{ name, raw, region string }{
		{"national", "030 1234567", "DE"},
		{"e164", "+4915112345678", "DE"},
		{"tel", "tel:+1-201-555-0123;ext=44", "US"},
		{"internal", "2345", "DE"},
		{"rejected", "437-555-1234 (Jane's Number)", "US"},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, _ = n.Normalize(c.raw, c.region)
			}
		})
	}
	// Uncached: every call a new number, as under a flood of distinct callers.
	b.Run("uncached", func(b *testing.B) {
		b.ReportAllocs()
		raws := make([]string, 10000)
		for i := range raws {
			raws[i] = "+4930" + strings.Repeat("0", 3) + itoa(1000+i)
		}
		i := 0
		for b.Loop() {
			_, _ = n.Normalize(raws[i%len(raws)], "DE")
			i++
		}
	})
}

func itoa(i int) string {
	var b [20]byte
	p := len(b)
	for i > 0 || p == len(b) {
		p--
		b[p] = byte('0' + i%10)
		i /= 10
	}
	return string(b[p:])
}

// TestNormalizeKeyMatchesNormalize checks the bulk path gives the same key,
// extension and errors as the full one.
func TestNormalizeKeyMatchesNormalize(t *testing.T) {
	n, err := NewNumbers("DE", []string{"1xx"})
	if err != nil {
		t.Fatal(err)
	}
	for _, raw := range []string{"030 1234567", "+49 (0)30 1234567", "0049301234567 x12", "tel:+1-201-555-0123", "101", "437-555-1234567", "abc"} {
		full, ferr := n.Normalize(raw, "")
		key, kerr := n.NormalizeKey(raw, "")
		if (ferr == nil) != (kerr == nil) || full.E164 != key.E164 || full.Ext != key.Ext || full.Internal != key.Internal {
			t.Errorf("%q: Normalize %+v %v, NormalizeKey %+v %v", raw, full, ferr, key, kerr)
		}
		if key.National != "" && key.E164 != "" {
			if again, _ := n.Normalize(raw, ""); again.National == "" {
				t.Errorf("%q: the key path left an incomplete entry in the cache", raw)
			}
		}
	}
}
