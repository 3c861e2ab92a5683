package e2e

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The flood of SPEC §1 and §9 with everything at once: strangers
// (127.0.0.2-9) send INVITE, OPTIONS and REGISTER, a trunk (127.0.0.10)
// sends INVITEs above its max_cps, and SIPp places legitimate calls from
// the carrier trunk. Short and at a low rate by default, so that it runs
// with every `make test`; bench/flood.sh runs it at 20,000 requests/s and
// 200 calls/s through the environment:
//
//	FLOOD_RATE     stranger requests a second (default 3000)
//	FLOOD_SECONDS  seconds of flood with the calls (default 4)
//	FLOOD_CALLS    legitimate calls a second (default 50)
//	FLOOD_CPS      the greedy trunk's max_cps (default 20; it sends 5 times that)

func floodEnv(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// floodCounts are the answers the flood's senders got.
type floodCounts struct {
	stranger  atomic.Int64 // any datagram to a stranger
	forbidden sync.Map     // stranger address → *atomic.Int64 of 403s
	greedy503 atomic.Int64 // 503s to the greedy trunk (Retry-After checked)
	noRetry   atomic.Int64 // 503s without Retry-After
	greedyFwd sync.Map     // Call-IDs of greedy INVITEs that got anything else
}

// floodRig is a node with a second, capped trunk and the flood's sockets.
type floodRig struct {
	n        *node
	strange  []*net.UDPConn
	greedy   *net.UDPConn
	counts   floodCounts
	dst      *net.UDPAddr
	msgs     [][]byte
	gSent    int
	readers  sync.WaitGroup
	greedyCP int
}

func newFloodRig(t *testing.T, strangers string, cps int) *floodRig {
	t.Helper()
	r := &floodRig{greedyCP: cps}
	for i := 2; i <= 10; i++ {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, byte(i))})
		if err != nil {
			t.Skipf("cannot bind 127.0.0.%d: %v", i, err)
		}
		t.Cleanup(func() { c.Close() })
		if i == 10 {
			r.greedy = c
		} else {
			r.strange = append(r.strange, c)
		}
	}
	n := prepareNode(t, nodeOptions{match: []string{"127.0.0.1/32"},
		extraSIP: fmt.Sprintf("  strangers: %s\n  stranger_replies: 5\n", strangers)})
	greedy := fmt.Sprintf("    - name: greedy\n      match: [127.0.0.10/32]\n      outbound: sip:127.0.0.10:9\n      region: DE\n      max_cps: %d\n", cps)
	cfg := strings.Replace(n.config(), "  max_call_duration:", greedy+"  max_call_duration:", 1)
	cfg = strings.Replace(cfg, "level: debug", "level: info", 1)
	n.launch(cfg, nil)
	r.n = n
	r.dst, _ = net.ResolveUDPAddr("udp", n.sipAddr())
	r.msgs = floodMessages(r.strange, n.sipAddr())
	for _, c := range r.strange {
		r.readers.Add(1)
		go r.readStranger(c)
	}
	r.readers.Add(1)
	go r.readGreedy()
	return r
}

func (r *floodRig) readStranger(c *net.UDPConn) {
	defer r.readers.Done()
	buf := make([]byte, 4096)
	for {
		k, _, err := c.ReadFromUDP(buf)
		if err != nil {
			return
		}
		r.counts.stranger.Add(1)
		if bytes.HasPrefix(buf[:k], []byte("SIP/2.0 403")) {
			v, _ := r.counts.forbidden.LoadOrStore(c.LocalAddr().String(), new(atomic.Int64))
			v.(*atomic.Int64).Add(1)
		}
	}
}

func (r *floodRig) readGreedy() {
	defer r.readers.Done()
	buf := make([]byte, 4096)
	for {
		k, _, err := r.greedy.ReadFromUDP(buf)
		if err != nil {
			return
		}
		m := sipMsg{text: string(buf[:k])}
		if strings.HasPrefix(m.firstLine(), "SIP/2.0 503") {
			r.counts.greedy503.Add(1)
			if len(m.header("Retry-After")) == 0 {
				r.counts.noRetry.Add(1)
			}
			continue
		}
		if id := m.header("Call-ID"); len(id) == 1 {
			r.counts.greedyFwd.Store(id[0], true)
		}
	}
}

