package configs

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Hours are a hotline's opening hours, parsed once at load. The zero
// value is always open (SPEC §7: no hours means always open).
type Hours struct {
	spans []span
	loc   *time.Location
}

// span is one opening interval on a set of weekdays. Minutes count from
// midnight; an end before the start runs past midnight into the next day.
type span struct {
	days       [7]bool // indexed by time.Weekday
	start, end int     // minutes, end may be 1440 (24:00)
}

// ParseHours reads entries such as "mon-fri 08:00-18:00", "sat 09:00-12:30",
// "mon,wed,fri 08:00-12:00", "daily 00:00-24:00" or "mon-fri
// 08:00-12:00,13:00-17:00", evaluated in loc (UTC when nil). An error names
// the index of the bad entry.
func ParseHours(entries []string, loc *time.Location) (Hours, error) {
	if loc == nil {
		loc = time.UTC
	}
	h := Hours{loc: loc}
	for i, e := range entries {
		s, err := parseHoursEntry(e)
		if err != nil {
			return Hours{}, fmt.Errorf("hours[%d]: %w", i, err)
		}
		h.spans = append(h.spans, s...)
	}
	return h, nil
}

// Always reports whether no hours were configured.
func (h Hours) Always() bool { return len(h.spans) == 0 }

// Open reports whether t falls in the opening hours, in their time zone.
func (h Hours) Open(t time.Time) bool {
	if len(h.spans) == 0 {
		return true
	}
	if h.loc != nil {
		t = t.In(h.loc)
	}
	day := t.Weekday()
	yesterday := (day + 6) % 7
	m := t.Hour()*60 + t.Minute()
	for _, s := range h.spans {
		if s.start < s.end {
			if s.days[day] && m >= s.start && m < s.end {
				return true
			}
			continue
		}
		// Overnight: the evening of a listed day, or the early morning
		// after one.
		if s.days[day] && m >= s.start || s.days[yesterday] && m < s.end {
			return true
		}
	}
	return false
}

var weekdays = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
}

func parseHoursEntry(e string) ([]span, error) {
	fields := strings.Fields(strings.ToLower(e))
	if len(fields) != 2 {
		return nil, fmt.Errorf("%q: want DAYS HH:MM-HH:MM, e.g. mon-fri 08:00-18:00", e)
	}
	days, err := parseDays(fields[0])
	if err != nil {
		return nil, fmt.Errorf("%q: %w", e, err)
	}
	var spans []span
	for r := range strings.SplitSeq(fields[1], ",") {
		from, to, ok := strings.Cut(r, "-")
		if !ok {
			return nil, fmt.Errorf("%q: time range %q: want HH:MM-HH:MM", e, r)
		}
		start, err := parseClock(from, false)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", e, err)
		}
		end, err := parseClock(to, true)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", e, err)
		}
		if start == end {
			return nil, fmt.Errorf("%q: time range %q is empty", e, r)
		}
		spans = append(spans, span{days: days, start: start, end: end})
	}
	return spans, nil
}

// parseDays reads daily, a day, a range (mon-fri, also fri-mon across
// the weekend) or a comma list of those.
func parseDays(s string) ([7]bool, error) {
	var days [7]bool
	if s == "daily" {
		for i := range days {
			days[i] = true
		}
		return days, nil
	}
	for part := range strings.SplitSeq(s, ",") {
		from, to, isRange := strings.Cut(part, "-")
		a, ok := weekdays[from]
		if !ok {
			return days, fmt.Errorf("unknown day %q (use mon, tue, wed, thu, fri, sat, sun or daily)", from)
		}
		b := a
		if isRange {
			if b, ok = weekdays[to]; !ok {
				return days, fmt.Errorf("unknown day %q (use mon, tue, wed, thu, fri, sat, sun or daily)", to)
			}
		}
		for d := a; ; d = (d + 1) % 7 {
			days[d] = true
			if d == b {
				break
			}
		}
	}
	return days, nil
}

// parseClock reads HH:MM; 24:00 is allowed as an end of day.
func parseClock(s string, end bool) (int, error) {
	hh, mm, ok := strings.Cut(s, ":")
	if !ok || len(hh) != 2 || len(mm) != 2 || !allDigits(hh+mm) {
		return 0, fmt.Errorf("time %q: want HH:MM", s)
	}
	h, err1 := strconv.Atoi(hh)
	m, err2 := strconv.Atoi(mm)
	if err := errors.Join(err1, err2); err != nil || h < 0 || m < 0 || m > 59 || h > 24 {
		return 0, fmt.Errorf("time %q: want HH:MM from 00:00 to 23:59", s)
	}
	if h == 24 {
		if !end || m != 0 {
			return 0, fmt.Errorf("time %q: 24:00 is only valid as an end time", s)
		}
	}
	return h*60 + m, nil
}

func allDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}
