package sip

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"hash/fnv"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"unsafe"

	gosip "github.com/emiago/sipgo/sip"
	"go.uber.org/zap"
)

// fastOutSize bounds a datagram the fast path builds; bigger ones take the
// sipgo path.
const fastOutSize = 16 << 10

// fastBranch starts the Via branch of requests the fast path forwarded.
// It extends branchPrefix, so that a response sipgo sees for one (because
// the index could not take it) is still relayed by onStrayResponse; the
// upper-case F never occurs in loopHash's base-36 digits.
const fastBranch = branchPrefix + "F"

// fastPath is the per-socket part of the UDP fast path. What it
// handles today: a BYE inside a dialog we record-routed, sent by the side
// that is not the PBX, is forwarded statelessly (RFC 3261 §16.11) by
// editing its bytes, and the responses to it are relayed as received minus
// our Via. Everything else goes to sipgo. Requests from the PBX stay on the
// sipgo path because their From/To may need the caller's original restored
// (SPEC §1), which needs the dialog's state.
type fastPath struct {
	p        *Proxy
	conn     *fastConn
	via      []byte    // "Via: SIP/2.0/UDP host:port;branch=" + fastBranch
	rrPrefix []byte    // "Record-Route: <sip:host:port;sb="
	self     []selfRef // the host:port pairs that mean us
	txs      txTable
	wheel    wheel
	macs     sync.Pool     // *macScratch
	parser   *gosip.Parser // the reader's, for what the index refuses
	canon    []byte        // the reader's: such a message as sipgo writes it
}

type selfRef struct {
	host string
	port int
}

func newFastPath(p *Proxy, c *fastConn, port int) *fastPath {
	f := &fastPath{p: p, conn: c, txs: txTable{byKey: map[string]*fastTx{},
		byBranch: map[string]*fastTx{}, byCall: map[string]*fastTx{}}}
	f.wheel.fire = f.fire
	f.parser = gosip.NewParser()
	hp := net.JoinHostPort(p.opts.Advertise, strconv.Itoa(port))
	f.via = []byte("Via: SIP/2.0/UDP " + hp + ";branch=" + fastBranch)
	rr := hp
	if p.rrHost != "" {
		rr = net.JoinHostPort(p.rrHost, strconv.Itoa(p.rrPort)) // sip.record_route: the balancer
	}
	f.rrPrefix = []byte("Record-Route: <sip:" + rr + ";sb=")
	return f
}

// noteSelf copies the addresses that mean us, once every listener is
// bound, for the reader's lock-free use.
func (f *fastPath) noteSelf() {
	p := f.p
	p.self.mu.RLock()
	for a := range p.self.addrs {
		host, port, err := net.SplitHostPort(a)
		if n, perr := strconv.Atoi(port); err == nil && perr == nil {
			f.self = append(f.self, selfRef{host: host, port: n})
		}
	}
	p.self.mu.RUnlock()
}

// take handles a datagram on the fast path; any reason but fbNone hands
// it to sipgo. A message of a fast-path transaction that the index cannot
// take is read by sipgo's parser and handled here all the same.
func (f *fastPath) take(m *msgIndex, data []byte, from netip.AddrPort, out *batch) fallbackReason {
	if !m.index(data) {
		return f.takeUnindexed(m, data, from, out)
	}
	return f.takeIndexed(m, from, out)
}

// takeIndexed is take for an indexed datagram.
func (f *fastPath) takeIndexed(m *msgIndex, from netip.AddrPort, out *batch) fallbackReason {
	data := m.b
	if !m.request {
		if tx := f.txs.lookupBranch(m.via.branch.of(data)); tx != nil {
			f.response(m, tx, out)
			return fbNone
		}
		return taken(f.relay(m, out), fbResponse)
	}
	method := m.method.of(data)
	switch {
	case eqFold(method, "INVITE") && m.toTag.empty():
		return taken(f.invite(m, from, out), fbInvite)
	case eqFold(method, "ACK"), eqFold(method, "CANCEL"):
		var kb [256]byte
		tx := f.txs.lookupKey(serverKey(kb[:0], m))
		if tx == nil && eqFold(method, "ACK") && ackForStateless(m) {
			return fbNone
		}
		if tx == nil {
			return taken(eqFold(method, "ACK") && f.forwardInDialog(m, from, out, false), fbRequest)
		}
		if eqFold(method, "ACK") {
			f.ack(tx)
		} else {
			f.cancelUp(tx, m, from, out)
		}
		return fbNone
	case eqFold(method, "BYE") && !m.toTag.empty():
		return taken(f.forwardInDialog(m, from, out, true), fbRequest)
	}
	return fbRequest
}

