package sip

// RFC 4475 torture messages sent over real UDP to a proxy started in the
// test process, then a normal call through the same proxy (SPEC §9,
// robustness). The messages are read in place from the shared corpus
// (SWITCHBOARD_SIP_CORPUS, default /work/shared/sip-corpus); the test skips
// without it, and fails without it when CI is set.

import (
	"github.com/switchboard-sip/switchboard/cdr"

	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gosip "github.com/emiago/sipgo/sip"
	"go.uber.org/zap"

	"github.com/switchboard-sip/switchboard/callctl"
	"github.com/switchboard-sip/switchboard/contacts"
)

// corpusDir returns a directory of the shared SIP corpus, or skips (fails
// under CI) when it is missing.
func tortureCorpus(t testing.TB, sub string) string {
	t.Helper()
	root := os.Getenv("SWITCHBOARD_SIP_CORPUS")
	if root == "" {
		root = filepath.Join("..", "..", "shared", "sip-corpus")
	}
	dir := filepath.Join(root, sub)
	if _, err := os.Stat(dir); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("SIP corpus missing (set SWITCHBOARD_SIP_CORPUS): %v", err)
		}
		t.Skipf("SIP corpus not found at %s (set SWITCHBOARD_SIP_CORPUS)", dir)
	}
	return dir
}

// ---------------------------------------------------------------- harness

// memSink keeps call records in memory.
type memSink struct {
	mu   sync.Mutex
	recs map[string]cdr.Record
	n    int
}

func (s *memSink) Save(r cdr.Record) {
	s.mu.Lock()
	if s.recs == nil {
		s.recs = map[string]cdr.Record{}
	}
	s.recs[r.CallID] = r
	s.n++
	s.mu.Unlock()
}

func (s *memSink) ByCallID(_ context.Context, id string) (cdr.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.recs[id]; ok {
		return r, nil
	}
	return cdr.Record{}, errors.New("no record")
}

func (s *memSink) get(id string) (cdr.Record, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.recs[id]
	return r, ok
}

// dnsOff makes every host name lookup in this test binary fail at once, so
// that a torture message naming example.com can never send the proxy to
// the network: only loopback addresses are ever used.
var dnsOff sync.Once

func blockDNS() {
	dnsOff.Do(func() {
		*net.DefaultResolver = net.Resolver{PreferGo: true,
			Dial: func(context.Context, string, string) (net.Conn, error) {
				return nil, errors.New("test: DNS is off, loopback only")
			}}
	})
}

// datagram is one UDP packet a peer received.
type datagram struct {
	b    []byte
	from *net.UDPAddr
	at   time.Time
}

// udpPeer is a raw UDP socket on 127.0.0.1 playing a trunk or the PBX. It
// keeps every datagram it receives; handle, when set, may answer them.
type udpPeer struct {
	conn   *net.UDPConn
	handle func(p *udpPeer, d datagram)

	mu      sync.Mutex
	got     []datagram
	pending *gosip.Request // a handler's INVITE awaiting its final response
	wake    chan struct{}
	done    chan struct{}
}

func newPeer(t testing.TB, handle func(*udpPeer, datagram)) *udpPeer {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatalf("peer: %v", err)
	}
	_ = c.SetReadBuffer(4 << 20)
	p := &udpPeer{conn: c, handle: handle, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go p.read()
	t.Cleanup(func() { c.Close(); <-p.done })
	return p
}

func (p *udpPeer) addr() *net.UDPAddr { return p.conn.LocalAddr().(*net.UDPAddr) }

func (p *udpPeer) read() {
	defer close(p.done)
	buf := make([]byte, 1<<16)
	for {
		n, from, err := p.conn.ReadFromUDP(buf)
		if err != nil {
			return
		}
		d := datagram{b: bytes.Clone(buf[:n]), from: from, at: time.Now()}
		p.mu.Lock()
		if len(p.got) < 100000 { // bounded: a runaway sender cannot eat the test's memory
			p.got = append(p.got, d)
		}
		p.mu.Unlock()
		select {
		case p.wake <- struct{}{}:
		default:
		}
		if p.handle != nil {
			p.handle(p, d)
		}
	}
}

