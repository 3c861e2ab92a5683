package sip

import (
	"bytes"
	"context"
	"hash/fnv"
	"net/netip"
	"strconv"
	"strings"
	"time"

	gosip "github.com/emiago/sipgo/sip"
	"go.uber.org/zap"

	"github.com/switchboard-sip/switchboard/callctl"
)

// invite takes an initial INVITE when every condition of the plain case
// holds; the checks that answer with an error (403, 483, 503, 420...)
// stay on the sipgo path.
func (f *fastPath) invite(m *msgIndex, from netip.AddrPort, out *batch) bool {
	b := m.b
	var kb [256]byte
	key := serverKey(kb[:0], m)
	if tx := f.txs.lookupKey(key); tx != nil {
		f.inviteAgain(tx, from, out)
		return true
	}
	if m.maxFwd < 1 || m.has(hRoute) || m.has(hProxyRequire) || !eqFold(m.via.transport.of(b), "UDP") ||
		!m.via.received.empty() || m.via.host.of(b)[0] == '[' || bytes.Contains(b[:m.body], []byte(branchPrefix)) {
		return false
	}
	r := f.p.routing.Load()
	dir, trunk := r.Classify(from)
	if dir == "" || f.p.drain.Load() {
		return false
	}
	if now := time.Now(); !f.p.trunkAllows(dir, trunk, now) {
		if r.callbackIndexed(m, dir, trunk) {
			return false // the emergency services calling back: the sipgo path admits it (emergency.go)
		}
		f.overTrunk(m, from, out) // strangers.go
		return true
	} else if !f.p.limit.allow(now) {
		return false
	}
	tx := &fastTx{key: string(key), caller: from, inv: append([]byte(nil), b...), start: time.Now()}
	tx.from = append([]byte(nil), m.hdrs[m.headerOf(hFrom)].line.of(b)...)
	f.txs.insert(tx)
	go f.decide(tx, r)
	return true
}

// inviteAgain answers a retransmitted INVITE with the last response sent
// (RFC 3261 §17.2.1).
func (f *fastPath) inviteAgain(tx *fastTx, from netip.AddrPort, out *batch) {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	if len(tx.last) == 0 || tx.state == txGone {
		return
	}
	if w := out.slot(); len(tx.last) <= len(w) {
		out.queue(copy(w, tx.last), from)
	}
}

// decide runs the call pipeline for a new INVITE off the reader thread (a
// stage may wait on the database), then rejects or forwards it. A call the
// fast path cannot finish itself (an announcement, a target that needs DNS
// or another transport, headers sipgo must judge) is handed to the sipgo
// path before anything was recorded, with the decision (handover.go).
func (f *fastPath) decide(tx *fastTx, r *Routing) {
	var m msgIndex
	dir, trunk := r.Classify(tx.caller)
	if !m.index(tx.inv) {
		f.handOver(tx, &decidedCall{r: r, trunk: trunk, start: tx.start})
		return
	}
	tx.mu.Lock()
	// 100 at once (RFC 3261 §16.2), before a stage that may wait.
	tx.last = responseBytes(tx.last[:0], &m, tx.caller, 100, "Trying", "", "")
	f.send(tx.last, tx.caller)
	tx.mu.Unlock()
	var ruri gosip.Uri
	sig, ok := fastSignalling(&m, &ruri)
	if !ok {
		f.handOver(tx, &decidedCall{r: r, trunk: trunk, start: tx.start})
		return
	}
	c := &callctl.Call{Direction: dir, Signalling: sig, Node: r.Node, StartedAt: tx.start, CallID: string(m.callID.of(tx.inv))}
	if trunk != nil {
		c.Trunk, c.Region = trunk.Name, trunk.Region
		c.Trusted = dir == callctl.Inbound && trunk.Trust
	}
	d := r.Pipeline.Run(context.Background(), c)
	if c.Emergency {
		// Its failover to the next trunk lives on the sipgo path
		// (emergency.go); nothing was recorded yet.
		c.Signalling = callctl.Signalling{}
		f.handOver(tx, &decidedCall{r: r, trunk: trunk, start: tx.start, call: c, d: d})
		return
	}
	c.Signalling = callctl.Signalling{}
	var fwd []byte
	var to netip.AddrPort
	if d.Verdict == callctl.Reject {
		if d.Announcement != "" && r.Announce != nil {
			f.handOver(tx, &decidedCall{r: r, trunk: trunk, start: tx.start, call: c, d: d})
			return
		}
	} else if fwd, to, ok = f.forwardBytes(&m, &ruri, tx, r, c, trunk); !ok {
		// Including a target the keep-alive marked down: 503 or the
		// fallback there.
		f.handOver(tx, &decidedCall{r: r, trunk: trunk, start: tx.start, call: c, d: d})
		return
	}
	tx.mu.Lock()
	defer tx.mu.Unlock()
	tx.active = f.p.tracker.Start(c)
	switch {
	case tx.cancelled:
		tx.active.Cancelled(tx.elsewhere)
		f.finalUp(tx, &m, 487, "Request Terminated")
	case d.Verdict == callctl.Reject:
		f.p.observe(tx.start)
		code := verdictCode(d)
		tx.active.Decided(callctl.Decision{Code: code, Reason: d.Reason, Disposition: d.Disposition})
		f.p.countRes(c, code)
		f.finalUp(tx, &m, code, reasonPhrase(code))
	default:
		tx.fwd, tx.callee, tx.state = fwd, to, txCalling
		tx.routing, tx.trunk = r, trunk
		f.forwardNow(tx)
		f.p.observe(tx.start)
		tx.active.Forwarded()
	}
}

