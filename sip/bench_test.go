package sip

// BenchmarkCall drives the proxy in-process with raw UDP: one op is a whole
// call, INVITE → 100/200 → ACK → BYE → 200, from a trunk socket through
// the proxy to a PBX socket that answers at once. The PBX and the callers
// build their messages with plain string work, so that the allocations and
// CPU reported are nearly all the proxy's (sipgo parse, transactions,
// pipeline, call tracker). The pipeline is Identify with real number
// normalisation; records go to memory.
//
//	go test -run '^$' -bench BenchmarkCall -benchmem ./sip/
//	go test -run '^$' -bench BenchmarkCall -cpuprofile cpu.out -memprofile mem.out ./sip/

import (
	"bytes"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// rawPBX answers INVITE with 200 (Record-Route copied) and BYE with 200,
// by copying header lines: no SIP parser on this side.
func rawPBX(p *udpPeer, d datagram) {
	b := d.b
	switch {
	case bytes.HasPrefix(b, []byte("INVITE ")):
		_, _ = p.conn.WriteToUDP(benchResponse(b, "200 OK", "pbx", "Contact: <sip:pbx@"+p.addr().String()+">\r\n"), d.from)
	case bytes.HasPrefix(b, []byte("BYE ")):
		_, _ = p.conn.WriteToUDP(benchResponse(b, "200 OK", "", ""), d.from)
	}
}

func benchResponse(req []byte, status, toTag, extra string) []byte {
	head, _, _ := bytes.Cut(req, []byte("\r\n\r\n"))
	var out strings.Builder
	out.WriteString("SIP/2.0 " + status + "\r\n")
	for i, line := range strings.Split(string(head), "\r\n") {
		if i == 0 {
			continue
		}
		name, _, _ := strings.Cut(line, ":")
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "via", "v", "from", "f", "call-id", "i", "cseq", "record-route":
			out.WriteString(line + "\r\n")
		case "to", "t":
			out.WriteString(line)
			if toTag != "" && !strings.Contains(line, "tag=") {
				out.WriteString(";tag=" + toTag)
			}
			out.WriteString("\r\n")
		}
	}
	out.WriteString(extra + "Content-Length: 0\r\n\r\n")
	return []byte(out.String())
}

// benchCaller places calls from one socket, one at a time.
type benchCaller struct {
	conn  *net.UDPConn
	proxy *net.UDPAddr
	buf   []byte
}

func (c *benchCaller) await(id string, cseq string, min int) ([]byte, bool) {
	_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		n, _, err := c.conn.ReadFromUDP(c.buf)
		if err != nil {
			return nil, false
		}
		b := c.buf[:n]
		if resStatus(b) >= min && rawCallID(b) == id && strings.HasSuffix(rawHeader(b, "CSeq"), cseq) {
			return b, true
		}
	}
}

func (c *benchCaller) call(id string) bool {
	me := c.conn.LocalAddr().String()
	px := c.proxy.String()
	from := "From: <sip:+4930111222@" + me + ">;tag=f" + id + "\r\n"
	inv := "INVITE sip:+49301234560@" + px + " SIP/2.0\r\nVia: SIP/2.0/UDP " + me + ";branch=z9hG4bK" + id + ";rport\r\n" +
		"Max-Forwards: 70\r\n" + from + "To: <sip:+49301234560@" + px + ">\r\nCall-ID: " + id + "\r\nCSeq: 1 INVITE\r\n" +
		"Contact: <sip:c@" + me + ">\r\nContent-Type: application/sdp\r\nContent-Length: " + strconv.Itoa(len(testSDP)) + "\r\n\r\n" + testSDP
	if _, err := c.conn.WriteToUDP([]byte(inv), c.proxy); err != nil {
		return false
	}
	ok, found := c.await(id, "INVITE", 200)
	if !found || resStatus(ok) != 200 {
		return false
	}
	to := rawHeader(ok, "To", "t")
	var routes []string
	head, _, _ := bytes.Cut(ok, []byte("\r\n\r\n"))
	for _, l := range strings.Split(string(head), "\r\n") {
		if n, v, _ := strings.Cut(l, ":"); strings.EqualFold(n, "Record-Route") {
			routes = append(routes, strings.TrimSpace(v))
		}
	}
	target := strings.Trim(rawHeader(ok, "Contact", "m"), "<>")
	inDialog := func(method, cseq string) []byte {
		return []byte(method + " " + target + " SIP/2.0\r\nVia: SIP/2.0/UDP " + me + ";branch=z9hG4bK" + id + method + ";rport\r\n" +
			"Route: " + strings.Join(routes, ", ") + "\r\nMax-Forwards: 70\r\n" + from + "To: " + to + "\r\nCall-ID: " + id +
			"\r\nCSeq: " + cseq + " " + method + "\r\nContent-Length: 0\r\n\r\n")
	}
	if _, err := c.conn.WriteToUDP(inDialog("ACK", "1"), c.proxy); err != nil {
		return false
	}
	if _, err := c.conn.WriteToUDP(inDialog("BYE", "2"), c.proxy); err != nil {
		return false
	}
	res, found := c.await(id, "BYE", 200)
	return found && resStatus(res) == 200
}

func BenchmarkCall(b *testing.B) {
	corpusless := harnessOpts{pbx: rawPBX}
	h := startProxy(b, corpusless)
	const callers = 8
	cs := make([]*benchCaller, callers)
	for i := range cs {
		conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			b.Fatal(err)
		}
		_ = conn.SetReadBuffer(1 << 20)
		b.Cleanup(func() { conn.Close() })
		cs[i] = &benchCaller{conn: conn, proxy: h.addr, buf: make([]byte, 1<<16)}
	}
	// Warm up: caches, pools, the first transactions.
	for i := range 50 {
		if !cs[0].call("warm-" + strconv.Itoa(i)) {
			b.Fatal("warm-up call failed")
		}
	}
	var next, failed atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				n := next.Add(1)
				if n > int64(b.N) {
					return
				}
				if !c.call("call-b" + strconv.FormatInt(n, 36) + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)) {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	if f := failed.Load(); f > int64(b.N)/1000 {
		b.Fatalf("%d of %d calls failed", f, b.N)
	}
}
