package sip

import (
	"bytes"
	"net/netip"
	"strconv"

	gosip "github.com/emiago/sipgo/sip"
	"go.uber.org/zap"
)

// response handles a response to a forwarded INVITE or to our CANCEL.
func (f *fastPath) response(m *msgIndex, tx *fastTx, out *batch) bool {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	if eqFold(m.cseqM.of(m.b), "CANCEL") {
		tx.cancelDone = true
		stop(tx, tCancel)
		return true
	}
	switch {
	case tx.state == txGone:
	case m.status < 200:
		f.provisional(tx, m, out)
	case m.status < 300:
		f.answered(tx, m, out)
	default:
		f.failed(tx, m, out)
	}
	return true
}

func (f *fastPath) provisional(tx *fastTx, m *msgIndex, out *batch) {
	if tx.state != txCalling && tx.state != txProceeding {
		return
	}
	stop(tx, tDown)
	tx.state = txProceeding
	tx.provisional, tx.lifeWait = true, false
	f.p.waiting.done(tx.wt)
	tx.wt = nil
	f.schedule(tx, tWait, f.p.timerC())
	if tx.cancelled && !tx.cancelSent {
		f.sendCancel(tx)
	}
	if !relayRule(m.status) {
		return
	}
	tx.active.Ringing()
	f.relayUp(tx, m, out, true)
}

func (f *fastPath) answered(tx *fastTx, m *msgIndex, out *batch) {
	if tx.cancelled {
		f.crossed(tx, m)
		return
	}
	if tx.state == txCalling || tx.state == txProceeding {
		stop(tx, tDown)
		stop(tx, tWait)
		f.p.waiting.done(tx.wt)
		tx.wt = nil
		tx.state = txAccepted
		f.noteAnswer(tx, m)
		tx.callID, tx.cseq = tx.active.Call.CallID, m.cseq
		f.txs.setCall(tx)
		f.schedule(tx, tEnd, fastTxLife)
	}
	f.relayUp(tx, m, out, false) // retransmissions too (RFC 6026)
	tx.inv, tx.fwd, tx.last, tx.cancel = nil, nil, nil, nil
}

// crossed ends a call whose 200 crossed the caller's CANCEL as the sipgo
// path does (crossing.go): ACK and BYE to the callee, 487 to the caller, a
// cancelled record; a repeated 200 is ACKed again. The caller holds tx.mu.
func (f *fastPath) crossed(tx *fastTx, m *msgIndex) {
	if tx.crossAck != nil {
		_ = f.p.cli.WriteRequest(tx.crossAck, noBuild)
		return
	}
	if tx.state != txCalling && tx.state != txProceeding {
		return
	}
	fwd, ok := parseRequest(tx.fwd)
	res, rok := parseResponse(m.b)
	var inv msgIndex
	if !ok || !rok || !inv.index(tx.inv) {
		return // cannot be: the fast path wrote or indexed all three
	}
	stop(tx, tDown)
	stop(tx, tWait)
	fwd.SetTransport("UDP")
	tx.crossAck = f.p.hangUpCrossing(fwd, res, tx.active)
	tx.active.Cancelled(tx.elsewhere)
	f.p.countRes(tx.active.Call, gosip.StatusRequestTerminated)
	f.finalUp(tx, &inv, gosip.StatusRequestTerminated, "Request Terminated")
}

// parseRequest and parseResponse read bytes the fast path holds with
// sipgo's parser, for what is rare enough not to need the index.
func parseRequest(b []byte) (*gosip.Request, bool) {
	msg, err := gosip.ParseMessage(append([]byte(nil), b...))
	req, ok := msg.(*gosip.Request)
	return req, err == nil && ok
}

func parseResponse(b []byte) (*gosip.Response, bool) {
	msg, err := gosip.ParseMessage(append([]byte(nil), b...))
	res, ok := msg.(*gosip.Response)
	return res, err == nil && ok
}

