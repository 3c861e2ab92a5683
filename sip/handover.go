package sip

import (
	"context"
	"net/netip"
	"strconv"
	"sync"
	"time"

	gosip "github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/callctl"
)

// An INVITE is admitted and decided once, whichever path carries it (SPEC
// §1). When the fast path took an INVITE (its CPS token spent, 100 sent,
// maybe its pipeline run) and then finds it cannot finish it (an
// announcement to play, a target that needs DNS or TCP, headers only
// sipgo reads), it hands the sipgo path the decided call along with the
// request: sipgo's transaction layer needs the request itself, the call
// is carried on from where the fast path left it, never classified,
// admitted or run through the pipeline a second time.

// decidedCall is what the fast path hands over with an INVITE.
type decidedCall struct {
	r     *Routing
	trunk *Trunk
	start time.Time
	// call is nil when the pipeline has not run yet (the fast path could
	// not read the identity headers): it runs once, on the sipgo path.
	call *callctl.Call
	d    callctl.Decision
	at   time.Time // handed over; for the sweep
}

// handovers holds the decided calls between the fast path's hand-over and
// sipgo's onInvite, by the INVITE's server key (RFC 3261 §17.2.3).
type handovers struct {
	mu sync.Mutex
	m  map[string]*decidedCall
}

// put files a decided call; entries sipgo never took (it dropped the
// request) are swept once many have gathered.
func (h *handovers) put(key string, dc *decidedCall) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.m == nil {
		h.m = map[string]*decidedCall{}
	}
	if len(h.m) > 1024 {
		for k, v := range h.m {
			if time.Since(v.at) > fastTxLife {
				delete(h.m, k)
			}
		}
	}
	dc.at = time.Now()
	h.m[key] = dc
}

// take returns and forgets the decided call of a request, if any.
func (h *handovers) take(req *gosip.Request) *decidedCall {
	v := req.Via()
	if v == nil {
		return nil
	}
	branch, _ := v.Params.Get("branch")
	key := branch + "|" + v.Host + ":" + strconv.Itoa(v.Port)
	h.mu.Lock()
	defer h.mu.Unlock()
	dc := h.m[key]
	delete(h.m, key)
	return dc
}

// carryHanded goes on with an INVITE the fast path handed over: its 100
// went out and its CPS token was spent there.
func (p *Proxy) carryHanded(req *gosip.Request, tx gosip.ServerTransaction, dc *decidedCall) {
	decMaxForwards(req) // the fast path checked it is at least 1
	call, d := dc.call, dc.d
	if call == nil {
		dir, _ := dc.r.Classify(mustSource(req))
		call = p.newCall(req, dc.r, dir, dc.trunk, dc.start)
		d = dc.r.Pipeline.Run(context.Background(), call)
		call.Signalling = callctl.Signalling{}
	}
	p.carry(req, tx, dc.r, call, dc.trunk, d, loopHash(req), dc.start)
}

func mustSource(req *gosip.Request) netip.AddrPort {
	src, _ := source(req)
	return src
}
