package sip

import "bytes"

// The fast path's message index: one pass over a datagram that
// records where the start line and each header are, and parses only what a
// proxy needs to route and relay. It never allocates and never copies. It
// is deliberately strict: anything a plain user agent would not send
// (folded lines, whitespace around ":" ";" "=", RFC 2543 branches, more
// than maxHeaders headers, repeated single-valued headers, a Content-Length
// that does not match the body; a missing one is the datagram's end) makes index return false, and the datagram
// goes to the sipgo path, which handles the whole of RFC 3261. Correctness
// never depends on this parser being complete.

// maxHeaders bounds the header lines the index holds.
const maxHeaders = 128

// span is a byte range [s, e) of the indexed datagram.
type span struct{ s, e int32 }

func (s span) of(b []byte) []byte { return b[s.s:s.e] }
func (s span) empty() bool        { return s.e <= s.s }

// hdrKind names the headers the fast path looks at; the rest are hOther.
type hdrKind uint8

const (
	hOther hdrKind = iota
	hVia
	hFrom
	hTo
	hCallID
	hCSeq
	hMaxForwards
	hRoute
	hRecordRoute
	hContact
	hProxyRequire
	hContentLength // the last kind: note's seen array ends with it
)

// header is one header line: line spans it with its CRLF, value is the
// value without surrounding whitespace.
type header struct {
	kind  hdrKind
	line  span
	value span
}

// viaParts is a parsed Via value (RFC 3261 §20.42, RFC 3581).
type viaParts struct {
	val       span // the whole value
	transport span
	host      span
	port      int // 0: none given
	branch    span
	rport     span // the whole ";rport" or ";rport=N" parameter
	rportVal  int  // 0: none given
	received  span // value of received
	sbn       span // value of our name-swap parameter (see nameSwap)
}

// msgIndex is the index of one datagram. Its spans point into b.
type msgIndex struct {
	msgHead
	// hdrs holds the first n header lines; index does not clear the rest.
	hdrs [maxHeaders]header
}

// msgHead is what index resets for each datagram.
type msgHead struct {
	b       []byte
	request bool
	method  span // request
	ruri    span // request
	status  int  // response
	n       int
	vias    int // Via header lines
	via     viaParts
	via2    viaParts // the second Via, when vias > 1
	topVia  int      // header number of the first Via line
	// topViaRest is what follows the first Via on its line (more Vias).
	topViaRest span
	fromTag    span
	toTag      span
	callID     span
	cseq       uint32
	cseqM      span
	maxFwd     int // -1: absent
	body       int // offset of the body
}

// index fills m from b; false means "not for the fast path".
func (m *msgIndex) index(b []byte) bool {
	m.msgHead = msgHead{b: b, maxFwd: -1, topVia: -1}
	if len(b) > 65535 {
		return false
	}
	pos, ok := m.startLine()
	if !ok {
		return false
	}
	var seen [hContentLength + 1]bool
	clen := -1
	for {
		if pos+1 < len(b) && b[pos] == '\r' && b[pos+1] == '\n' {
			m.body = pos + 2
			break
		}
		h, next, ok := headerLine(b, pos)
		if !ok || m.n == maxHeaders {
			return false
		}
		if !m.note(h, &seen, &clen) {
			return false
		}
		m.hdrs[m.n] = h
		m.n++
		pos = next
	}
	if m.topVia < 0 || !seen[hFrom] || !seen[hTo] || !seen[hCallID] || !seen[hCSeq] {
		return false
	}
	// Without Content-Length the body runs to the end of the datagram
	// (RFC 3261 §18.3); the index reads only datagrams.
	if clen >= 0 && clen != len(b)-m.body {
		return false
	}
	if m.request && !bytes.Equal(m.cseqM.of(b), m.method.of(b)) {
		return false
	}
	return true
}

