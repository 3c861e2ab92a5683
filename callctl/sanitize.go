package callctl

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Length bounds for values written into SIP headers. A display name longer
// than a phone can show is useless, and unbounded values from the network
// would let one caller inflate every message and record we write.
const (
	MaxDisplayName = 64  // runes, before quoting
	MaxHeaderValue = 256 // runes
)

// SanitizeHeaderValue makes s safe to write as a SIP header value (SPEC §5):
// CR, LF and every other control or invalid character is dropped (so a value
// can never end the header and start another, RFC 3261 §7.3.1), runs of
// white space collapse to one space, and the result is trimmed and bounded to
// MaxHeaderValue runes.
func SanitizeHeaderValue(s string) string {
	return clean(s, MaxHeaderValue)
}

// CleanDisplayName is a display name with control characters removed and its
// length bounded, not yet quoted: the form kept on the call and shown on the
// board. QuoteDisplayName turns it into a quoted-string.
func CleanDisplayName(s string) string {
	return clean(s, MaxDisplayName)
}

// QuoteDisplayName returns s as an RFC 3261 §25.1 quoted-string for the
// display-name of From or P-Asserted-Identity: cleaned like
// CleanDisplayName, then double quotes and backslashes escaped with a
// backslash and the whole wrapped in double quotes. An empty name gives "".
func QuoteDisplayName(s string) string {
	s = CleanDisplayName(s)
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for _, r := range s {
		if r == '"' || r == '\\' {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	b.WriteByte('"')
	return b.String()
}

// clean drops control and invalid characters, folds white space and bounds
// the result to max runes.
func clean(s string, max int) string {
	var b strings.Builder
	b.Grow(len(s))
	n := 0
	space := false
	for i, w := 0, 0; i < len(s) && n < max; i += w {
		r, size := utf8.DecodeRuneInString(s[i:])
		w = size
		switch {
		case r == utf8.RuneError && size <= 1:
			continue
		case unicode.IsSpace(r):
			// Tabs and line breaks become a space so words stay apart; a
			// line break never survives.
			space = b.Len() > 0
			continue
		case unicode.IsControl(r), unicode.Is(unicode.Cf, r):
			// Cf covers bidi overrides and zero-width characters, which
			// would make the board show something else than the PBX.
			continue
		}
		if space {
			if n+1 >= max {
				break
			}
			b.WriteByte(' ')
			n++
			space = false
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}
