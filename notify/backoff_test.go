package notify

import (
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	t.Parallel()
	n := &Notifier{opts: Options{BaseDelay: time.Second, MaxDelay: 10 * time.Second}}
	cases := []struct {
		attempts int
		full     time.Duration // the delay before jitter
	}{
		{1, time.Second},
		{2, 2 * time.Second},
		{3, 4 * time.Second},
		{4, 8 * time.Second},
		{5, 10 * time.Second}, // capped
		{50, 10 * time.Second},
	}
	for _, c := range cases {
		seen := map[time.Duration]bool{}
		for range 200 {
			d := n.backoff(c.attempts)
			if d < c.full/2 || d > c.full {
				t.Fatalf("attempt %d: delay %v outside [%v, %v]", c.attempts, d, c.full/2, c.full)
			}
			seen[d] = true
		}
		if len(seen) < 10 {
			t.Errorf("attempt %d: only %d distinct delays in 200: no jitter", c.attempts, len(seen))
		}
	}
}

func TestTelLink(t *testing.T) {
	t.Parallel()
	cases := []struct{ prefix, number, want string }{
		{"tel:", "+4930111222", "tel:+4930111222"},
		{"callto:", "+49 30 111-222", "callto:+4930111222"},
		{"tel:", "123", "tel:123"},
		{"tel:", `javascript:alert(1)"`, "tel:1"},
		{"tel:", "anonymous", ""},
		{"tel:", "12+3", "tel:123"},
	}
	for _, c := range cases {
		if got := telLink(c.prefix, c.number); got != c.want {
			t.Errorf("telLink(%q, %q) = %q, want %q", c.prefix, c.number, got, c.want)
		}
	}
}
