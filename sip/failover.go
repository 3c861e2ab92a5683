package sip

import (
	"sync"
	"time"

	gosip "github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/callctl"
)

// Failover for calls in flight (SPEC §1): a forwarded INVITE whose next
// hop sends nothing within sip.response_timeout, or whose target the
// keep-alive marks down while it waits, goes to the hotline's fallback at
// once, or ends with 503 and Retry-After: the caller does not wait 32 s
// for a 408. Once a provisional came the next hop is alive, and Timer C
// and sip.invite_timeout apply as before.

// waiting holds, by target (host:port), the INVITEs waiting for their
// first response, so that a target marked down fails them over at once.
type waiting struct {
	mu sync.Mutex
	by map[string]map[*waiter]struct{}
}

type waiter struct {
	key  string
	once sync.Once
	fn   func()
}

// add registers fn to run when the target at u is marked down; the
// returned waiter is passed to done once the INVITE heard back.
func (w *waiting) add(u gosip.Uri, fn func()) *waiter { return w.addKey(targetKey(u), fn) }

// addKey is add for a target given as host:port.
func (w *waiting) addKey(key string, fn func()) *waiter {
	wt := &waiter{key: key, fn: fn}
	w.mu.Lock()
	if w.by == nil {
		w.by = map[string]map[*waiter]struct{}{}
	}
	set := w.by[wt.key]
	if set == nil {
		set = map[*waiter]struct{}{}
		w.by[wt.key] = set
	}
	set[wt] = struct{}{}
	w.mu.Unlock()
	return wt
}

// done forgets a waiter; nil is fine.
func (w *waiting) done(wt *waiter) {
	if wt == nil {
		return
	}
	w.mu.Lock()
	if set := w.by[wt.key]; set != nil {
		delete(set, wt)
		if len(set) == 0 {
			delete(w.by, wt.key)
		}
	}
	w.mu.Unlock()
}

// down fails over every INVITE waiting for the target at key.
func (w *waiting) down(key string) {
	w.mu.Lock()
	set := w.by[key]
	delete(w.by, key)
	w.mu.Unlock()
	for wt := range set {
		wt.once.Do(wt.fn)
	}
}

// targetDown is the keep-alive's news that a target stopped answering.
func (p *Proxy) targetDown(uri string) {
	var u gosip.Uri
	if gosip.ParseUri(uri, &u) == nil {
		p.waiting.down(targetKey(u))
	}
}

// fallbackFor points a call whose target gave no sign of life at the
// hotline's fallback, when it has one that is up and not the target that
// failed; false: the call ends with 503.
func (p *Proxy) fallbackFor(c *callctl.Call) bool {
	if c.Fallback == "" || c.Target == c.Fallback {
		return false
	}
	var fb gosip.Uri
	if gosip.ParseUri(c.Fallback, &fb) != nil || p.probes.down(fb) {
		return false
	}
	c.Target = c.Fallback
	return true
}

// abandoned holds the branches of INVITEs given up for no sign of life
// (for fastTxLife), so that a late 2xx from that next hop does not reach a
// caller whose call went elsewhere or ended: it is ACKed and ended with a
// BYE instead, as a 200 that crosses a CANCEL (crossing.go).
type abandoned struct {
	mu sync.Mutex
	m  map[string]time.Time
}

func (a *abandoned) add(branch string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.m == nil {
		a.m = map[string]time.Time{}
	}
	now := time.Now()
	if len(a.m) > 256 {
		for b, at := range a.m {
			if now.Sub(at) > fastTxLife {
				delete(a.m, b)
			}
		}
	}
	a.m[branch] = now
}

func (a *abandoned) has(branch string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	at, ok := a.m[branch]
	return ok && time.Since(at) <= fastTxLife
}

// lateAnswer handles a response to an abandoned INVITE: a 2xx is ACKed
// and ended; nothing is relayed. false: not an abandoned INVITE's.
func (p *Proxy) lateAnswer(res *gosip.Response, branch string) bool {
	if !p.gaveUp.has(branch) {
		return false
	}
	if res.IsSuccess() {
		if ack := p.toCallee(gosip.ACK, nil, res); ack != nil {
			_ = p.cli.WriteRequest(ack, noBuild)
			go p.sendCrossingBye(p.toCallee(gosip.BYE, nil, res))
		}
	}
	return true
}
