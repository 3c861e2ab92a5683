package storage

import (
	"errors"
	"fmt"
	"time"
)

// Errors shared by the stores built on this package; match them with
// errors.Is.
var (
	// ErrNotFound is returned by lookups of a record that does not exist.
	ErrNotFound = errors.New("not found")
	// ErrInvalidCursor is returned by a list when the pagination cursor was
	// not made by that list.
	ErrInvalidCursor = errors.New("invalid cursor")
)

// ParseSince reads a "since" value as the API and the command line take it:
// a Go duration back from now (1h, 90m) or an RFC 3339 time.
func ParseSince(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("duration %q is negative", s)
		}
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%q is neither a duration (1h, 30m) nor an RFC 3339 time", s)
}