// startLine reads "Method SP Request-URI SP SIP/2.0" or
// "SIP/2.0 SP Status-Code SP Reason-Phrase" and returns where the headers
// start.
func (m *msgIndex) startLine() (int, bool) {
	b := m.b
	end := bytes.Index(b, crlf)
	if end <= 0 {
		return 0, false
	}
	line := b[:end]
	if bytes.HasPrefix(line, sipVersionSP) {
		if len(line) < 12 || line[11] != ' ' || !isDigits(line[8:11]) {
			return 0, false
		}
		m.status = int(line[8]-'0')*100 + int(line[9]-'0')*10 + int(line[10]-'0')
		if m.status < 100 || bytes.IndexByte(line, '\t') >= 0 || hasCTL(line[12:]) {
			return 0, false
		}
		return end + 2, true
	}
	sp1 := bytes.IndexByte(line, ' ')
	if sp1 <= 0 || !isToken(line[:sp1]) {
		return 0, false
	}
	rest := line[sp1+1:]
	sp2 := bytes.IndexByte(rest, ' ')
	if sp2 <= 0 || !bytes.Equal(rest[sp2+1:], sipVersion) {
		return 0, false
	}
	uri := rest[:sp2]
	if hasCTL(uri) || bytes.ContainsAny(uri, "<>\"") || !(hasPrefixFold(uri, "sip:") || hasPrefixFold(uri, "sips:")) {
		return 0, false
	}
	m.request = true
	m.method = span{0, int32(sp1)}
	m.ruri = span{int32(sp1 + 1), int32(sp1 + 1 + sp2)}
	return end + 2, true
}

var (
	crlf         = []byte("\r\n")
	sipVersion   = []byte("SIP/2.0")
	sipVersionSP = []byte("SIP/2.0 ")
)

// headerLine reads "name: value CRLF" at pos. A line starting with
// whitespace (folding), whitespace before the colon or a bare LF is not
// for the fast path.
func headerLine(b []byte, pos int) (header, int, bool) {
	rel := bytes.Index(b[pos:], crlf)
	if rel <= 0 {
		return header{}, 0, false
	}
	end := pos + rel
	next := end + 2
	if next < len(b) && (b[next] == ' ' || b[next] == '\t') {
		return header{}, 0, false
	}
	line := b[pos:end]
	colon := bytes.IndexByte(line, ':')
	if colon <= 0 || !isToken(line[:colon]) || hasCTL(line) {
		return header{}, 0, false
	}
	vs, ve := pos+colon+1, end
	for vs < ve && (b[vs] == ' ' || b[vs] == '\t') {
		vs++
	}
	for ve > vs && (b[ve-1] == ' ' || b[ve-1] == '\t') {
		ve--
	}
	h := header{kind: kindOf(line[:colon]), line: span{int32(pos), int32(next)}, value: span{int32(vs), int32(ve)}}
	return h, next, true
}

// note parses the headers the fast path uses as they are met.
func (m *msgIndex) note(h header, seen *[hContentLength + 1]bool, clen *int) bool {
	b := m.b
	v := h.value.of(b)
	switch h.kind {
	case hOther, hRoute, hRecordRoute, hProxyRequire:
		return true
	case hVia:
		if h.value.empty() {
			return false
		}
		// One line may hold several Vias (RFC 3261 §7.3.1; SIPp's
		// [last_Via:] writes them so).
		for s := h.value; !s.empty(); {
			first, rest, ok := nextVia(b, s)
			if !ok {
				return false
			}
			m.vias++
			switch m.vias {
			case 1:
				m.topVia, m.topViaRest = m.n, rest
				if !parseVia(b, first, &m.via) || m.via.branch.empty() {
					return false
				}
			case 2:
				// Only the second Via's address matters (relaying a response).
				if !parseVia(b, first, &m.via2) {
					return false
				}
			default:
				// The rest must parse too: sipgo would refuse the message.
				var v viaParts
				if !parseVia(b, first, &v) {
					return false
				}
			}
			s = rest
		}
		seen[hVia] = true
		return true
	}
	if seen[h.kind] {
		return false // a single-valued header twice
	}
	seen[h.kind] = true
	switch h.kind {
	case hFrom:
		if h.value.empty() {
			return false
		}
		tag, ok := addressTag(b, h.value)
		m.fromTag = tag
		return ok
	case hTo:
		if h.value.empty() {
			return false
		}
		tag, ok := addressTag(b, h.value)
		m.toTag = tag
		return ok
	case hCallID:
		m.callID = h.value
		return len(v) > 0 && !bytes.ContainsAny(v, " \t,")
	case hCSeq:
		sp := bytes.IndexByte(v, ' ')
		if sp <= 0 || sp > 10 || !isDigits(v[:sp]) || !isToken(v[sp+1:]) {
			return false
		}
		var n uint64
		for _, c := range v[:sp] {
			n = n*10 + uint64(c-'0')
		}
		if n >= 1<<31 {
			return false // RFC 3261 §8.1.1.5
		}
		m.cseq = uint32(n)
		m.cseqM = span{h.value.s + int32(sp) + 1, h.value.e}
		return true
	case hMaxForwards:
		if len(v) == 0 || len(v) > 3 || !isDigits(v) {
			return false
		}
		m.maxFwd = atoiDigits(v)
		return m.maxFwd <= 255
	case hContentLength:
		if len(v) == 0 || len(v) > 5 || !isDigits(v) {
			return false
		}
		*clen = atoiDigits(v)
		return true
	}
	return true
}

