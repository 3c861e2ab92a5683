package sip

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	gosip "github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/bench/protos"
)

// indexCorpus is every message of the shared corpus the index is checked
// on: the RFC 4475 torture messages, the carrier INVITEs and a PROTOS
// sample, plus the plain messages of a call.
func indexCorpus(t testing.TB) map[string][]byte {
	t.Helper()
	msgs := map[string][]byte{}
	rfc := tortureCorpus(t, "rfc4475")
	files, _ := filepath.Glob(filepath.Join(rfc, "*.dat"))
	carrier, _ := filepath.Glob(filepath.Join(filepath.Dir(rfc), "carrier-invites", "*.sip"))
	for _, f := range append(files, carrier...) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		msgs[filepath.Base(f)] = b
	}
	dir := filepath.Join(filepath.Dir(rfc), "protos-c07-sip")
	gs, err := protos.Groups(dir)
	if err != nil {
		t.Fatal(err)
	}
	cases, err := protos.Load(dir, protosSample(gs))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		msgs["protos-"+strconv.Itoa(c.N)] = protos.Fill(c.Invite, protos.Values{
			To: "b@127.0.0.1", From: "a@127.0.0.1", FromAddress: "127.0.0.1", FromIP: "127.0.0.1", LocalPort: 5070,
			CallID: "c" + strconv.Itoa(c.N), BranchID: "z9hG4bK" + strconv.Itoa(c.N), CSeq: 1})
	}
	for name, m := range plainMessages() {
		msgs[name] = []byte(m)
	}
	return msgs
}

// plainMessages are what SIPp and ordinary phones send.
func plainMessages() map[string]string {
	sdp := testSDP
	return map[string]string{
		"invite": "INVITE sip:+49301234560@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1;rport\r\n" +
			"Max-Forwards: 70\r\nFrom: \"A \\\"B\\\" <C>\" <sip:+4930111222@127.0.0.1:5070>;tag=f1\r\nTo: <sip:+49301234560@127.0.0.1>\r\n" +
			"Call-ID: abc@h\r\nCSeq: 1 INVITE\r\nContact: <sip:c@127.0.0.1:5070>\r\nContent-Type: application/sdp\r\n" +
			"Content-Length: " + strconv.Itoa(len(sdp)) + "\r\n\r\n" + sdp,
		"bye": "BYE sip:pbx@127.0.0.1:5080 SIP/2.0\r\nv: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-2;rport=5070;received=127.0.0.1\r\n" +
			"Route: <sip:127.0.0.1:5060;sb=0123456789abcdef;lr>, <sip:10.0.0.1;lr>\r\nMax-Forwards: 70\r\nf: sip:a@b;tag=x\r\n" +
			"t: <sip:c@d>;tag=y\r\ni: abc\r\nCSeq: 2 BYE\r\nl: 0\r\n\r\n",
		"200": "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-sb-Fabc\r\nVia: SIP/2.0/UDP [::1]:5070;branch=z9hG4bK-2;rport=5071\r\n" +
			"From: <sip:a@b>;tag=x\r\nTo: <sip:c@d>;tag=y\r\nCall-ID: abc\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n",
		// linphonec leaves Content-Length out over UDP (RFC 3261 §18.3).
		"180-no-length": "SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-sb-Fabc\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-2;rport=5070\r\n" +
			"From: <sip:a@b>;tag=x\r\nTo: <sip:c@d>;tag=y\r\nCall-ID: abc\r\nCSeq: 1 INVITE\r\n\r\n",
	}
}

// TestIndexAgreesWithSipgo is the differential test of the index: on every
// corpus message the index takes, sipgo's parser must parse it too and
// read the same start line, Call-ID, tags, CSeq, top Via and body. What
// the index refuses goes to sipgo, so refusing is always safe.
func TestIndexAgreesWithSipgo(t *testing.T) {
	taken := 0
	msgs := indexCorpus(t)
	for name, b := range msgs {
		if indexAgrees(t, name, b) {
			taken++
		}
	}
	t.Logf("index took %d of %d corpus messages", taken, len(msgs))
	for _, must := range []string{"invite", "bye", "200", "180-no-length"} {
		var m msgIndex
		if !m.index(msgs[must]) {
			t.Errorf("the index refused the plain %s", must)
		}
	}
	if taken < 10 {
		t.Errorf("the index took only %d messages", taken)
	}
}