// forwardNow sends tx.fwd to tx.callee and arms the timers of the wait
// for a first response (Timer A, Timer B or InviteTimeout, the response
// timeout and the keep-alive, failover.go); the caller holds tx.mu.
func (f *fastPath) forwardNow(tx *fastTx) {
	f.txs.setBranch(tx)
	f.send(tx.fwd, tx.callee)
	f.schedule(tx, tDown, fastT1)
	wait := fastTxLife
	if f.p.opts.InviteTimeout > 0 {
		wait = f.p.opts.InviteTimeout
	}
	if d := f.p.opts.ResponseTimeout; d > 0 && d < wait {
		wait, tx.lifeWait = d, true
	}
	f.schedule(tx, tWait, wait)
	if f.p.opts.Keepalive > 0 { // else no target is ever marked down
		tx.wt = f.p.waiting.addKey(tx.callee.String(), func() { f.downWhileWaiting(tx) })
	}
}

// downWhileWaiting: the keep-alive marked the target down before it
// answered anything.
func (f *fastPath) downWhileWaiting(tx *fastTx) {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	if tx.state == txCalling && !tx.provisional {
		f.failover(tx)
	}
}

// failover sends a call whose next hop gave no sign of life to the
// hotline's fallback, else answers 503 with Retry-After (SPEC §1), as the
// sipgo path does; the caller holds tx.mu.
func (f *fastPath) failover(tx *fastTx) {
	tx.lifeWait = false
	f.p.waiting.done(tx.wt)
	tx.wt = nil
	stop(tx, tDown)
	stop(tx, tWait)
	var m msgIndex
	if !m.index(tx.inv) {
		return
	}
	f.txs.dropBranch(tx.branch)
	f.p.gaveUp.add(tx.branch) // a late answer is ended, not relayed
	if tx.cancelled {
		tx.active.Cancelled(tx.elsewhere)
		f.finalUp(tx, &m, gosip.StatusRequestTerminated, "Request Terminated")
		return
	}
	c := tx.active.Call
	if f.p.fallbackFor(c) {
		var ruri gosip.Uri
		tx.hop++
		if gosip.ParseUri(string(m.ruri.of(m.b)), &ruri) == nil {
			if fwd, to, ok := f.forwardBytes(&m, &ruri, tx, tx.routing, c, tx.trunk); ok {
				tx.fwd, tx.callee, tx.state = fwd, to, txCalling
				f.p.log.Warn("next hop gave no sign of life: to the fallback", zap.String("call_id", c.CallID), zap.String("fallback", c.Target))
				f.forwardNow(tx)
				return
			}
		}
	}
	f.p.log.Warn("next hop gave no sign of life: 503", zap.String("call_id", c.CallID))
	tx.active.Final(gosip.StatusServiceUnavailable, true, "no response")
	f.p.countRes(c, gosip.StatusServiceUnavailable)
	f.finalUpWith(tx, &m, gosip.StatusServiceUnavailable, "Service Unavailable", "Retry-After: "+f.p.retryAfter()+"\r\n")
}

