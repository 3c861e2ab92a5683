package sip

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"hash/fnv"
	"math/rand/v2"
	"strconv"
	"strings"

	gosip "github.com/emiago/sipgo/sip"
)

// branchPrefix marks Via branches that switchboard created: the RFC 3261
// magic cookie, then "sb", then a hash of the request for loop detection.
const branchPrefix = "z9hG4bK-sb-"

// loopHash is the RFC 3261 §16.6 item 8 hash over the fields that stay the
// same when a request comes back to us unchanged (a loop, not a spiral).
func loopHash(req *gosip.Request) string { return hashOf(req, true) }

// inviteHash is loopHash of the INVITE that a CANCEL or an ACK for a
// non-2xx belongs to: the same fields, without the To tag the INVITE did
// not have yet.
func inviteHash(req *gosip.Request) string { return hashOf(req, false) }

func hashOf(req *gosip.Request, toTag bool) string {
	// FNV-1a is enough: the hash only has to tell a request that came back
	// unchanged from one that did not, and it runs on every request.
	h := fnv.New64a()
	h.Write([]byte(req.Recipient.String()))
	if f := req.From(); f != nil {
		t, _ := f.Params.Get("tag")
		h.Write([]byte(t))
	}
	if t := req.To(); t != nil && toTag {
		tag, _ := t.Params.Get("tag")
		h.Write([]byte(tag))
	}
	if c := req.CallID(); c != nil {
		h.Write([]byte(c.Value()))
	}
	if c := req.CSeq(); c != nil {
		h.Write([]byte(strconv.FormatUint(uint64(c.SeqNo), 10)))
	}
	return strconv.FormatUint(h.Sum64(), 36)
}

// looped reports a request that already passed through us with the same
// Request-URI and dialog identifiers (RFC 3261 §16.3 item 4).
func looped(req *gosip.Request, hash string) bool {
	want := branchPrefix + hash + "-"
	for _, h := range req.GetHeaders("Via") {
		v, ok := h.(*gosip.ViaHeader)
		if !ok {
			continue
		}
		if b, _ := v.Params.Get("branch"); strings.HasPrefix(b, want) {
			return true
		}
	}
	return false
}

// addVia puts our Via on top of a request we forward (RFC 3261 §16.6 item 8).
// The branch is the loop hash, then a hash of the previous hop's branch and
// sent-by: the same request (a retransmission, or the CANCEL and non-2xx
// ACK of an INVITE) gets the same branch even after a restart, as a
// stateless proxy's must (RFC 3261 §16.11).
func (p *Proxy) addVia(req *gosip.Request, hash string) {
	via := &gosip.ViaHeader{
		ProtocolName: "SIP", ProtocolVersion: "2.0",
		Transport: req.Transport(),
		Host:      p.opts.Advertise,
		Port:      p.ports[strings.ToLower(req.Transport())],
		Params:    gosip.NewParams(),
	}
	via.Params.Add("branch", branchPrefix+hash+"-"+hopHash(req.Via()))
	req.PrependHeader(via)
}

// addRecordRoute keeps us on the path of the dialog (RFC 3261 §16.6 item 4).
// When the request changes transport we add one entry per side (RFC 5658),
// so each end reaches us over the transport it knows.
func (p *Proxy) addRecordRoute(req *gosip.Request, inTransport string) {
	out := strings.ToLower(req.Transport())
	in := strings.ToLower(inTransport)
	sig := p.routeToken(req)
	if in != "" && in != out {
		req.PrependHeader(p.recordRoute(in, sig))
		req.PrependHeader(p.recordRoute(out, sig))
		return
	}
	req.PrependHeader(p.recordRoute(out, sig))
}

// routeToken signs the Call-ID into our Record-Route: an in-dialog request
// from an address we do not know is relayed only when it carries a Route
// we wrote for that very dialog, so nobody can use us as an open relay by
// adding our address to a Route header. The key is shared through the
// database, so the token survives restarts and holds across nodes.
func (p *Proxy) routeToken(req *gosip.Request) string {
	id := req.CallID()
	if id == nil || len(p.opts.RouteKey) == 0 {
		return ""
	}
	m, _ := p.macs.Get().(hash.Hash)
	if m == nil {
		m = hmac.New(sha256.New, p.opts.RouteKey)
	}
	m.Reset()
	m.Write([]byte(id.Value()))
	var sum [sha256.Size]byte
	tok := hex.EncodeToString(m.Sum(sum[:0])[:8])
	p.macs.Put(m)
	return tok
}

