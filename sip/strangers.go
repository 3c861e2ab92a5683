package sip

import (
	"bytes"
	"crypto/hmac"
	"errors"
	"net/netip"
	"sync"
	"time"

	gosip "github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/switchboard-sip/switchboard/callctl"
)

// Strangers (SPEC §1): a request from an address that is no trunk, not
// the PBX and no balancer is dropped without an answer, before it costs a
// parse where the reader can tell by the address alone. A scanner learns
// nothing, and nobody can use switchboard as an open relay. With
// sip.strangers: reject it gets 403, at most sip.stranger_replies a second
// per source, so that a flood of spoofed sources cannot turn switchboard
// into a reflector.

// strangerWindow is the span the per-source reply count and the log line
// are limited over.
const strangerWindow = time.Second

// maxStrangerSources bounds the per-source reply counts kept in one
// window; sources beyond it get no answer in that window.
const maxStrangerSources = 4096

// strangerGate is the state of the stranger rule that outlives reloads:
// the 403s given per source in the current second, and the log limit.
type strangerGate struct {
	mu      sync.Mutex
	window  time.Time
	replies map[netip.Addr]int
	logged  time.Time
	quiet   int // strangers not logged since the last line
	dropped *prometheus.CounterVec
	// strangers is dropped{reason="stranger"}, looked up once: a flood
	// pays no label hashing.
	strangers prometheus.Counter
}

// reply takes one of a source's answers for this window; false when it
// has had limit of them.
func (g *strangerGate) reply(src netip.Addr, now time.Time, limit int) bool {
	if limit <= 0 {
		return false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if now.Sub(g.window) >= strangerWindow || g.replies == nil {
		g.window, g.replies = now, map[netip.Addr]int{}
	}
	n, seen := g.replies[src]
	if n >= limit || (!seen && len(g.replies) >= maxStrangerSources) {
		return false
	}
	g.replies[src] = n + 1
	return true
}

// shouldLog says whether this stranger gets a log line (one a second at
// most) and how many went unlogged before it.
func (g *strangerGate) shouldLog(now time.Time) (bool, int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if now.Sub(g.logged) < strangerWindow {
		g.quiet++
		return false, 0
	}
	g.logged = now
	n := g.quiet
	g.quiet = 0
	return true, n
}

// droppedCounter is switchboard_sip_dropped_total{reason}, registered once
// per metrics registry (several proxies may share one in tests).
func droppedCounter(reg prometheus.Registerer) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "switchboard_sip_dropped_total",
		Help: "SIP requests dropped without an answer, by reason (stranger: from no trunk, not the PBX, no balancer).",
	}, []string{"reason"})
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
				return existing
			}
		}
	}
	return c
}

// dropReason values of switchboard_sip_dropped_total.
const (
	dropStranger = "stranger"
)

// stranger handles a stranger's request: with reject, answer sends the
// 403 while the source has answers left; otherwise it is counted as
// dropped. Either way one log line a second names a source. It reports
// whether the 403 went.
func (p *Proxy) stranger(r *Routing, src netip.AddrPort, method string, answer func()) bool {
	now := time.Now()
	answered := r.RejectStrangers && method != "ACK" && p.gate.reply(src.Addr(), now, r.StrangerReplies)
	if answered {
		answer()
		if p.met != nil {
			p.met.SIPRequests.WithLabelValues(method, "4xx").Inc()
		}
	} else if p.gate.strangers != nil {
		p.gate.strangers.Inc()
	}
	if ok, quiet := p.gate.shouldLog(now); ok {
		p.log.Info("request from a stranger (no trunk, not the PBX)", zap.Stringer("source", src),
			zap.String("method", method), zap.Bool("answered", answered), zap.Int("more_unlogged", quiet))
	}
	return answered
}

// strangerDatagram judges a UDP datagram by its source address alone,
// before anything is parsed (the fast path's reader and the prefilter of
// the sipgo path). true: it was a stranger's request and is handled; the
// 403, when one is due, goes out through out. Responses always pass: they are matched
// to our transactions by the branch we wrote.
func (p *Proxy) strangerDatagram(data []byte, from netip.AddrPort, out datagramSender) bool {
	if !isRequestStart(data) {
		return false
	}
	r := p.routing.Load()
	if r.knownAddr(from) || mayBeSigned(data) {
		return false
	}
	method := "other"
	if sp := bytes.IndexByte(data, ' '); sp > 0 {
		method = methodName(data[:sp])
	}
	p.stranger(r, from, method, func() { out.sendDatagram(rawResponse(data, gosip.StatusForbidden, "Forbidden"), from) })
	return true
}

// datagramSender writes a datagram from one of our UDP sockets.
type datagramSender interface {
	sendDatagram(b []byte, to netip.AddrPort)
}

// sendDatagram writes from the fast path's socket.
func (f *fastPath) sendDatagram(b []byte, to netip.AddrPort) { f.send(b, to) }

// screen is the fast path's first look at a datagram, right after
// recvmmsg: a stranger's request is handled here (done), and a request a
// balancer passed on goes the sipgo way (slow), which reads the source it
// names; everything else is the fast path's to try.
func (f *fastPath) screen(data []byte, from netip.AddrPort) (done, slow bool) {
	if f.p.strangerDatagram(data, from, f) {
		return true, false
	}
	r := f.p.routing.Load()
	return false, r.Balancers != nil && isRequestStart(data) && r.isBalancer(from)
}

