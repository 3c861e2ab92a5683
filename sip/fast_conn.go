package sip

import (
	"errors"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// fastBatch is how many datagrams one recvmmsg or sendmmsg moves at most.
const fastBatch = 64

// fastConn owns one UDP listen socket when sip.fast_path is on. A single
// reader on a locked OS thread takes datagrams in batches (recvmmsg); the
// fast path handles the ones it can to completion and queues what it sends
// for one sendmmsg per batch; every other datagram is handed, unchanged,
// to sipgo, which reads this fastConn as its net.PacketConn. sipgo's
// writes go straight to the real socket. So TCP, TLS, announcements and
// anything unusual keep working exactly as without the fast path.
type fastConn struct {
	conn *net.UDPConn
	rc   syscall.RawConn
	fast *fastPath
	log  *zap.Logger

	in     chan *fallback // datagrams for sipgo
	done   chan struct{}
	exited chan struct{} // the reader returned: the socket is closed
	closer sync.Once
	pool   sync.Pool // *fallback
}

// fallback is a datagram on its way to sipgo.
type fallback struct {
	b    []byte
	from netip.AddrPort
}

func newFastConn(conn *net.UDPConn, fast *fastPath, log *zap.Logger) (*fastConn, error) {
	if !fastPathSupported {
		return nil, errors.New("sip: sip.fast_path needs Linux (recvmmsg, sendmmsg)")
	}
	rc, err := conn.SyscallConn()
	if err != nil {
		return nil, err
	}
	_ = conn.SetReadBuffer(8 << 20)
	_ = conn.SetWriteBuffer(8 << 20)
	return &fastConn{conn: conn, rc: rc, fast: fast, log: log,
		in: make(chan *fallback, 4096), done: make(chan struct{}), exited: make(chan struct{})}, nil
}

// run is the reader. It returns when the socket is closed.
func (c *fastConn) run() {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer close(c.exited)
	inet6 := socketIsInet6(c.rc)
	rb := newBatch(fastBatch, 1<<16, inet6)
	out := newBatch(fastBatch, fastOutSize, inet6)
	var ix msgIndex
	for {
		n, err := rb.recv(c.rc)
		if err != nil {
			if c.closed() || errors.Is(err, net.ErrClosed) {
				return
			}
			// A socket error (ENOMEM, a queued ICMP error) ends nothing:
			// the listener stays up, as sipgo's would.
			c.log.Warn("fast path: read", zap.Error(err))
			time.Sleep(time.Millisecond)
			continue
		}
		for i := range n {
			data, from, ok := rb.packet(i)
			if !ok || len(data) == 0 {
				continue
			}
			if out.slot() == nil {
				out.flush(c.rc)
			}
			if done, slow := c.fast.screen(data, from); done {
				continue // a stranger's (strangers.go)
			} else if slow {
				c.fast.p.fellBack.add(fbBalancer)
				c.toSipgo(data, from)
				continue
			}
			if r := c.fast.take(&ix, data, from, out); r != fbNone {
				c.fast.p.fellBack.add(r)
				c.toSipgo(data, from)
			}
		}
		out.flush(c.rc)
	}
}

// toSipgo queues a copy of a datagram for sipgo's reader. When sipgo falls
// behind, the reader waits: the socket buffer then absorbs the burst, as it
// would without the fast path.
func (c *fastConn) toSipgo(data []byte, from netip.AddrPort) {
	f, _ := c.pool.Get().(*fallback)
	if f == nil {
		f = &fallback{}
	}
	f.b = append(f.b[:0], data...)
	f.from = from
	select {
	case c.in <- f:
	case <-c.done:
	}
}

func (c *fastConn) closed() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// ReadFrom gives sipgo the next datagram the fast path did not take.
func (c *fastConn) ReadFrom(b []byte) (int, net.Addr, error) {
	select {
	case f := <-c.in:
		n := copy(b, f.b)
		addr := net.UDPAddrFromAddrPort(f.from)
		if cap(f.b) <= 1<<16 {
			c.pool.Put(f)
		}
		return n, addr, nil
	case <-c.done:
		// sipgo returns from Serve on this: let the socket be gone by
		// then, so that the port can be bound again at once.
		<-c.exited
		return 0, nil, net.ErrClosed
	}
}

// WriteTo sends for sipgo through the real socket.
func (c *fastConn) WriteTo(b []byte, addr net.Addr) (int, error) { return c.conn.WriteTo(b, addr) }

// Close stops the reader and closes the socket; sipgo closes it too when
// it shuts down.
func (c *fastConn) Close() error {
	var err error
	c.closer.Do(func() {
		close(c.done)
		err = c.conn.Close()
	})
	return err
}

// LocalAddr is the real socket's address.
func (c *fastConn) LocalAddr() net.Addr { return c.conn.LocalAddr() }

// SetDeadline is not used by sipgo's UDP reader; deadlines apply to writes only.
func (c *fastConn) SetDeadline(t time.Time) error { return c.conn.SetWriteDeadline(t) }

// SetReadDeadline is a no-op: the fast path's reader owns reading.
func (c *fastConn) SetReadDeadline(time.Time) error { return nil }

// SetWriteDeadline applies to sipgo's writes on the real socket.
func (c *fastConn) SetWriteDeadline(t time.Time) error { return c.conn.SetWriteDeadline(t) }