// nextVia splits the first value off a Via header value: the value and
// what follows its comma, without the whitespace around it.
func nextVia(b []byte, s span) (first, rest span, ok bool) {
	comma := bytes.IndexByte(s.of(b), ',')
	if comma < 0 {
		return s, span{s.e, s.e}, true
	}
	first = span{s.s, s.s + int32(comma)}
	for first.e > first.s && (b[first.e-1] == ' ' || b[first.e-1] == '\t') {
		first.e--
	}
	rest = span{first.s + int32(comma) + 1, s.e}
	for rest.s < rest.e && (b[rest.s] == ' ' || b[rest.s] == '\t') {
		rest.s++
	}
	return first, rest, !first.empty() && !rest.empty()
}

// parseVia reads "SIP/2.0/UDP host[:port];params" with no whitespace but
// the one before sent-by and no second value on the line.
func parseVia(b []byte, s span, out *viaParts) bool {
	v := s.of(b)
	if len(v) < 12 || !hasPrefixFold(v, "SIP/2.0/") || bytes.IndexByte(v, '"') >= 0 {
		return false
	}
	sp := bytes.IndexByte(v, ' ')
	if sp < 9 || !isToken(v[8:sp]) {
		return false
	}
	out.val = s
	out.transport = span{s.s + 8, s.s + int32(sp)}
	rest := v[sp+1:]
	if bytes.ContainsAny(rest, " \t") {
		return false
	}
	base := s.s + int32(sp) + 1
	semi := bytes.IndexByte(rest, ';')
	if semi < 0 {
		semi = len(rest)
	}
	host, port, ok := hostPort(rest[:semi])
	if !ok {
		return false
	}
	out.host = span{base + int32(host.s), base + int32(host.e)}
	out.port = port
	return viaParams(b, base+int32(semi), s.e, out)
}

// viaParams reads ";name[=value]" parameters between s and e.
func viaParams(b []byte, s, e int32, out *viaParts) bool {
	for s < e {
		if b[s] != ';' {
			return false
		}
		s++
		end := s
		for end < e && b[end] != ';' {
			end++
		}
		p := b[s:end]
		name, val, hasVal := bytes.Cut(p, []byte("="))
		if len(name) == 0 || !isToken(name) || (hasVal && len(val) == 0) {
			return false
		}
		vs := end - int32(len(val))
		switch {
		case string(name) == "branch": // as sipgo reads it: case-sensitive
			if !bytes.HasPrefix(val, []byte("z9hG4bK")) || !isToken(val) || !out.branch.empty() {
				return false // RFC 2543 branches go the sipgo way
			}
			out.branch = span{vs, end}
		case eqFold(name, "rport"):
			out.rport = span{s - 1, end}
			if hasVal {
				if len(val) > 5 || !isDigits(val) {
					return false
				}
				out.rportVal = atoiDigits(val)
			}
		case eqFold(name, "received"):
			out.received = span{vs, end}
		case eqFold(name, swapParam):
			out.sbn = span{vs, end}
		}
		s = end
	}
	return true
}

// hostPort splits "host[:port]" with host an IPv4 address, a name or a
// bracketed IPv6 reference; the host span is relative to hp.
func hostPort(hp []byte) (span, int, bool) {
	if len(hp) == 0 {
		return span{}, 0, false
	}
	hostEnd := len(hp)
	portAt := -1
	if hp[0] == '[' {
		rb := bytes.IndexByte(hp, ']')
		if rb < 0 {
			return span{}, 0, false
		}
		hostEnd = rb + 1
		if hostEnd < len(hp) {
			if hp[hostEnd] != ':' {
				return span{}, 0, false
			}
			portAt = hostEnd + 1
		}
	} else if c := bytes.IndexByte(hp, ':'); c >= 0 {
		hostEnd, portAt = c, c+1
	}
	if hostEnd == 0 {
		return span{}, 0, false
	}
	port := 0
	if portAt >= 0 {
		p := hp[portAt:]
		if len(p) == 0 || len(p) > 5 || !isDigits(p) {
			return span{}, 0, false
		}
		if port = atoiDigits(p); port == 0 || port > 65535 {
			return span{}, 0, false
		}
	}
	return span{0, int32(hostEnd)}, port, true
}

