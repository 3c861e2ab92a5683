package configs

import (
	"fmt"
	"regexp"
	"strings"
	"text/template"
	"time"
	"unicode"
)

// Defaults and bounds of a lookup (SPEC §7 lookups).
const (
	DefaultLookupTimeout = 300 * time.Millisecond
	DefaultLookupCache   = time.Minute
	maxLookupTimeout     = 10 * time.Second
)

var lookupName = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// validateLookups checks each lookup and fills its defaults. The URL
// template is parsed here; the lookups package executes it over a sample
// call when it compiles the lookups.
func (c *Config) validateLookups(v *collector) {
	seen := map[string]bool{}
	for i := range c.Lookups {
		l := &c.Lookups[i]
		key := fmt.Sprintf("lookups[%d]", i)
		switch {
		case !lookupName.MatchString(l.Name):
			v.add(key+".name", "%q is not a lookup name: lower-case letters, digits and _ (it is used as lookup.%s in rules)", l.Name, l.Name)
		case seen[l.Name]:
			v.add(key+".name", "%q is used by another lookup", l.Name)
		}
		seen[l.Name] = true
		if _, err := template.New(l.Name).Parse(l.URL); err != nil {
			v.add(key+".url", "%v", err)
		} else if !strings.HasPrefix(l.URL, "http://") && !strings.HasPrefix(l.URL, "https://") {
			v.add(key+".url", "%q is not an http:// or https:// URL", l.URL)
		}
		if l.Timeout == 0 {
			l.Timeout = Duration(DefaultLookupTimeout)
		}
		if l.Timeout < 0 || time.Duration(l.Timeout) > maxLookupTimeout {
			v.add(key+".timeout", "%s is not between 0 and %s: a lookup holds the call while it waits", time.Duration(l.Timeout), maxLookupTimeout)
		}
		if l.Cache == nil {
			d := Duration(DefaultLookupCache)
			l.Cache = &d
		}
		if *l.Cache < 0 {
			v.add(key+".cache", "must not be negative")
		}
	}
}

// maxWrapReason matches the longest reason PATCH /api/calls/{id} takes.
const maxWrapReason = 200

// validateWrapUp checks the reasons offered on the board: each non-empty,
// at most 200 characters, without control characters, and listed once.
func (c *Config) validateWrapUp(v *collector) {
	seen := map[string]bool{}
	for i, r := range c.WrapUp.Reasons {
		key := fmt.Sprintf("wrapup.reasons[%d]", i)
		switch {
		case strings.TrimSpace(r) == "":
			v.add(key, "must not be empty")
		case len([]rune(r)) > maxWrapReason:
			v.add(key, "longer than %d characters", maxWrapReason)
		case strings.IndexFunc(r, unicode.IsControl) >= 0:
			v.add(key, "%q has control characters", r)
		case seen[r]:
			v.add(key, "%q is listed twice", r)
		}
		seen[r] = true
	}
}
