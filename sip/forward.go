package sip

import (
	"context"
	"net"
	"strconv"
	"strings"
	"time"

	gosip "github.com/emiago/sipgo/sip"
	"go.uber.org/zap"

	"github.com/switchboard-sip/switchboard/callctl"
)

// onInDialogOrOther handles every request but INVITE, ACK, CANCEL and
// OPTIONS to us: requests inside a dialog follow their Route set; others
// (REGISTER, MESSAGE, SUBSCRIBE, NOTIFY...) go from the PBX to the trunk and
// back, so a PBX registering to its carrier keeps working.
func (p *Proxy) onInDialogOrOther(req *gosip.Request, tx gosip.ServerTransaction) {
	if toTag(req) != "" {
		p.forwardInDialog(req, tx)
		return
	}
	fwd, code, reason := p.byDirection(req, loopHash(req))
	if code != 0 {
		p.count(req, code)
		respond(tx, req, code, reason)
		return
	}
	if req.Method == gosip.SUBSCRIBE || req.Method == gosip.REFER {
		// Our Via goes on top again after the Record-Route.
		fwd.RemoveHeader("Via")
		p.addRecordRoute(fwd, req.Transport())
		p.addVia(fwd, loopHash(req))
	}
	start := time.Now()
	status := p.relayNonInvite(req, fwd, tx)
	if req.Method == gosip.MESSAGE {
		p.recordMessage(req, status, start)
	}
}

// byDirection builds the copy of an out-of-dialog request that goes on by
// direction (SPEC §1): from the PBX to the outbound trunk, from a trunk to
// the PBX, never to switchboard itself; hash names the transaction in our
// Via branch. A non-zero code is the response to send instead.
func (p *Proxy) byDirection(req *gosip.Request, hash string) (*gosip.Request, int, string) {
	r := p.routing.Load()
	dir, trunk := r.classifyRequest(req)
	if dir == "" {
		return nil, 403, "Forbidden"
	}
	if code, reason := p.admit(req, hash); code != 0 && code != 503 {
		return nil, code, reason
	}
	target := r.PBXURI
	if dir == callctl.Outbound {
		if trunk == nil || trunk.Outbound == nil {
			return nil, 404, "Not Found"
		}
		target = *trunk.Outbound
	}
	fwd := req.Clone()
	for fwd.RemoveHeader("Route") {
	}
	p.aim(fwd, target)
	if src, ok := source(req); ok {
		stampVia(fwd.Via(), src)
	}
	p.peers.learn(req)
	p.addVia(fwd, hash)
	p.setLocal(fwd)
	return fwd, 0, ""
}

// aim sends an out-of-dialog request towards target, its Route set
// already removed. A Request-URI naming us is replaced (keeping its user);
// one naming another domain (a carrier's registrar) is kept and only the
// next hop is set. Either way it never goes back to us (SPEC §1).
func (p *Proxy) aim(req *gosip.Request, target gosip.Uri) {
	req.SetDestination("")
	if p.self.is(req.Recipient.Host, req.Recipient.Port) {
		retarget(req, target)
	} else {
		port := target.Port
		if port == 0 {
			port = 5060
		}
		req.SetDestination(net.JoinHostPort(target.Host, strconv.Itoa(port)))
	}
	req.SetSource("")
	req.SetTransport(transportOf(req))
}

// forwardInDialog routes a request of an established dialog by its Route
// set (RFC 3261 §16.4, loose routing). It needs no memory of the dialog, so
// calls set up before a restart keep working. Only requests that carry the
// Route we signed for their dialog, or name us and belong to a dialog we
// remember, are relayed: a To tag alone proves nothing.
func (p *Proxy) forwardInDialog(req *gosip.Request, tx gosip.ServerTransaction) {
	fwd := req.Clone()
	p.strictRouteFix(fwd)
	swap, swapped := p.swapOfHeaders(fwd.CallID(), fwd.GetHeaders("Route"))
	if !p.mayRelay(fwd) {
		p.count(req, 403)
		respond(tx, req, 403, "Forbidden")
		return
	}
	if swapped {
		swap.apply(fwd)
	}
	if src, ok := source(req); ok {
		stampVia(fwd.Via(), src)
	}
	if !decMaxForwards(fwd) {
		p.count(req, 483)
		respond(tx, req, 483, "Too Many Hops")
		return
	}
	if !p.resolveSelf(fwd) {
		p.count(req, 481)
		respond(tx, req, 481, "Call/Transaction Does Not Exist")
		return
	}
	fwd.SetDestination("")
	fwd.SetSource("")
	fwd.SetTransport(transportOf(fwd))
	p.peers.learn(req)
	p.reuse(fwd)
	p.addVia(fwd, loopHash(req))
	p.setLocal(fwd)
	if req.Method == gosip.BYE {
		if id := req.CallID(); id != nil {
			p.tracker.ByeWith(id.Value(), p.routing.Load().sentAt(req), // source.go
				p.headerText(req, p.opts.TranscriptHeader))
			p.dialogs.remove(id.Value())
		}
	}
	p.relayNonInvite(req, fwd, tx)
}

