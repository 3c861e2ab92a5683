package sip

import (
	"context"
	"net"
	"strconv"
	"time"

	gosip "github.com/emiago/sipgo/sip"
	"go.uber.org/zap"

	"github.com/switchboard-sip/switchboard/callctl"
)

// Emergency calls (SPEC §1 "Emergency calls always go through"). An
// outbound INVITE to an emergency number of its trunk's region passes the
// drain and the CPS limits (admitEmergency), is forwarded with the
// Request-URI's number and the From the PBX sent (no header or name of the
// pipeline's), and when its target is marked down or answers 5xx, or sends
// nothing within the response wait, it goes on at once to the next target:
// emergency.route, then the call's trunk, then every other trunk with an
// outbound target. The fast path hands such calls to this path
// (fast_invite.go), so both carriers follow one rule.

// defaultEmergencyWait is how long an emergency INVITE waits for any
// response from one target before the next is tried, when Routing names
// no wait.
const defaultEmergencyWait = 2 * time.Second

// isEmergency tells whether an INVITE from the PBX dials an emergency
// number of its trunk's region, or one from a trunk calls back the number
// an emergency call presented, within its window. It reads only the
// Request-URI, so it can run before the admission checks.
func (r *Routing) isEmergency(req *gosip.Request, dir callctl.Direction, trunk *Trunk) bool {
	region := ""
	if trunk != nil {
		region = trunk.Region
	}
	if dir == callctl.Inbound {
		return r.Callback != nil && req.Recipient.User != "" && r.Callback(req.Recipient.User, region)
	}
	if r.Emergency == nil || dir != callctl.Outbound {
		return false
	}
	dialled := req.Recipient.User
	if req.Recipient.Scheme == "tel" {
		dialled = req.Recipient.String()
	}
	return r.Emergency(dialled, region)
}

// callbackIndexed is isEmergency for an inbound INVITE the fast path
// indexed, asked only when the trunk's max_cps would refuse it: the call
// back of an emergency call is never refused for its carrier's rate.
func (r *Routing) callbackIndexed(m *msgIndex, dir callctl.Direction, trunk *Trunk) bool {
	if dir != callctl.Inbound || r.Callback == nil {
		return false
	}
	var u gosip.Uri
	if gosip.ParseUri(string(m.ruri.of(m.b)), &u) != nil || u.User == "" {
		return false
	}
	region := ""
	if trunk != nil {
		region = trunk.Region
	}
	return r.Callback(u.User, region)
}

// admitEmergency is admit for an emergency call and for the emergency
// services' call back: the RFC 3261 §16.3 checks that protect the network
// (Max-Forwards, loops) still apply; the drain and the CPS limits, which
// protect switchboard, never refuse them.
func (p *Proxy) admitEmergency(req *gosip.Request, hash string) (int, string) {
	if !decMaxForwards(req) {
		return gosip.StatusTooManyHops, "Too Many Hops"
	}
	if looped(req, hash) {
		return gosip.StatusLoopDetected, "Loop Detected"
	}
	return 0, ""
}

// emergencyTargets are the places an emergency call may go, in order:
// the route the pipeline chose (emergency.route), the call's trunk, the
// other trunks with an outbound target; those up first, then those the
// keep-alive marked down, as a last resort rather than none.
func (p *Proxy) emergencyTargets(r *Routing, c *callctl.Call, trunk *Trunk) []gosip.Uri {
	var all []gosip.Uri
	seen := map[string]bool{}
	add := func(u gosip.Uri) {
		if k := u.String(); !seen[k] {
			seen[k] = true
			all = append(all, u)
		}
	}
	if c.Target != "" {
		var u gosip.Uri
		if gosip.ParseUri(c.Target, &u) == nil {
			add(u)
		}
	}
	if trunk != nil && trunk.Outbound != nil {
		add(*trunk.Outbound)
	}
	for i := range r.Trunks {
		if r.Trunks[i].Outbound != nil {
			add(*r.Trunks[i].Outbound)
		}
	}
	var up, down []gosip.Uri
	for _, u := range all {
		if p.probes.down(u) {
			down = append(down, u)
		} else {
			up = append(up, u)
		}
	}
	return append(up, down...)
}

// proxyEmergency forwards an emergency call to its targets in turn until
// one answers with anything but 5xx (or the caller cancels), and relays
// that answer. The last target's answer is relayed whatever it is.
func (p *Proxy) proxyEmergency(req *gosip.Request, tx gosip.ServerTransaction, r *Routing, c *callctl.Call,
	trunk *Trunk, active *callctl.Active, hash string, start time.Time) {
	cancels := make(chan *gosip.Request, 1)
	tx.OnCancel(func(cr *gosip.Request) {
		select {
		case cancels <- cr:
		default:
		}
	})
	e := &emergencyAttempts{p: p, req: req, tx: tx, active: active, cancels: cancels, wait: r.EmergencyWait}
	if e.wait <= 0 {
		e.wait = defaultEmergencyWait
	}
	targets := p.emergencyTargets(r, c, trunk)
	for i, t := range targets {
		c.Target = t.String()
		fwd, err := p.buildForward(req, r, c, trunk, hash+"e"+strconv.Itoa(i))
		if err != nil {
			continue
		}
		keepRequestURI(req, fwd, t)
		if i == 0 {
			p.observe(start)
		}
		if e.try(fwd, i == len(targets)-1) {
			return
		}
		p.log.Warn("emergency call: target failed, trying the next", zap.String("call_id", c.CallID),
			zap.String("target", t.String()), zap.Int("status", e.status))
	}
	if e.last != nil {
		p.final(req, tx, active, e.last, e.cancel != nil)
		return
	}
	active.Final(gosip.StatusServiceUnavailable, true, "emergency call: no target answered")
	p.countRes(c, gosip.StatusServiceUnavailable)
	respond(tx, req, gosip.StatusServiceUnavailable, "Service Unavailable")
}

