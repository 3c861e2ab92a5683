package sip

import (
	"bytes"
	"context"
	"hash/fnv"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	gosip "github.com/emiago/sipgo/sip"
	"go.uber.org/zap"

	"github.com/switchboard-sip/switchboard/callctl"
)

// The fast path's INVITE transactions (issue 11). One fastTx holds both
// sides of an initial INVITE: the server transaction towards the caller
// (RFC 3261 §17.2.1) and the client transaction towards the callee
// (§17.1.1), as a proxy's pair (§16). The table finds it by the caller's
// branch and sent-by (§17.2.3; ACK and CANCEL of the INVITE map to it) and
// by the number in our own branch (responses). One wheel drives the timers.

// RFC 3261 Table 4 values.
const (
	fastT1     = 500 * time.Millisecond
	fastT2     = 4 * time.Second
	fastTxLife = 64 * fastT1 // Timers B, D, F, H, L, M
	fastTimerI = 5 * time.Second
)

type txState uint8

const (
	txPipeline   txState = iota // 100 sent, the pipeline decides
	txCalling                   // forwarded, nothing heard yet
	txProceeding                // a provisional came back
	txCompleted                 // a non-2xx final went to the caller
	txAccepted                  // a 2xx went to the caller
	txConfirmed                 // the caller ACKed our non-2xx
	txGone                      // handed to sipgo or expired
)

type timerKind uint8

const (
	tDown   timerKind = iota // A: INVITE retransmission downstream
	tUp                      // G: final retransmission upstream
	tCancel                  // E: CANCEL retransmission downstream
	tWait                    // B or C: waiting for the callee
	tEnd                     // D, H, I, L, M: the stub goes
	nTimers
)

// fastTx is one proxied INVITE. Its buffers are dropped when the
// transaction is decided; the rest is a small stub until tEnd.
type fastTx struct {
	mu     sync.Mutex
	key    string // caller's branch and sent-by
	branch string // ours downstream
	callID string
	cseq   uint32
	state  txState
	caller netip.AddrPort
	callee netip.AddrPort
	inv    []byte // the caller's INVITE as received
	from   []byte // the caller's From line, restored in responses
	fwd    []byte // the INVITE as forwarded
	last   []byte // the last response sent to the caller
	cancel []byte // our CANCEL downstream
	ack    []byte // our ACK for the callee's non-2xx
	active *callctl.Active
	start  time.Time
	// crossAck is our ACK for a 200 that crossed the caller's CANCEL.
	crossAck *gosip.Request
	// routing and trunk are the call's, for a failover; wt is its entry
	// in Proxy.waiting; hop counts forwardings (0: the first).
	routing  *Routing
	trunk    *Trunk
	wt       *waiter
	hop      int
	lifeWait bool // tWait is the response timeout
	toTag    string

	provisional, cancelled, elsewhere, cancelSent, cancelDone, expired bool
	interval                                                           [nTimers]time.Duration
	seq                                                                [nTimers]uint32
}

// txTable is the fast path's transaction table.
type txTable struct {
	mu       sync.Mutex
	byKey    map[string]*fastTx
	byBranch map[string]*fastTx // our branch downstream
	byCall   map[string]*fastTx // answered, by Call-ID, for the ACK
	n        int
}

// answered reports an INVITE with this Call-ID and CSeq whose 2xx the
// fast path relayed, so that the ACK is the 2xx's.
func (t *txTable) answered(callID []byte, cseq uint32) bool {
	t.mu.Lock()
	tx := t.byCall[string(callID)]
	t.mu.Unlock()
	return tx != nil && tx.cseq == cseq
}

// setCall files an answered tx under its Call-ID.
func (t *txTable) setCall(tx *fastTx) {
	t.mu.Lock()
	t.byCall[tx.callID] = tx
	t.mu.Unlock()
}

func (t *txTable) lookupKey(key []byte) *fastTx {
	t.mu.Lock()
	tx := t.byKey[string(key)]
	t.mu.Unlock()
	return tx
}

func (t *txTable) lookupBranch(branch []byte) *fastTx {
	t.mu.Lock()
	tx := t.byBranch[string(branch)]
	t.mu.Unlock()
	return tx
}

func (t *txTable) insert(tx *fastTx) {
	t.mu.Lock()
	t.byKey[tx.key] = tx
	t.n++
	t.mu.Unlock()
}

// dropBranch forgets a branch tx no longer uses (a failover).
func (t *txTable) dropBranch(branch string) {
	t.mu.Lock()
	delete(t.byBranch, branch)
	t.mu.Unlock()
}

// setBranch files tx under the branch of the INVITE it forwards.
func (t *txTable) setBranch(tx *fastTx) {
	t.mu.Lock()
	t.byBranch[tx.branch] = tx
	t.mu.Unlock()
}

func (t *txTable) remove(tx *fastTx) {
	t.mu.Lock()
	if t.byKey[tx.key] == tx {
		delete(t.byKey, tx.key)
		t.n--
	}
	if tx.branch != "" && t.byBranch[tx.branch] == tx {
		delete(t.byBranch, tx.branch)
	}
	if tx.callID != "" && t.byCall[tx.callID] == tx {
		delete(t.byCall, tx.callID)
	}
	t.mu.Unlock()
}

// Len is the number of transactions alive.
func (t *txTable) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.n
}

