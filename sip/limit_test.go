package sip

import (
	"testing"
	"time"
)

func TestRateLimit(t *testing.T) {
	if !(*rateLimit)(nil).allow(time.Now()) {
		t.Fatal("no limit refused a call")
	}
	l := newRateLimit(10)
	t0 := time.Unix(1000, 0)
	n := 0
	for i := 0; i < 50; i++ {
		if l.allow(t0) {
			n++
		}
	}
	if n != 10 {
		t.Fatalf("burst allowed %d, want 10", n)
	}
	if l.allow(t0.Add(50 * time.Millisecond)) {
		t.Fatal("allowed before a token was earned")
	}
	if !l.allow(t0.Add(150 * time.Millisecond)) {
		t.Fatal("refused after a token was earned")
	}
}