// keepRequestURI keeps the Request-URI as the PBX sent it as far as a
// proxy may (SPEC §1: the Request-URI goes out unchanged): a sip: URI gets
// the target's host but keeps its number (buildForward) and its user=phone;
// a tel: URI (tel:112 has no host to change) goes out as it came, to the
// target's address.
func keepRequestURI(req, fwd *gosip.Request, target gosip.Uri) {
	if req.Recipient.Scheme != "tel" {
		if v, ok := req.Recipient.UriParams.Get("user"); ok {
			if _, has := fwd.Recipient.UriParams.Get("user"); !has {
				fwd.Recipient.UriParams.Add("user", v)
			}
		}
		return
	}
	fwd.Recipient = *req.Recipient.Clone()
	port := target.Port
	if port == 0 {
		port = 5060
	}
	fwd.SetDestination(net.JoinHostPort(target.Host, strconv.Itoa(port)))
}

// emergencyAttempts is the state of one emergency call across its targets.
type emergencyAttempts struct {
	p         *Proxy
	req       *gosip.Request
	tx        gosip.ServerTransaction
	active    *callctl.Active
	cancels   chan *gosip.Request
	cancel    *gosip.Request // the caller's CANCEL, once it came
	wait      time.Duration
	forwarded bool
	last      *gosip.Response // the last 5xx, relayed when no target is left
	status    int
}

// try sends fwd and relays its responses. It reports true when the call
// is settled (an answer relayed, the caller gone); false sends the call on
// to the next target: a 5xx, a transport error, or nothing heard within
// the wait. With last set, every outcome settles the call.
func (e *emergencyAttempts) try(fwd *gosip.Request, last bool) bool {
	p := e.p
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	cltx, err := p.cli.TransactionRequest(ctx, fwd, noBuild)
	if err != nil {
		e.status = gosip.StatusServiceUnavailable
		return false
	}
	if !e.forwarded {
		e.forwarded = true
		e.active.Forwarded()
	}
	cltx.OnRetransmission(func(res *gosip.Response) {
		if res.IsSuccess() {
			_ = e.tx.Respond(relayTo(res, e.req))
		}
	})
	first := time.NewTimer(e.wait)
	defer first.Stop()
	firstWait := first.C
	if last {
		firstWait = nil // nowhere else to go: wait as for any call
	}
	timerC := time.NewTimer(p.timerC())
	defer timerC.Stop()
	provisional, cancelSent, expired := false, false, false
	for {
		if e.cancel != nil && provisional && !cancelSent {
			cancelSent = true
			go p.sendCancel(fwd, e.cancel)
		}
		select {
		case c := <-e.cancels:
			e.cancel = c
		case res := <-cltx.Responses():
			if res.IsProvisional() {
				firstWait = nil
				provisional = true
				timerC.Reset(p.timerC())
				if res.StatusCode != gosip.StatusTrying {
					e.active.Ringing()
					_ = e.tx.Respond(relayTo(res, e.req))
				}
				continue
			}
			e.status = res.StatusCode
			if res.StatusCode >= 500 && res.StatusCode < 600 && !last && e.cancel == nil {
				e.last = res
				return false
			}
			if !res.IsSuccess() {
				settle(e.active, e.cancel)
			}
			p.final(e.req, e.tx, e.active, res, e.cancel != nil || expired)
			return true
		case <-firstWait:
			cltx.Terminate()
			e.status = gosip.StatusRequestTimeout
			if e.cancel != nil {
				settle(e.active, e.cancel)
				p.noFinal(e.req, e.tx, e.active, gosip.ErrTransactionTimeout, true)
				return true
			}
			return false
		case <-timerC.C:
			if provisional {
				// RFC 3261 §16.8: it rang too long; cancel it and relay
				// the 487 that follows.
				if !expired && !cancelSent {
					expired, cancelSent = true, true
					e.active.Final(gosip.StatusRequestTimeout, false, "timer C")
					go p.sendCancel(fwd, nil)
				}
				continue
			}
			cltx.Terminate()
			settle(e.active, e.cancel)
			p.noFinal(e.req, e.tx, e.active, gosip.ErrTransactionTimeout, e.cancel != nil)
			return true
		case <-cltx.Done():
			e.status = gosip.StatusServiceUnavailable
			if !last && e.cancel == nil && !provisional {
				return false
			}
			settle(e.active, e.cancel)
			p.noFinal(e.req, e.tx, e.active, cltx.Err(), e.cancel != nil)
			return true
		}
	}
}
