package configs

import (
	"fmt"
	"strings"
	"time"
)

// Duration is a time.Duration written in YAML as a Go duration string
// ("2s", "10m", "9360h").
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String formats like time.Duration.
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalText writes the Go duration string, which YAML and JSON encoders
// both use.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText reads a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := parseDuration(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// MarshalYAML writes the Go duration string.
func (d Duration) MarshalYAML() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalYAML lets other YAML readers (goccy/go-yaml) read a Duration
// outside Parse.
func (d *Duration) UnmarshalYAML(b []byte) error {
	return d.UnmarshalText([]byte(strings.Trim(strings.TrimSpace(string(b)), `"'`)))
}

func parseDuration(s string) (Duration, error) {
	s = strings.TrimSpace(s)
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration (use a number with a unit: 500ms, 2s, 10m, 4h)", s)
	}
	return Duration(v), nil
}
