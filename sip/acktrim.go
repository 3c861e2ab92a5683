package sip

import (
	"bytes"
	"net"
)

// oneViaACK is our listening UDP socket as sipgo writes through it. The
// ACK that sipgo's client transaction sends for a non-2xx final response
// repeats every Via of the INVITE; RFC 3261 §17.1.1.3 allows only the top
// one (ours), and some PBXs match or answer it by the others. The ACK is
// trimmed on its way out; every other datagram passes untouched.
type oneViaACK struct{ net.PacketConn }

func (c oneViaACK) WriteTo(b []byte, addr net.Addr) (int, error) {
	if bytes.HasPrefix(b, []byte("ACK ")) {
		if t, ok := trimACKVias(b); ok {
			if _, err := c.PacketConn.WriteTo(t, addr); err != nil {
				return 0, err
			}
			return len(b), nil
		}
	}
	return c.PacketConn.WriteTo(b, addr)
}

// trimACKVias drops every Via line but the first from an ACK whose top
// Via is a hop-by-hop one of ours (not the "-ack" branch of a forwarded
// 2xx ACK, which is end to end and keeps its Vias).
func trimACKVias(b []byte) ([]byte, bool) {
	head, body, ok := bytes.Cut(b, []byte("\r\n\r\n"))
	if !ok {
		return nil, false
	}
	lines := bytes.Split(head, []byte("\r\n"))
	out := make([][]byte, 0, len(lines))
	vias := 0
	for _, l := range lines {
		if isViaLine(l) {
			vias++
			if vias == 1 && (!bytes.Contains(l, []byte("branch="+branchPrefix)) || bytes.Contains(l, []byte("-ack"))) {
				return nil, false
			}
			if vias > 1 {
				continue
			}
		}
		out = append(out, l)
	}
	if vias < 2 {
		return nil, false
	}
	t := bytes.Join(out, []byte("\r\n"))
	t = append(t, "\r\n\r\n"...)
	return append(t, body...), true
}

func isViaLine(l []byte) bool {
	name, _, ok := bytes.Cut(l, []byte(":"))
	if !ok {
		return false
	}
	name = bytes.TrimSpace(name)
	return bytes.EqualFold(name, []byte("Via")) || bytes.EqualFold(name, []byte("v"))
}
