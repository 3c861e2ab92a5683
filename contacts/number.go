// Package contacts owns phone numbers (normalisation) and the contact store.
package contacts

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/nyaruka/phonenumbers"
)

// Number is a phone number as received and in its normal forms.
type Number struct {
	Raw           string // as received
	E164          string // +4930123456; empty for internal extensions
	National      string // national display form
	International string // international display form
	Ext           string // extension suffix (x123, ext. 123), not part of E164
	Internal      bool   // matched an internal extension pattern
	// Valid is true when the number is valid in libphonenumber's metadata,
	// not merely of a possible length. Normalize accepts possible numbers
	// (see Normalize); importers may warn on !Valid.
	Valid bool
}

// ErrUnreadable is wrapped by every *NumberError, so callers can test for a
// rejected number with errors.Is without caring about the reason.
var ErrUnreadable = errors.New("unreadable number")

// NumberError says why a number was rejected. Reason is meant for people
// (an import report prints it next to the row).
type NumberError struct {
	Raw    string
	Reason string
}

// Error implements error.
func (e *NumberError) Error() string {
	return fmt.Sprintf("contacts: number %q: %s", e.Raw, e.Reason)
}

// Unwrap lets errors.Is(err, ErrUnreadable) match.
func (e *NumberError) Unwrap() error { return ErrUnreadable }

// Limits on input. No E.164 number has more than 15 digits (ITU-T E.164 §6);
// a national form with trunk or international prefixes needs a few more.
// Longer input is rejected before any parsing work.
const (
	maxInputLen  = 96
	maxDigits    = 20
	maxExtDigits = 10
	cacheSize    = 4096
)

// Numbers normalises numbers with a default region and internal patterns.
// It is safe for concurrent use.
type Numbers struct {
	Region   string
	Internal []string

	patterns []string // upper-cased copies of Internal, checked

	mu    sync.RWMutex
	cache map[cacheKey]Number // successful results without Raw and Ext
}

type cacheKey struct {
	region string
	input  string // cleaned: optional '+' and digits
}

// NewNumbers checks the region and the internal extension patterns.
// region may be empty: then only numbers with a country code are read.
// A pattern is digits and x (any digit), matched against the whole number.
func NewNumbers(region string, internal []string) (*Numbers, error) {
	region = strings.ToUpper(strings.TrimSpace(region))
	if region != "" && phonenumbers.GetCountryCodeForRegion(region) == 0 {
		return nil, fmt.Errorf("contacts: region %q: not a known country code (ISO 3166-1 alpha-2)", region)
	}
	n := &Numbers{Region: region, Internal: internal, cache: make(map[cacheKey]Number)}
	for i, p := range internal {
		p = strings.ToLower(strings.TrimSpace(p))
		if p == "" {
			return nil, fmt.Errorf("contacts: internal[%d]: empty pattern", i)
		}
		if len(p) > maxDigits {
			return nil, fmt.Errorf("contacts: internal[%d] %q: longer than %d characters", i, p, maxDigits)
		}
		for j := 0; j < len(p); j++ {
			if c := p[j]; c != 'x' && (c < '0' || c > '9') {
				return nil, fmt.Errorf("contacts: internal[%d] %q: only digits and x (any digit) are allowed", i, p)
			}
		}
		n.patterns = append(n.patterns, p)
	}
	return n, nil
}

// IsInternal reports whether digits (no '+', no separators) match one of
// the internal extension patterns, length included.
func (n *Numbers) IsInternal(digits string) bool {
	for _, p := range n.patterns {
		if matchPattern(p, digits) {
			return true
		}
	}
	return false
}

func matchPattern(p, s string) bool {
	if len(p) != len(s) {
		return false
	}
	for i := 0; i < len(p); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return false
		}
		if p[i] != 'x' && p[i] != c {
			return false
		}
	}
	return true
}