// resolveSelf retargets an in-dialog request that names us with no Route
// left to the other side of a dialog we remember; false means nowhere to go.
func (p *Proxy) resolveSelf(req *gosip.Request) bool {
	if req.Route() != nil || !p.self.is(req.Recipient.Host, req.Recipient.Port) {
		return true
	}
	u, ok := p.dialogs.target(req)
	if !ok {
		return false
	}
	req.Recipient = u
	return true
}

// mayRelay pops our Route entries and says whether the in-dialog request
// may go on: it carried our signature, or it names us and we remember its
// dialog (resolveSelf then finds the target).
func (p *Proxy) mayRelay(req *gosip.Request) bool {
	if p.popOwnRoutes(req) {
		return true
	}
	if req.Route() == nil && p.self.is(req.Recipient.Host, req.Recipient.Port) {
		_, ok := p.dialogs.target(req)
		return ok
	}
	return false
}

// relayNonInvite sends a request statefully, relays its responses and
// returns the final status sent back.
func (p *Proxy) relayNonInvite(req, fwd *gosip.Request, tx gosip.ServerTransaction) int {
	cltx, err := p.cli.TransactionRequest(context.Background(), fwd, noBuild)
	if err != nil {
		p.log.Debug("forward request", zap.String("method", req.Method.String()), zap.Error(err))
		p.count(req, 503)
		respond(tx, req, 503, "Service Unavailable")
		return gosip.StatusServiceUnavailable
	}
	for {
		select {
		case res := <-cltx.Responses():
			if !relayRule(res.StatusCode) {
				continue
			}
			_ = tx.Respond(relayTo(res, req))
			if !res.IsProvisional() {
				p.count(req, res.StatusCode)
				return res.StatusCode
			}
		case <-cltx.Done():
			p.count(req, 408)
			respond(tx, req, 408, "Request Timeout")
			return gosip.StatusRequestTimeout
		}
	}
}

// onAck forwards the ACK of a 2xx statelessly along the Route set; ACKs of
// non-2xx responses are absorbed by the transaction layer.
func (p *Proxy) onAck(req *gosip.Request, _ gosip.ServerTransaction) {
	fwd := req.Clone()
	p.strictRouteFix(fwd)
	swap, swapped := p.swapOfHeaders(fwd.CallID(), fwd.GetHeaders("Route"))
	if !p.mayRelay(fwd) {
		p.onNon2xxAck(req)
		return
	}
	if !decMaxForwards(fwd) || !p.resolveSelf(fwd) {
		return
	}
	if swapped {
		swap.apply(fwd)
	}
	fwd.SetDestination("")
	fwd.SetSource("")
	fwd.SetTransport(transportOf(fwd))
	p.reuse(fwd)
	via := &gosip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: fwd.Transport(),
		Host: p.opts.Advertise, Port: p.ports[strings.ToLower(fwd.Transport())], Params: gosip.NewParams()}
	// A stateless proxy's branch must be the same for retransmissions.
	via.Params.Add("branch", branchPrefix+loopHash(req)+"-ack")
	fwd.PrependHeader(via)
	p.setLocal(fwd)
	if err := p.cli.WriteRequest(fwd, noBuild); err != nil {
		p.log.Debug("forward ACK", zap.Error(err))
	}
}

// onStrayCancel forwards a CANCEL that matches no transaction (after a
// restart) statelessly by direction (RFC 3261 §16.10): our Via branch is
// that of the INVITE we forwarded, so the far side matches it. The call's
// record, opened before the restart, ends as a cancelled call.
func (p *Proxy) onStrayCancel(req *gosip.Request, tx gosip.ServerTransaction) {
	fwd, code, reason := p.byDirection(req, inviteHash(req))
	if code != 0 {
		p.count(req, code)
		respond(tx, req, code, reason)
		return
	}
	if id := req.CallID(); id != nil {
		p.tracker.CancelStored(id.Value(), elsewhere(req))
	}
	p.relayNonInvite(req, fwd, tx)
}

