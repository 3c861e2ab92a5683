package sip

import (
	"sync"
	"time"
)

// rateLimit is a token bucket for new INVITEs: up to rate a second, with a
// burst of one second's worth. Beyond it calls are refused with 503 before
// any work is done for them.
type rateLimit struct {
	mu     sync.Mutex
	rate   float64
	tokens float64
	last   time.Time
}

func newRateLimit(perSecond int) *rateLimit {
	if perSecond <= 0 {
		return nil
	}
	return &rateLimit{rate: float64(perSecond), tokens: float64(perSecond)}
}

// allow takes a token if there is one; a nil limit allows everything.
func (l *rateLimit) allow(now time.Time) bool {
	if l == nil {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.last.IsZero() {
		l.tokens = min(l.rate, l.tokens+now.Sub(l.last).Seconds()*l.rate)
	}
	l.last = now
	if l.tokens < 1 {
		return false
	}
	l.tokens--
	return true
}
