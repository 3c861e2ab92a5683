package sip

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo"
	gosip "github.com/emiago/sipgo/sip"
	"go.uber.org/zap"

	"github.com/switchboard-sip/switchboard/callctl"
)

// noBuild tells sipgo's client to send a forwarded request as we built it.
func noBuild(*sipgo.Client, *gosip.Request) error { return nil }

func toTag(req *gosip.Request) string {
	if t := req.To(); t != nil {
		tag, _ := t.Params.Get("tag")
		return tag
	}
	return ""
}

func respond(tx gosip.ServerTransaction, req *gosip.Request, code int, reason string, hdrs ...gosip.Header) {
	res := gosip.NewResponseFromRequest(req, code, reason, nil)
	for _, h := range hdrs {
		res.AppendHeader(h)
	}
	_ = tx.Respond(res)
}

// onInvite handles an initial INVITE: classify the source, run the call
// pipeline, then forward (RFC 3261 §16) or answer with the pipeline's reject.
func (p *Proxy) onInvite(req *gosip.Request, tx gosip.ServerTransaction) {
	if toTag(req) != "" {
		p.forwardInDialog(req, tx)
		return
	}
	if dc := p.handed.take(req); dc != nil {
		p.carryHanded(req, tx, dc)
		return
	}
	start := time.Now()
	r := p.routing.Load()
	dir, trunk := r.classifyRequest(req)
	if dir == "" {
		p.count(req, 403)
		respond(tx, req, 403, "Forbidden")
		return
	}
	// SPEC §1: no drain or CPS refusal for an emergency call or its call
	// back (emergency.go); the trunk's max_cps is in strangers.go.
	emergencyCall := r.isEmergency(req, dir, trunk)
	if !emergencyCall && !p.trunkAllows(dir, trunk, start) {
		p.count(req, gosip.StatusServiceUnavailable)
		respond(tx, req, gosip.StatusServiceUnavailable, "Service Unavailable", gosip.NewHeader("Retry-After", trunkRetryAfter))
		return
	}
	hash := loopHash(req)
	admit := p.admit
	if emergencyCall {
		admit = p.admitEmergency
	}
	if code, reason := admit(req, hash); code != 0 {
		p.count(req, code)
		var hdrs []gosip.Header
		if code == 503 {
			hdrs = append(hdrs, gosip.NewHeader("Retry-After", "30"))
		}
		respond(tx, req, code, reason, hdrs...)
		return
	}
	respond(tx, req, 100, "Trying")
	call := p.newCall(req, r, dir, trunk, start)
	d := r.Pipeline.Run(context.Background(), call)
	// Every stage has read the headers; an answered call may stay up for
	// hours, and memory per call is what limits how many fit.
	call.Signalling = callctl.Signalling{}
	p.carry(req, tx, r, call, trunk, d, hash, start)
}

// carry opens the record of a decided call and rejects or forwards it.
func (p *Proxy) carry(req *gosip.Request, tx gosip.ServerTransaction, r *Routing, call *callctl.Call, trunk *Trunk, d callctl.Decision, hash string, start time.Time) {
	// The record opens once the pipeline has identified the parties, so
	// that even a call in progress or a blocked one shows its numbers.
	active := p.tracker.Start(call)
	if d.Verdict == callctl.Reject {
		p.observe(start)
		p.reject(req, tx, active, r, d)
		return
	}
	if call.Emergency {
		p.proxyEmergency(req, tx, r, call, trunk, active, hash, start)
		return
	}
	if !p.steer(r, call, trunk) {
		p.observe(start)
		active.Final(503, true, "target down")
		p.countRes(call, 503)
		respond(tx, req, 503, "Service Unavailable", gosip.NewHeader("Retry-After", p.retryAfter()))
		return
	}
	for hop := 0; ; hop++ {
		fwd, err := p.buildForward(req, r, call, trunk, hash)
		if err != nil {
			p.observe(start)
			p.log.Warn("no route for call", zap.String("call_id", call.CallID), zap.Error(err))
			active.Final(404, true, err.Error())
			respond(tx, req, 404, "Not Found")
			return
		}
		if hop > 0 {
			newBranch(fwd, hop) // a new client transaction (RFC 3261 §16.6 item 8)
		}
		if !p.proxyInvite(req, fwd, tx, active, start) {
			return
		}
		if v := fwd.Via(); v != nil {
			b, _ := v.Params.Get("branch")
			p.gaveUp.add(b)
		}
		if !p.fallbackFor(call) {
			p.log.Warn("next hop gave no sign of life: 503", zap.String("call_id", call.CallID), zap.String("target", fwd.Recipient.String()))
			active.Final(gosip.StatusServiceUnavailable, true, "no response")
			p.countRes(call, gosip.StatusServiceUnavailable)
			respond(tx, req, gosip.StatusServiceUnavailable, "Service Unavailable", gosip.NewHeader("Retry-After", p.retryAfter()))
			return
		}
		p.log.Warn("next hop gave no sign of life: to the fallback", zap.String("call_id", call.CallID), zap.String("fallback", call.Target))
	}
}