// noteAnswer records the answer as the sipgo path does (recording,
// answered_by, the dialog's Contacts), from the indexed 2xx.
func (f *fastPath) noteAnswer(tx *fastTx, m *msgIndex) {
	tx.active.SetTranscript(fastHeaderText(m, f.p.opts.TranscriptHeader))
	tx.active.Answered(m.status, f.p.fastRecording(m), fastAnsweredBy(m))
	var inv msgIndex
	if inv.index(tx.inv) {
		f.p.dialogs.rememberIndexed(&inv, m)
	}
	if tx.cancelled {
		f.p.log.Warn("2xx after CANCEL: the callee answered as the caller hung up",
			zap.String("call_id", tx.active.Call.CallID))
	}
	f.p.countRes(tx.active.Call, m.status)
}

func (f *fastPath) failed(tx *fastTx, m *msgIndex, out *batch) {
	f.ackDown(tx, m, out)
	if tx.state != txCalling && tx.state != txProceeding {
		return // a retransmission: ACKed again above
	}
	stop(tx, tDown)
	stop(tx, tWait)
	f.p.waiting.done(tx.wt)
	tx.wt = nil
	switch {
	case tx.cancelled:
		tx.active.Cancelled(tx.elsewhere)
	case !tx.expired:
		tx.active.Final(m.status, false, string(reasonOf(m)))
	}
	f.p.countRes(tx.active.Call, m.status)
	f.relayUp(tx, m, out, false)
	tx.state = txCompleted
	f.schedule(tx, tUp, fastT1)
	f.schedule(tx, tEnd, fastTxLife)
}

// reasonOf is the Reason-Phrase of a response.
func reasonOf(m *msgIndex) []byte {
	line := m.b[:bytes.Index(m.b, crlf)]
	if len(line) > 12 {
		return line[12:]
	}
	return nil
}

// relayUp sends a callee's response to the caller: without our Via, with
// the caller's own From (SPEC §1: the caller never sees the changed name).
func (f *fastPath) relayUp(tx *fastTx, m *msgIndex, out *batch, keep bool) {
	b := m.b
	w := out.slot()
	if len(b)+len(tx.from) > len(w) {
		return
	}
	w = w[:0]
	for i := -1; i < m.n; i++ {
		switch {
		case i < 0:
			w = append(w, b[:m.hdrs[0].line.s]...)
		case i == m.topVia:
			w = m.appendViaRest(w)
		case m.hdrs[i].kind == hFrom:
			w = append(w, tx.from...)
		default:
			w = append(w, m.hdrs[i].line.of(b)...)
		}
	}
	w = append(w, "\r\n"...)
	w = append(w, b[m.body:]...)
	out.queue(len(w), tx.caller)
	if keep || m.status >= 300 {
		tx.last = append(tx.last[:0], w...)
	}
}

// ackDown acknowledges the callee's non-2xx final (RFC 3261 §17.1.1.3):
// the INVITE's Request-URI and top Via only, its From, Call-ID and CSeq
// number, the response's To.
func (f *fastPath) ackDown(tx *fastTx, m *msgIndex, out *batch) {
	if tx.ack == nil && tx.fwd != nil {
		var fm msgIndex
		if !fm.index(tx.fwd) {
			return
		}
		fb := fm.b
		w := make([]byte, 0, 512)
		w = append(w, "ACK "...)
		w = append(w, fm.ruri.of(fb)...)
		w = append(w, " SIP/2.0\r\n"...)
		w = append(w, fm.hdrs[fm.topVia].line.of(fb)...)
		w = append(w, "Max-Forwards: 70\r\n"...)
		w = append(w, fm.hdrs[fm.headerOf(hFrom)].line.of(fb)...)
		w = append(w, m.hdrs[m.headerOf(hTo)].line.of(m.b)...)
		w = append(w, fm.hdrs[fm.headerOf(hCallID)].line.of(fb)...)
		w = append(w, "CSeq: "...)
		w = strconv.AppendUint(w, uint64(fm.cseq), 10)
		w = append(w, " ACK\r\nContent-Length: 0\r\n\r\n"...)
		tx.ack = w
	}
	if tx.ack != nil {
		if s := out.slot(); len(tx.ack) <= len(s) {
			out.queue(copy(s, tx.ack), tx.callee)
		}
	}
}