// handOver gives a taken INVITE to the sipgo path with what the fast path
// decided (handover.go): no second 100, CPS token or pipeline there. dc
// carries the call when the pipeline ran; without it the pipeline runs
// on the sipgo path, once.
func (f *fastPath) handOver(tx *fastTx, dc *decidedCall) {
	tx.mu.Lock()
	tx.state = txGone
	inv := tx.inv
	tx.mu.Unlock()
	f.txs.remove(tx)
	f.p.fellBack.add(fbHandover)
	f.p.handed.put(tx.key, dc)
	f.conn.toSipgo(inv, tx.caller)
}

// finalUp sends our own final response to the caller and keeps it going
// until the ACK (Timers G and H); the caller holds tx.mu.
func (f *fastPath) finalUp(tx *fastTx, m *msgIndex, code int, reason string) {
	f.finalUpWith(tx, m, code, reason, "")
}

// finalUpWith is finalUp with extra header lines (each ending in CRLF).
func (f *fastPath) finalUpWith(tx *fastTx, m *msgIndex, code int, reason, extra string) {
	if tx.toTag == "" {
		tx.toTag = gosip.GenerateTagN(16)
	}
	f.p.waiting.done(tx.wt)
	tx.wt = nil
	tx.last = responseBytes(tx.last[:0], m, tx.caller, code, reason, tx.toTag, extra)
	tx.state = txCompleted
	f.send(tx.last, tx.caller)
	f.schedule(tx, tUp, fastT1)
	f.schedule(tx, tEnd, fastTxLife)
}

// responseBytes builds a response to the indexed request (RFC 3261
// §8.2.6.2): its Vias (the top one with received and rport), From, To (with
// our tag when it has none), Call-ID and CSeq.
func responseBytes(w []byte, m *msgIndex, from netip.AddrPort, code int, reason, toTag, extra string) []byte {
	b := m.b
	w = append(w, "SIP/2.0 "...)
	w = strconv.AppendInt(w, int64(code), 10)
	w = append(w, ' ')
	w = append(w, reason...)
	w = append(w, "\r\n"...)
	for i := range m.n {
		h := &m.hdrs[i]
		switch {
		case i == m.topVia:
			w = appendVia(w, b, h, &m.via, from)
		case h.kind == hTo && m.toTag.empty() && toTag != "":
			w = append(w, b[h.line.s:h.value.e]...)
			w = append(w, ";tag="...)
			w = append(w, toTag...)
			w = append(w, "\r\n"...)
		case h.kind == hVia, h.kind == hFrom, h.kind == hTo, h.kind == hCallID, h.kind == hCSeq:
			w = append(w, h.line.of(b)...)
		}
	}
	w = append(w, extra...)
	return append(w, "Content-Length: 0\r\n\r\n"...)
}

// appendViaRest writes the top Via line without its first value: nothing
// when that was the only one.
func (m *msgIndex) appendViaRest(w []byte) []byte {
	if m.topViaRest.empty() {
		return w
	}
	w = append(w, "Via: "...)
	w = append(w, m.topViaRest.of(m.b)...)
	return append(w, "\r\n"...)
}

// has reports a header of the kind.
func (m *msgIndex) has(k hdrKind) bool { return m.headerOf(k) >= 0 }

// headerOf is the number of the first header of the kind, -1 if none.
func (m *msgIndex) headerOf(k hdrKind) int {
	for i := range m.n {
		if m.hdrs[i].kind == k {
			return i
		}
	}
	return -1
}

// fastSignalling reads the identity headers of an INVITE for the Identify
// stage with the same helpers as Signalling; false when From, To, Contact
// or the Request-URI do not parse (the sipgo path answers those).
func fastSignalling(m *msgIndex, ruri *gosip.Uri) (callctl.Signalling, bool) {
	var s callctl.Signalling
	b := m.b
	if err := gosip.ParseUri(string(m.ruri.of(b)), ruri); err != nil {
		return s, false
	}
	s.RequestURI = idAddress("", ruri, nil)
	for i := range m.n {
		h := &m.hdrs[i]
		v := string(h.value.of(b))
		switch h.kind {
		case hFrom, hTo, hContact:
			var u gosip.Uri
			var params gosip.HeaderParams
			display, err := gosip.ParseAddressValue(v, &u, &params)
			if err != nil {
				return s, false
			}
			if h.kind == hFrom {
				s.From = idAddress(display, &u, params)
			} else if h.kind == hTo {
				s.To = idAddress(display, &u, params)
			}
			continue
		case hOther, hRecordRoute:
		default:
			continue
		}
		name := b[h.line.s : h.line.s+int32(bytes.IndexByte(h.line.of(b), ':'))]
		if !sipgoWouldParse(name, v) {
			return s, false
		}
		switch {
		case eqFold(name, "P-Asserted-Identity"):
			s.PAI = idAppendValues(s.PAI, v)
		case eqFold(name, "Remote-Party-ID"):
			s.RPID = idAppendValues(s.RPID, v)
		case eqFold(name, "Privacy"):
			s.Privacy = idAppendPrivacy(s.Privacy, v)
		case eqFold(name, "P-Called-Party-ID"):
			if s.PCalledPartyID == nil {
				if list := idAppendValues(nil, v); len(list) > 0 {
					s.PCalledPartyID = &list[0]
				}
			}
		case eqFold(name, "Diversion"):
			s.Diversion = idAppendValues(s.Diversion, v)
		case eqFold(name, "History-Info"):
			n := len(s.HistoryInfo)
			s.HistoryInfo = idAppendValues(s.HistoryInfo, v)
			for i := n; i < len(s.HistoryInfo); i++ {
				idHistoryCause(&s.HistoryInfo[i])
			}
		}
	}
	return s, true
}

