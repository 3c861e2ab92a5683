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
	"context"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/switchboard-sip/switchboard/blocking"
	"github.com/switchboard-sip/switchboard/callctl"
	"github.com/switchboard-sip/switchboard/configs"
	"github.com/switchboard-sip/switchboard/contacts"
	"github.com/switchboard-sip/switchboard/storage"
	"github.com/switchboard-sip/switchboard/storage/callstore"
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

// benchResponse copies header lines with byte operations only, so that
// the benchmark counts the proxy's allocations, not its own.
func benchResponse(req []byte, status, toTag, extra string) []byte {
	head, _, _ := bytes.Cut(req, []byte("\r\n\r\n"))
	out := make([]byte, 0, len(head)+len(extra)+64)
	out = append(out, "SIP/2.0 "...)
	out = append(out, status...)
	out = append(out, "\r\n"...)
	_, rest, _ := bytes.Cut(head, []byte("\r\n"))
	for len(rest) > 0 {
		var line []byte
		line, rest, _ = bytes.Cut(rest, []byte("\r\n"))
		name, _, _ := bytes.Cut(line, []byte(":"))
		switch {
		case eqFold(name, "via"), eqFold(name, "v"), eqFold(name, "from"), eqFold(name, "f"), eqFold(name, "call-id"),
			eqFold(name, "i"), eqFold(name, "cseq"), eqFold(name, "record-route"):
			out = append(append(out, line...), "\r\n"...)
		case eqFold(name, "to"), eqFold(name, "t"):
			out = append(out, line...)
			if toTag != "" && !bytes.Contains(line, []byte("tag=")) {
				out = append(append(out, ";tag="...), toTag...)
			}
			out = append(out, "\r\n"...)
		}
	}
	out = append(out, extra...)
	return append(out, "Content-Length: 0\r\n\r\n"...)
}

// benchHeader is the value of the first header named name, without
// allocating.
func benchHeader(b []byte, name string) []byte {
	head, _, _ := bytes.Cut(b, []byte("\r\n\r\n"))
	for len(head) > 0 {
		var line []byte
		line, head, _ = bytes.Cut(head, []byte("\r\n"))
		if n, v, ok := bytes.Cut(line, []byte(":")); ok && eqFold(bytes.TrimSpace(n), name) {
			return bytes.TrimSpace(v)
		}
	}
	return nil
}

