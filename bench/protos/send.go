package protos

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"
)

// Options configure a run.
type Options struct {
	Target  *net.UDPAddr  // switchboard's UDP listener; must be loopback
	Wait    time.Duration // how long to wait for a final response (default 300 ms)
	Workers int           // cases in flight (default 16)
	To      string        // user@host dialled (default +49301234560@target)
	From    string        // user@host calling (default +4930111222@127.0.0.1)
}

// Result is what happened to one case.
type Result struct {
	N     int
	Codes []int // status codes received for the INVITE, in order
	Err   error // local failure (socket), not the target's
}

// Answered reports whether the target sent any response.
func (r Result) Answered() bool { return len(r.Codes) > 0 }

// Final is the first final status received, 0 when none.
func (r Result) Final() int {
	for _, c := range r.Codes {
		if c >= 200 {
			return c
		}
	}
	return 0
}

// Run sends every case from its own loopback socket (so that every answer
// is attributed to its case), Workers at a time, and returns the results in
// case order. It stops early when ctx ends.
func Run(ctx context.Context, cases []Case, o Options) ([]Result, error) {
	if o.Target == nil || !o.Target.IP.IsLoopback() {
		return nil, errors.New("protos: target must be a loopback address")
	}
	if o.Wait <= 0 {
		o.Wait = 300 * time.Millisecond
	}
	if o.Workers <= 0 {
		o.Workers = 16
	}
	if o.To == "" {
		o.To = "+49301234560@" + o.Target.String()
	}
	if o.From == "" {
		o.From = "+4930111222@127.0.0.1"
	}
	res := make([]Result, len(cases))
	next := make(chan int)
	var wg sync.WaitGroup
	for range o.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 1<<16)
			for i := range next {
				res[i] = one(cases[i], o, buf)
			}
		}()
	}
feed:
	for i := range cases {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	return res, ctx.Err()
}

func one(c Case, o Options, buf []byte) Result {
	r := Result{N: c.N}
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		r.Err = err
		return r
	}
	defer conn.Close()
	v := Values{
		To: o.To, From: o.From, FromAddress: "127.0.0.1", FromIP: "127.0.0.1",
		LocalPort: conn.LocalAddr().(*net.UDPAddr).Port,
		BranchID:  randHex(8), CallID: randHex(12), CSeq: 1, TeardownMethod: "CANCEL",
	}
	if _, err := conn.WriteToUDP(Fill(c.Invite, v), o.Target); err != nil {
		// A case too large for one datagram cannot be sent over UDP.
		r.Err = err
		return r
	}
	deadline := time.Now().Add(o.Wait)
	for time.Now().Before(deadline) {
		_ = conn.SetReadDeadline(deadline)
		n, _, err := conn.ReadFromUDP(buf)
		if err != nil {
			break
		}
		if code := Status(buf[:n]); code > 0 {
			r.Codes = append(r.Codes, code)
			if code >= 200 {
				break
			}
		}
	}
	_, _ = conn.WriteToUDP(Fill(c.Teardown, v), o.Target)
	return r
}

// Status returns the status code of a response datagram, 0 for anything else.
func Status(b []byte) int {
	if !bytes.HasPrefix(b, []byte("SIP/2.0 ")) || len(b) < 11 {
		return 0
	}
	n, err := strconv.Atoi(string(b[8:11]))
	if err != nil {
		return 0
	}
	return n
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Ping sends an OPTIONS addressed to the target itself and waits for its
// 200 (SPEC §1: keep-alive pings to switchboard get 200 OK): the cheapest
// proof that the SIP stack still reads, parses and answers.
func Ping(target *net.UDPAddr, timeout time.Duration) error {
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return err
	}
	defer conn.Close()
	me := conn.LocalAddr().String()
	id := randHex(8)
	msg := "OPTIONS sip:" + target.String() + " SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP " + me + ";branch=z9hG4bK-ping-" + id + ";rport\r\n" +
		"Max-Forwards: 70\r\nFrom: <sip:ping@" + me + ">;tag=" + id + "\r\n" +
		"To: <sip:" + target.String() + ">\r\nCall-ID: ping-" + id + "\r\nCSeq: 1 OPTIONS\r\n" +
		"Content-Length: 0\r\n\r\n"
	deadline := time.Now().Add(timeout)
	buf := make([]byte, 1<<16)
	for attempt := 0; time.Now().Before(deadline); attempt++ {
		if _, err := conn.WriteToUDP([]byte(msg), target); err != nil {
			return err
		}
		_ = conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		n, _, err := conn.ReadFromUDP(buf)
		if err != nil {
			continue
		}
		if code := Status(buf[:n]); code >= 200 {
			if code != 200 {
				return fmt.Errorf("protos: ping answered %d", code)
			}
			return nil
		}
	}
	return fmt.Errorf("protos: no answer to OPTIONS within %s", timeout)
}