func (p *udpPeer) send(t testing.TB, to *net.UDPAddr, b []byte) {
	t.Helper()
	if _, err := p.conn.WriteToUDP(b, to); err != nil {
		t.Fatalf("send: %v", err)
	}
}

// since returns the datagrams received from index i on.
func (p *udpPeer) since(i int) []datagram {
	p.mu.Lock()
	defer p.mu.Unlock()
	if i >= len(p.got) {
		return nil
	}
	return append([]datagram(nil), p.got[i:]...)
}

func (p *udpPeer) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.got)
}

// waitFor returns the first datagram from index i on that match accepts, or
// false after timeout.
func (p *udpPeer) waitFor(i int, timeout time.Duration, match func(datagram) bool) (datagram, bool) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		for _, d := range p.since(i) {
			if match(d) {
				return d, true
			}
		}
		select {
		case <-p.wake:
		case <-deadline.C:
			return datagram{}, false
		}
	}
}

// proxyHarness is a proxy on 127.0.0.1 with a free UDP port, a PBX peer
// that answers what reaches it, and a trunk peer the routing accepts calls
// from.
type proxyHarness struct {
	p     *Proxy
	addr  *net.UDPAddr // the proxy's UDP listener
	pbx   *udpPeer
	trunk *udpPeer
	sink  *memSink
	track *callctl.Tracker

	o        harnessOpts
	routeKey []byte
	stop     func()
}

type harnessOpts struct {
	log      *zap.Logger
	pipeline callctl.Pipeline
	// pbx answers requests reaching the PBX; nil means pbxAnswer.
	pbx func(*udpPeer, datagram)
	// sink stores call records; nil means an in-memory sink (h.sink).
	sink callctl.RecordSink
	// fast turns sip.fast_path on; SWITCHBOARD_FAST_PATH=1 does it for
	// every test of the package.
	fast bool
	// options and routing adjust the proxy's setup before it starts.
	options func(*Options)
	routing func(*Routing)
	// port is the UDP port to listen on; 0 picks a free one.
	port int
}

func startProxy(t testing.TB, o harnessOpts) *proxyHarness {
	t.Helper()
	blockDNS()
	if o.pbx == nil {
		o.pbx = pbxAnswer
	}
	if o.log == nil {
		o.log = zap.NewNop()
	}
	if o.pipeline == nil {
		o.pipeline = identifyPipeline(t)
	}
	h := &proxyHarness{sink: &memSink{}}
	h.pbx = newPeer(t, o.pbx)
	h.trunk = newPeer(t, nil)
	if o.sink == nil {
		o.sink = h.sink
	}
	h.o = o
	h.routeKey = []byte("torture-route-key-32-bytes-long!")
	h.start(t, o.port)
	return h
}