// sipgoWouldParse checks the headers sipgo's parser validates and the index
// does not, so that the fast path forwards no INVITE the sipgo path would
// refuse with 400 (RFC 4475, PROTOS).
func sipgoWouldParse(name []byte, v string) bool {
	switch {
	case eqFold(name, "Content-Type"), eqFold(name, "c"):
		return strings.TrimSpace(v) != ""
	case eqFold(name, "Record-Route"):
		for v != "" {
			var part string
			part, v = idNextValue(v)
			var u gosip.Uri
			var params gosip.HeaderParams
			if _, err := gosip.ParseAddressValue(strings.TrimSpace(part), &u, &params); err != nil {
				return false
			}
		}
	case eqFold(name, "Refer-To"), eqFold(name, "Referred-By"):
		return false // not on an initial INVITE we take
	}
	return true
}

// forwardBytes builds the INVITE that goes on (RFC 3261 §16.6): the new
// Request-URI, our Record-Route and Via, the caller's Via with received
// and rport, Max-Forwards less one, and the pipeline's header and
// display-name edits. false: the sipgo path must do it.
func (f *fastPath) forwardBytes(m *msgIndex, ruri *gosip.Uri, tx *fastTx, r *Routing, c *callctl.Call, trunk *Trunk) ([]byte, netip.AddrPort, bool) {
	b := m.b
	target, err := r.Target(c, trunk)
	if err != nil || f.p.probes.down(target) {
		return nil, netip.AddrPort{}, false
	}
	if t, ok := target.UriParams.Get("transport"); (ok && !strings.EqualFold(t, "udp")) || target.Scheme != "sip" {
		return nil, netip.AddrPort{}, false
	}
	if _, ok := target.UriParams.Get("maddr"); ok {
		return nil, netip.AddrPort{}, false
	}
	addr, err := netip.ParseAddr(strings.Trim(target.Host, "[]"))
	if err != nil {
		return nil, netip.AddrPort{}, false
	}
	port := target.Port
	if port == 0 {
		port = 5060
	}
	to := netip.AddrPortFrom(addr.Unmap(), uint16(port))
	if target.User == "" {
		target.User = ruri.User
	}
	quoted, swap, ok := f.displaySwap(m, c)
	if !ok {
		return nil, netip.AddrPort{}, false
	}
	tx.branch = f.inviteBranch(m, ruri)
	if tx.hop > 0 {
		tx.branch += "-" + strconv.Itoa(tx.hop) // as newBranch on the sipgo path
	}
	w := make([]byte, 0, len(b)+len(f.via)+256)
	w = append(w, "INVITE "...)
	w = append(w, target.String()...)
	w = append(w, " SIP/2.0\r\n"...)
	w = append(w, f.rrPrefix...)
	w = f.fastToken(w, m.callID.of(b))
	w = append(w, ";lr"...)
	if swap != "" {
		w = append(w, ";"+swapParam+"="...)
		w = append(w, swap...)
	}
	w = append(w, ">\r\n"...)
	w = append(w, f.via[:len(f.via)-len(fastBranch)]...)
	w = append(w, tx.branch...)
	if swap != "" {
		w = append(w, ";"+swapParam+"="...) // as markViaSwap
		w = append(w, swap...)
	}
	w = append(w, "\r\n"...)
	for i := range m.n {
		w = f.forwardHeader(w, m, i, tx.caller, c, quoted)
	}
	for name, value := range c.Headers {
		w = append(w, name...)
		w = append(w, ": "...)
		w = append(w, value...)
		w = append(w, "\r\n"...)
	}
	w = append(w, "\r\n"...)
	return append(w, b[m.body:]...), to, true
}