// indexAgrees indexes b and, when the index takes it, compares with sipgo.
func indexAgrees(t testing.TB, name string, b []byte) bool {
	var m msgIndex
	if !m.index(b) {
		return false
	}
	msg, err := gosip.ParseMessage(append([]byte(nil), b...))
	if err != nil {
		// sipgo validates headers a proxy passes on untouched (Contact,
		// Content-Type...); the fields the index reads must still be sane.
		if m.callID.empty() || m.via.branch.empty() {
			t.Errorf("%s: the index took a message without Call-ID or branch", name)
		}
		t.Logf("%s: index took it, sipgo refuses: %v", name, err)
		return true
	}
	var via *gosip.ViaHeader
	var from, to *gosip.FromHeader
	switch x := msg.(type) {
	case *gosip.Request:
		if !m.request || x.Method.String() != string(m.method.of(b)) {
			t.Errorf("%s: method %q, sipgo %q", name, m.method.of(b), x.Method)
		}
	case *gosip.Response:
		if m.request || x.StatusCode != m.status {
			t.Errorf("%s: status %d, sipgo %d", name, m.status, x.StatusCode)
		}
	}
	via = msg.Via()
	if f := msg.From(); f != nil {
		from = &gosip.FromHeader{Params: f.Params}
	}
	if tt := msg.To(); tt != nil {
		to = &gosip.FromHeader{Params: tt.Params}
	}
	check := func(what, got, want string) {
		if got != want {
			t.Errorf("%s: %s %q, sipgo %q", name, what, got, want)
		}
	}
	if id := msg.CallID(); id != nil {
		check("Call-ID", string(m.callID.of(b)), id.Value())
	}
	if cs := msg.CSeq(); cs != nil {
		check("CSeq", strconv.Itoa(int(m.cseq))+" "+string(m.cseqM.of(b)), strconv.Itoa(int(cs.SeqNo))+" "+cs.MethodName.String())
	}
	tagOf := func(h *gosip.FromHeader) string {
		if h == nil {
			return ""
		}
		v, _ := h.Params.Get("tag")
		return v
	}
	check("From tag", string(m.fromTag.of(b)), tagOf(from))
	check("To tag", string(m.toTag.of(b)), tagOf(to))
	vias := sipgoVias(msg)
	if via == nil || len(vias) == 0 {
		t.Errorf("%s: sipgo found no Via", name)
	} else {
		br, _ := via.Params.Get("branch")
		check("branch", string(m.via.branch.of(b)), br)
		viaAgrees(check, "top Via", b, &m.via, vias[0])
	}
	if m.vias != len(vias) {
		t.Errorf("%s: %d Via values, sipgo %d", name, m.vias, len(vias))
	} else if m.vias > 1 {
		viaAgrees(check, "second Via", b, &m.via2, vias[1])
	}
	if req, ok := msg.(*gosip.Request); ok {
		uriAgrees(t, name, b, &m, req)
	}
	if req, ok := msg.(*gosip.Request); ok && m.maxFwd >= 0 {
		if mf := req.MaxForwards(); mf != nil {
			check("Max-Forwards", strconv.Itoa(m.maxFwd), strconv.Itoa(int(mf.Val())))
		}
	}
	check("body", string(b[m.body:]), string(msg.Body()))
	return true
}

// sipgoVias lists every Via value sipgo read, in order.
func sipgoVias(msg gosip.Message) []*gosip.ViaHeader {
	var out []*gosip.ViaHeader
	for _, h := range msg.GetHeaders("Via") {
		if v, ok := h.(*gosip.ViaHeader); ok {
			out = append(out, v)
		}
	}
	return out
}

// viaAgrees compares what the proxy uses of one Via: sent-by, transport,
// rport (asked, or its value) and received (RFC 3581).
func viaAgrees(check func(what, got, want string), what string, b []byte, v *viaParts, sv *gosip.ViaHeader) {
	check(what+" sent-by", strings.Trim(string(v.host.of(b)), "[]")+":"+strconv.Itoa(v.port),
		strings.Trim(sv.Host, "[]")+":"+strconv.Itoa(sv.Port))
	check(what+" transport", strings.ToUpper(string(v.transport.of(b))), strings.ToUpper(sv.Transport))
	rport := "none"
	switch {
	case v.rportVal != 0:
		rport = strconv.Itoa(v.rportVal)
	case !v.rport.empty():
		rport = ""
	}
	srport := "none"
	if r, ok := sv.Params.Get("rport"); ok {
		srport = r
	}
	check(what+" rport", rport, srport)
	received, _ := sv.Params.Get("received")
	check(what+" received", string(v.received.of(b)), received)
}

// uriAgrees compares the Request-URI's next hop and the Route entries as
// the fast path reads them (parseSIPURI, routes) with sipgo's reading.
func uriAgrees(t testing.TB, name string, b []byte, m *msgIndex, req *gosip.Request) {
	if u, ok := parseSIPURI(m.ruri.of(b)); ok && req.Recipient.Scheme == "sip" {
		if got, want := strings.Trim(string(u.host), "[]")+":"+strconv.Itoa(u.port),
			strings.Trim(req.Recipient.Host, "[]")+":"+strconv.Itoa(req.Recipient.Port); !strings.EqualFold(got, want) {
			t.Errorf("%s: Request-URI host %q, sipgo %q", name, got, want)
		}
	}
	var list [maxRoutes]routeEntry
	n, ok := m.routes(&list)
	if !ok {
		return // the fast path does not use this message's Route set
	}
	var routes []*gosip.RouteHeader
	for _, h := range req.GetHeaders("Route") {
		if r, ok := h.(*gosip.RouteHeader); ok {
			routes = append(routes, r)
		}
	}
	if n != len(routes) {
		t.Errorf("%s: %d Route entries, sipgo %d", name, n, len(routes))
		return
	}
	for i := range n {
		u, ok := parseSIPURI(list[i].uri.of(b))
		if !ok {
			continue
		}
		want := routes[i].Address
		if got := strings.Trim(string(u.host), "[]") + ":" + strconv.Itoa(u.port); !strings.EqualFold(got, strings.Trim(want.Host, "[]")+":"+strconv.Itoa(want.Port)) {
			t.Errorf("%s: Route %d host %q, sipgo %s:%d", name, i, got, want.Host, want.Port)
		}
		_, lr := uriParam(u.params, "lr")
		if _, slr := want.UriParams.Get("lr"); lr != slr {
			t.Errorf("%s: Route %d lr %v, sipgo %v", name, i, lr, slr)
		}
	}
}