func (p *Proxy) recordRoute(transport, sig string) *gosip.RecordRouteHeader {
	params := gosip.NewParams()
	if transport != "udp" {
		params.Add("transport", transport)
	}
	if sig != "" {
		params.Add("sb", sig)
	}
	params.Add("lr", "")
	host, port := p.opts.Advertise, p.ports[transport]
	if p.rrHost != "" {
		host, port = p.rrHost, p.rrPort
	}
	return &gosip.RecordRouteHeader{Address: gosip.Uri{
		Scheme: "sip", Host: host, Port: port, UriParams: params,
	}}
}

// popOwnRoutes removes the Route entries that point at us (RFC 3261 §16.4),
// including the second entry of a double Record-Route. It reports whether
// one of them carried our signature for this dialog.
func (p *Proxy) popOwnRoutes(req *gosip.Request) (signed bool) {
	want := p.routeToken(req)
	for {
		r := req.Route()
		if r == nil || !p.self.is(r.Address.Host, r.Address.Port) {
			return signed
		}
		if v, ok := r.Address.UriParams.Get("sb"); ok && want != "" && hmac.Equal([]byte(v), []byte(want)) {
			signed = true
		}
		req.RemoveHeader("Route")
	}
}

// strictRouteFix handles a request from a strict router (RFC 3261 §16.4):
// our own address in the Request-URI means the real target is the last
// Route. Our entry moves to the top of the Route set, so that its
// signature is checked and it is popped like a loose route.
func (p *Proxy) strictRouteFix(req *gosip.Request) {
	if !p.self.is(req.Recipient.Host, req.Recipient.Port) {
		return
	}
	routes := req.GetHeaders("Route")
	if len(routes) == 0 {
		return
	}
	last, ok := routes[len(routes)-1].(*gosip.RouteHeader)
	if !ok {
		return
	}
	ours := &gosip.RouteHeader{Address: *req.Recipient.Clone()}
	req.Recipient = *last.Address.Clone()
	for req.RemoveHeader("Route") {
	}
	req.AppendHeader(ours)
	for _, r := range routes[:len(routes)-1] {
		req.AppendHeader(r)
	}
}

// decMaxForwards applies RFC 3261 §16.6 item 3; false means 483.
func decMaxForwards(req *gosip.Request) bool {
	mf := req.MaxForwards()
	if mf == nil {
		v := gosip.MaxForwardsHeader(70)
		req.AppendHeader(&v)
		return true
	}
	if mf.Val() == 0 {
		return false
	}
	mf.Dec()
	return true
}

// setLocal makes a UDP request leave from our listening socket, so the far
// end sees (and answers) the address it knows us by.
func (p *Proxy) setLocal(req *gosip.Request) {
	forgetSource(req) // every forwarded request passes here (source.go)
	if !strings.EqualFold(req.Transport(), "udp") {
		return
	}
	port := p.ports["udp"]
	if port == 0 {
		return
	}
	for _, l := range p.opts.Listen {
		if l.Network == "udp" {
			req.Laddr = gosip.Addr{IP: parseIP(l.Host), Port: port}
			return
		}
	}
}

// relayResponse sends a response from downstream upstream without our Via
// (RFC 3261 §16.7 item 3), to the address the top Via left names (its
// received and rport, see stampVia).
func relayResponse(res *gosip.Response) *gosip.Response {
	out := res.Clone()
	out.RemoveHeader("Via")
	out.SetDestination("")
	return out
}

// relayTo is relayResponse for the request req it answers: the sender of
// req sees the From and To it sent (SPEC §1).
func relayTo(res *gosip.Response, req *gosip.Request) *gosip.Response {
	out := relayResponse(res)
	sameParties(out, req)
	return out
}

// hopHash identifies the transaction of the previous hop: its Via branch
// and sent-by (RFC 3261 §17.2.3).
func hopHash(v *gosip.ViaHeader) string {
	if v == nil {
		return strconv.FormatUint(rand.Uint64(), 36)
	}
	h := fnv.New64a()
	b, _ := v.Params.Get("branch")
	h.Write([]byte(b))
	h.Write([]byte{0})
	h.Write([]byte(v.Host))
	h.Write([]byte(strconv.Itoa(v.Port)))
	return strconv.FormatUint(h.Sum64(), 36)
}
