package media

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
)

// ErrPortsExhausted is returned by PortPool.Acquire when every RTP port is taken.
var ErrPortsExhausted = errors.New("rtp: no free port in media.rtp_ports")

// PortPool hands out UDP sockets for announcement RTP from the media.rtp_ports range. RTP uses
// even ports, leaving the next odd one for RTCP (RFC 3550 §11), so only even ports are used.
// Ports are handed out round-robin so that a port just released is not reused at once and
// stray packets of the previous call do not reach the next one.
type PortPool struct {
	ip        netip.Addr
	low, high int // even bounds, inclusive

	mu    sync.Mutex
	next  int
	inUse map[int]*net.UDPConn
}

// ParsePortRange reads a media.rtp_ports value such as "20000-20999".
func ParsePortRange(s string) (low, high int, err error) {
	lo, hi, ok := strings.Cut(strings.TrimSpace(s), "-")
	if !ok {
		return 0, 0, fmt.Errorf("rtp ports %q: want LOW-HIGH", s)
	}
	if low, err = strconv.Atoi(strings.TrimSpace(lo)); err != nil {
		return 0, 0, fmt.Errorf("rtp ports %q: low: %w", s, err)
	}
	if high, err = strconv.Atoi(strings.TrimSpace(hi)); err != nil {
		return 0, 0, fmt.Errorf("rtp ports %q: high: %w", s, err)
	}
	return low, high, nil
}

// NewPortPool makes a pool of the even ports in [low, high] on ip. ip is both where sockets
// bind and what the SDP answer advertises, so it must be a concrete address the callers (or
// their trunk) can reach, not 0.0.0.0 or ::.
func NewPortPool(low, high int, ip string) (*PortPool, error) {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return nil, fmt.Errorf("rtp ports: address: %w", err)
	}
	if addr.IsUnspecified() {
		return nil, fmt.Errorf("rtp ports: address %s cannot be advertised in SDP, use a concrete IP", addr)
	}
	if low < 1 || high > 65535 || low > high {
		return nil, fmt.Errorf("rtp ports: range %d-%d invalid, want 1 <= low <= high <= 65535", low, high)
	}
	low += low & 1   // round up to even
	high -= high & 1 // round down to even
	if low > high {
		return nil, fmt.Errorf("rtp ports: range %d-%d holds no even port", low, high)
	}
	return &PortPool{ip: addr.Unmap(), low: low, high: high, next: low, inUse: map[int]*net.UDPConn{}}, nil
}

// IP returns the address sockets are bound to and advertised in SDP.
func (p *PortPool) IP() netip.Addr { return p.ip }

// Size returns how many ports the pool can hand out at once.
func (p *PortPool) Size() int { return (p.high-p.low)/2 + 1 }

// InUse returns how many ports are currently acquired.
func (p *PortPool) InUse() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.inUse)
}

// Acquire binds a UDP socket on a free even port of the range. Ports another process holds
// are skipped. When none is left it returns an error wrapping ErrPortsExhausted.
func (p *PortPool) Acquire() (*net.UDPConn, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var lastErr error
	for range p.Size() {
		port := p.next
		p.next += 2
		if p.next > p.high {
			p.next = p.low
		}
		if p.inUse[port] != nil {
			continue
		}
		conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(p.ip, uint16(port))))
		if err != nil {
			lastErr = err // most likely in use by another process; try the next one
			continue
		}
		p.inUse[port] = conn
		return conn, nil
	}
	if lastErr != nil {
		return nil, fmt.Errorf("%w (%d-%d on %s; last bind error: %w)", ErrPortsExhausted, p.low, p.high, p.ip, lastErr)
	}
	return nil, fmt.Errorf("%w (%d-%d on %s)", ErrPortsExhausted, p.low, p.high, p.ip)
}

// Release closes a socket returned by Acquire and makes its port available again. Releasing
// a nil or unknown socket only closes it.
func (p *PortPool) Release(conn *net.UDPConn) {
	if conn == nil {
		return
	}
	la, _ := conn.LocalAddr().(*net.UDPAddr)
	_ = conn.Close() // closing a UDP socket we own has nothing to report
	if la == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if port := la.Port; p.inUse[port] == conn {
		delete(p.inUse, la.Port)
	}
}