// FuzzIndex: the index never panics, and what it takes sipgo reads alike.
func FuzzIndex(f *testing.F) {
	for _, m := range plainMessages() {
		f.Add([]byte(m))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		indexAgrees(t, "fuzz", b)
	})
}

// TestIndexAllocates nothing.
func TestIndexAllocates(t *testing.T) {
	msgs := plainMessages()
	var m msgIndex
	for name, s := range msgs {
		b := []byte(s)
		if n := testing.AllocsPerRun(100, func() { m.index(b) }); n != 0 {
			t.Errorf("%s: %v allocations per index", name, n)
		}
	}
}

func BenchmarkIndex(b *testing.B) {
	msg := []byte(plainMessages()["invite"])
	var m msgIndex
	b.ReportAllocs()
	for b.Loop() {
		if !m.index(msg) {
			b.Fatal("refused")
		}
	}
}

// TestFastSignallingAgrees: for every corpus INVITE both paths can read,
// the fast path gives the Identify stage exactly what Signalling gives it.
func TestFastSignallingAgrees(t *testing.T) {
	n := 0
	for name, b := range indexCorpus(t) {
		var m msgIndex
		if !m.index(b) || !m.request || string(m.method.of(b)) != "INVITE" {
			continue
		}
		var ruri gosip.Uri
		fast, ok := fastSignalling(&m, &ruri)
		msg, err := gosip.ParseMessage(append([]byte(nil), b...))
		if err != nil || !ok {
			continue
		}
		n++
		if want := Signalling(msg.(*gosip.Request)); !reflect.DeepEqual(fast, want) {
			t.Errorf("%s:\nfast   %+v\nsipgo  %+v", name, fast, want)
		}
	}
	if n < 10 {
		t.Errorf("only %d INVITEs compared", n)
	}
	t.Logf("%d INVITEs compared", n)
}

// TestFastAnswerAgrees: answered_by, the recording reference and the
// remembered dialog come out of an indexed 2xx as the sipgo path reads them.
func TestFastAnswerAgrees(t *testing.T) {
	p := &Proxy{opts: Options{RecordingHeader: "X-Recording-Id"}}
	inv := []byte(plainMessages()["invite"])
	head := "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1;rport=5070\r\n" +
		"From: <sip:+4930111222@127.0.0.1:5070>;tag=f1\r\nTo: %s\r\nCall-ID: abc@h\r\nCSeq: 1 INVITE\r\n%s"
	cases := []struct{ to, extra string }{
		{`"Reception \"Desk\"" <sip:200@pbx>;tag=p`, "Contact: <sip:201@127.0.0.1:5080>\r\nX-Recording-Id: rec-1\r\n"},
		{`<sip:200@pbx>;tag=p`, "P-Asserted-Identity: \"Anna\" <sip:205@pbx>\r\nContact: <sip:201@127.0.0.1:5080>\r\n"},
		{`Front Desk <sip:200@pbx>;tag=p`, "Contact: <sip:127.0.0.1:5080>\r\n"},
		{`sip:200@pbx;tag=p`, "Contact: sip:201@127.0.0.1:5080;transport=udp\r\n"},
	}
	for _, c := range cases {
		raw := []byte(fmt.Sprintf(head, c.to, c.extra) + "Content-Length: 0\r\n\r\n")
		var m, im msgIndex
		if !m.index(raw) || !im.index(inv) {
			t.Fatalf("index refused %q", raw)
		}
		msg, err := gosip.ParseMessage(append([]byte(nil), raw...))
		if err != nil {
			t.Fatal(err)
		}
		res := msg.(*gosip.Response)
		if got, want := fastAnsweredBy(&m), answeredBy(res); got != want {
			t.Errorf("%q: answered_by %q, sipgo path %q", c.to, got, want)
		}
		if got, want := p.fastRecording(&m), p.recording(res); got != want {
			t.Errorf("%q: recording %q, sipgo path %q", c.to, got, want)
		}
		req, _ := gosip.ParseMessage(append([]byte(nil), inv...))
		var fast, slow dialogs
		fast.rememberIndexed(&im, &m)
		slow.add(req.(*gosip.Request), res)
		f, s := fast.m["abc@h"], slow.m["abc@h"]
		if f == nil || s == nil || f.callerTag != s.callerTag || f.caller.String() != s.caller.String() || f.callee.String() != s.callee.String() {
			t.Errorf("%q: dialog %+v, sipgo path %+v", c.to, f, s)
		}
	}
}
