package blocking

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/nyaruka/phonenumbers"
)

// NormalizeFunc reads an exact number typed by a user into the form calls
// are matched on: E.164, or the digits of an internal number. The CLI and
// the API pass the contacts normaliser.
type NormalizeFunc func(raw string) (string, error)

// NormalizeNumber reads a number or prefix given in any format (SPEC §6:
// "numbers in any format", prefixes end in *), or a SIP address or domain
// (NormalizeAddress), into an entry number.
//
// An exact number goes through normalize. A prefix is not a complete
// number, so no phone number library can read it: it is read by hand,
// with region for national prefixes: "+49 900*" and "0049900*" give
// "+49900*", and with region DE "0900*" gives "+49900*". A prefix of digits
// without a national or international prefix (internal numbers) is kept.
func NormalizeNumber(raw, region string, normalize NormalizeFunc) (string, error) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return "", fmt.Errorf("number is empty")
	}
	if IsAddress(s) {
		return NormalizeAddress(s)
	}
	if !strings.HasSuffix(s, "*") {
		n, err := normalize(s)
		if err != nil {
			// Service and emergency numbers (+49110, 112) are not numbers
			// a phone number library accepts, yet they are what allow
			// entries exist for: take them as typed when they are plain
			// digits, with or without +.
			plain := stripSeparators(s)
			if CheckNumber(plain) != nil {
				return "", fmt.Errorf("number %q: %w", raw, err)
			}
			n = plain
		}
		if err := CheckNumber(n); err != nil {
			return "", err
		}
		return n, nil
	}
	var b strings.Builder
	for i, r := range strings.TrimSuffix(s, "*") {
		switch {
		case r >= '0' && r <= '9', r == '+' && i == 0:
			b.WriteRune(r)
		case strings.ContainsRune(" -./()", r):
			// Visual separators people type in numbers.
		default:
			return "", fmt.Errorf("prefix %q: only digits, separators and a leading + may come before *", raw)
		}
	}
	p := b.String()
	switch {
	case strings.HasPrefix(p, "+"):
	case strings.HasPrefix(p, "00"):
		p = "+" + p[2:]
	case region != "" && strings.HasPrefix(p, ndd(region)) && ndd(region) != "":
		cc := phonenumbers.GetCountryCodeForRegion(strings.ToUpper(region))
		if cc == 0 {
			return "", fmt.Errorf("prefix %q: unknown region %q", raw, region)
		}
		p = "+" + strconv.Itoa(cc) + strings.TrimPrefix(p, ndd(region))
	}
	p += "*"
	if err := CheckNumber(p); err != nil {
		return "", err
	}
	return p, nil
}

// stripSeparators drops the separators people type inside numbers.
func stripSeparators(s string) string {
	return strings.Map(func(r rune) rune {
		if strings.ContainsRune(" -./()", r) {
			return -1
		}
		return r
	}, s)
}

// ndd is the national dialling prefix of region ("0" in most of Europe).
func ndd(region string) string {
	return phonenumbers.GetNddPrefixForRegion(strings.ToUpper(region), true)
}