// Normalize reads raw with region (or the default region when empty).
//
// Accepted: national forms read with the region (030 1234567 in DE),
// international forms (+49…, or the region's international prefix: 0049…
// in DE, 011 49… in US), the visual separators of RFC 3966 §5.1.1 plus
// spaces, slashes and brackets, tel: URIs (RFC 3966, with phone-context and
// ext), and an extension suffix (x123, ext. 123, ;ext=123) which goes to
// Ext and never into E164. A number matching an internal pattern is
// Internal with no E164.
//
// Rejected with a *NumberError, never guessed: empty input, letters
// (vanity numbers such as 1-800-FLOWERS included: the letter-to-digit map
// is not the same on every keypad), trailing text, an unknown country code,
// and a length that is impossible for the country.
//
// A number of a possible length that libphonenumber's metadata does not
// list as valid is accepted (Valid=false): carriers present numbers from
// ranges opened after the metadata was published, and rejecting them would
// lose the caller's identity for blocking and the contact trace. Lengths
// are what the metadata knows for sure, so those are enforced.
func (n *Numbers) Normalize(raw, region string) (Number, error) {
	num, err := n.normalize(raw, region, true)
	if err != nil {
		// Only the raw form survives a rejection: half-read fields would
		// invite guessing downstream.
		return Number{Raw: raw}, err
	}
	return num, nil
}

// NormalizeStrict is Normalize that also rejects numbers the metadata does
// not list as valid (an unassigned range, or a length that is possible in
// the country but wrong for its area code, such as a 9-digit London
// number). Meant for data typed by people (imports, the API, config),
// where an invalid number is a typo; signalling from carriers goes through
// the lenient Normalize.
func (n *Numbers) NormalizeStrict(raw, region string) (Number, error) {
	num, err := n.Normalize(raw, region)
	if err != nil || num.Internal || num.Valid {
		return num, err
	}
	reason := "not a valid number (unassigned range or wrong length for its area code)"
	if r := regionOfE164(num.E164); r != "" {
		reason = "not a valid number for " + r + " (unassigned range or wrong length for its area code)"
	}
	return Number{Raw: raw}, reject(raw, reason)
}

func regionOfE164(e164 string) string {
	pn, err := phonenumbers.Parse(e164, "")
	if err != nil {
		return ""
	}
	r := phonenumbers.GetRegionCodeForCountryCode(int(pn.GetCountryCode()))
	if r == "ZZ" || r == "001" {
		return ""
	}
	return r
}

// NormalizeKey is Normalize without the National and International display
// forms, which cost as much as the parse itself: for bulk work (imports)
// that only needs the E.164 key and the extension.
func (n *Numbers) NormalizeKey(raw, region string) (Number, error) {
	num, err := n.normalize(raw, region, false)
	if err != nil {
		return Number{Raw: raw}, err
	}
	return num, nil
}