// newBranch makes the branch of our top Via that of another forwarding of
// the same request.
func newBranch(fwd *gosip.Request, hop int) {
	if v := fwd.Via(); v != nil {
		b, _ := v.Params.Get("branch")
		v.Params.Add("branch", b+"-"+strconv.Itoa(hop))
	}
}

// steer keeps a call away from a target that stopped answering the
// keep-alive: it goes to the hotline's fallback when that is up, else
// false (answer 503 at once instead of waiting for Timer B).
func (p *Proxy) steer(r *Routing, c *callctl.Call, trunk *Trunk) bool {
	t, err := r.Target(c, trunk)
	if err != nil || !p.probes.down(t) {
		return true
	}
	if c.Fallback == "" {
		return false
	}
	var fb gosip.Uri
	if gosip.ParseUri(c.Fallback, &fb) != nil || p.probes.down(fb) {
		return false
	}
	c.Target = c.Fallback
	return true
}

// admit applies the RFC 3261 §16.3 checks and the drain state; a non-zero
// code is the response to send instead of forwarding.
func (p *Proxy) admit(req *gosip.Request, hash string) (int, string) {
	if !decMaxForwards(req) {
		return 483, "Too Many Hops"
	}
	if looped(req, hash) {
		return 482, "Loop Detected"
	}
	if p.drain.Load() {
		return 503, "Service Unavailable"
	}
	if req.IsInvite() && !p.limit.allow(time.Now()) {
		return 503, "Service Unavailable"
	}
	return 0, ""
}

func (p *Proxy) newCall(req *gosip.Request, r *Routing, dir callctl.Direction, trunk *Trunk, start time.Time) *callctl.Call {
	c := &callctl.Call{
		Direction:  dir,
		Signalling: Signalling(req),
		Node:       r.Node,
		StartedAt:  start,
	}
	if id := req.CallID(); id != nil {
		c.CallID = id.Value()
	}
	if trunk != nil {
		c.Trunk, c.Region = trunk.Name, trunk.Region
		c.Trusted = dir == callctl.Inbound && trunk.Trust
	}
	return c
}

// buildForward makes the INVITE that goes on: a copy with the new target,
// our Via and Record-Route, and what the pipeline added.
func (p *Proxy) buildForward(req *gosip.Request, r *Routing, c *callctl.Call, trunk *Trunk, hash string) (*gosip.Request, error) {
	target, err := r.Target(c, trunk)
	if err != nil {
		return nil, err
	}
	fwd := req.Clone()
	// An initial request goes where our policy says, never where a Route
	// set preloaded by the caller would steer it (no open relay).
	for fwd.RemoveHeader("Route") {
	}
	retarget(fwd, target)
	applyCall(fwd, c)
	if src, ok := source(req); ok {
		stampVia(fwd.Via(), src)
	}
	inTransport := req.Transport()
	fwd.SetTransport("")
	fwd.SetDestination("")
	fwd.SetSource("")
	fwd.SetTransport(transportOf(fwd))
	p.peers.learn(req)
	p.reuse(fwd)
	p.addRecordRoute(fwd, inTransport)
	s, swapped := swapOf(req, fwd)
	if swapped {
		p.markSwap(fwd, s)
	}
	p.addVia(fwd, hash)
	if swapped {
		// On our Via too: a response relayed without the transaction
		// (after a restart) gives the caller its own name back.
		p.markViaSwap(fwd, s)
	}
	p.setLocal(fwd)
	return fwd, nil
}

