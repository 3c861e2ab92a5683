//go:build linux

package sip

import (
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// fastPathSupported: the batch syscalls below are Linux's.
const fastPathSupported = true

// mmsghdr is struct mmsghdr of recvmmsg(2) and sendmmsg(2); Go pads it to
// the C layout on every Linux architecture.
type mmsghdr struct {
	hdr unix.Msghdr
	n   uint32
}

// batch is the buffers of one recvmmsg or sendmmsg call: n datagrams of up
// to size bytes, each with room for an IPv6 socket address.
type batch struct {
	hdrs  []mmsghdr
	iovs  []unix.Iovec
	names []unix.RawSockaddrInet6
	bufs  [][]byte
	lens  []int // send: bytes of each datagram
	used  int   // send: datagrams queued
	inet6 bool  // the socket is AF_INET6

	// The syscall closures and their results, made once: a closure
	// made per call would be a heap allocation per batch.
	n, sent int
	err     error
	recvFn  func(fd uintptr) bool
	sendFn  func(fd uintptr) bool
}

func newBatch(n, size int, inet6 bool) *batch {
	b := &batch{hdrs: make([]mmsghdr, n), iovs: make([]unix.Iovec, n),
		names: make([]unix.RawSockaddrInet6, n), bufs: make([][]byte, n), lens: make([]int, n), inet6: inet6}
	for i := range n {
		b.bufs[i] = make([]byte, size)
		b.iovs[i].Base = &b.bufs[i][0]
		b.hdrs[i].hdr.Name = (*byte)(unsafe.Pointer(&b.names[i]))
		b.hdrs[i].hdr.Iov = &b.iovs[i]
		b.hdrs[i].hdr.SetIovlen(1)
	}
	b.recvFn = b.recvmmsg
	b.sendFn = b.sendmmsg
	return b
}

func (b *batch) recvmmsg(fd uintptr) bool {
	r, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&b.hdrs[0])),
		uintptr(len(b.hdrs)), unix.MSG_DONTWAIT, 0, 0)
	if e == unix.EAGAIN || e == unix.EINTR {
		return false
	}
	b.n, b.err = int(r), nil
	if e != 0 {
		b.n, b.err = 0, e
	}
	return true
}

func (b *batch) sendmmsg(fd uintptr) bool {
	r, _, e := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&b.hdrs[b.sent])),
		uintptr(b.used-b.sent), unix.MSG_DONTWAIT, 0, 0)
	if e == unix.EAGAIN || e == unix.EINTR {
		return false
	}
	b.n = int(r)
	if e != 0 {
		b.n = 1 // skip the datagram the kernel refused
	}
	return true
}

// socketIsInet6 tells the address family of a socket.
func socketIsInet6(rc syscall.RawConn) bool {
	inet6 := false
	_ = rc.Control(func(fd uintptr) {
		if sa, err := unix.Getsockname(int(fd)); err == nil {
			_, inet6 = sa.(*unix.SockaddrInet6)
		}
	})
	return inet6
}

// recv fills the batch with what the socket has, waiting (in the runtime's
// poller) until there is at least one datagram.
func (b *batch) recv(rc syscall.RawConn) (int, error) {
	for i := range b.hdrs {
		b.hdrs[i].hdr.Namelen = unix.SizeofSockaddrInet6
		b.hdrs[i].hdr.Flags = 0
		b.iovs[i].SetLen(len(b.bufs[i]))
		b.hdrs[i].n = 0
	}
	if err := rc.Read(b.recvFn); err != nil {
		return 0, err
	}
	return b.n, b.err
}

// packet is datagram i of a received batch; ok is false for a truncated
// one or an address family we do not serve.
func (b *batch) packet(i int) ([]byte, netip.AddrPort, bool) {
	h := &b.hdrs[i]
	if h.hdr.Flags&unix.MSG_TRUNC != 0 {
		return nil, netip.AddrPort{}, false
	}
	sa := &b.names[i]
	var ap netip.AddrPort
	switch sa.Family {
	case unix.AF_INET:
		s4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		ap = netip.AddrPortFrom(netip.AddrFrom4(s4.Addr), ntohs(s4.Port))
	case unix.AF_INET6:
		ap = netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), ntohs(sa.Port))
	default:
		return nil, netip.AddrPort{}, false
	}
	return b.bufs[i][:h.n], ap, true
}

// slot returns the buffer of the next datagram to send, nil when the
// batch is full.
func (b *batch) slot() []byte {
	if b.used == len(b.bufs) {
		return nil
	}
	return b.bufs[b.used]
}

// queue commits the first n bytes of the current slot for sending to to.
func (b *batch) queue(n int, to netip.AddrPort) {
	i := b.used
	b.lens[i] = n
	b.iovs[i].SetLen(n)
	sa := &b.names[i]
	if b.inet6 {
		*sa = unix.RawSockaddrInet6{Family: unix.AF_INET6, Port: htons(to.Port()), Addr: to.Addr().As16()}
		b.hdrs[i].hdr.Namelen = unix.SizeofSockaddrInet6
	} else {
		s4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		*s4 = unix.RawSockaddrInet4{Family: unix.AF_INET, Port: htons(to.Port()), Addr: to.Addr().Unmap().As4()}
		b.hdrs[i].hdr.Namelen = unix.SizeofSockaddrInet4
	}
	b.used++
}

// flush sends the queued datagrams with as few sendmmsg calls as the
// kernel allows. A datagram the kernel refuses is dropped, as UDP may.
func (b *batch) flush(rc syscall.RawConn) {
	if b.used == 0 {
		return
	}
	for b.sent = 0; b.sent < b.used; {
		if err := rc.Write(b.sendFn); err != nil {
			break
		}
		b.sent += max(b.n, 1)
	}
	b.used = 0
}

func ntohs(p uint16) uint16 {
	b := (*[2]byte)(unsafe.Pointer(&p))
	return uint16(b[0])<<8 | uint16(b[1])
}

func htons(p uint16) uint16 {
	var out uint16
	b := (*[2]byte)(unsafe.Pointer(&out))
	b[0], b[1] = byte(p>>8), byte(p)
	return out
}
