package sip

import (
	"crypto/hmac"
	"net/netip"
	"strconv"
	"time"
)

// In-dialog requests on the fast path: the BYE of any dialog we
// record-routed, and the ACK for the 2xx of an INVITE the fast path
// proxied, are forwarded statelessly (RFC 3261 §16.11) by editing their
// bytes; their responses come back through relay. The caller-name change
// (nameSwap, SPEC §1) is applied as the sipgo path applies it, and our Via
// carries it signed, so that the response going back to the caller gets
// its own name again without any state here.

// forwardInDialog relays an in-dialog BYE (bye) or 2xx ACK (RFC 3261
// §16.4 to §16.6): our signed Route entries popped, Max-Forwards
// decremented, the sender's Via given received/rport, our Via on top.
// Any condition the byte editor does not cover sends the request the
// sipgo way instead.
func (f *fastPath) forwardInDialog(m *msgIndex, from netip.AddrPort, out *batch, bye bool) bool {
	b := m.b
	if m.toTag.empty() || m.maxFwd < 1 || !eqFold(m.via.transport.of(b), "UDP") || !m.via.received.empty() {
		return false
	}
	if !bye && !f.txs.answered(m.callID.of(b), m.cseq) {
		return false // not the ACK of a 2xx we relayed: maybe one for sipgo's transaction
	}
	ruri, ok := parseSIPURI(m.ruri.of(b))
	if !ok || f.isSelf(ruri.host, ruri.port) {
		return false // a strict router's request: sipgo rewrites it
	}
	var list [maxRoutes]routeEntry
	n, ok := m.routes(&list)
	if !ok {
		return false
	}
	popped, signed, rawSwap := f.popOwn(m, list[:n])
	if !signed {
		return false
	}
	var swap *nameSwap
	if rawSwap != nil {
		// Requests from the PBX side need their responses' names
		// restored for the PBX: the sipgo path has the request at hand.
		s, ok := decodeSwap(f.p.opts.RouteKey, string(m.callID.of(b)), string(rawSwap))
		if !ok || from == f.p.routing.Load().PBX {
			return false
		}
		swap = &s
	}
	to, ok := f.nextHop(b, list[popped:n], ruri)
	if !ok {
		return false
	}
	w := out.slot()
	if w == nil || len(b)+len(f.via)+len(rawSwap)+256 > len(w) {
		return false
	}
	w = f.inDialogBytes(w[:0], m, from, list[popped:n], swap, rawSwap)
	out.queue(len(w), to)
	if bye {
		id := string(m.callID.of(b))
		f.p.tracker.ByeWith(id, time.Time{}, fastHeaderText(m, f.p.opts.TranscriptHeader))
		f.p.dialogs.remove(id)
	}
	return true
}

// popOwn counts the leading Route entries that name us, reports whether
// one carries our signature for this Call-ID, and returns the name swap
// one of them carries.
func (f *fastPath) popOwn(m *msgIndex, list []routeEntry) (int, bool, []byte) {
	var tokBuf [16]byte
	want := f.fastToken(tokBuf[:0], m.callID.of(m.b))
	signed := false
	var swap []byte
	for i, r := range list {
		u, ok := parseSIPURI(r.uri.of(m.b))
		if !ok || !f.isSelf(u.host, u.port) {
			return i, signed, swap
		}
		if v, ok := uriParam(u.params, swapParam); ok {
			swap = v
		}
		if v, ok := uriParam(u.params, "sb"); ok && hmac.Equal(v, want) {
			signed = true
		}
	}
	return len(list), signed, swap
}

// inDialogBytes writes the forwarded request.
func (f *fastPath) inDialogBytes(w []byte, m *msgIndex, from netip.AddrPort, rest []routeEntry, swap *nameSwap, rawSwap []byte) []byte {
	b := m.b
	w = append(w, b[:m.hdrs[0].line.s]...)
	w = append(w, f.via...)
	w = f.branchHash(w, m)
	if swap != nil {
		w = append(w, ";"+swapParam+"="...)
		w = append(w, rawSwap...)
	}
	w = append(w, "\r\n"...)
	routesDone := false
	for i := range m.n {
		h := &m.hdrs[i]
		switch {
		case i == m.topVia:
			w = appendVia(w, b, h, &m.via, from)
		case h.kind == hRoute:
			if !routesDone && len(rest) > 0 {
				w = append(w, "Route: "...)
				for j, r := range rest {
					if j > 0 {
						w = append(w, ", "...)
					}
					w = append(w, r.whole.of(b)...)
				}
				w = append(w, "\r\n"...)
			}
			routesDone = true
		case h.kind == hMaxForwards:
			w = append(w, "Max-Forwards: "...)
			w = strconv.AppendInt(w, int64(m.maxFwd-1), 10)
			w = append(w, "\r\n"...)
		case swap != nil && h.kind == hFrom && string(m.fromTag.of(b)) == swap.tag:
			// The caller's own request: the PBX sees the changed name.
			w = appendNamed(w, "From: ", h.value.of(b), swap.shown)
		case swap != nil && h.kind == hTo && string(m.toTag.of(b)) == swap.tag:
			w = appendNamed(w, "To: ", h.value.of(b), swap.original)
		default:
			w = append(w, h.line.of(b)...)
		}
	}
	w = append(w, "\r\n"...)
	return append(w, b[m.body:]...)
}

// appendNamed writes a From or To line with another display name, as
// sipgo writes one: quoted, or none when it is empty.
func appendNamed(w []byte, name string, v []byte, display string) []byte {
	w = append(w, name...)
	if display != "" {
		w = appendDisplay(w, v, `"`+display+`"`, true)
		return append(w, "\r\n"...)
	}
	if lt := angleStart(v); lt >= 0 {
		w = append(w, v[lt:]...)
	} else {
		w = append(w, v...)
	}
	return append(w, "\r\n"...)
}

// restoreNames gives the From and To of a relayed response whose tag is
// the caller's its original display name (the swap our Via carried).
func (f *fastPath) restoreNames(w []byte, m *msgIndex, i int, swap *nameSwap) ([]byte, bool) {
	h := &m.hdrs[i]
	b := m.b
	switch {
	case h.kind == hFrom && string(m.fromTag.of(b)) == swap.tag:
		return appendNamed(w, "From: ", h.value.of(b), swap.original), true
	case h.kind == hTo && string(m.toTag.of(b)) == swap.tag:
		return appendNamed(w, "To: ", h.value.of(b), swap.original), true
	}
	return w, false
}
