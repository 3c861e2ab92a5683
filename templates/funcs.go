package templates

import (
	"reflect"
	"strings"
	"text/template"
	"time"
	"unicode/utf8"
)

// funcs are the functions a hotline template may call, bound to the
// hotline's time zone and the configured phone link prefix.
func funcs(loc *time.Location, linkPrefix string) template.FuncMap {
	if loc == nil {
		loc = time.UTC
	}
	if linkPrefix == "" {
		linkPrefix = "tel:"
	}
	return template.FuncMap{
		// daypart names the part of the day for greetings: morning before
		// noon, afternoon until 18:00, evening after (and before 05:00).
		"daypart": func(t time.Time) string { return daypart(t.In(loc)) },
		// tel turns a number into a phone link: the link prefix followed
		// by the number without spaces.
		"tel": func(n string) string {
			n = strings.Join(strings.Fields(n), "")
			if n == "" {
				return ""
			}
			return linkPrefix + n
		},
		// date formats a time in the hotline's zone with a Go layout.
		"date": func(layout string, t time.Time) string { return t.In(loc).Format(layout) },
		// weekday is the English weekday in the hotline's zone.
		"weekday": func(t time.Time) string { return t.In(loc).Weekday().String() },
		"upper":   strings.ToUpper,
		"lower":   strings.ToLower,
		"trim":    strings.TrimSpace,
		// default gives def when v is empty: {{.Caller.Name | default "unknown"}}.
		"default": func(def any, v any) any {
			if isEmpty(v) {
				return def
			}
			return v
		},
		"join":      func(sep string, list []string) string { return strings.Join(list, sep) },
		"contains":  strings.Contains,
		"hasPrefix": strings.HasPrefix,
		"hasTag":    hasTag,
		"replace":   func(old, new, s string) string { return strings.ReplaceAll(s, old, new) },
		// truncate keeps at most n characters, for short displays.
		"truncate": func(n int, s string) string {
			if n < 0 || utf8.RuneCountInString(s) <= n {
				return s
			}
			return string([]rune(s)[:n])
		},
		// field reads a free-form contact field; empty without a contact.
		"field": func(c *Contact, name string) string {
			if c == nil {
				return ""
			}
			return c.Fields[name]
		},
	}
}

func daypart(t time.Time) string {
	switch h := t.Hour(); {
	case h >= 5 && h < 12:
		return "morning"
	case h >= 12 && h < 18:
		return "afternoon"
	default:
		return "evening"
	}
}

// hasTag reports whether a contact has a tag; false without a contact.
func hasTag(c *Contact, tag string) bool {
	if c == nil {
		return false
	}
	for _, t := range c.Tags {
		if t == tag {
			return true
		}
	}
	return false
}

func isEmpty(v any) bool {
	if v == nil {
		return true
	}
	r := reflect.ValueOf(v)
	switch r.Kind() {
	case reflect.String, reflect.Slice, reflect.Map, reflect.Array:
		return r.Len() == 0
	case reflect.Pointer, reflect.Interface:
		return r.IsNil()
	}
	return r.IsZero()
}