// start runs a proxy (a new process, as far as SIP state goes) on port
// with the harness's peers, routing and record sink.
func (h *proxyHarness) start(t testing.TB, port int) {
	t.Helper()
	o := h.o
	pbxAP := h.pbx.addr().AddrPort()
	pbxAP = netip.AddrPortFrom(pbxAP.Addr().Unmap(), pbxAP.Port())
	var pbxURI gosip.Uri
	if err := gosip.ParseUri("sip:"+pbxAP.String(), &pbxURI); err != nil {
		t.Fatal(err)
	}
	loop := netip.MustParseAddr("127.0.0.1")
	r := &Routing{PBX: pbxAP, PBXURI: pbxURI, Node: "torture", Pipeline: o.pipeline,
		Trunks: []Trunk{{Name: "carrier", Region: "DE", Trust: true,
			Match: func(a netip.AddrPort) bool { return a.Addr().Unmap() == loop }}}}
	if o.routing != nil {
		o.routing(r)
	}
	// A proxy that was restarted writes nothing more, as a crashed process.
	gate := &gateSink{RecordSink: o.sink}
	h.track = callctl.NewTracker(gate)
	opts := Options{Listen: []Listen{{Network: "udp", Host: "127.0.0.1", Port: port}},
		Log: o.log, Tracker: h.track, UserAgent: "switchboard-test", RouteKey: h.routeKey,
		FastPath: o.fast || pathIsFast(t) || os.Getenv("SWITCHBOARD_FAST_PATH") == "1"}
	if o.options != nil {
		o.options(&opts)
	}
	p, err := New(opts, r)
	if err != nil {
		t.Fatal(err)
	}
	serve, err := p.Listeners()
	// After a restart the old socket may take a moment to be released.
	for i := 0; err != nil && port != 0 && i < 100 && strings.Contains(err.Error(), "address already in use"); i++ {
		time.Sleep(20 * time.Millisecond)
		serve, err = p.Listeners()
	}
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, s := range serve {
		wg.Add(1)
		go func() { defer wg.Done(); _ = s(ctx) }()
	}
	var once sync.Once
	h.stop = func() { once.Do(func() { gate.closed.Store(true); cancel(); p.Close(); wg.Wait() }) }
	t.Cleanup(h.stop)
	h.p = p
	h.addr = &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: p.ports["udp"]}
}

// gateSink drops the records of a proxy that the harness stopped.
type gateSink struct {
	callctl.RecordSink
	closed atomic.Bool
}

func (g *gateSink) Save(r cdr.Record) {
	if !g.closed.Load() {
		g.RecordSink.Save(r)
	}
}

// restart stops the proxy and starts a new one on the same port, with the
// same route key and record store: what a restart of switchboard keeps.
func (h *proxyHarness) restart(t testing.TB) {
	t.Helper()
	h.stop()
	h.start(t, h.addr.Port)
}

// identifyPipeline is the Identify stage with real number normalisation.
func identifyPipeline(t testing.TB) callctl.Pipeline {
	t.Helper()
	nums, err := contacts.NewNumbers("DE", []string{"1xx", "2xxx"})
	if err != nil {
		t.Fatal(err)
	}
	return callctl.Pipeline{callctl.NewIdentify(func(raw, region string) (callctl.Party, error) {
		n, err := nums.Normalize(raw, region)
		return callctl.Party{Raw: n.Raw, E164: n.E164, National: n.National,
			International: n.International, Ext: n.Ext, Internal: n.Internal}, err
	})}
}

// peerRequest parses a datagram a test peer received as a request it
// should answer: not a response, not an ACK, not garbage.
func peerRequest(d datagram) (*gosip.Request, bool) {
	msg, err := gosip.ParseMessage(d.b)
	if err != nil {
		return nil, false
	}
	req, ok := msg.(*gosip.Request)
	return req, ok && !req.IsAck()
}

// pbxAnswer plays a PBX: INVITEs whose Call-ID starts with "call-" are
// answered 180 then 200 with SDP; other INVITEs get 486; ACKs are
// absorbed; every other request gets 200.
func pbxAnswer(p *udpPeer, d datagram) {
	req, ok := peerRequest(d)
	if !ok {
		return
	}
	reply := func(res *gosip.Response) { _, _ = p.conn.WriteToUDP([]byte(res.String()), d.from) }
	if !req.IsInvite() {
		reply(gosip.NewResponseFromRequest(req, 200, "OK", nil))
		return
	}
	id := ""
	if c := req.CallID(); c != nil {
		id = c.Value()
	}
	if !strings.HasPrefix(id, "call-") {
		reply(gosip.NewResponseFromRequest(req, 486, "Busy Here", nil))
		return
	}
	tag := "pbx" + strconv.Itoa(len(id))
	ring := gosip.NewResponseFromRequest(req, 180, "Ringing", nil)
	ring.To().Params.Add("tag", tag)
	reply(ring)
	ok200 := gosip.NewResponseFromRequest(req, 200, "OK", []byte(testSDP))
	ok200.To().Params.Add("tag", tag)
	ok200.AppendHeader(gosip.NewHeader("Contact", "<sip:pbx@"+p.addr().String()+">"))
	ok200.AppendHeader(gosip.NewHeader("Content-Type", "application/sdp"))
	reply(ok200)
}

