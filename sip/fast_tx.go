package sip

import (
	"net/netip"
	"strconv"
	"sync"
	"time"

	gosip "github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/callctl"
)

// The fast path's INVITE transactions. One fastTx holds both
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
	reason []byte // the Reason lines of the caller's CANCEL, passed on in ours (RFC 3326)
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
		// A cancelled timer's entry stays in the wheel until its slot comes
		// (Timer C: minutes) and points here: keep nothing of the call.
		// Every handler returns on txGone, under tx.mu, before reading these.
		tx.active, tx.from, tx.reason, tx.crossAck, tx.routing, tx.trunk = nil, nil, nil, nil, nil, nil
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
