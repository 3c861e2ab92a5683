// Package emergency knows emergency calls (SPEC §1 "Emergency calls always
// go through"): which dialled numbers reach the emergency services of a
// trunk's region, and where a call back from them must go. It knows no SIP:
// the sip package and the call pipeline ask it with plain strings.
package emergency

import (
	"strconv"
	"strings"
	"sync"

	"github.com/nyaruka/phonenumbers"
)

// Numbers recognises emergency numbers. It is built once per config
// (numbers.outside_prefix, emergency.numbers) and asked on every outbound
// INVITE, so it keeps no state a call could change.
type Numbers struct {
	outside string
	extra   map[string]bool
	codes   sync.Map // region → its country code ("49"), "" when none
}

// NewNumbers builds the recogniser: outside is the digit string the phones
// dial for an outside line (numbers.outside_prefix, may be empty), extra
// the site's own emergency numbers (emergency.numbers) as dialled.
func NewNumbers(outside string, extra []string) *Numbers {
	n := &Numbers{outside: outside, extra: map[string]bool{}}
	for _, e := range extra {
		if d := digits(e); d != "" {
			n.extra[d] = true
		}
	}
	return n
}

// Is tells whether dialled, as the PBX sent it in the Request-URI (112,
// 0112 with the outside prefix, +49112, tel:112, sip:112@host;user=phone),
// reaches the emergency services of region (an ISO 3166 code: the trunk's
// region), or is one of the config's own numbers.
//
// The region's numbers come from libphonenumber's short-number data,
// ConnectsToEmergencyNumber: in regions where the network ignores digits
// dialled after an emergency number (Germany, the US, the UK, France...),
// "1120" connects to 112 as well, and so it is one: a call that may reach
// the emergency services is never refused. A number with the region's own
// country code (+49112 in DE) is read as the national number behind it,
// which must then be an emergency number exactly (+33 153... is a Paris
// number, not the French 15 with digits after it).
// Whether the number also matches an internal extension pattern does not
// matter: a phone that dials 112 is treated as an emergency call.
func (n *Numbers) Is(dialled, region string) bool {
	if n == nil {
		return false
	}
	region = strings.ToUpper(region)
	for _, c := range n.candidates(dialled, region) {
		if n.extra[c.digits] {
			return true
		}
		if region == "" || len(c.digits) > maxShort {
			continue
		}
		if c.exact && phonenumbers.IsEmergencyNumber(c.digits, region) ||
			!c.exact && phonenumbers.ConnectsToEmergencyNumber(c.digits, region) {
			return true
		}
	}
	return false
}

// maxShort bounds the digits worth asking the short-number data about:
// emergency numbers have 2 to 6 digits everywhere, and a couple more dialled
// after one still connect. Longer numbers (every ordinary call) are not
// looked up at all, which keeps the check cheap on the SIP path.
const maxShort = 8

// candidate is one national form a dialled number may stand for. exact
// asks for an exact match: a number written with a country code is a
// whole subscriber number, and "+33 153..." is a Paris number, not 15
// (the French ambulance) followed by digits.
type candidate struct {
	digits string
	exact  bool
}

// candidates are the national forms dialled may stand for: as dialled,
// without the outside-line prefix, and without the region's country code
// (+49 or 0049), which must then match exactly.
func (n *Numbers) candidates(dialled, region string) []candidate {
	d := digits(user(dialled))
	if d == "" {
		return nil
	}
	out := []candidate{{digits: d}}
	if n.outside != "" && strings.HasPrefix(d, n.outside) && len(d) > len(n.outside) {
		out = append(out, candidate{digits: d[len(n.outside):]})
	}
	if code := n.countryCode(region); code != "" {
		for _, c := range out {
			for _, intl := range []string{"+" + code, "00" + code} {
				if rest, ok := strings.CutPrefix(c.digits, intl); ok && rest != "" {
					out = append(out, candidate{digits: rest, exact: true})
				}
			}
		}
	}
	return out
}

// countryCode is the region's calling code, looked up once per region.
func (n *Numbers) countryCode(region string) string {
	if v, ok := n.codes.Load(region); ok {
		return v.(string)
	}
	code := ""
	if cc := phonenumbers.GetCountryCodeForRegion(region); cc > 0 {
		code = strconv.Itoa(cc)
	}
	n.codes.Store(region, code)
	return code
}

// user is the number part of a dialled string: the user part of a sip:
// or sips: URI, the number of a tel: URI, without URI parameters.
func user(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, ':'); i >= 0 {
		switch strings.ToLower(s[:i]) {
		case "tel", "sip", "sips":
			s = s[i+1:]
		}
	}
	if i := strings.IndexByte(s, '@'); i >= 0 {
		s = s[:i]
	}
	if i := strings.IndexByte(s, ';'); i >= 0 {
		s = s[:i]
	}
	return s
}

// digits keeps a leading + and the digits, dropping visual separators
// (RFC 3966 §5.1.1: - . ( ) and spaces); anything else makes it no number.
func digits(s string) string {
	var b strings.Builder
	for i, r := range s {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == '+' && i == 0:
			b.WriteRune(r)
		case r == '-' || r == '.' || r == '(' || r == ')' || r == ' ':
		default:
			return ""
		}
	}
	if b.Len() == 0 || b.String() == "+" {
		return ""
	}
	return b.String()
}