// onNon2xxAck passes on, statelessly and by direction, the caller's ACK
// for a non-2xx final response that no transaction absorbed (the INVITE
// was forwarded before a restart). Only an ACK that names us and carries no
// Route can be one; it gets the INVITE's branch (RFC 3261 §17.1.1.3).
func (p *Proxy) onNon2xxAck(req *gosip.Request) {
	if req.Route() != nil || !p.self.is(req.Recipient.Host, req.Recipient.Port) {
		return
	}
	if _, known := p.dialogs.target(req); known {
		return
	}
	fwd, code, _ := p.byDirection(req, inviteHash(req))
	if code != 0 {
		return
	}
	top := fwd.Via()
	for fwd.RemoveHeader("Via") {
	}
	fwd.AppendHeader(top)
	if err := p.cli.WriteRequest(fwd, noBuild); err != nil {
		p.log.Debug("forward ACK", zap.Error(err))
	}
}

// onOptions answers keep-alive pings addressed to switchboard itself (no
// user part) and forwards the rest like any other request: an OPTIONS for
// a number goes on by direction (SPEC §1).
func (p *Proxy) onOptions(req *gosip.Request, tx gosip.ServerTransaction) {
	routes := req.Route() != nil && !p.self.is(req.Route().Address.Host, req.Route().Address.Port)
	if toTag(req) == "" && !routes && req.Recipient.User == "" && p.self.is(req.Recipient.Host, req.Recipient.Port) {
		if p.drain.Load() {
			// A load balancer probing its nodes (Kamailio's dispatcher,
			// SPEC §11) takes a draining node out of rotation.
			p.count(req, 503)
			respond(tx, req, 503, "Service Unavailable", gosip.NewHeader("Retry-After", "30"))
			return
		}
		res := gosip.NewResponseFromRequest(req, 200, "OK", nil)
		res.AppendHeader(gosip.NewHeader("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, INFO, PRACK, REFER, SUBSCRIBE, NOTIFY, MESSAGE"))
		res.AppendHeader(gosip.NewHeader("Accept", "application/sdp"))
		p.count(req, 200)
		_ = tx.Respond(res)
		return
	}
	p.onInDialogOrOther(req, tx)
}

// onStrayResponse forwards a response that matches no client transaction
// (2xx retransmissions after the transaction ended) statelessly to the next
// Via, when the top Via is ours (RFC 3261 §16.11).
func (p *Proxy) onStrayResponse(res *gosip.Response) {
	top := res.Via()
	if top == nil || !relayRule(res.StatusCode) || !p.ownVia(top) {
		return // only what we forwarded (RFC 3261 §16.7 item 3)
	}
	if b, _ := top.Params.Get("branch"); p.lateAnswer(res, b) {
		return
	}
	viaSwap, viaSwapped := p.swapOfVia(res)
	out := res.Clone()
	out.RemoveHeader("Via")
	next := out.Via()
	if next == nil {
		return
	}
	if s, ok := p.swapOfHeaders(out.CallID(), out.GetHeaders("Record-Route")); ok {
		s.restoreResponse(out)
	} else if viaSwapped {
		viaSwap.restoreResponse(out)
	}
	out.SetDestination(responseAddr(next))
	out.SetTransport(next.Transport)
	if strings.EqualFold(next.Transport, "udp") {
		// sipgo writes UDP responses only to addresses it heard from
		// since it started; after a restart that is nobody.
		p.writeUDP(out)
		return
	}
	if err := p.srv.WriteResponse(out); err != nil {
		p.log.Debug("forward stray response", zap.Error(err))
	}
}

// ownVia reports a Via switchboard wrote: our branch prefix and one of
// our addresses as sent-by (RFC 3261 §16.7 item 3, §16.11).
func (p *Proxy) ownVia(v *gosip.ViaHeader) bool {
	b, _ := v.Params.Get("branch")
	return strings.HasPrefix(b, branchPrefix) && p.self.is(v.Host, v.Port)
}

// writeUDP sends a message from our UDP listening socket to its
// destination, without a transaction.
func (p *Proxy) writeUDP(m gosip.Message) {
	addr, err := net.ResolveUDPAddr("udp", m.Destination())
	if err != nil || addr.IP == nil {
		p.log.Debug("stray response: no address", zap.String("to", m.Destination()))
		return
	}
	for _, c := range p.pre.conns {
		if _, err := c.WriteTo([]byte(m.String()), addr); err != nil {
			p.log.Debug("forward stray response", zap.Error(err))
		}
		return
	}
}

func (p *Proxy) count(req *gosip.Request, code int) {
	if p.met != nil {
		p.met.SIPRequests.WithLabelValues(req.Method.String(), strconv.Itoa(code/100)+"xx").Inc()
	}
}

func (p *Proxy) countRes(c *callctl.Call, code int) {
	if p.met != nil {
		p.met.SIPRequests.WithLabelValues("INVITE", strconv.Itoa(code/100)+"xx").Inc()
	}
}
