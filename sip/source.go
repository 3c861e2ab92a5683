package sip

import (
	"bytes"
	"net/netip"
	"strconv"
	"strings"
	"time"

	gosip "github.com/emiago/sipgo/sip"
)

// SourceHeader carries a request's original source from a load balancer
// to the node behind it (SPEC §11): every request reaches the node from
// the balancer's address, so without it the node could not tell the PBX
// from a trunk or a stranger.
const SourceHeader = "X-Switchboard-Source"

// origin is the address a request is judged by: where it came from, or,
// when that is a listed balancer that names the original source, that
// source (SPEC §11). The header is trusted from a balancer only; from
// anyone else it is ignored. false: the balancer named something that is
// no address, and the request is judged a stranger's.
func (r *Routing) origin(req *gosip.Request) (netip.AddrPort, bool) {
	src, ok := source(req)
	if !ok || !r.isBalancer(src) {
		return src, ok
	}
	h := req.GetHeader(SourceHeader)
	if h == nil {
		return src, true // the balancer itself (its OPTIONS probes)
	}
	return parseSource([]byte(h.Value()))
}

// isBalancer reports a listed balancer (sip.balancers).
func (r *Routing) isBalancer(src netip.AddrPort) bool {
	return r.Balancers != nil && r.Balancers(src)
}

// parseSource reads "ip:port", "[ipv6]:port" or "ipv6:port" as written
// by a balancer.
func parseSource(v []byte) (netip.AddrPort, bool) {
	s := strings.TrimSpace(string(v))
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), ap.Port() != 0
	}
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return netip.AddrPort{}, false
	}
	ap, err := netip.ParseAddrPort("[" + s[:i] + "]" + s[i:])
	if err != nil || ap.Port() == 0 {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), true
}

// SentHeader carries, on a BYE, when the balancer first sent it
// ("seconds.microseconds" since the epoch): a BYE that went to a dead node
// first reaches a live one a failover timeout later, and the call ended
// when it was sent (SPEC §11).
const SentHeader = "X-Switchboard-Sent"

// sentSkew bounds how far a balancer's sent time may lie from this node's
// clock: the failover timeout, a retransmission, clocks a little apart.
const sentSkew = 30 * time.Second

// sentAt is when a listed balancer says it first sent the request; zero
// when it says nothing believable.
func (r *Routing) sentAt(req *gosip.Request) time.Time {
	src, ok := source(req)
	h := req.GetHeader(SentHeader)
	if !ok || h == nil || !r.isBalancer(src) {
		return time.Time{}
	}
	sec, usec, _ := strings.Cut(strings.TrimSpace(h.Value()), ".")
	s, err := strconv.ParseInt(sec, 10, 64)
	u, uerr := strconv.ParseInt(usec+"000000"[min(len(usec), 6):], 10, 64)
	if err != nil || uerr != nil || len(usec) > 6 {
		return time.Time{}
	}
	at := time.Unix(s, u*1000)
	if now := time.Now(); at.Before(now.Add(-sentSkew)) || at.After(now) {
		return time.Time{}
	}
	return at
}

// forgetSource removes the balancer's word on the source (and the sent
// time) from a request that goes on: it is meant for this node only, and
// a copy left in it would be believed by a next hop that trusts the same
// balancer.
func forgetSource(req *gosip.Request) {
	for req.RemoveHeader(SourceHeader) {
	}
	for req.RemoveHeader(SentHeader) {
	}
}

// knownAddr reports an address that may send requests by its address
// alone: the PBX, a trunk, or a balancer (SPEC §1). It is all the UDP
// readers ask before anything is parsed.
func (r *Routing) knownAddr(src netip.AddrPort) bool {
	if src == r.PBX || r.isBalancer(src) {
		return true
	}
	for i := range r.Trunks {
		if r.Trunks[i].Match(src) {
			return true
		}
	}
	return false
}

// signedMark is the parameter of our Record-Route entries: a request from
// an address we do not know that carries one may be an in-dialog request
// from a callee a hotline routed to, and is parsed to check its signature.
var signedMark = []byte(";sb=")

// mayBeSigned is the byte-level test before a parse: a request without
// our mark cannot be in one of our dialogs.
func mayBeSigned(data []byte) bool { return bytes.Contains(data, signedMark) }