func (n *Numbers) normalize(raw, region string, display bool) (Number, error) {
	out := Number{Raw: raw}
	s := strings.TrimSpace(raw)
	if s == "" {
		return out, reject(raw, "empty")
	}
	if len(s) > maxInputLen {
		return out, reject(raw, "too long to be a phone number")
	}

	var ctx string // RFC 3966 phone-context with a global number prefix
	var err error
	if len(s) >= 4 && strings.EqualFold(s[:4], "tel:") {
		s, ctx, out.Ext, err = splitTel(raw, s[4:])
	} else {
		s, out.Ext, err = splitExt(raw, s)
	}
	if err != nil {
		return out, err
	}

	var buf [1 + 2*maxDigits]byte
	b := buf[:0]
	if ctx != "" {
		// RFC 3966 §5.1.5: a local number with a global phone-context is
		// the context's digits followed by the local digits.
		cb, plus, cerr := cleanNumber(raw, ctx, b)
		if cerr != nil || !plus || len(cb) < 2 {
			return out, reject(raw, "phone-context is not a global number")
		}
		b = cb
	}
	b, plus, err := cleanNumber(raw, s, b)
	if err != nil {
		return out, err
	}
	if plus && ctx != "" {
		// A global number ignores its phone-context (RFC 3966 §5.1.5):
		// the context digits went in first, so start over.
		b, _, _ = cleanNumber(raw, s, buf[:0])
	}
	ndigits := len(b)
	if ndigits > 0 && b[0] == '+' {
		ndigits--
	}
	if ndigits == 0 {
		return out, reject(raw, "no digits")
	}
	if ndigits > maxDigits {
		return out, reject(raw, "too many digits")
	}

	if b[0] != '+' && len(n.patterns) > 0 && n.IsInternal(string(b)) {
		out.Internal = true
		return out, nil
	}

	if region == "" {
		region = n.Region
	} else if !isUpper(region) {
		region = strings.ToUpper(region)
	}
	if b[0] != '+' && region == "" {
		return out, reject(raw, "national number and no region to read it with")
	}

	key := cacheKey{region: region, input: string(b)}
	n.mu.RLock()
	hit, ok := n.cache[key]
	n.mu.RUnlock()
	if ok {
		hit.Raw, hit.Ext = out.Raw, out.Ext
		return hit, nil
	}

	res, err := parse(raw, key.input, region, display)
	if err != nil {
		return out, err
	}
	if !display {
		// Only complete results go into the cache that the call path reads.
		res.Raw, res.Ext = out.Raw, out.Ext
		return res, nil
	}
	n.mu.Lock()
	if len(n.cache) >= cacheSize {
		// Bounded: a flood of distinct numbers must not grow memory. A
		// wholesale reset is crude but keeps the hot path lock-cheap.
		clear(n.cache)
	}
	n.cache[key] = res
	n.mu.Unlock()
	res.Raw, res.Ext = out.Raw, out.Ext
	return res, nil
}

// parse runs libphonenumber on a cleaned number ('+' and digits).
func parse(raw, input, region string, display bool) (Number, error) {
	var out Number
	if region != "" && phonenumbers.GetCountryCodeForRegion(region) == 0 {
		return out, reject(raw, fmt.Sprintf("unknown region %q", region))
	}
	var pn phonenumbers.PhoneNumber
	if err := phonenumbers.ParseToNumber(input, region, &pn); err != nil {
		switch {
		case errors.Is(err, phonenumbers.ErrInvalidCountryCode):
			return out, reject(raw, "unknown country code")
		case errors.Is(err, phonenumbers.ErrTooShortNSN), errors.Is(err, phonenumbers.ErrTooShortAfterIDD):
			return out, reject(raw, "too short")
		case errors.Is(err, phonenumbers.ErrNumTooLong):
			return out, reject(raw, "too long")
		default:
			return out, reject(raw, "not a phone number")
		}
	}
	country := phonenumbers.GetRegionCodeForCountryCode(int(pn.GetCountryCode()))
	switch phonenumbers.IsPossibleNumberWithReason(&pn) {
	case phonenumbers.IS_POSSIBLE:
	case phonenumbers.TOO_SHORT:
		return out, reject(raw, "too short for "+countryName(country, &pn))
	case phonenumbers.TOO_LONG:
		return out, reject(raw, "too long for "+countryName(country, &pn))
	case phonenumbers.INVALID_COUNTRY_CODE:
		return out, reject(raw, "unknown country code")
	case phonenumbers.IS_POSSIBLE_LOCAL_ONLY:
		return out, reject(raw, "local number without area code")
	default:
		return out, reject(raw, "wrong length for "+countryName(country, &pn))
	}
	out.E164 = phonenumbers.Format(&pn, phonenumbers.E164)
	// E.164 §6: at most 15 digits; shorter than 7 is no public number
	// anywhere outside a few micro-states' internal plans.
	if l := len(out.E164); l < 8 || l > 16 {
		return Number{}, reject(raw, "wrong length for "+countryName(country, &pn))
	}
	out.Valid = phonenumbers.IsValidNumber(&pn)
	if !out.Valid {
		// Outside the metadata's ranges libphonenumber may read its own
		// E.164 output differently (a national number starting with the
		// trunk prefix 0 loses it on the second pass). A stored key must
		// be stable, so such a number is refused rather than guessed.
		var again phonenumbers.PhoneNumber
		if err := phonenumbers.ParseToNumber(out.E164, "", &again); err != nil ||
			phonenumbers.Format(&again, phonenumbers.E164) != out.E164 {
			return Number{}, reject(raw, "not a phone number (national number starts with a trunk prefix)")
		}
	}
	if display {
		out.National = phonenumbers.Format(&pn, phonenumbers.NATIONAL)
		out.International = phonenumbers.Format(&pn, phonenumbers.INTERNATIONAL)
	}
	return out, nil
}

