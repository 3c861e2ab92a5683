//go:build !linux

package sip

import (
	"errors"
	"net/netip"
	"syscall"
)

// fastPathSupported: the fast path's batch I/O is Linux's recvmmsg and
// sendmmsg; elsewhere every datagram takes the sipgo path.
const fastPathSupported = false

type batch struct{}

func newBatch(int, int, bool) *batch                     { return &batch{} }
func socketIsInet6(syscall.RawConn) bool                 { return false }
func (*batch) recv(syscall.RawConn) (int, error)         { return 0, errors.ErrUnsupported }
func (*batch) packet(int) ([]byte, netip.AddrPort, bool) { return nil, netip.AddrPort{}, false }
func (*batch) slot() []byte                              { return nil }
func (*batch) queue(int, netip.AddrPort)                 {}
func (*batch) flush(syscall.RawConn)                     {}