// isRequestStart tells a request from a response or keep-alive by its
// first bytes (methods are upper-case tokens, RFC 3261 §7.1).
func isRequestStart(data []byte) bool {
	return len(data) >= 4 && data[0] >= 'A' && data[0] <= 'Z' && string(data[:4]) != "SIP/"
}

// methodName names a request method without allocating (it labels a
// metric): the methods of RFC 3261 and its extensions, else "other".
func methodName(m []byte) string {
	switch string(m) {
	case "INVITE":
		return "INVITE"
	case "ACK":
		return "ACK"
	case "BYE":
		return "BYE"
	case "CANCEL":
		return "CANCEL"
	case "OPTIONS":
		return "OPTIONS"
	case "REGISTER":
		return "REGISTER"
	case "SUBSCRIBE":
		return "SUBSCRIBE"
	case "NOTIFY":
		return "NOTIFY"
	case "MESSAGE":
		return "MESSAGE"
	case "INFO":
		return "INFO"
	case "PRACK":
		return "PRACK"
	case "UPDATE":
		return "UPDATE"
	case "REFER":
		return "REFER"
	case "PUBLISH":
		return "PUBLISH"
	}
	return "other"
}

// welcome judges a parsed request (every transport, and UDP requests a
// balancer passed on) by its origin: the PBX, a trunk or a balancer may
// go on, and so may a request carrying our signed Route for its dialog (a
// callee a hotline routed to sends its BYE from an address of its own).
// A stranger's request is dropped or answered here and its transaction
// ended.
func (p *Proxy) welcome(req *gosip.Request, tx gosip.ServerTransaction) bool {
	r := p.routing.Load()
	src, ok := r.origin(req)
	if ok {
		if r.isBalancer(src) || p.signedFor(req) {
			return true
		}
		if dir, _ := r.classifyFrom(req, src); dir != "" {
			return true
		}
	} else {
		src, _ = source(req)
	}
	answered := p.stranger(r, src, req.Method.String(), func() { respond(tx, req, gosip.StatusForbidden, "Forbidden") })
	if !answered {
		tx.Terminate() // no answer will come: sipgo would keep it forever
	}
	return false
}

// signedFor reports a request that carries, in a Route entry or (from a
// strict router) its Request-URI, the token we signed for its dialog, or
// names us in a dialog we remember.
func (p *Proxy) signedFor(req *gosip.Request) bool {
	if toTag(req) == "" {
		return false
	}
	want := p.routeToken(req)
	if want == "" {
		return false
	}
	signed := func(u gosip.Uri) bool {
		v, ok := u.UriParams.Get("sb")
		return ok && hmac.Equal([]byte(v), []byte(want))
	}
	if signed(req.Recipient) {
		return true
	}
	for _, h := range req.GetHeaders("Route") {
		if rh, ok := h.(*gosip.RouteHeader); ok && signed(rh.Address) {
			return true
		}
	}
	_, known := p.dialogs.target(req)
	return known
}

// trunkAllows takes one of a trunk's max_cps tokens for a new inbound
// INVITE (SPEC §1: an SBC holds a carrier to its contract). The buckets
// live in the proxy, by trunk name, so that a reload keeps them unless the
// rate changed.
func (p *Proxy) trunkAllows(dir callctl.Direction, t *Trunk, now time.Time) bool {
	if dir != callctl.Inbound || t == nil || t.MaxCPS <= 0 {
		return true
	}
	v, _ := p.quotas.Load(t.Name)
	l, _ := v.(*rateLimit)
	if l == nil || l.rate != float64(t.MaxCPS) {
		l = newRateLimit(t.MaxCPS)
		p.quotas.Store(t.Name, l)
	}
	return l.allow(now)
}

// trunkRetryAfter is the Retry-After of a 503 for a trunk over its
// max_cps: the bucket refills within a second.
const trunkRetryAfter = "1"

// overTrunkBytes is the fast path's stateless 503 for an INVITE beyond its
// trunk's max_cps, written into w.
func overTrunkBytes(w []byte, m *msgIndex, from netip.AddrPort) []byte {
	return responseBytes(w, m, from, gosip.StatusServiceUnavailable, "Service Unavailable", statelessTag,
		"Retry-After: "+trunkRetryAfter+"\r\n")
}

// statelessTag is the To tag of the final responses switchboard sends
// without keeping a transaction. The caller's ACK for one (RFC 3261
// §17.1.1.3) names it, and is absorbed here instead of being passed on to
// a PBX or trunk that never saw the INVITE.
const statelessTag = "sb-stateless"

// ackForStateless reports an ACK of one of our stateless answers.
func ackForStateless(m *msgIndex) bool {
	return string(m.toTag.of(m.b)) == statelessTag
}

// overTrunk answers, statelessly, an INVITE beyond its trunk's max_cps.
func (f *fastPath) overTrunk(m *msgIndex, from netip.AddrPort, out *batch) {
	if w := out.slot(); w != nil {
		if b := overTrunkBytes(w[:0], m, from); len(b) <= len(w) {
			out.queue(len(b), from)
		} else {
			f.send(b, from)
		}
	}
	if f.p.met != nil {
		f.p.met.SIPRequests.WithLabelValues("INVITE", "5xx").Inc()
	}
}