func countryName(region string, pn *phonenumbers.PhoneNumber) string {
	if region == "" || region == "ZZ" || region == "001" {
		return fmt.Sprintf("country code +%d", pn.GetCountryCode())
	}
	return region
}

func reject(raw, reason string) error {
	return &NumberError{Raw: raw, Reason: reason}
}

func isUpper(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 'a' && s[i] <= 'z' {
			return false
		}
	}
	return true
}

// splitTel reads the body of a tel: URI (RFC 3966 §3): the number, then
// ;param=value pairs. Only ext and phone-context matter here; isdn-subaddress
// and unknown parameters are ignored as §3 allows.
func splitTel(raw, s string) (num, ctx, ext string, err error) {
	num = s
	if i := strings.IndexByte(s, ';'); i >= 0 {
		num = s[:i]
		params := s[i+1:]
		for params != "" {
			var p string
			p, params, _ = strings.Cut(params, ";")
			k, v, _ := strings.Cut(p, "=")
			switch {
			case strings.EqualFold(k, "ext"):
				ext = v
			case strings.EqualFold(k, "phone-context"):
				ctx = v
			}
		}
	}
	if ext != "" {
		if ext, err = checkExt(raw, ext); err != nil {
			return "", "", "", err
		}
	}
	if ctx != "" && ctx[0] != '+' {
		// A domain name context (RFC 3966 §5.1.5) says nothing about the
		// country: the number is read with the region like any national one.
		ctx = ""
	}
	if strings.TrimSpace(num) == "" {
		return "", "", "", reject(raw, "empty")
	}
	return num, ctx, ext, nil
}

// checkExt strips visual separators from an extension and requires digits.
func checkExt(raw, ext string) (string, error) {
	n := 0
	for i := 0; i < len(ext); i++ {
		switch c := ext[i]; {
		case c >= '0' && c <= '9':
			n++
		case c == '-' || c == '.' || c == ' ':
		default:
			return "", reject(raw, "extension is not a number")
		}
	}
	if n == 0 {
		return "", reject(raw, "empty extension")
	}
	if n > maxExtDigits {
		return "", reject(raw, "extension too long")
	}
	if n == len(ext) {
		return ext, nil
	}
	b := make([]byte, 0, n)
	for i := 0; i < len(ext); i++ {
		if c := ext[i]; c >= '0' && c <= '9' {
			b = append(b, c)
		}
	}
	return string(b), nil
}

// extMarkers are the extension prefixes read after a number, longest first
// so that "ext" is not taken for "x".
var extMarkers = [...]string{"extension", "ext", "x"}

// splitExt separates an extension suffix (;ext=123, x123, ext. 123,
// extension 123) from the number.
func splitExt(raw, s string) (num, ext string, err error) {
	if i := indexFold(s, ";ext="); i >= 0 {
		ext, err = checkExt(raw, s[i+5:])
		return s[:i], ext, err
	}
	j := len(s)
	for j > 0 && isDigit(s[j-1]) {
		j--
	}
	if j == len(s) || j == 0 {
		return s, "", nil
	}
	k := j
	for k > 0 && (s[k-1] == ' ' || s[k-1] == '.' || s[k-1] == ':') {
		k--
	}
	for _, m := range extMarkers {
		if k < len(m) || !strings.EqualFold(s[k-len(m):k], m) {
			continue
		}
		start := k - len(m)
		if start > 0 && isLetter(s[start-1]) {
			// Part of a word (FLOWERS x12 is not an extension marker).
			return s, "", nil
		}
		ext, err = checkExt(raw, s[j:])
		if err != nil {
			return "", "", err
		}
		if strings.TrimSpace(s[:start]) == "" {
			return "", "", reject(raw, "empty")
		}
		return s[:start], ext, nil
	}
	return s, "", nil
}