// processCPU is the user+system CPU time the process used so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
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
		if resStatus(b) >= min && string(benchHeader(b, "Call-ID")) == id && bytes.HasSuffix(benchHeader(b, "CSeq"), []byte(cseq)) {
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

func BenchmarkCall(b *testing.B) { benchCalls(b, harnessOpts{pbx: rawPBX}) }

// BenchmarkCallFast is BenchmarkCall with sip.fast_path on.
func BenchmarkCallFast(b *testing.B) { benchCalls(b, harnessOpts{pbx: rawPBX, fast: true}) }

// benchCalls runs b.N calls from 8 concurrent callers through a proxy.
func benchCalls(b *testing.B, o harnessOpts) {
	h := startProxy(b, o)
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
	cpu0 := processCPU()
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
	// CPU time of the whole test process (proxy, and the raw callers and
	// PBX, which do little) per call: what /proc/PID/stat shows for a
	// running switchboard in bench/sidebyside.sh.
	b.ReportMetric(float64(processCPU()-cpu0)/float64(time.Microsecond)/float64(b.N), "cpu-us/call")
	if f := failed.Load(); f > int64(b.N)/1000 {
		b.Fatalf("%d of %d calls failed", f, b.N)
	}
}

// BenchmarkCallFullPipeline is BenchmarkCall with switchboard's whole
// pipeline as bench/switchboard.yaml configures it (1,000 block entries, a
// hotline with templates, a CEL rule, contact find-or-create on SQLite, call
// records through the batching call store): the stages are built the way
// cmd/switchboard/pipeline.go builds them.
func BenchmarkCallFullPipeline(b *testing.B) {
	pipeline, sink := fullPipeline(b)
	benchCalls(b, harnessOpts{pbx: rawPBX, pipeline: pipeline, sink: sink})
}

// BenchmarkCallFullPipelineFast is BenchmarkCallFullPipeline with
// sip.fast_path on.
func BenchmarkCallFullPipelineFast(b *testing.B) {
	pipeline, sink := fullPipeline(b)
	benchCalls(b, harnessOpts{pbx: rawPBX, pipeline: pipeline, sink: sink, fast: true})
}

func fullPipeline(b *testing.B) (callctl.Pipeline, callctl.RecordSink) {
	b.Helper()
	ctx := context.Background()
	dir := b.TempDir()
	raw, err := os.ReadFile(filepath.Join("..", "bench", "switchboard.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	cfgText := strings.NewReplacer("@SIP_PORT@", "35060", "@PBX_PORT@", "35080", "@TRUNK_PORT@", "35090",
		"@HTTP_PORT@", "38080", "@WORK@", dir, "@FAST_PATH@", "false").Replace(string(raw))
	path := filepath.Join(dir, "switchboard.yaml")
	if err := os.WriteFile(path, []byte(cfgText), 0o600); err != nil {
		b.Fatal(err)
	}
	cfg, err := configs.Load(path)
	if err != nil {
		b.Fatal(err)
	}
	db, err := storage.Open(cfg.Storage.Driver, cfg.Storage.DSN)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	var ces []blocking.ConfigEntry
	for _, e := range cfg.Blocking.Entries {
		ces = append(ces, blocking.ConfigEntry(e))
	}
	entries, err := blocking.FromConfig(ces)
	if err != nil {
		b.Fatal(err)
	}
	blocks, err := blocking.Open(ctx, db, entries)
	if err != nil {
		b.Fatal(err)
	}
	store, err := contacts.NewStore(ctx, db)
	if err != nil {
		b.Fatal(err)
	}
	cache, err := contacts.NewCache(ctx, store, contacts.CacheOptions{Log: zap.NewNop()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cache.Close(context.Background()) })
	identify := identifyPipeline(b)[0]
	block, err := callctl.NewBlockStage(cfg.Blocking, blocks)
	if err != nil {
		b.Fatal(err)
	}
	contact, err := callctl.NewContactStage(cache)
	if err != nil {
		b.Fatal(err)
	}
	opts := callctl.PolicyOptions{Contacts: callctl.IndexContacts(cache), Location: cfg.Location, Log: zap.NewNop()}
	hotline, err := callctl.NewHotlineStage(cfg.Hotlines, opts)
	if err != nil {
		b.Fatal(err)
	}
	opts.Hotlines = hotline.Hotlines()
	rules, err := callctl.NewRulesStage(cfg.Rules, opts)
	if err != nil {
		b.Fatal(err)
	}
	calls, err := callstore.New(ctx, db, zap.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = calls.Close(context.Background()) })
	return callctl.Pipeline{identify, block, contact, hotline, rules, callctl.NewClosedStage(hotline)}, calls
}

// BenchmarkHeapPerCall sets up calls (INVITE → 200 → ACK, no BYE) through
// the proxy with the full pipeline and reports the live heap per
// established call: what SPEC §9 bounds at 8 KiB. With
// SWITCHBOARD_HEAP_PROFILE=FILE it writes a heap profile of the calls.
func BenchmarkHeapPerCall(b *testing.B) {
	pipeline, sink := fullPipeline(b)
	h := startProxy(b, harnessOpts{pbx: rawPBX, pipeline: pipeline, sink: sink})
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	c := &benchCaller{conn: conn, proxy: h.addr, buf: make([]byte, 1<<16)}
	const calls = 3000
	setup := func(prefix string) {
		for i := range calls {
			if !c.establish(prefix + strconv.Itoa(i)) {
				b.Fatalf("call %d not set up", i)
			}
		}
	}
	setup("warm-") // caches, pools, the contact
	for range b.N {
		// Let the warm-up's transactions end (Timer M, 32 s would be
		// too long for a benchmark: measure with them alive, as in the
		// steady state of a busy proxy, and subtract a baseline taken
		// with them alive too).
		before := liveHeap()
		setup("call-heap-" + strconv.Itoa(int(time.Now().UnixNano())) + "-")
		after := liveHeap()
		b.ReportMetric(float64(after-before)/calls, "heap-B/call")
		if f := os.Getenv("SWITCHBOARD_HEAP_PROFILE"); f != "" {
			if out, err := os.Create(f); err == nil {
				_ = pprof.WriteHeapProfile(out)
				out.Close()
			}
		}
	}
}

func liveHeap() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// establish is call without the BYE: the dialog stays up.
func (c *benchCaller) establish(id string) bool {
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
	var routes []string
	head, _, _ := bytes.Cut(ok, []byte("\r\n\r\n"))
	for _, l := range strings.Split(string(head), "\r\n") {
		if n, v, _ := strings.Cut(l, ":"); strings.EqualFold(n, "Record-Route") {
			routes = append(routes, strings.TrimSpace(v))
		}
	}
	target := strings.Trim(rawHeader(ok, "Contact", "m"), "<>")
	ack := "ACK " + target + " SIP/2.0\r\nVia: SIP/2.0/UDP " + me + ";branch=z9hG4bK" + id + "ACK;rport\r\n" +
		"Route: " + strings.Join(routes, ", ") + "\r\nMax-Forwards: 70\r\n" + from + "To: " + rawHeader(ok, "To", "t") +
		"\r\nCall-ID: " + id + "\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"
	_, err := c.conn.WriteToUDP([]byte(ack), c.proxy)
	return err == nil
}