const testSDP = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" +
	"m=audio 40000 RTP/AVP 0 8\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"

// sipHeader returns the value of the first header with one of the names,
// compact forms included, from raw message bytes (no full parse: the
// message may be malformed).
func rawHeader(b []byte, names ...string) string {
	head, _, _ := bytes.Cut(b, []byte("\r\n\r\n"))
	sc := bufio.NewScanner(bytes.NewReader(head))
	sc.Buffer(make([]byte, 0, 4096), len(head)+1)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		for _, n := range names {
			if strings.EqualFold(strings.TrimSpace(name), n) {
				return strings.TrimSpace(val)
			}
		}
	}
	return ""
}

func rawCallID(b []byte) string { return rawHeader(b, "Call-ID", "i") }

// status returns the status code of a response, or 0 for a request.
func resStatus(b []byte) int {
	if !bytes.HasPrefix(b, []byte("SIP/2.0 ")) {
		return 0
	}
	code, _, _ := strings.Cut(string(b[8:min(len(b), 20)]), " ")
	n, _ := strconv.Atoi(code)
	return n
}

func rawFirstLine(b []byte) string {
	l, _, _ := bytes.Cut(b, []byte("\r\n"))
	return string(l)
}

// ---------------------------------------------------------------- a normal call

// call places INVITE → 180/200 → ACK → BYE → 200 from the trunk through
// the proxy to the PBX peer (pbxAnswer), routing ACK and BYE by the
// Record-Route set as a loose-routing UAC does (RFC 3261 §12.2.1.1).
func (h *proxyHarness) call(t testing.TB, id string) error {
	t.Helper()
	tr := h.trunk
	me := tr.addr().String()
	branch := "z9hG4bK-" + id
	invite := "INVITE sip:+49301234560@" + h.addr.String() + " SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP " + me + ";branch=" + branch + ";rport\r\n" +
		"Max-Forwards: 70\r\n" +
		"From: \"Trunk Caller\" <sip:+4930111222@" + me + ">;tag=uac-" + id + "\r\n" +
		"To: <sip:+49301234560@" + h.addr.String() + ">\r\n" +
		"Call-ID: " + id + "\r\n" +
		"CSeq: 1 INVITE\r\n" +
		"Contact: <sip:caller@" + me + ">\r\n" +
		"Content-Type: application/sdp\r\n" +
		"Content-Length: " + strconv.Itoa(len(testSDP)) + "\r\n\r\n" + testSDP
	start := tr.count()
	pbxStart := h.pbx.count()
	tr.send(t, h.addr, []byte(invite))
	ok, found := tr.waitFor(start, 5*time.Second, func(d datagram) bool {
		return rawCallID(d.b) == id && resStatus(d.b) >= 200
	})
	if !found {
		return fmt.Errorf("call %s: no final response to INVITE", id)
	}
	if c := resStatus(ok.b); c != 200 {
		return fmt.Errorf("call %s: INVITE answered %d, want 200", id, c)
	}
	res, err := gosip.ParseMessage(ok.b)
	if err != nil {
		return fmt.Errorf("call %s: 200 does not parse: %v", id, err)
	}
	resp := res.(*gosip.Response)
	var routes []string
	rrs := resp.GetHeaders("Record-Route")
	for i := len(rrs) - 1; i >= 0; i-- {
		routes = append(routes, rrs[i].Value())
	}
	if len(routes) == 0 {
		return fmt.Errorf("call %s: 200 has no Record-Route", id)
	}
	target := resp.Contact()
	if target == nil {
		return fmt.Errorf("call %s: 200 has no Contact", id)
	}
	to := resp.To().Value()
	inDialog := func(method string, cseq int, branch string) string {
		return method + " " + target.Address.String() + " SIP/2.0\r\n" +
			"Via: SIP/2.0/UDP " + me + ";branch=" + branch + ";rport\r\n" +
			"Route: " + strings.Join(routes, ", ") + "\r\n" +
			"Max-Forwards: 70\r\n" +
			"From: \"Trunk Caller\" <sip:+4930111222@" + me + ">;tag=uac-" + id + "\r\n" +
			"To: " + to + "\r\n" +
			"Call-ID: " + id + "\r\n" +
			"CSeq: " + strconv.Itoa(cseq) + " " + method + "\r\n" +
			"Content-Length: 0\r\n\r\n"
	}
	tr.send(t, h.addr, []byte(inDialog("ACK", 1, branch+"-ack")))
	if _, ok := h.pbx.waitFor(pbxStart, 5*time.Second, func(d datagram) bool {
		return rawCallID(d.b) == id && strings.HasPrefix(rawFirstLine(d.b), "ACK ")
	}); !ok {
		return fmt.Errorf("call %s: ACK did not reach the PBX", id)
	}
	byeAt := tr.count()
	tr.send(t, h.addr, []byte(inDialog("BYE", 2, branch+"-bye")))
	bye, found := tr.waitFor(byeAt, 5*time.Second, func(d datagram) bool {
		return rawCallID(d.b) == id && resStatus(d.b) >= 200 && strings.Contains(rawHeader(d.b, "CSeq"), "BYE")
	})
	if !found {
		return fmt.Errorf("call %s: no final response to BYE", id)
	}
	if c := resStatus(bye.b); c != 200 {
		return fmt.Errorf("call %s: BYE answered %d, want 200", id, c)
	}
	return nil
}

