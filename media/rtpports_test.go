package media

import (
	"errors"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
)

// annFreeEvenRange finds n consecutive even UDP ports on 127.0.0.1 that are free right now, so
// tests do not collide with each other or with whatever else runs on the machine.
func annFreeEvenRange(t *testing.T, n int) (low, high int) {
	t.Helper()
	for range 100 {
		low = 30000 + 2*rand.IntN(10000)
		var conns []*net.UDPConn
		ok := true
		for p := low; p < low+2*n; p += 2 {
			c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: p})
			if err != nil {
				ok = false
				break
			}
			conns = append(conns, c)
		}
		for _, c := range conns {
			c.Close()
		}
		if ok {
			return low, low + 2*n - 1
		}
	}
	t.Fatal("no free port range")
	return 0, 0
}

func annPort(c *net.UDPConn) int { return c.LocalAddr().(*net.UDPAddr).Port }

func TestPortPoolExhaustionAndRelease(t *testing.T) {
	low, high := annFreeEvenRange(t, 2) // odd high: only the two even ports count
	p, err := NewPortPool(low, high, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if p.Size() != 2 {
		t.Fatalf("size = %d, want 2", p.Size())
	}
	a, err := p.Acquire()
	if err != nil {
		t.Fatal(err)
	}
	b, err := p.Acquire()
	if err != nil {
		t.Fatal(err)
	}
	if annPort(a)%2 != 0 || annPort(b)%2 != 0 || annPort(a) == annPort(b) {
		t.Fatalf("ports %d and %d, want two distinct even ports", annPort(a), annPort(b))
	}
	if _, err := p.Acquire(); !errors.Is(err, ErrPortsExhausted) {
		t.Fatalf("third acquire: err = %v, want ErrPortsExhausted", err)
	}
	if p.InUse() != 2 {
		t.Fatalf("in use = %d", p.InUse())
	}
	freed := annPort(a)
	p.Release(a)
	if p.InUse() != 1 {
		t.Fatalf("in use after release = %d", p.InUse())
	}
	c, err := p.Acquire()
	if err != nil {
		t.Fatal(err)
	}
	if annPort(c) != freed {
		t.Fatalf("got port %d, want the released %d", annPort(c), freed)
	}
	p.Release(b)
	p.Release(c)
	p.Release(c) // twice is harmless
	p.Release(nil)
	if p.InUse() != 0 {
		t.Fatalf("in use at end = %d", p.InUse())
	}
}

func TestPortPoolSkipsPortsInUse(t *testing.T) {
	low, high := annFreeEvenRange(t, 2)
	other, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: low})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	p, err := NewPortPool(low, high, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	c, err := p.Acquire()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Release(c)
	if annPort(c) != low+2 {
		t.Fatalf("got port %d, want %d (port %d is taken by someone else)", annPort(c), low+2, low)
	}
	if _, err := p.Acquire(); !errors.Is(err, ErrPortsExhausted) {
		t.Fatalf("err = %v, want ErrPortsExhausted", err)
	}
}

func TestPortPoolConcurrent(t *testing.T) {
	low, high := annFreeEvenRange(t, 20)
	p, err := NewPortPool(low, high, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		seen  = map[int]bool{}
		conns []*net.UDPConn
	)
	for range 20 {
		wg.Go(func() {
			c, err := p.Acquire()
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if seen[annPort(c)] {
				t.Errorf("port %d handed out twice", annPort(c))
			}
			seen[annPort(c)] = true
			conns = append(conns, c)
		})
	}
	wg.Wait()
	for _, c := range conns {
		p.Release(c)
	}
	if p.InUse() != 0 {
		t.Fatalf("in use = %d", p.InUse())
	}
}

func TestNewPortPoolRejects(t *testing.T) {
	for _, tt := range []struct {
		name      string
		low, high int
		ip        string
	}{
		{"unspecified", 20000, 20999, "0.0.0.0"},
		{"unspecified v6", 20000, 20999, "::"},
		{"not an ip", 20000, 20999, "localhost"},
		{"reversed", 20999, 20000, "127.0.0.1"},
		{"zero", 0, 10, "127.0.0.1"},
		{"too high", 65000, 70000, "127.0.0.1"},
		{"no even port", 20001, 20001, "127.0.0.1"},
	} {
		if _, err := NewPortPool(tt.low, tt.high, tt.ip); err == nil {
			t.Errorf("%s: accepted", tt.name)
		}
	}
	p, err := NewPortPool(20001, 20003, "127.0.0.1")
	if err != nil || p.Size() != 1 {
		t.Fatalf("20001-20003: %v, size %d; want one port (20002)", err, p.Size())
	}
}

func TestParsePortRange(t *testing.T) {
	if lo, hi, err := ParsePortRange(" 20000-20999 "); err != nil || lo != 20000 || hi != 20999 {
		t.Fatalf("= %d, %d, %v", lo, hi, err)
	}
	for _, s := range []string{"", "20000", "a-b", "20000-", "-5"} {
		if _, _, err := ParsePortRange(s); err == nil {
			t.Errorf("%q: accepted", s)
		}
	}
}