func taken(ok bool, otherwise fallbackReason) fallbackReason {
	if ok {
		return fbNone
	}
	return otherwise
}

// takeUnindexed handles a datagram the index refused (folded lines, odd
// whitespace, too many headers...). When sipgo's parser reads it as a
// message of one of our transactions (a response to what the fast path
// sent, the caller's ACK, CANCEL or retransmitted INVITE), its canonical
// form, as sipgo writes it, is indexed and handled here: such a message
// never reaches sipgo's transaction layer (SPEC §1). Anything else goes
// to sipgo as it came.
func (f *fastPath) takeUnindexed(m *msgIndex, data []byte, from netip.AddrPort, out *batch) fallbackReason {
	msg, err := f.parser.ParseSIP(tidyLWS(data))
	if err != nil {
		return fbUnindexed
	}
	v := msg.Via()
	if v == nil || !f.owns(msg, v) {
		return fbUnindexed
	}
	msg.SetBody(msg.Body()) // a Content-Length, as a datagram may lack it (RFC 3261 §18.3)
	f.canon = append(f.canon[:0], msg.String()...)
	if !m.index(f.canon) || f.takeIndexed(m, from, out) != fbNone {
		f.p.log.Debug("fast path: a message of its transaction it cannot handle, dropped",
			zap.ByteString("first_line", data[:max(bytes.IndexByte(data, '\r'), 0)]))
	}
	return fbNone
}

// owns reports a message that belongs to a fast-path transaction: a
// response whose top Via is one the fast path wrote, or a request whose
// server key (§17.2.3) names an INVITE transaction of the fast path.
func (f *fastPath) owns(msg gosip.Message, v *gosip.ViaHeader) bool {
	branch, _ := v.Params.Get("branch")
	if _, ok := msg.(*gosip.Response); ok {
		if f.txs.lookupBranch([]byte(branch)) != nil {
			return true
		}
		return strings.HasPrefix(branch, fastBranch) && f.isSelf([]byte(v.Host), v.Port)
	}
	key := branch + "|" + v.Host + ":" + strconv.Itoa(v.Port)
	return f.txs.lookupKey([]byte(key)) != nil
}

// isSelf reports a host and port naming this switchboard.
func (f *fastPath) isSelf(host []byte, port int) bool {
	if port == 0 {
		port = 5060
	}
	if len(host) > 2 && host[0] == '[' {
		host = host[1 : len(host)-1]
	}
	for _, s := range f.self {
		if s.port == port && eqFold(host, s.host) {
			return true
		}
	}
	return false
}

// relay sends a response to a request the fast path forwarded on to the
// next Via, without ours (RFC 3261 §16.7 item 3, §18.2.2, RFC 3581 §4).
func (f *fastPath) relay(m *msgIndex, out *batch) bool {
	b := m.b
	if m.vias < 2 || !bytes.HasPrefix(m.via.branch.of(b), []byte(fastBranch)) || !f.isSelf(m.via.host.of(b), m.via.port) {
		return false
	}
	if !relayRule(m.status) {
		return true // dropped here
	}
	to, ok := viaTarget(b, &m.via2)
	if !ok {
		return false
	}
	var swap *nameSwap
	if !m.via.sbn.empty() {
		s, ok := decodeSwap(f.p.opts.RouteKey, string(m.callID.of(b)), string(m.via.sbn.of(b)))
		if !ok {
			return false
		}
		swap = &s
	}
	w := out.slot()
	if w == nil || len(b)+256 > len(w) {
		return false
	}
	w = w[:0]
	for i := -1; i < m.n; i++ {
		switch {
		case i < 0:
			w = append(w, b[:m.hdrs[0].line.s]...)
		case i == m.topVia:
			w = m.appendViaRest(w)
		default:
			var done bool
			if swap != nil {
				w, done = f.restoreNames(w, m, i, swap)
			}
			if !done {
				w = append(w, m.hdrs[i].line.of(b)...)
			}
		}
	}
	w = append(w, "\r\n"...)
	w = append(w, b[m.body:]...)
	out.queue(len(w), to)
	if m.status >= 200 && f.p.met != nil && eqFold(m.cseqM.of(b), "BYE") {
		f.p.met.SIPRequests.WithLabelValues("BYE", statusClass[min(m.status/100, 6)]).Inc()
	}
	return true
}