// waitRecord waits until the call's record has the disposition.
func (h *proxyHarness) waitRecord(t testing.TB, id string, want cdr.Disposition) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		r, ok := h.sink.get(id)
		if ok && r.Disposition == want && r.EndedAt != nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("record of %s: %+v (found %v), want disposition %s and ended", id, r, ok, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// ---------------------------------------------------------------- RFC 4475

// outcome is what happened to one torture message.
type outcome struct {
	codes     []int      // final responses seen, in order
	finals    [][]byte   // those responses
	forwarded []datagram // what reached the PBX with the message's Call-ID
}

func (o outcome) String() string {
	var fw []string
	for _, d := range o.forwarded {
		fw = append(fw, strconv.Quote(rawFirstLine(d.b)))
	}
	return fmt.Sprintf("responses %v, forwarded [%s]", o.codes, strings.Join(fw, " "))
}

// tortureWant says which outcomes RFC 4475 allows for one message.
type tortureWant struct {
	codes   []int                  // final responses accepted instead of forwarding
	forward bool                   // forwarding to the PBX is accepted (then check runs)
	drop    bool                   // no response and nothing forwarded is accepted
	check   func(fwd []byte) error // what a forwarded copy must (not) contain
	// answered checks switchboard's own final response.
	answered func(res []byte) error
}

func noneOf(subs ...string) func([]byte) error {
	return func(b []byte) error {
		for _, s := range subs {
			if bytes.Contains(b, []byte(s)) {
				return fmt.Errorf("forwarded copy contains %q", s)
			}
		}
		return nil
	}
}

// echoes checks that switchboard's answer carries header lines as a
// parser that understood the request would write them.
func echoes(lines ...string) func([]byte) error {
	return func(b []byte) error {
		for _, l := range lines {
			if !bytes.Contains(b, []byte("\r\n"+l+"\r\n")) {
				return fmt.Errorf("answer lacks %q", l)
			}
		}
		return nil
	}
}

// checkClass applies the MANIFEST's expected class: a "valid" request
// must be handled (forwarded, or answered with anything but 400), an
// "invalid" one must never be accepted by switchboard itself with a 2xx.
func checkClass(t *testing.T, row manifestRow, msg []byte, o outcome) {
	t.Helper()
	request := !bytes.HasPrefix(msg, []byte("SIP/"))
	switch row.expected {
	case "valid":
		if !request {
			return // a response matching no transaction is dropped
		}
		if len(o.forwarded) == 0 && len(o.codes) == 0 {
			t.Errorf("MANIFEST says valid, but it was dropped: %s", row.desc)
		}
		if len(o.forwarded) == 0 && len(o.codes) > 0 && o.codes[0] == 400 {
			t.Errorf("MANIFEST says valid, but switchboard answered 400: %s", row.desc)
		}
	case "invalid":
		if len(o.forwarded) == 0 && len(o.codes) > 0 && o.codes[0] < 300 {
			t.Errorf("MANIFEST says invalid, but switchboard accepted it with %d: %s", o.codes[0], row.desc)
		}
	}
}

// requestLineClean checks that a liberally accepted message is not passed
// on with its defect (RFC 4475 §3.1.2.7-10: "must not forward them").
func requestLineClean(b []byte) error {
	l := rawFirstLine(b)
	if strings.Contains(l, "<") || strings.Contains(l, "  ") || strings.HasSuffix(l, " ") {
		return fmt.Errorf("forwarded Request-Line %q keeps the defect", l)
	}
	return nil
}

// tortureWants is RFC 4475 read for a proxy that sits in front of a PBX.
// The MANIFEST's expected class is checked too: "valid" must be handled.
var tortureWants = map[string]tortureWant{
	// §3.1.1 valid: forwarded (the PBX answers) or answered by the proxy,
	// never 400 and never dropped (checked for every "valid" row).
	// wsinv carries a To tag and a Route to services.example.com: a
	// request inside a dialog that never passed through us, with no Route
	// we signed. Relaying it would make us an open relay (SPEC §1), so it
	// is refused with 403 (or 481) - as a well-formed request: the answer
	// echoes its folded, zero-padded CSeq and its Call-ID as parsed.
	"wsinv.dat":      {codes: []int{403, 481}, answered: echoes("Call-ID: wsinv.ndaksdj@192.0.2.1", "CSeq: 9 INVITE")},
	"intmeth.dat":    {forward: true, codes: []int{501, 405}},
	"esc01.dat":      {forward: true},
	"escnull.dat":    {forward: true},
	"esc02.dat":      {forward: true, codes: []int{501, 405}},
	"lwsdisp.dat":    {forward: true, codes: []int{200}},
	"longreq.dat":    {forward: true},
	"dblreq.dat":     {forward: true, check: noneOf("INVITE sip:")},
	"semiuri.dat":    {forward: true, codes: []int{200}},
	"transports.dat": {forward: true, codes: []int{200}},
	"mpart01.dat":    {forward: true},
	"unreason.dat":   {drop: true}, // a response matching no transaction
	"noreason.dat":   {drop: true},
	// §3.1.2 invalid.
	"badinv01.dat":   {codes: []int{400}},
	"clerr.dat":      {codes: []int{400}, drop: true},
	"ncl.dat":        {codes: []int{400}, drop: true},
	"scalar02.dat":   {codes: []int{400}},
	"scalarlg.dat":   {drop: true},
	"quotbal.dat":    {codes: []int{400}, forward: true},
	"ltgtruri.dat":   {codes: []int{400}, forward: true, check: requestLineClean},
	"lwsruri.dat":    {codes: []int{400}},
	"lwsstart.dat":   {codes: []int{400}, forward: true, check: requestLineClean},
	"trws.dat":       {codes: []int{400}, forward: true, check: requestLineClean},
	"escruri.dat":    {codes: []int{400}, forward: true, check: noneOf("?Route=", "Route: <sip:example.com>")},
	"baddate.dat":    {codes: []int{400}, forward: true},
	"regbadct.dat":   {codes: []int{400}, forward: true},
	"badaspec.dat":   {codes: []int{400}, forward: true},
	"baddn.dat":      {codes: []int{400}, forward: true},
	"badvers.dat":    {codes: []int{505}},
	"mismatch01.dat": {codes: []int{400}},
	"mismatch02.dat": {codes: []int{501, 400}},
	"bigcode.dat":    {drop: true},
	// §3.2-3.4.
	"badbranch.dat": {codes: []int{400}, forward: true},
	"insuf.dat":     {codes: []int{400}, drop: true},
	"unkscm.dat":    {codes: []int{416}},
	"novelsc.dat":   {codes: []int{416, 404}},
	"unksm2.dat":    {codes: []int{400}, forward: true},
	"bext01.dat":    {codes: []int{420}},
	"invut.dat":     {forward: true},
	"regaut01.dat":  {forward: true},
	"multi01.dat":   {codes: []int{400}},
	"mcl01.dat":     {codes: []int{400}, drop: true},
	"bcast.dat":     {drop: true},
	"zeromf.dat":    {codes: []int{483}},
	"cparam01.dat":  {forward: true},
	"cparam02.dat":  {forward: true},
	"regescrt.dat":  {forward: true},
	"sdp01.dat":     {forward: true, codes: []int{406, 400}},
	// RFC 4475 §3.4.1: RFC 3261 elements that want backward compatibility
	// accept it; switchboard does (a PBX behind an old gateway).
	"inv2543.dat": {forward: true},
	"test.dat":    {codes: []int{400}, drop: true},
}

type manifestRow struct{ file, section, expected, desc string }

func readManifest(t testing.TB, dir string) []manifestRow {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "MANIFEST.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	var rows []manifestRow
	for i, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Split(strings.TrimRight(line, "\r"), "\t")
		if i == 0 || len(f) < 4 {
			continue
		}
		rows = append(rows, manifestRow{f[0], f[1], f[2], f[3]})
	}
	return rows
}

