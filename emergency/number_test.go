package emergency

import "testing"

func TestIs(t *testing.T) {
	n := NewNumbers("0", []string{"5555", "+49301234599"})
	cases := []struct {
		region, dialled string
		want            bool
	}{
		// Germany: 112 and 110, in every form a PBX sends.
		{"DE", "112", true},
		{"DE", "110", true},
		{"DE", "0112", true}, // outside-line prefix 0
		{"DE", "+49112", true},
		{"DE", "0049112", true},
		{"DE", "tel:112", true},
		{"DE", "tel:+49112", true},
		{"DE", "sip:112@127.0.0.1;user=phone", true},
		{"DE", "sip:0110@pbx.example", true},
		{"DE", "1-1-2", true},
		{"DE", "911", false},    // the US number is none in Germany
		{"DE", "0911", false},   // Nuremberg's area code, with the outside prefix
		{"DE", "+1911", false},  // another country's code: not the region's emergency number
		{"DE", "+33112", false}, // France's code from a German trunk
		// The short-number data lets digits follow an emergency number in
		// Germany (the network ignores them), so these connect.
		{"DE", "1120", true},
		{"DE", "01120", true},
		// With the country code the number must match exactly: +491123
		// is no emergency number (nor a valid German number).
		{"DE", "+491123", false},
		{"FR", "+33153000000", false}, // a Paris number, not 15 and digits
		{"FR", "0033153000000", false},
		{"DE", "030112", false},
		{"DE", "+4930112", false},
		// US: 911 and 112.
		{"US", "911", true},
		{"US", "tel:911", true},
		{"US", "+1911", true},
		{"US", "0911", true},
		{"US", "112", true},
		{"US", "999", false},
		{"US", "110", false},
		// UK: 999 and 112.
		{"GB", "999", true},
		{"GB", "+44999", true},
		{"GB", "0999", true},
		{"GB", "tel:112", true},
		{"GB", "911", false},
		// France: 15, 17, 18, 112.
		{"FR", "15", true},
		{"FR", "17", true},
		{"FR", "18", true},
		{"FR", "+33112", true},
		{"FR", "0112", true},
		{"FR", "tel:18", true},
		{"FR", "911", false},
		{"FR", "110", false},
		// The config's own numbers, in any region.
		{"DE", "5555", true},
		{"US", "05555", true},
		{"DE", "+49301234599", true},
		// Not numbers at all.
		{"DE", "", false},
		{"DE", "anonymous", false},
		{"DE", "sip:reception@pbx.example", false},
		{"DE", "+", false},
		{"", "112", false}, // no region: only the config's numbers
	}
	for _, c := range cases {
		if got := n.Is(c.dialled, c.region); got != c.want {
			t.Errorf("Is(%q, %q) = %v, want %v", c.dialled, c.region, got, c.want)
		}
	}
}

// TestIsWithoutOutsidePrefix: without numbers.outside_prefix, 0112 is
// what it is (no emergency number), 112 still is one.
func TestIsWithoutOutsidePrefix(t *testing.T) {
	n := NewNumbers("", nil)
	if n.Is("0112", "DE") {
		t.Error("0112 recognised without an outside prefix")
	}
	if !n.Is("112", "DE") {
		t.Error("112 not recognised")
	}
	var none *Numbers
	if none.Is("112", "DE") {
		t.Error("a nil recogniser recognised 112")
	}
}

func FuzzIs(f *testing.F) {
	for _, s := range []string{"112", "tel:+49112;phone-context=x", "sip:@", "+", "0", "sip:1;@"} {
		f.Add(s, "DE")
	}
	n := NewNumbers("0", []string{"5555"})
	f.Fuzz(func(t *testing.T, dialled, region string) {
		n.Is(dialled, region) // must not panic
	})
}