func indexFold(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if strings.EqualFold(s[i:i+len(sub)], sub) {
			return i
		}
	}
	return -1
}

func isDigit(c byte) bool  { return c >= '0' && c <= '9' }
func isLetter(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }

// cleanNumber appends the digits of s (with a leading '+' when s is
// international) to b, skipping visual separators, and rejects anything
// else. It reports whether the number carried a '+'.
func cleanNumber(raw, s string, b []byte) ([]byte, bool, error) {
	plus := false
	seenDigit := false
	depth := 0
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case isDigit(c):
			if len(b) >= cap(b) {
				return b, plus, reject(raw, "too many digits")
			}
			b = append(b, c)
			seenDigit = true
			i++
		case c == '+':
			if plus || seenDigit {
				return b, plus, reject(raw, "misplaced '+'")
			}
			plus = true
			b = append(b, '+')
			i++
		case c == ' ' || c == '\t' || c == '-' || c == '.' || c == '/':
			i++
		case c == '(' || c == '[':
			depth++
			i++
		case c == ')' || c == ']':
			depth--
			if depth < 0 {
				return b, plus, reject(raw, "unbalanced brackets")
			}
			i++
		case isLetter(c):
			return b, plus, rejectText(raw, s, i, seenDigit)
		case c < utf8.RuneSelf:
			return b, plus, reject(raw, fmt.Sprintf("unexpected character %q", c))
		default:
			r, size := utf8.DecodeRuneInString(s[i:])
			if !isVisualSeparator(r) {
				if isTextRune(r) {
					return b, plus, rejectText(raw, s, i, seenDigit)
				}
				return b, plus, reject(raw, fmt.Sprintf("unexpected character %q", r))
			}
			i += size
		}
	}
	if depth != 0 {
		return b, plus, reject(raw, "unbalanced brackets")
	}
	return b, plus, nil
}

// rejectText tells trailing text ("437-555-1234 (Jane's Number)") from
// letters inside the number (vanity numbers, typos).
func rejectText(raw, s string, i int, seenDigit bool) error {
	before := strings.TrimRight(s[:i], " \t([")
	if seenDigit && len(before) < i && !strings.ContainsAny(s[i:], "0123456789") {
		return reject(raw, "trailing text after the number")
	}
	return reject(raw, "contains letters")
}

// isVisualSeparator accepts the Unicode spaces and dashes that word
// processors and vCards put between digit groups.
func isVisualSeparator(r rune) bool {
	switch r {
	case '\u00a0', '\u2007', '\u2009', '\u202f', '\u3000', // spaces
		'\u2010', '\u2011', '\u2012', '\u2013', '\u2014', '\u2015', '\u2212': // dashes, minus
		return true
	}
	return false
}

func isTextRune(r rune) bool {
	return r != utf8.RuneError && (r >= 0xc0 && r < 0x2000)
}

// ExactKey reads a number typed by a user (CLI, API) into the form the
// block list matches calls on: E.164 for public numbers, the digits of an
// internal extension. National numbers are read with n.Region.
func (n *Numbers) ExactKey(raw string) (string, error) {
	num, err := n.Normalize(raw, n.Region)
	if err != nil {
		return "", err
	}
	if num.Internal || num.E164 == "" {
		return strings.Map(func(r rune) rune {
			if r >= '0' && r <= '9' {
				return r
			}
			return -1
		}, num.Raw), nil
	}
	return num.E164, nil
}