// viaSentBy finds the sent-by of the first Via, across line folding.
var viaSentBy = regexp.MustCompile(`(?i)\n(?:via|v)[ \t]*:\s*SIP\s*/\s*\d+\.\d+\s*/\s*[A-Za-z]+\s+([^;,\s]+)`)

// atPeer points the sent-by of a request's first Via at a peer, changing
// nothing else: RFC 3261 §18.2.2 sends UDP responses to the source IP at the
// sent-by port, and the torture messages name hosts of their own.
func atPeer(msg []byte, peer *udpPeer) []byte {
	if bytes.HasPrefix(msg, []byte("SIP/")) {
		return msg
	}
	m := viaSentBy.FindSubmatchIndex(msg)
	if m == nil {
		return msg
	}
	out := append([]byte(nil), msg[:m[2]]...)
	out = append(out, peer.addr().String()...)
	return append(out, msg[m[3]:]...)
}

// sendOnce sends one message from a fresh trunk socket (many torture
// messages share a branch, and a fresh sent-by keeps their transactions
// apart) and collects what follows: the final responses and what the PBX
// received with the message's Call-ID. It returns once a final response
// came back, else after quiet.
func (h *proxyHarness) sendOnce(t testing.TB, msg []byte, quiet time.Duration) outcome {
	t.Helper()
	tr := newPeer(t, nil)
	id := rawCallID(msg)
	pbx0 := h.pbx.count()
	tr.send(t, h.addr, atPeer(msg, tr))
	mine := func(d datagram) bool { return id == "" || rawCallID(d.b) == id }
	deadline := time.Now().Add(quiet)
	var o outcome
	for {
		time.Sleep(10 * time.Millisecond)
		o = outcome{}
		for _, d := range tr.since(0) {
			if c := resStatus(d.b); c >= 200 {
				o.codes = append(o.codes, c)
				o.finals = append(o.finals, d.b)
			}
		}
		for _, d := range h.pbx.since(pbx0) {
			if resStatus(d.b) == 0 && mine(d) && !bytes.HasPrefix(d.b, []byte("ACK ")) {
				o.forwarded = append(o.forwarded, d)
			}
		}
		if len(o.codes) > 0 || time.Now().After(deadline) {
			return o
		}
	}
}

