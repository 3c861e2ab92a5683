package contacts

import (
	"regexp"
	"testing"
)

var e164Re = regexp.MustCompile(`^\+[1-9]\d{6,14}$`)

// FuzzNormalize checks the invariants every caller relies on: no panic on
// any input, E164 is well formed, and reading an E164 result again gives
// the same number (so stored keys are stable).
func FuzzNormalize(f *testing.F) {
	for _, s := range []string{
		"030 1234567", "+49 (0)30 1234567", "0049301234567", "437-555-1234567",
		"437-555-1234 (Jane's Number)", "1-800-FLOWERS", "tel:+1-201-555-0123;ext=44",
		"tel:1234567;phone-context=+4930", "212-555-0100 ext. 123", "2345", "",
		"+", "(((", "tel:;;;", "x1", "0\u00a00", "+800 1234 5678", "+882 1234 5678",
	} {
		f.Add(s, "DE")
		f.Add(s, "US")
	}
	f.Add("01 23 45 67 89", "FR")
	f.Add("044 668 18 00", "CH")
	f.Add("020 7946 0958", "gb")
	// Found by fuzzing: a national number starting with the trunk prefix
	// after an IDD, and input with no digits and a bogus region.
	f.Add("00000000", "")
	f.Add(".", "0")
	n, err := NewNumbers("DE", []string{"1xx", "2xxx"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, raw, region string) {
		got, err := n.Normalize(raw, region)
		if got.Raw != raw {
			t.Fatalf("Raw %q, want %q", got.Raw, raw)
		}
		if err != nil {
			if got.E164 != "" {
				t.Fatalf("rejected %q but E164 %q", raw, got.E164)
			}
			return
		}
		if got.Internal {
			if got.E164 != "" {
				t.Fatalf("internal %q has E164 %q", raw, got.E164)
			}
			return
		}
		if !e164Re.MatchString(got.E164) {
			t.Fatalf("Normalize(%q, %q).E164 = %q, not E.164", raw, region, got.E164)
		}
		again, err := n.Normalize(got.E164, region)
		if err != nil || again.E164 != got.E164 {
			t.Fatalf("Normalize(%q) = %q, %v; want it unchanged (from %q)", got.E164, again.E164, err, raw)
		}
	})
}