// displaySwap is the caller-name change of the pipeline, quoted for From,
// and the same change as the signed sbn value of our Record-Route that
// lets in-dialog requests be restored (see nameSwap); "" when the name
// stays. false: From does not parse.
func (f *fastPath) displaySwap(m *msgIndex, c *callctl.Call) (quoted, swap string, ok bool) {
	if callctl.CleanDisplayName(c.DisplayName) == "" {
		return "", "", true
	}
	quoted = callctl.QuoteDisplayName(c.DisplayName)
	var u gosip.Uri
	var params gosip.HeaderParams
	from := m.hdrs[m.headerOf(hFrom)].value.of(m.b)
	display, err := gosip.ParseAddressValue(string(from), &u, &params)
	if err != nil {
		return "", "", false
	}
	shown := quoted[1 : len(quoted)-1]
	if display == shown {
		return quoted, "", true
	}
	s := nameSwap{tag: string(m.fromTag.of(m.b)), original: display, shown: shown}
	return quoted, s.encode(f.p.opts.RouteKey, c.CallID), true
}

// inviteBranch is the branch the sipgo path would give this INVITE:
// branchPrefix, loopHash, hopHash of the caller's Via. So a CANCEL or an
// ACK that reaches the sipgo path after a restart (no transaction left
// here) is forwarded statelessly with the branch the callee knows.
func (f *fastPath) inviteBranch(m *msgIndex, ruri *gosip.Uri) string {
	b := m.b
	h := fnv.New64a()
	h.Write([]byte(ruri.String()))
	h.Write(m.fromTag.of(b))
	h.Write(m.toTag.of(b))
	h.Write(m.callID.of(b))
	h.Write(strconv.AppendUint(nil, uint64(m.cseq), 10))
	loop := strconv.FormatUint(h.Sum64(), 36)
	h.Reset()
	h.Write(m.via.branch.of(b))
	h.Write([]byte{0})
	h.Write(m.via.host.of(b))
	h.Write(strconv.AppendInt(nil, int64(m.via.port), 10))
	return branchPrefix + loop + "-" + strconv.FormatUint(h.Sum64(), 36)
}

// forwardHeader writes header i of the caller's INVITE as it goes on.
func (f *fastPath) forwardHeader(w []byte, m *msgIndex, i int, from netip.AddrPort, c *callctl.Call, quoted string) []byte {
	b := m.b
	h := &m.hdrs[i]
	name := b[h.line.s : h.line.s+int32(bytes.IndexByte(h.line.of(b), ':'))]
	for k := range c.Headers {
		if eqFold(name, k) {
			return w // replaced by the pipeline's value
		}
	}
	switch {
	case i == m.topVia:
		return appendVia(w, b, h, &m.via, from)
	case h.kind == hMaxForwards:
		w = append(w, "Max-Forwards: "...)
		w = strconv.AppendInt(w, int64(m.maxFwd-1), 10)
		return append(w, "\r\n"...)
	case quoted != "" && h.kind == hFrom:
		w = append(w, "From: "...)
		w = appendDisplay(w, h.value.of(b), quoted, true)
		return append(w, "\r\n"...)
	case quoted != "" && eqFold(name, "P-Asserted-Identity"):
		for _, v := range splitList(string(h.value.of(b))) {
			w = append(w, "P-Asserted-Identity: "...)
			w = appendDisplay(w, []byte(v), quoted, false)
			w = append(w, "\r\n"...)
		}
		return w
	}
	return append(w, h.line.of(b)...)
}

// appendDisplay writes a name-addr value with a new display name. In the
// addr-spec form the parameters after the URI belong to the header
// (RFC 3261 §20.10), so they stay outside the brackets.
func appendDisplay(w, v []byte, quoted string, params bool) []byte {
	w = append(w, quoted...)
	w = append(w, ' ')
	if lt := angleStart(v); lt >= 0 {
		return append(w, v[lt:]...)
	}
	uri, rest := v, []byte(nil)
	if params {
		if semi := bytes.IndexByte(v, ';'); semi >= 0 {
			uri, rest = v[:semi], v[semi:]
		}
	}
	w = append(w, '<')
	w = append(w, uri...)
	w = append(w, '>')
	return append(w, rest...)
}