// greedyInvite is the k-th INVITE of the capped trunk, a new call each.
func (r *floodRig) greedyInvite(k int) []byte {
	me := r.greedy.LocalAddr().String()
	to := r.n.sipAddr()
	id := fmt.Sprintf("greedy-%d", k)
	return []byte("INVITE sip:" + hotlineNumber + "@" + to + " SIP/2.0\r\nVia: SIP/2.0/UDP " + me + ";branch=z9hG4bK-" + id + "\r\n" +
		"Max-Forwards: 70\r\nFrom: <sip:+4930777666@" + me + ">;tag=" + id + "\r\nTo: <sip:" + hotlineNumber + "@" + to + ">\r\n" +
		"Call-ID: " + id + "\r\nCSeq: 1 INVITE\r\nContact: <sip:+4930777666@" + me + ">\r\nContent-Length: 0\r\n\r\n")
}

// flood sends stranger requests at rate a second and, with greedy, the
// capped trunk's INVITEs at 5 times its max_cps, for d; it returns the
// stranger requests sent.
func (r *floodRig) flood(d time.Duration, rate int, greedy bool) int {
	sent, gBase := 0, r.gSent
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	start := time.Now()
	for end := start.Add(d); time.Now().Before(end); <-tick.C {
		el := time.Since(start).Seconds()
		for due := int(el*float64(rate)) - sent; due > 0; due-- {
			k := sent % len(r.msgs)
			_, _ = r.strange[k%len(r.strange)].WriteToUDP(r.msgs[k], r.dst)
			sent++
		}
		if greedy {
			for due := gBase + int(el*float64(5*r.greedyCP)) - r.gSent; due > 0; due-- {
				_, _ = r.greedy.WriteToUDP(r.greedyInvite(r.gSent), r.dst)
				r.gSent++
			}
		}
	}
	return sent
}

// stop closes the sockets after a last moment for late answers.
func (r *floodRig) stop() {
	time.Sleep(300 * time.Millisecond) // late answers to the last requests
	for _, c := range r.strange {
		c.Close()
	}
	r.greedy.Close()
	r.readers.Wait()
}

