package sip

import (
	"context"
	"time"

	gosip "github.com/emiago/sipgo/sip"
	"go.uber.org/zap"

	"github.com/switchboard-sip/switchboard/callctl"
)

// A 200 that crosses the caller's CANCEL (RFC 3261 §9.1): the caller has
// hung up, so the call is not connected. Switchboard acknowledges the 200
// and ends the callee's side with a BYE of its own (§15), and the caller
// gets 487 for its INVITE: nobody is left on an answered call, and the
// record says cancelled with the time it rang (SPEC §1). Both paths use
// crossingRequests and sendCrossingBye.

// crossingRequests builds the ACK and the BYE for the callee's 200 to the
// forwarded INVITE fwd, in the dialog the 200 made: Request-URI its
// Contact, Route the Record-Route entries between us and the callee,
// From as the callee saw it, To with the callee's tag, our own Via.
func (p *Proxy) crossingRequests(fwd *gosip.Request, res *gosip.Response) (ack, bye *gosip.Request) {
	return p.toCallee(gosip.ACK, fwd, res), p.toCallee(gosip.BYE, fwd, res)
}

// toCallee builds an in-dialog request of the 200's dialog; the 200
// echoes the INVITE's From, Call-ID and CSeq (RFC 3261 §8.2.6.2), so fwd
// is only the Request-URI to use when the 200 has no Contact (nil: none).
func (p *Proxy) toCallee(method gosip.RequestMethod, fwd *gosip.Request, res *gosip.Response) *gosip.Request {
	var target gosip.Uri
	switch c := res.Contact(); {
	case c != nil:
		target = c.Address
	case fwd != nil:
		target = fwd.Recipient
	default:
		return nil
	}
	r := gosip.NewRequest(method, *target.Clone())
	for _, v := range p.routesToCallee(res) {
		r.AppendHeader(gosip.NewHeader("Route", v))
	}
	mf := gosip.MaxForwardsHeader(70)
	r.AppendHeader(&mf)
	for _, name := range []string{"From", "To", "Call-ID"} {
		if h := res.GetHeader(name); h != nil {
			r.AppendHeader(gosip.NewHeader(name, h.Value()))
		}
	}
	seq := uint32(1)
	if cs := res.CSeq(); cs != nil {
		seq = cs.SeqNo
	}
	if method == gosip.BYE {
		seq++
	}
	r.AppendHeader(&gosip.CSeqHeader{SeqNo: seq, MethodName: method})
	r.SetBody(nil)
	r.SetTransport(transportOf(r))
	p.reuse(r)
	p.addVia(r, loopHash(r))
	p.setLocal(r)
	return r
}

// routesToCallee is the route set from us to the callee: the 200's
// Record-Route entries above our own, nearest to us first (RFC 3261
// §12.1.2, seen from our place on the path).
func (p *Proxy) routesToCallee(res *gosip.Response) []string {
	var above []string
	for _, h := range res.GetHeaders("Record-Route") {
		for _, v := range splitList(h.Value()) {
			var u gosip.Uri
			var params gosip.HeaderParams
			if _, err := gosip.ParseAddressValue(v, &u, &params); err == nil && p.self.is(u.Host, u.Port) {
				return reversed(above)
			}
			above = append(above, v)
		}
	}
	return nil // we are not on its path: the Contact is the next hop
}

func reversed(s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[len(s)-1-i] = v
	}
	return out
}

// hangUpCrossing sends the ACK and the BYE for a crossing 200 and returns
// the ACK, to be sent again should the callee repeat its 200.
func (p *Proxy) hangUpCrossing(fwd *gosip.Request, res *gosip.Response, active *callctl.Active) *gosip.Request {
	p.log.Info("the callee answered as the caller hung up: switchboard ends the callee's side",
		zap.String("call_id", active.Call.CallID))
	ack, bye := p.crossingRequests(fwd, res)
	if err := p.cli.WriteRequest(ack, noBuild); err != nil {
		p.log.Debug("ACK for a 200 that crossed the CANCEL", zap.Error(err))
	}
	go p.sendCrossingBye(bye)
	return ack
}

// sendCrossingBye sends the BYE of a crossing 200 as a transaction of its
// own (retransmitted over UDP until answered).
func (p *Proxy) sendCrossingBye(bye *gosip.Request) {
	ctx, stop := context.WithTimeout(context.Background(), 32*time.Second)
	defer stop()
	res, err := p.cli.Do(ctx, bye, noBuild)
	if err != nil {
		p.log.Debug("BYE for a 200 that crossed the CANCEL", zap.Error(err))
		return
	}
	p.log.Debug("BYE for a 200 that crossed the CANCEL answered", zap.Int("status", res.StatusCode))
}
