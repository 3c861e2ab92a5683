package sip

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"time"

	gosip "github.com/emiago/sipgo/sip"
	"go.uber.org/zap"

	"github.com/switchboard-sip/switchboard/callctl"
)

// defaultTimerC is Timer C when none is configured: RFC 3261 §16.6 item
// 11 asks for more than 3 minutes.
const defaultTimerC = 3*time.Minute + 10*time.Second

// proxyInvite sends the forwarded INVITE and relays every response
// upstream until the transaction ends (RFC 3261 §16.7). A CANCEL from the
// caller is passed on downstream once a provisional response has arrived
// (RFC 3261 §9.1). Two timers bound the wait: InviteTimeout for the first
// response, Timer C (restarted by each provisional) for the final one.
//
// It returns true when the next hop gave no sign of life (no response
// within ResponseTimeout, or its target marked down while waiting): the
// caller then fails the call over (failover.go).
func (p *Proxy) proxyInvite(req, fwd *gosip.Request, tx gosip.ServerTransaction, active *callctl.Active, start time.Time) (failover bool) {
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	cltx, err := p.cli.TransactionRequest(ctx, fwd, noBuild)
	p.observe(start)
	if err != nil {
		p.log.Warn("forward INVITE", zap.String("call_id", active.Call.CallID), zap.Error(err))
		active.Final(503, true, "transport: "+err.Error())
		respond(tx, req, 503, "Service Unavailable")
		return false
	}
	noLife, down, wt := p.lifeSigns(fwd)
	defer p.waiting.done(wt)
	active.Forwarded()
	cancels := make(chan *gosip.Request, 1)
	tx.OnCancel(func(c *gosip.Request) {
		select {
		case cancels <- c:
		default:
		}
	})
	var crossAck atomic.Pointer[gosip.Request] // set when a 200 crossed the caller's CANCEL
	cltx.OnRetransmission(func(res *gosip.Response) {
		switch {
		case !res.IsSuccess():
		case crossAck.Load() != nil:
			_ = p.cli.WriteRequest(crossAck.Load(), noBuild) // our ACK got lost
		default:
			_ = tx.Respond(relayTo(res, req))
		}
	})
	timerC := time.NewTimer(p.timerC())
	defer timerC.Stop()
	var firstWait <-chan time.Time
	if p.opts.InviteTimeout > 0 {
		first := time.NewTimer(p.opts.InviteTimeout)
		defer first.Stop()
		firstWait = first.C
	}
	var cancelReq *gosip.Request
	provisional, cancelSent, expired := false, false, false
	for {
		if cancelReq != nil && provisional && !cancelSent {
			cancelSent = true
			go p.sendCancel(fwd, cancelReq)
		}
		select {
		case c := <-cancels:
			// The disposition waits for the final response: a 200 that
			// crosses the CANCEL makes an answered call (RFC 3261 §9.1).
			cancelReq = c
		case <-noLife:
			cltx.Terminate()
			return p.noLife(req, tx, active, cancelReq)
		case <-down:
			cltx.Terminate()
			return p.noLife(req, tx, active, cancelReq)
		case res := <-cltx.Responses():
			firstWait, noLife, down = nil, nil, nil
			if res.IsProvisional() {
				provisional = true
				timerC.Reset(p.timerC())
				if relayRule(res.StatusCode) {
					active.Ringing()
					_ = tx.Respond(relayTo(res, req))
				}
				continue
			}
			// The client transaction ends itself on its timers (RFC 6026
			// Accepted state), so 2xx retransmissions still reach the caller.
			if !res.IsSuccess() {
				settle(active, cancelReq)
			} else if cancelReq != nil {
				crossAck.Store(p.hangUpCrossing(fwd, res, active))
				settle(active, cancelReq)
				p.countRes(active.Call, gosip.StatusRequestTerminated)
				respond(tx, req, gosip.StatusRequestTerminated, "Request Terminated")
				return false
			}
			p.final(req, tx, active, res, cancelReq != nil || expired)
			return false
		case <-firstWait:
			cltx.Terminate()
			settle(active, cancelReq)
			p.noFinal(req, tx, active, gosip.ErrTransactionTimeout, cancelReq != nil)
			return false
		case <-timerC.C:
			if !provisional {
				cltx.Terminate()
				settle(active, cancelReq)
				p.noFinal(req, tx, active, gosip.ErrTransactionTimeout, cancelReq != nil)
				return false
			}
			// RFC 3261 §16.8: it rang too long; cancel it and relay the
			// 487 that follows. Nobody answered: no_answer.
			if !expired && !cancelSent {
				expired, cancelSent = true, true
				active.Final(408, false, "timer C")
				go p.sendCancel(fwd, nil)
			}
		case <-cltx.Done():
			settle(active, cancelReq)
			p.noFinal(req, tx, active, cltx.Err(), cancelReq != nil)
			return false
		}
	}
}