var statusClass = [...]string{"0xx", "1xx", "2xx", "3xx", "4xx", "5xx", "6xx"}

// viaTarget is where a response goes for a Via: received and rport when
// set, else sent-by (RFC 3581 §4). Only address literals qualify: a name
// needs DNS, which the sipgo path does.
func viaTarget(b []byte, v *viaParts) (netip.AddrPort, bool) {
	if !eqFold(v.transport.of(b), "UDP") {
		return netip.AddrPort{}, false
	}
	host, port := hopRule(v.host.of(b), v.received.of(b), v.port, v.rportVal)
	addr, ok := parseAddrBytes(host)
	if !ok {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(addr, uint16(port)), true
}

// parseAddrBytes parses an IP literal, bracketed or not, without copying.
func parseAddrBytes(h []byte) (netip.Addr, bool) {
	if len(h) > 2 && h[0] == '[' && h[len(h)-1] == ']' {
		h = h[1 : len(h)-1]
	}
	if len(h) == 0 {
		return netip.Addr{}, false
	}
	// ParseAddr keeps the string only in its error, which is dropped.
	a, err := netip.ParseAddr(unsafe.String(&h[0], len(h)))
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// routeEntry is one name-addr of a Route header.
type routeEntry struct {
	whole span // "<sip:...>;params"
	uri   span // inside the angle brackets
}

const maxRoutes = 16

// routes lists the Route entries in order; false when one is not plain.
func (m *msgIndex) routes(list *[maxRoutes]routeEntry) (int, bool) {
	n := 0
	for i := range m.n {
		h := &m.hdrs[i]
		if h.kind != hRoute {
			continue
		}
		s, e := h.value.s, h.value.e
		for s < e {
			if n == maxRoutes {
				return 0, false
			}
			r, next, ok := routeAt(m.b, s, e)
			if !ok {
				return 0, false
			}
			list[n] = r
			n++
			s = next
		}
	}
	return n, true
}

// routeAt reads one "<uri>;params" entry at s and skips the comma after it.
func routeAt(b []byte, s, e int32) (routeEntry, int32, bool) {
	for s < e && (b[s] == ' ' || b[s] == '\t') {
		s++
	}
	if s >= e || b[s] != '<' {
		return routeEntry{}, 0, false
	}
	gt := bytes.IndexByte(b[s:e], '>')
	if gt < 0 {
		return routeEntry{}, 0, false
	}
	r := routeEntry{uri: span{s + 1, s + int32(gt)}}
	end := s + int32(gt) + 1
	comma := bytes.IndexByte(b[end:e], ',')
	next := e
	if comma >= 0 {
		next = end + int32(comma) + 1
		end += int32(comma)
	}
	for end > s && (b[end-1] == ' ' || b[end-1] == '\t') {
		end--
	}
	r.whole = span{s, end}
	if bytes.ContainsAny(b[r.uri.s:r.uri.e], "<\"") {
		return routeEntry{}, 0, false
	}
	return r, next, true
}

// sipURI is what the fast path needs of a sip: URI.
type sipURI struct {
	host   []byte
	port   int
	params []byte // ";..." up to a '?' or the end
}

// parseSIPURI reads sip:[user@]host[:port][;params]; sips: and anything
// with headers or a user part containing an '@' go the sipgo way.
func parseSIPURI(u []byte) (sipURI, bool) {
	if !hasPrefixFold(u, "sip:") || bytes.IndexByte(u, '?') >= 0 {
		return sipURI{}, false
	}
	u = u[4:]
	if at := bytes.LastIndexByte(u, '@'); at >= 0 {
		u = u[at+1:]
	}
	end := bytes.IndexByte(u, ';')
	if end < 0 {
		end = len(u)
	}
	hs, port, ok := hostPort(u[:end])
	if !ok {
		return sipURI{}, false
	}
	return sipURI{host: u[hs.s:hs.e], port: port, params: u[end:]}, true
}

// uriParam returns the value of a URI parameter and whether it is there.
func uriParam(params []byte, name string) ([]byte, bool) {
	for len(params) > 0 && params[0] == ';' {
		params = params[1:]
		end := bytes.IndexByte(params, ';')
		if end < 0 {
			end = len(params)
		}
		k, v, _ := bytes.Cut(params[:end], []byte("="))
		if eqFold(k, name) {
			return v, true
		}
		params = params[end:]
	}
	return nil, false
}

// udpHop is the address a next-hop URI names over plain UDP.
func udpHop(u sipURI) (netip.AddrPort, bool) {
	if t, ok := uriParam(u.params, "transport"); ok && !eqFold(t, "udp") {
		return netip.AddrPort{}, false
	}
	if _, ok := uriParam(u.params, "maddr"); ok {
		return netip.AddrPort{}, false
	}
	addr, ok := parseAddrBytes(u.host)
	if !ok {
		return netip.AddrPort{}, false
	}
	port := u.port
	if port == 0 {
		port = 5060
	}
	return netip.AddrPortFrom(addr, uint16(port)), true
}

// macScratch is a keyed HMAC with room for its sum, reused per request.
type macScratch struct {
	h   hash.Hash
	sum [sha256.Size]byte
}

// fastToken is routeToken for a Call-ID given as bytes, appended to dst.
func (f *fastPath) fastToken(dst, callID []byte) []byte {
	m, _ := f.macs.Get().(*macScratch)
	if m == nil {
		m = &macScratch{h: hmac.New(sha256.New, f.p.opts.RouteKey)}
	}
	m.h.Reset()
	m.h.Write(callID)
	dst = hex.AppendEncode(dst, m.h.Sum(m.sum[:0])[:8])
	f.macs.Put(m)
	return dst
}

// nextHop is the first remaining Route (a loose router, ";lr") or else the
// Request-URI.
func (f *fastPath) nextHop(b []byte, rest []routeEntry, ruri sipURI) (netip.AddrPort, bool) {
	if len(rest) == 0 {
		return udpHop(ruri)
	}
	u, ok := parseSIPURI(rest[0].uri.of(b))
	if !ok {
		return netip.AddrPort{}, false
	}
	if _, lr := uriParam(u.params, "lr"); !lr {
		return netip.AddrPort{}, false
	}
	return udpHop(u)
}

// branchHash ends our branch: the same for a retransmission of the same
// request, as a stateless proxy's must be (RFC 3261 §16.11).
func (f *fastPath) branchHash(w []byte, m *msgIndex) []byte {
	h := fnv.New64a()
	h.Write(m.via.branch.of(m.b))
	h.Write(m.via.host.of(m.b))
	h.Write(m.callID.of(m.b))
	var sum [8]byte
	return hex.AppendEncode(w, h.Sum(sum[:0]))
}

// appendVia writes the caller's Via line with received and rport filled
// in (RFC 3261 §18.2.1, RFC 3581 §4).
func appendVia(w, b []byte, h *header, v *viaParts, from netip.AddrPort) []byte {
	var ipBuf [64]byte
	ip := from.Addr().AppendTo(ipBuf[:0])
	a, ok := parseAddrBytes(v.host.of(b))
	fill, received := stampRule(!v.rport.empty() && v.rportVal == 0, ok && a == from.Addr().Unmap())
	if fill {
		w = append(w, b[h.line.s:v.rport.e]...)
		w = append(w, '=')
		w = strconv.AppendUint(w, uint64(from.Port()), 10)
		w = append(w, b[v.rport.e:v.val.e]...)
	} else {
		w = append(w, b[h.line.s:v.val.e]...)
	}
	if received {
		w = append(w, ";received="...)
		w = append(w, ip...)
	}
	w = append(w, b[v.val.e:h.value.e]...) // further Vias on the line
	return append(w, "\r\n"...)
}

// fastListen is the integration point in Listeners: with sip.fast_path on,
// a UDP socket is served through a fastConn that sipgo reads from.
func (p *Proxy) fastListen(conn net.PacketConn) (net.PacketConn, func(), error) {
	udp, ok := conn.(*net.UDPConn)
	if !ok {
		return conn, func() {}, nil
	}
	port := 0
	if a, ok := udp.LocalAddr().(*net.UDPAddr); ok {
		port = a.Port
	}
	fc, err := newFastConn(udp, nil, p.log)
	if err != nil {
		return nil, nil, err
	}
	fc.fast = newFastPath(p, fc, port)
	p.fast = append(p.fast, fc.fast)
	start := func() {
		fc.fast.noteSelf()
		go fc.fast.wheel.run(fc.done)
		go fc.run()
	}
	return fc, start, nil
}
