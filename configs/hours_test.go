package configs

import (
	"strings"
	"testing"
	"time"
)

func TestHoursOpen(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	tokyo, err := time.LoadLocation("Asia/Tokyo")
	if err != nil {
		t.Fatal(err)
	}
	// 2025-03-03 is a Monday.
	at := func(day, hour, min int, loc *time.Location) time.Time {
		return time.Date(2025, 3, 2+day, hour, min, 0, 0, loc)
	}
	const (
		sun = iota
		mon
		tue
		wed
		thu
		fri
		sat
	)
	tests := []struct {
		name  string
		hours []string
		loc   *time.Location
		t     time.Time
		want  bool
	}{
		{"no hours is always open", nil, berlin, at(sun, 3, 0, berlin), true},
		{"weekday morning", []string{"mon-fri 08:00-18:00"}, berlin, at(tue, 8, 0, berlin), true},
		{"end is exclusive", []string{"mon-fri 08:00-18:00"}, berlin, at(tue, 18, 0, berlin), false},
		{"before opening", []string{"mon-fri 08:00-18:00"}, berlin, at(tue, 7, 59, berlin), false},
		{"weekend closed", []string{"mon-fri 08:00-18:00"}, berlin, at(sat, 10, 0, berlin), false},
		{"second entry", []string{"mon-fri 08:00-18:00", "sat 09:00-12:30"}, berlin, at(sat, 12, 29, berlin), true},
		{"second entry end", []string{"mon-fri 08:00-18:00", "sat 09:00-12:30"}, berlin, at(sat, 12, 30, berlin), false},
		{"day list hit", []string{"mon,wed,fri 08:00-12:00"}, berlin, at(wed, 11, 0, berlin), true},
		{"day list miss", []string{"mon,wed,fri 08:00-12:00"}, berlin, at(thu, 11, 0, berlin), false},
		{"daily until midnight", []string{"daily 00:00-24:00"}, berlin, at(sun, 23, 59, berlin), true},
		{"lunch break", []string{"mon-fri 08:00-12:00,13:00-17:00"}, berlin, at(mon, 12, 30, berlin), false},
		{"after lunch", []string{"mon-fri 08:00-12:00,13:00-17:00"}, berlin, at(mon, 13, 0, berlin), true},
		{"range across the weekend", []string{"fri-mon 10:00-11:00"}, berlin, at(sun, 10, 30, berlin), true},
		{"range across the weekend miss", []string{"fri-mon 10:00-11:00"}, berlin, at(tue, 10, 30, berlin), false},
		{"overnight evening", []string{"fri 22:00-06:00"}, berlin, at(fri, 23, 0, berlin), true},
		{"overnight next morning", []string{"fri 22:00-06:00"}, berlin, at(sat, 5, 59, berlin), true},
		{"overnight ends", []string{"fri 22:00-06:00"}, berlin, at(sat, 6, 0, berlin), false},
		{"overnight not the morning before", []string{"fri 22:00-06:00"}, berlin, at(fri, 5, 0, berlin), false},
		{"upper case days", []string{"MON-FRI 08:00-18:00"}, berlin, at(mon, 9, 0, berlin), true},
		// 07:30 UTC on Monday is 08:30 in Berlin (CET, UTC+1): open.
		{"evaluated in the hotline zone", []string{"mon-fri 08:00-18:00"}, berlin, at(mon, 7, 30, time.UTC), true},
		// 23:30 UTC Sunday is 08:30 Monday in Tokyo: open although Sunday in UTC.
		{"day changes with the zone", []string{"mon 08:00-09:00"}, tokyo, at(sun, 23, 30, time.UTC), true},
		{"same instant closed in Berlin", []string{"mon 08:00-09:00"}, berlin, at(sun, 23, 30, time.UTC), false},
		// 2025-03-30 is the switch to CEST (UTC+2): 06:30 UTC is 08:30 local.
		{"daylight saving", []string{"sun 08:00-09:00"}, berlin, time.Date(2025, 3, 30, 6, 30, 0, 0, time.UTC), true},
		{"nil location is UTC", []string{"mon 08:00-09:00"}, nil, at(mon, 8, 30, time.UTC), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := ParseHours(tt.hours, tt.loc)
			if err != nil {
				t.Fatal(err)
			}
			if got := h.Open(tt.t); got != tt.want {
				t.Errorf("Open(%v) = %v, want %v", tt.t, got, tt.want)
			}
		})
	}
	t.Run("zero Hours is always open", func(t *testing.T) {
		if !(Hours{}).Open(time.Now()) {
			t.Error("zero Hours closed")
		}
	})
}

func TestParseHoursErrors(t *testing.T) {
	tests := []struct {
		entry, want string
	}{
		{"mon-fri", "want DAYS HH:MM-HH:MM"},
		{"mon-fri 08:00-18:00 extra", "want DAYS HH:MM-HH:MM"},
		{"mon-fry 08:00-18:00", `unknown day "fry"`},
		{"weekdays 08:00-18:00", `unknown day "weekdays"`},
		{"mon 08:00", "want HH:MM-HH:MM"},
		{"mon 8:00-9:00", `time "8:00"`},
		{"mon 08:60-09:00", `time "08:60"`},
		{"mon 24:00-09:00", "only valid as an end"},
		{"mon 08:00-24:30", "only valid as an end"},
		{"mon 09:00-09:00", "empty"},
		{"mon +1:00-09:00", `time "+1:00"`},
		{"mon 08:00-12:00,", "want HH:MM-HH:MM"},
	}
	for _, tt := range tests {
		t.Run(tt.entry, func(t *testing.T) {
			_, err := ParseHours([]string{"daily 00:00-24:00", tt.entry}, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "hours[1]: ") {
				t.Errorf("ParseHours(%q) error = %v, want hours[1]: …%s…", tt.entry, err, tt.want)
			}
		})
	}
}