// lifeSigns arms the two ends of the wait for a first response: the
// response timeout and the keep-alive marking the target down. wt is for
// waiting.done.
func (p *Proxy) lifeSigns(fwd *gosip.Request) (timeout <-chan time.Time, down <-chan struct{}, wt *waiter) {
	if d := p.opts.ResponseTimeout; d > 0 && (p.opts.InviteTimeout == 0 || d < p.opts.InviteTimeout) {
		timeout = time.After(d)
	}
	if p.opts.Keepalive == 0 {
		return timeout, nil, nil // no target is ever marked down
	}
	ch := make(chan struct{})
	return timeout, ch, p.waiting.add(fwd.Recipient, func() { close(ch) })
}

// noLife ends the wait for a next hop that gave no sign of life: a call
// the caller cancelled meanwhile is settled, any other fails over (true).
func (p *Proxy) noLife(req *gosip.Request, tx gosip.ServerTransaction, active *callctl.Active, cancelReq *gosip.Request) bool {
	if cancelReq == nil {
		return true
	}
	settle(active, cancelReq)
	respond(tx, req, gosip.StatusRequestTerminated, "Request Terminated")
	return false
}

// settle ends a call the caller cancelled and nobody answered.
func settle(active *callctl.Active, cancel *gosip.Request) {
	if cancel != nil {
		active.Cancelled(elsewhere(cancel))
	}
}

func (p *Proxy) timerC() time.Duration {
	if p.opts.TimerC > 0 {
		return p.opts.TimerC
	}
	return defaultTimerC
}

func (p *Proxy) final(req *gosip.Request, tx gosip.ServerTransaction, active *callctl.Active, res *gosip.Response, cancelled bool) {
	switch {
	case res.IsSuccess():
		active.SetTranscript(p.headerText(res, p.opts.TranscriptHeader))
		active.Answered(res.StatusCode, p.recording(res), answeredBy(res))
		p.dialogs.add(req, res)
		if cancelled {
			p.log.Warn("2xx after CANCEL: the callee answered as the caller hung up",
				zap.String("call_id", active.Call.CallID))
		}
	case cancelled:
		// The CANCEL (or Timer C) already decided the disposition.
	default:
		active.Final(res.StatusCode, false, res.Reason)
	}
	p.countRes(active.Call, res.StatusCode)
	_ = tx.Respond(relayTo(res, req))
}

// recording is the PBX's recording reference from a 2xx, sanitised: it is
// stored and shown, and came from the network.
func (p *Proxy) recording(res *gosip.Response) string {
	return p.headerText(res, p.opts.RecordingHeader)
}

// headerText is the sanitised value of the header name of msg; empty when
// name is empty or msg has no such header.
func (p *Proxy) headerText(msg interface{ GetHeader(string) gosip.Header }, name string) string {
	if name == "" {
		return ""
	}
	if h := msg.GetHeader(name); h != nil {
		return callctl.SanitizeHeaderValue(h.Value())
	}
	return ""
}

// noFinal answers the caller when the far side never sent a final response:
// 408 when it timed out (Timer B), 503 when the transport failed.
func (p *Proxy) noFinal(req *gosip.Request, tx gosip.ServerTransaction, active *callctl.Active, err error, cancelled bool) {
	if cancelled {
		return
	}
	code, reason := 408, "Request Timeout"
	if err != nil && !errors.Is(err, gosip.ErrTransactionTimeout) {
		code, reason = 503, "Service Unavailable"
	}
	msg := "no response"
	if err != nil {
		msg = err.Error()
	}
	active.Final(code, true, msg)
	p.countRes(active.Call, code)
	respond(tx, req, code, reason)
}

// elsewhere reports a CANCEL whose Reason says the call was answered on
// another device (RFC 3326, "SIP;cause=200").
func elsewhere(cancel *gosip.Request) bool {
	for _, h := range cancel.GetHeaders("Reason") {
		for _, v := range splitList(h.Value()) {
			proto, params, _ := strings.Cut(v, ";")
			if !strings.EqualFold(strings.TrimSpace(proto), "SIP") {
				continue
			}
			for _, kv := range strings.Split(params, ";") {
				k, val, _ := strings.Cut(strings.TrimSpace(kv), "=")
				if strings.EqualFold(strings.TrimSpace(k), "cause") && strings.TrimSpace(val) == "200" {
					return true
				}
			}
		}
	}
	return false
}

