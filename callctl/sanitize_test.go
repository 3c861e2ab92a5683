package callctl

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestSanitizeHeaderValue(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"plain", "ACME GmbH", "ACME GmbH"},
		{"header injection", "Eve\r\nX-Evil: 1", "Eve X-Evil: 1"},
		{"bare LF", "a\nb", "a b"},
		{"NUL and bell", "a\x00b\x07c", "abc"},
		{"DEL", "a\x7fb", "ab"},
		{"tabs fold", "a\t\t b", "a b"},
		{"trim", "  a  ", "a"},
		{"invalid utf8", "a\xffb", "ab"},
		{"bidi override", "a\u202eb", "ab"},
		{"unicode kept", "Jürgen Müller", "Jürgen Müller"},
		{"quotes kept", `say "hi"`, `say "hi"`},
		{"empty", "", ""},
		{"only controls", "\r\n\x00", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := SanitizeHeaderValue(tt.in); got != tt.want {
				t.Errorf("SanitizeHeaderValue(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestQuoteDisplayName(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"plain", "Jane Doe", `"Jane Doe"`},
		{"empty", "", `""`},
		{"quote", `Jane "JD" Doe`, `"Jane \"JD\" Doe"`},
		{"backslash", `a\b`, `"a\\b"`},
		{"trailing backslash cannot escape the closing quote", `a\`, `"a\\"`},
		{"header injection", "Eve\r\nX-Evil: 1", `"Eve X-Evil: 1"`},
		{"quote then injection", "Eve\"\r\nX-Evil: 1\r\n\r\n", `"Eve\" X-Evil: 1"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := QuoteDisplayName(tt.in)
			if got != tt.want {
				t.Errorf("QuoteDisplayName(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if strings.ContainsAny(got, "\r\n") {
				t.Errorf("QuoteDisplayName(%q) = %q keeps a line break", tt.in, got)
			}
			// The result must be exactly one quoted-string: no unescaped
			// quote before the last character.
			inner := got[1 : len(got)-1]
			for i := 0; i < len(inner); i++ {
				switch inner[i] {
				case '\\':
					i++
				case '"':
					t.Fatalf("QuoteDisplayName(%q) = %q has an unescaped quote", tt.in, got)
				}
			}
		})
	}
}

func TestSanitizeBounds(t *testing.T) {
	tests := []struct {
		name string
		f    func(string) string
		max  int
	}{
		{"header value", SanitizeHeaderValue, MaxHeaderValue},
		{"display name", CleanDisplayName, MaxDisplayName},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.f(strings.Repeat("ü ", 1000))
			if n := utf8.RuneCountInString(got); n > tt.max {
				t.Errorf("length %d runes, want at most %d", n, tt.max)
			}
			if strings.HasSuffix(got, " ") {
				t.Errorf("result %q ends in a space", got)
			}
		})
	}
}

func FuzzQuoteDisplayName(f *testing.F) {
	for _, s := range []string{"Eve\r\nX-Evil: 1", `a"b\`, "\x00", "ü"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := QuoteDisplayName(s)
		if strings.ContainsAny(got, "\r\n\x00") || !utf8.ValidString(got) {
			t.Fatalf("QuoteDisplayName(%q) = %q", s, got)
		}
		if v := SanitizeHeaderValue(s); strings.ContainsAny(v, "\r\n\x00") {
			t.Fatalf("SanitizeHeaderValue(%q) = %q", s, v)
		}
	})
}