// addressTag finds the tag parameter of a From or To value, in its
// name-addr ("Name" <uri>;tag=x) or addr-spec (uri;tag=x) form.
func addressTag(b []byte, s span) (span, bool) {
	v := s.of(b)
	params := 0
	if lt := angleStart(v); lt >= 0 {
		gt := bytes.IndexByte(v[lt:], '>')
		if gt < 0 {
			return span{}, false
		}
		params = lt + gt + 1
	} else {
		if bytes.IndexByte(v, '"') >= 0 || bytes.ContainsAny(v, " \t") {
			return span{}, false
		}
		semi := bytes.IndexByte(v, ';')
		if semi < 0 {
			return span{}, true
		}
		params = semi
	}
	var tag span
	for i := params; i < len(v); {
		if v[i] != ';' {
			return span{}, false
		}
		i++
		end := i
		for end < len(v) && v[end] != ';' {
			end++
		}
		name, val, _ := bytes.Cut(v[i:end], []byte("="))
		if !isToken(name) {
			return span{}, false
		}
		if eqFold(name, "tag") {
			if len(val) == 0 || !isToken(val) || !tag.empty() {
				return span{}, false
			}
			tag = span{s.s + int32(end-len(val)), s.s + int32(end)}
		}
		i = end
	}
	return tag, true
}

// angleStart is the index of the '<' opening a name-addr's URI, after an
// optional quoted display name; -1 when there is none.
func angleStart(v []byte) int {
	for i := 0; i < len(v); i++ {
		switch v[i] {
		case '"':
			for i++; i < len(v) && v[i] != '"'; i++ {
				if v[i] == '\\' {
					i++
				}
			}
		case '<':
			return i
		case ';':
			return -1
		}
	}
	return -1
}

// kindOf recognises a header name, long or compact form (RFC 3261 §7.3.3).
func kindOf(name []byte) hdrKind {
	if len(name) == 1 {
		switch name[0] | 0x20 {
		case 'v':
			return hVia
		case 'f':
			return hFrom
		case 't':
			return hTo
		case 'i':
			return hCallID
		case 'm':
			return hContact
		case 'l':
			return hContentLength
		}
		return hOther
	}
	switch {
	case eqFold(name, "Via"):
		return hVia
	case eqFold(name, "From"):
		return hFrom
	case eqFold(name, "To"):
		return hTo
	case eqFold(name, "Call-ID"):
		return hCallID
	case eqFold(name, "CSeq"):
		return hCSeq
	case eqFold(name, "Max-Forwards"):
		return hMaxForwards
	case eqFold(name, "Route"):
		return hRoute
	case eqFold(name, "Record-Route"):
		return hRecordRoute
	case eqFold(name, "Contact"):
		return hContact
	case eqFold(name, "Content-Length"):
		return hContentLength
	case eqFold(name, "Proxy-Require"):
		return hProxyRequire
	}
	return hOther
}

// eqFold compares ASCII case-insensitively without allocating.
func eqFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		if lower(b[i]) != lower(s[i]) {
			return false
		}
	}
	return true
}

func hasPrefixFold(b []byte, s string) bool { return len(b) >= len(s) && eqFold(b[:len(s)], s) }

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// isToken reports RFC 3261 §25.1 token characters only.
func isToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !tokenChar[c] {
			return false
		}
	}
	return true
}

var tokenChar = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for _, c := range "-.!%*_+`'~" {
		t[c] = true
	}
	return t
}()

// hasCTL reports control characters other than HT.
func hasCTL(b []byte) bool {
	for _, c := range b {
		if (c < 0x20 && c != '\t') || c == 0x7f {
			return true
		}
	}
	return false
}

func isDigits(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// atoiDigits converts at most five checked digits.
func atoiDigits(b []byte) int {
	n := 0
	for _, c := range b {
		n = n*10 + int(c-'0')
	}
	return n
}