// transportOf picks the transport of the next hop: the top Route's or the
// Request-URI's transport parameter, else UDP.
func transportOf(req *gosip.Request) string {
	u := req.Recipient
	if rt := req.Route(); rt != nil {
		u = rt.Address
	}
	if t, ok := u.UriParams.Get("transport"); ok && t != "" {
		return strings.ToUpper(t)
	}
	if u.Scheme == "sips" {
		return "TLS"
	}
	return "UDP"
}

// Target is where a call goes once the pipeline let it through: the route
// a stage chose, else the trunk's outbound address (outbound calls) or the
// PBX (inbound). The proxy and `switchboard explain` both ask it.
func (r *Routing) Target(c *callctl.Call, trunk *Trunk) (gosip.Uri, error) {
	if c.Target != "" {
		var u gosip.Uri
		if err := gosip.ParseUri(c.Target, &u); err != nil {
			return u, errorf("route %q: %v", c.Target, err)
		}
		return u, nil
	}
	if c.Direction == callctl.Outbound {
		if trunk == nil || trunk.Outbound == nil {
			return gosip.Uri{}, errorf("no trunk with an outbound address")
		}
		return *trunk.Outbound, nil
	}
	return r.PBXURI, nil
}

// retarget points the Request-URI at target, keeping the dialled user part
// unless the target names a user of its own.
func retarget(req *gosip.Request, target gosip.Uri) {
	u := *target.Clone()
	if u.User == "" {
		u.User = req.Recipient.User
	}
	req.Recipient = u
}

// applyCall writes what the pipeline decided into the INVITE: extra headers
// and the caller's display name (already sanitised by the stages).
func applyCall(req *gosip.Request, c *callctl.Call) {
	for name, value := range c.Headers {
		req.RemoveHeader(name)
		req.AppendHeader(gosip.NewHeader(name, value))
	}
	// No name of our own: the caller's display names go on as they came
	// (SPEC §1, display names are never dropped).
	if callctl.CleanDisplayName(c.DisplayName) == "" {
		return
	}
	quoted := callctl.QuoteDisplayName(c.DisplayName)
	if f := req.From(); f != nil {
		// sipgo writes the quotes itself.
		f.DisplayName = quoted[1 : len(quoted)-1]
	}
	var pais []string
	for _, h := range req.GetHeaders("P-Asserted-Identity") {
		for _, v := range splitList(h.Value()) {
			pais = append(pais, withDisplay(v, quoted))
		}
	}
	if len(pais) == 0 {
		return
	}
	for req.RemoveHeader("P-Asserted-Identity") {
	}
	for _, v := range pais {
		req.AppendHeader(gosip.NewHeader("P-Asserted-Identity", v))
	}
}

// splitList splits a header value at the commas that separate entries,
// not those inside quotes or angle brackets.
func splitList(v string) []string {
	var out []string
	depth, quoted, start := 0, false, 0
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c == '\\' && quoted:
			i++
		case c == '"':
			quoted = !quoted
		case quoted:
		case c == '<':
			depth++
		case c == '>':
			depth--
		case c == ',' && depth == 0:
			out = append(out, strings.TrimSpace(v[start:i]))
			start = i + 1
		}
	}
	if s := strings.TrimSpace(v[start:]); s != "" {
		out = append(out, s)
	}
	return out
}

// withDisplay replaces the display name of a name-addr header value with
// an already quoted one.
func withDisplay(v, quoted string) string {
	i := strings.IndexByte(v, '<')
	if i < 0 {
		return quoted + ` <` + strings.TrimSpace(v) + `>`
	}
	return quoted + ` ` + v[i:]
}