// sendCancel cancels the forwarded INVITE downstream (RFC 3261 §9.1,
// §16.10): same Request-URI, Call-ID, From, To, CSeq number, Route and top
// Via branch; the caller's Reason goes along (RFC 3326). upstream is nil
// when switchboard cancels on its own (Timer C).
func (p *Proxy) sendCancel(fwd, upstream *gosip.Request) {
	c := gosip.NewRequest(gosip.CANCEL, *fwd.Recipient.Clone())
	c.SipVersion = fwd.SipVersion
	if v := fwd.Via(); v != nil {
		c.AppendHeader(v.Clone())
	}
	for _, r := range fwd.GetHeaders("Route") {
		c.AppendHeader(gosip.NewHeader("Route", r.Value()))
	}
	mf := gosip.MaxForwardsHeader(70)
	c.AppendHeader(&mf)
	for _, name := range []string{"From", "To", "Call-ID"} {
		if h := fwd.GetHeader(name); h != nil {
			c.AppendHeader(gosip.NewHeader(name, h.Value()))
		}
	}
	if cs := fwd.CSeq(); cs != nil {
		c.AppendHeader(&gosip.CSeqHeader{SeqNo: cs.SeqNo, MethodName: gosip.CANCEL})
	}
	if upstream != nil {
		for _, h := range upstream.GetHeaders("Reason") {
			c.AppendHeader(gosip.NewHeader("Reason", h.Value()))
		}
	}
	c.SetBody(nil)
	c.SetTransport(fwd.Transport())
	c.SetDestination(fwd.Destination())
	c.Laddr = fwd.Laddr
	ctx, stop := context.WithTimeout(context.Background(), 32*time.Second)
	defer stop()
	ctx = context.WithoutCancel(ctx)
	res, err := p.cli.Do(ctx, c, noBuild)
	if err != nil {
		p.log.Debug("CANCEL downstream", zap.Error(err))
		return
	}
	p.log.Debug("CANCEL downstream answered", zap.Int("status", res.StatusCode))
}

// reject answers a call the pipeline refused, after the announcement when
// one is configured and the caller offered a codec we can play.
func (p *Proxy) reject(req *gosip.Request, tx gosip.ServerTransaction, active *callctl.Active, r *Routing, d callctl.Decision) {
	code := verdictCode(d)
	toTag := gosip.GenerateTagN(16)
	if d.Announcement != "" && r.Announce != nil {
		p.announce(req, tx, r, d.Announcement, toTag)
	}
	active.Decided(callctl.Decision{Code: code, Reason: d.Reason, Disposition: d.Disposition})
	p.countRes(active.Call, code)
	res := gosip.NewResponseFromRequest(req, code, reasonPhrase(code), nil)
	setToTag(res, toTag)
	_ = tx.Respond(res)
}

func (p *Proxy) announce(req *gosip.Request, tx gosip.ServerTransaction, r *Routing, wav, toTag string) {
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	tx.OnCancel(func(*gosip.Request) { stop() })
	answer, done, err := r.Announce(ctx, wav, req.Body())
	if err != nil {
		p.log.Debug("announcement skipped", zap.Error(err))
		return
	}
	res := gosip.NewResponseFromRequest(req, 183, "Session Progress", answer)
	res.AppendHeader(gosip.NewHeader("Content-Type", "application/sdp"))
	setToTag(res, toTag)
	_ = tx.Respond(res)
	select {
	case <-done:
	case <-ctx.Done():
	case <-tx.Done():
	}
}

func setToTag(res *gosip.Response, tag string) {
	if to := res.To(); to != nil {
		if _, ok := to.Params.Get("tag"); !ok {
			to.Params.Add("tag", tag)
		}
	}
}

func reasonPhrase(code int) string {
	switch code {
	case 403:
		return "Forbidden"
	case 404:
		return "Not Found"
	case 480:
		return "Temporarily Unavailable"
	case 486:
		return "Busy Here"
	case 488:
		return "Not Acceptable Here"
	case 503:
		return "Service Unavailable"
	case 603:
		return "Decline"
	}
	return "Rejected"
}