// TestFloodWithCalls: strangers flood switchboard (sip.strangers: drop)
// while a trunk sends INVITEs at 5 times its max_cps and SIPp places
// legitimate calls: ≥ 99.9 % of the legitimate calls complete, strangers
// get no answer, the trunk's excess gets 503 with Retry-After and about
// max_cps a second get through. Switchboard's CPU per dropped stranger
// request (flood alone, minus the same span idle) is logged.
func TestFloodWithCalls(t *testing.T) {
	rate, secs := floodEnv("FLOOD_RATE", 3000), floodEnv("FLOOD_SECONDS", 4)
	cps, limit := floodEnv("FLOOD_CALLS", 50), floodEnv("FLOOD_CPS", 20)
	r := newFloodRig(t, "drop", limit)
	pid := r.n.current().cmd.Process.Pid

	// Strangers alone: the cost of a dropped request.
	measure := time.Duration(min(secs, 5)) * time.Second
	idle0 := procCPU(t, pid)
	time.Sleep(measure)
	idle := procCPU(t, pid) - idle0
	cpu0 := procCPU(t, pid)
	sent := r.flood(measure, rate, false)
	cpu := procCPU(t, pid) - cpu0 - idle
	t.Logf("strangers alone: %d requests in %v at %d/s: switchboard CPU %v beyond idle (%v idle): %.2f µs per dropped request",
		sent, measure, rate, cpu, idle, float64(cpu.Microseconds())/float64(sent))

	// Everything at once.
	calls := cps * secs
	pbx := startSIPp(t, sippSpec{name: "pbx", scenario: "uas_answer.xml", port: r.n.pbxPort, calls: calls + 5*limit*secs + 100})
	run := startSIPp(t, sippSpec{name: "trunk", scenario: "uac_answer.xml", remote: r.n.sipAddr(), service: hotlineNumber,
		pause: 200 * time.Millisecond, calls: calls, extra: []string{"-r", strconv.Itoa(cps), "-l", strconv.Itoa(2 * cps)}})
	began := time.Now()
	sent = r.flood(time.Duration(secs)*time.Second+time.Second, rate, true)
	floodFor := time.Since(began)
	run.wait(t)
	done := len(completed(t, run))
	pbx.proc.kill()
	r.stop()

	fwd := 0
	r.counts.greedyFwd.Range(func(any, any) bool { fwd++; return true })
	t.Logf("with %d stranger requests at %d/s and %d INVITEs from the capped trunk (max_cps %d) in %v: "+
		"%d of %d legitimate calls completed; the trunk got %d × 503 and %d calls through; strangers got %d answers",
		sent, rate, r.gSent, limit, floodFor.Round(time.Millisecond), done, calls, r.counts.greedy503.Load(), fwd, r.counts.stranger.Load())
	if done*1000 < calls*999 {
		t.Errorf("%d of %d legitimate calls completed during the flood, want ≥ 99.9 %%", done, calls)
	}
	if n := r.counts.stranger.Load(); n != 0 {
		t.Errorf("strangers got %d answers with strangers: drop, want none", n)
	}
	if r.counts.greedy503.Load() == 0 || fwd == 0 {
		t.Errorf("the capped trunk got %d × 503 and %d calls through, want both (its limit is %d/s, it sent %d)",
			r.counts.greedy503.Load(), fwd, limit, r.gSent)
	}
	if excess := r.gSent - limit*int(floodFor.Seconds()+2); int(r.counts.greedy503.Load()) < excess*9/10 {
		t.Errorf("the capped trunk got %d × 503 for %d INVITEs at 5 × its max_cps %d, want ≥ %d", r.counts.greedy503.Load(), r.gSent, limit, excess*9/10)
	}
	if fwd > limit*int(floodFor.Seconds()+2) {
		t.Errorf("%d calls of the capped trunk went through in %v, want about max_cps (%d) a second", fwd, floodFor, limit)
	}
	if n := r.counts.noRetry.Load(); n > 0 {
		t.Errorf("%d of the 503s had no Retry-After", n)
	}
	if m := r.n.get(t, "/metrics"); !strings.Contains(m, `switchboard_sip_dropped_total{reason="stranger"}`) {
		t.Error("/metrics does not count the dropped strangers")
	}
}

// TestFloodRejectLimited: with sip.strangers: reject, a flood from each
// stranger gets 403s, at most sip.stranger_replies (5) a second per
// source.
func TestFloodRejectLimited(t *testing.T) {
	const secs = 3
	r := newFloodRig(t, "reject", 20)
	began := time.Now()
	sent := r.flood(secs*time.Second, floodEnv("FLOOD_RATE", 3000)/2, false)
	r.stop()
	allowed := 5 * (int(time.Since(began).Seconds()) + 1)
	seen := 0
	r.counts.forbidden.Range(func(k, v any) bool {
		seen++
		if n := int(v.(*atomic.Int64).Load()); n > allowed || n == 0 {
			t.Errorf("stranger %v got %d × 403 for about %d requests in %d s, want 1..%d (stranger_replies 5)", k, n, sent/len(r.strange), secs, allowed)
		}
		return true
	})
	t.Logf("%d stranger requests in %d s: %d answers in all to %d sources (at most %d each)", sent, secs, r.counts.stranger.Load(), seen, allowed)
	if seen != len(r.strange) {
		t.Errorf("%d of %d strangers got a 403, want every one", seen, len(r.strange))
	}
	if n := r.counts.stranger.Load(); n > int64(allowed*len(r.strange)) {
		t.Errorf("strangers got %d answers, want at most %d", n, allowed*len(r.strange))
	}
}