func TestRFC4475Torture(t *testing.T) { onBothPaths(t, testRFC4475Torture) }

func testRFC4475Torture(t *testing.T) {
	dir := tortureCorpus(t, "rfc4475")
	rows := readManifest(t, dir)
	if len(rows) != 50 {
		t.Fatalf("MANIFEST.tsv: %d messages, want 50", len(rows))
	}
	var o harnessOpts
	if os.Getenv("SWITCHBOARD_TEST_LOG") != "" {
		o.log = zap.Must(zap.NewDevelopment())
	}
	h := startProxy(t, o)
	if err := h.call(t, "call-before"); err != nil {
		t.Fatalf("normal call before the torture: %v", err)
	}
	for _, row := range rows {
		t.Run(strings.TrimSuffix(row.file, ".dat"), func(t *testing.T) {
			want, ok := tortureWants[row.file]
			if !ok {
				t.Fatalf("no expectation for %s (%s)", row.file, row.desc)
			}
			msg, err := os.ReadFile(filepath.Join(dir, row.file))
			if err != nil {
				t.Fatal(err)
			}
			o := h.sendOnce(t, msg, 400*time.Millisecond)
			t.Logf("§%s %s: %s", row.section, row.expected, o)
			checkClass(t, row, msg, o)
			if want.answered != nil && len(o.finals) > 0 && len(o.forwarded) == 0 {
				if err := want.answered(o.finals[0]); err != nil {
					t.Errorf("%v\n%s", err, o.finals[0])
				}
			}
			switch {
			case len(o.codes) > 0 && len(o.forwarded) == 0:
				if !containsInt(want.codes, o.codes[0]) {
					if want.forward && o.codes[0] == 200 || want.forward && o.codes[0] == 486 {
						t.Errorf("answered %d without reaching the PBX", o.codes[0])
					} else {
						t.Errorf("answered %d, RFC 4475 §%s wants %v (forward %v, drop %v): %s",
							o.codes[0], row.section, want.codes, want.forward, want.drop, row.desc)
					}
				}
			case len(o.forwarded) > 0:
				if !want.forward {
					t.Errorf("forwarded to the PBX (%q), RFC 4475 §%s wants %v: %s",
						rawFirstLine(o.forwarded[0].b), row.section, want.codes, row.desc)
					break
				}
				if len(o.codes) == 0 {
					t.Errorf("forwarded but no final response came back")
				}
				if want.check != nil {
					for _, d := range o.forwarded {
						if err := want.check(d.b); err != nil {
							t.Errorf("%v\n%s", err, d.b)
						}
					}
				}
			default:
				if !want.drop {
					t.Errorf("dropped (no response, nothing forwarded), RFC 4475 §%s wants %v (forward %v): %s",
						row.section, want.codes, want.forward, row.desc)
				}
			}
		})
	}
	// The proxy still serves calls, and its records say so.
	for i := range 3 {
		id := "call-after-" + strconv.Itoa(i)
		if err := h.call(t, id); err != nil {
			t.Fatalf("normal call after the torture: %v", err)
		}
		h.waitRecord(t, id, cdr.Answered)
	}
}

func containsInt(xs []int, x int) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}