// serverKey writes the §17.2.3 key of a request: branch and sent-by.
func serverKey(dst []byte, m *msgIndex) []byte {
	dst = append(dst, m.via.branch.of(m.b)...)
	dst = append(dst, '|')
	dst = append(dst, m.via.host.of(m.b)...)
	dst = append(dst, ':')
	return strconv.AppendInt(dst, int64(m.via.port), 10)
}

// schedule arms a timer; the caller holds tx.mu.
func (f *fastPath) schedule(tx *fastTx, kind timerKind, d time.Duration) {
	tx.seq[kind]++
	tx.interval[kind] = d
	f.wheel.add(tx, kind, tx.seq[kind], d)
}

// stop disarms a timer; the caller holds tx.mu.
func stop(tx *fastTx, kind timerKind) { tx.seq[kind]++ }

// send writes a datagram from a goroutine other than the reader.
func (f *fastPath) send(b []byte, to netip.AddrPort) {
	_, _ = f.conn.conn.WriteToUDPAddrPort(b, to)
}

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
	if dir, _ := r.Classify(from); dir == "" || f.p.drain.Load() || !f.p.limit.allow(time.Now()) {
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
	undecided := &decidedCall{r: r, trunk: trunk, start: tx.start}
	if !m.index(tx.inv) {
		f.handOver(tx, undecided)
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
		f.handOver(tx, undecided)
		return
	}
	c := &callctl.Call{Direction: dir, Signalling: sig, Node: r.Node, StartedAt: tx.start, CallID: string(m.callID.of(tx.inv))}
	if trunk != nil {
		c.Trunk, c.Region = trunk.Name, trunk.Region
		c.Trusted = dir == callctl.Inbound && trunk.Trust
	}
	d := r.Pipeline.Run(context.Background(), c)
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
		code := d.Code
		if code < 300 || code > 699 {
			code = 603
		}
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
	tx.wt = f.p.waiting.addKey(tx.callee.String(), func() { f.downWhileWaiting(tx) })
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
	if tx.cancelled {
		tx.active.Cancelled(tx.elsewhere)
		f.finalUp(tx, &m, gosip.StatusRequestTerminated, "Request Terminated")
		return
	}
	c := tx.active.Call
	if f.p.fallbackFor(c) {
		var ruri gosip.Uri
		old := tx.branch
		tx.hop++
		if gosip.ParseUri(string(m.ruri.of(m.b)), &ruri) == nil {
			if fwd, to, ok := f.forwardBytes(&m, &ruri, tx, tx.routing, c, tx.trunk); ok {
				f.txs.dropBranch(old)
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
	if tx.provisional {
		f.sendCancel(tx)
	}
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
	w = append(w, " CANCEL\r\nContent-Length: 0\r\n\r\n"...)
	tx.cancel, tx.cancelSent = w, true
	f.send(w, tx.callee)
	f.schedule(tx, tCancel, fastT1)
}

// fire runs a due timer.
func (f *fastPath) fire(tx *fastTx, kind timerKind, seq uint32) {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	if tx.seq[kind] != seq || tx.state == txGone {
		return
	}
	switch kind {
	case tDown: // A
		if tx.state == txCalling && tx.fwd != nil {
			f.send(tx.fwd, tx.callee)
			f.schedule(tx, tDown, 2*tx.interval[tDown])
		}
	case tUp: // G
		if tx.state == txCompleted && tx.last != nil {
			f.send(tx.last, tx.caller)
			f.schedule(tx, tUp, min(2*tx.interval[tUp], fastT2))
		}
	case tCancel: // E, until F
		if !tx.cancelDone && tx.cancel != nil && tx.interval[tCancel] < fastTxLife/4 {
			f.send(tx.cancel, tx.callee)
			f.schedule(tx, tCancel, min(2*tx.interval[tCancel], fastT2))
		}
	case tWait: // B or C
		f.timedOut(tx)
	case tEnd:
		f.p.waiting.done(tx.wt)
		tx.wt = nil
		tx.state = txGone
		tx.inv, tx.fwd, tx.last, tx.cancel, tx.ack = nil, nil, nil, nil, nil
		f.txs.remove(tx)
	}
}

// timedOut ends an INVITE the callee never answered: a CANCEL downstream
// when it rang (Timer C), 408 to the caller (487 after the caller's CANCEL).
func (f *fastPath) timedOut(tx *fastTx) {
	if tx.state != txCalling && tx.state != txProceeding {
		return
	}
	if tx.lifeWait && !tx.provisional {
		f.failover(tx) // sip.response_timeout
		return
	}
	stop(tx, tDown)
	if tx.provisional && !tx.expired && !tx.cancelSent {
		// Timer C (RFC 3261 §16.8): cancel it and relay the 487 that
		// follows; nobody answered.
		tx.expired = true
		if !tx.cancelled {
			tx.active.Final(408, false, "timer C")
		}
		f.sendCancel(tx)
		f.schedule(tx, tWait, fastTxLife)
		return
	}
	var m msgIndex
	if !m.index(tx.inv) {
		return
	}
	if tx.cancelled || tx.expired {
		if tx.cancelled {
			tx.active.Cancelled(tx.elsewhere)
		}
		f.finalUp(tx, &m, 487, "Request Terminated")
		return
	}
	tx.active.Final(408, true, "no response")
	f.p.countRes(tx.active.Call, 408)
	f.finalUp(tx, &m, 408, "Request Timeout")
}
