package sip

import (
	"bytes"
	"hash/fnv"
	"net"
	"net/netip"
	"strconv"
	"strings"

	gosip "github.com/emiago/sipgo/sip"
)

// prefilter checks every UDP request before sipgo takes it. sipgo drops
// what it cannot parse without a word (and logs the whole datagram as an
// error, a log flood under attack); RFC 4475 §3.1.2 wants a 400 (or 505,
// 416) so that the sender stops retransmitting and learns why. The request
// line is checked by hand, the rest by a parse of our own: it doubles the
// parse of requests only (a few µs each), not of responses.
type prefilter struct {
	conns  map[string]net.PacketConn // local address → our listening socket
	parser *gosip.Parser
	// stranger drops a stranger's datagram before the parse (strangers.go).
	stranger func(data []byte, from netip.AddrPort, out datagramSender) bool
}

func (f *prefilter) filter(info gosip.TransportReadProps, data []byte) ([]byte, error) {
	if info.Transport != "UDP" {
		return data, nil
	}
	if f.strangerOf(info, data) {
		return nil, nil
	}
	code, reason := checkRequestLine(data)
	if code == 0 && isRequest(data) {
		data = tidyLWS(data)
		msg, err := f.parser.ParseSIP(data)
		if err != nil {
			code, reason = 400, "Bad Request"
		} else if req, ok := msg.(*gosip.Request); ok {
			data = rfc2543Branch(req, data)
		}
	}
	if code == 0 {
		return data, nil
	}
	if conn := f.conns[info.LocalAddr.String()]; conn != nil {
		_, _ = conn.WriteTo(rawResponse(data, code, reason), info.RemoteAddr)
	}
	return nil, nil
}

// isRequest tells a request from a response or a keep-alive.
func isRequest(data []byte) bool {
	return len(bytes.TrimSpace(data)) > 0 && !bytes.HasPrefix(data, []byte("SIP/"))
}

// checkRequestLine validates "Method SP Request-URI SP SIP-Version CRLF"
// (RFC 3261 §7.1, §25.1). Responses and keep-alives pass.
func checkRequestLine(data []byte) (int, string) {
	end := bytes.IndexByte(data, '\n')
	if end < 0 || bytes.HasPrefix(data, []byte("SIP/")) || len(bytes.TrimSpace(data)) == 0 {
		return 0, ""
	}
	line := string(bytes.TrimSuffix(data[:end], []byte("\r")))
	parts := strings.Split(line, " ")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" {
		return 400, "Malformed Request-Line"
	}
	if !strings.HasPrefix(parts[2], "SIP/") {
		return 400, "Malformed Request-Line"
	}
	if parts[2] != "SIP/2.0" {
		return 505, "Version Not Supported"
	}
	uri := parts[1]
	if strings.ContainsAny(uri, "<>\t") {
		return 400, "Malformed Request-URI"
	}
	scheme, _, ok := strings.Cut(uri, ":")
	if !ok {
		return 400, "Malformed Request-URI"
	}
	switch strings.ToLower(scheme) {
	case "sip", "sips", "tel":
		return 0, ""
	}
	return 416, "Unsupported URI Scheme"
}

// rawResponse builds a stateless response from a request that could not be
// parsed, copying the headers RFC 3261 §8.2.6.2 says a response carries.
func rawResponse(req []byte, code int, reason string) []byte {
	var b bytes.Buffer
	b.WriteString("SIP/2.0 ")
	b.WriteString(itoa(code))
	b.WriteString(" " + reason + "\r\n")
	head, _, _ := bytes.Cut(req, []byte("\r\n\r\n"))
	for _, line := range bytes.Split(head, []byte("\n"))[1:] {
		line = bytes.TrimRight(line, "\r")
		name, _, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		switch strings.ToLower(strings.TrimSpace(string(name))) {
		case "via", "v", "from", "f", "to", "t", "call-id", "i", "cseq":
			b.Write(line)
			b.WriteString("\r\n")
		}
	}
	b.WriteString("Content-Length: 0\r\n\r\n")
	return b.Bytes()
}

func itoa(n int) string {
	return string([]byte{byte('0' + n/100%10), byte('0' + n/10%10), byte('0' + n%10)})
}

// strangerOf drops (or answers) a stranger's datagram by its source.
func (f *prefilter) strangerOf(info gosip.TransportReadProps, data []byte) bool {
	ua, ok := info.RemoteAddr.(*net.UDPAddr)
	if !ok || f.stranger == nil {
		return false
	}
	from := ua.AddrPort()
	from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
	return f.stranger(data, from, packetSender{f.conns[info.LocalAddr.String()]})
}

// packetSender writes from a listening socket of the sipgo path.
type packetSender struct{ conn net.PacketConn }

func (s packetSender) sendDatagram(b []byte, to netip.AddrPort) {
	if s.conn != nil {
		_, _ = s.conn.WriteTo(b, net.UDPAddrFromAddrPort(to))
	}
}

// rfc2543Branch gives a request of an RFC 2543 element (no magic-cookie
// branch, maybe no From tag) a branch on its top Via, so that sipgo's
// transaction layer can key it: RFC 4475 §3.4.1 asks RFC 3261 elements to
// accept such requests. The branch is a hash of what RFC 2543 matched a
// transaction by (Request-URI, From, Call-ID, CSeq number, top Via
// sent-by), so a retransmission, the ACK and the CANCEL get the same one;
// the sender ignores a parameter it did not write (it matches responses
// by those headers). Other requests are returned unchanged.
func rfc2543Branch(req *gosip.Request, data []byte) []byte {
	v := req.Via()
	if v == nil {
		return data
	}
	if b, _ := v.Params.Get("branch"); strings.HasPrefix(b, gosip.RFC3261BranchMagicCookie) {
		return data
	}
	h := fnv.New64a()
	h.Write([]byte(req.Recipient.Host))
	for _, hd := range []gosip.Header{req.From(), req.CallID()} {
		if hd != nil {
			h.Write([]byte(hd.Value()))
		}
	}
	if cs := req.CSeq(); cs != nil {
		h.Write([]byte(strconv.FormatUint(uint64(cs.SeqNo), 10)))
	}
	h.Write([]byte(v.Host + ":" + strconv.Itoa(v.Port)))
	v.Params.Add("branch", gosip.RFC3261BranchMagicCookie+"-2543-"+strconv.FormatUint(h.Sum64(), 36))
	return []byte(req.String())
}