// ack takes the caller's ACK for our non-2xx final (§17.2.1: Timer I).
func (f *fastPath) ack(tx *fastTx) {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	if tx.state == txCompleted {
		stop(tx, tUp)
		tx.state = txConfirmed
		tx.inv, tx.fwd, tx.last, tx.cancel, tx.ack = nil, nil, nil, nil, nil
		f.schedule(tx, tEnd, fastTimerI)
	}
}

// cancelUp answers the caller's CANCEL and passes it on once the callee
// sent a provisional response (RFC 3261 §9.2, §16.10).
func (f *fastPath) cancelUp(tx *fastTx, m *msgIndex, from netip.AddrPort, out *batch) {
	w := out.slot()
	w = responseBytes(w[:0], m, from, 200, "OK", "", "")
	out.queue(len(w), from)
	tx.mu.Lock()
	defer tx.mu.Unlock()
	if tx.cancelled || tx.state == txGone || tx.state >= txCompleted {
		return
	}
	// The disposition waits for the final response: a 200 crossing the
	// CANCEL makes an answered call (RFC 3261 §9.1), as on the sipgo path.
	tx.cancelled = true
	tx.elsewhere = cancelledElsewhere(m)
	tx.reason = reasonLines(m)
	if tx.provisional {
		f.sendCancel(tx)
	}
}

// reasonLines copies the Reason header lines of a request, for our CANCEL
// downstream: the callee's phones then know why the call stopped (RFC 3326;
// "answered elsewhere" must not show as a missed call there).
func reasonLines(m *msgIndex) []byte {
	var w []byte
	for i := range m.n {
		h := &m.hdrs[i]
		line := h.line.of(m.b)
		if h.kind == hOther && eqFold(line[:bytes.IndexByte(line, ':')], "Reason") {
			w = append(w, line...)
		}
	}
	return w
}

// cancelledElsewhere reads RFC 3326 Reason "SIP;cause=200" from a CANCEL.
func cancelledElsewhere(m *msgIndex) bool {
	for i := range m.n {
		h := &m.hdrs[i]
		line := h.line.of(m.b)
		if h.kind == hOther && eqFold(line[:bytes.IndexByte(line, ':')], "Reason") {
			msg, err := gosip.ParseMessage(append([]byte(nil), m.b...))
			if req, ok := msg.(*gosip.Request); err == nil && ok {
				return elsewhere(req)
			}
			return false
		}
	}
	return false
}

// sendCancel cancels the forwarded INVITE downstream: its Request-URI,
// top Via, From, To, Call-ID and CSeq number (RFC 3261 §9.1). The caller
// holds tx.mu.
func (f *fastPath) sendCancel(tx *fastTx) {
	var fm msgIndex
	if tx.fwd == nil || !fm.index(tx.fwd) {
		return
	}
	fb := fm.b
	w := make([]byte, 0, 512)
	w = append(w, "CANCEL "...)
	w = append(w, fm.ruri.of(fb)...)
	w = append(w, " SIP/2.0\r\n"...)
	w = append(w, fm.hdrs[fm.topVia].line.of(fb)...)
	w = append(w, "Max-Forwards: 70\r\n"...)
	for _, k := range []hdrKind{hFrom, hTo, hCallID} {
		w = append(w, fm.hdrs[fm.headerOf(k)].line.of(fb)...)
	}
	w = append(w, "CSeq: "...)
	w = strconv.AppendUint(w, uint64(fm.cseq), 10)
	w = append(w, " CANCEL\r\n"...)
	w = append(w, tx.reason...)
	w = append(w, "Content-Length: 0\r\n\r\n"...)
	tx.cancel, tx.cancelSent = w, true
	f.send(w, tx.callee)
	f.schedule(tx, tCancel, fastT1)
}
