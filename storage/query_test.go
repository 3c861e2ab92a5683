package storage

import (
	"testing"
	"time"
)

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in      string
		want    time.Time
		wantErr bool
	}{
		{"1h", now.Add(-time.Hour), false},
		{"90m", now.Add(-90 * time.Minute), false},
		{"2026-01-01T10:00:00+01:00", time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC), false},
		{"-1h", time.Time{}, true},
		{"yesterday", time.Time{}, true},
		{"", time.Time{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseSince(tt.in, now)
			if (err != nil) != tt.wantErr {
				t.Fatalf("error = %v, wantErr %v", err, tt.wantErr)
			}
			if !got.Equal(tt.want) {
				t.Errorf("= %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRebind(t *testing.T) {
	tests := []struct{ driver, in, want string }{
		{"sqlite", "a = ? AND b = ?", "a = ? AND b = ?"},
		{"postgres", "a = ? AND b = ?", "a = $1 AND b = $2"},
		{"postgres", "a = '?' AND b = ?", "a = '?' AND b = $1"},
	}
	for _, tt := range tests {
		t.Run(tt.driver, func(t *testing.T) {
			if got := (&DB{Driver: tt.driver}).Rebind(tt.in); got != tt.want {
				t.Errorf("Rebind = %q, want %q", got, tt.want)
			}
		})
	}
}
