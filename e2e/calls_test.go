package e2e

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

var transports = []string{"udp", "tcp"}

// pbx starts a SIPp UAS on the node's sip.pbx port.
func (n *node) pbx(t *testing.T, scenario string, pause time.Duration) *sippRun {
	t.Helper()
	return startSIPp(t, sippSpec{name: "pbx", scenario: scenario, transport: n.opts.transport, port: n.pbxPort, pause: pause})
}

// trunkCall starts a SIPp UAC on the trunk side calling the hotline number
// through switchboard.
func (n *node) trunkCall(t *testing.T, scenario string, pause time.Duration, extra ...string) *sippRun {
	t.Helper()
	return startSIPp(t, sippSpec{
		name: "trunk", scenario: scenario, transport: n.opts.transport,
		remote: n.sipAddr(), service: hotlineNumber, pause: pause, extra: extra,
	})
}

// checkInbound checks what every inbound call record must show.
func checkInbound(t *testing.T, r callRecord) {
	t.Helper()
	if r.Direction != "inbound" {
		t.Errorf("direction = %q, want inbound", r.Direction)
	}
	if r.Caller != trunkCaller {
		t.Errorf("caller = %q, want %s", r.Caller, trunkCaller)
	}
	if r.Called != hotlineNumber {
		t.Errorf("called = %q, want %s", r.Called, hotlineNumber)
	}
	if r.Node != "e2e" {
		t.Errorf("node = %q, want e2e", r.Node)
	}
	if r.StartedAt == nil || r.EndedAt == nil {
		t.Errorf("started_at/ended_at missing: %s", r)
	} else if r.EndedAt.Before(*r.StartedAt) {
		t.Errorf("ended_at %v before started_at %v", r.EndedAt, r.StartedAt)
	}
	if r.RingMS < 0 || r.TalkMS < 0 {
		t.Errorf("ring_ms %d, talk_ms %d: negative", r.RingMS, r.TalkMS)
	}
}

// within checks a duration in ms against want, allowing for scheduling.
func within(t *testing.T, what string, gotMS int64, want time.Duration) {
	t.Helper()
	lo, hi := want-100*time.Millisecond, want+2*time.Second
	if got := time.Duration(gotMS) * time.Millisecond; got < lo || got > hi {
		t.Errorf("%s = %v, want %v (between %v and %v)", what, got, want, lo, hi)
	}
}

// checkForwardedInvite checks the INVITE as the PBX received it: the
// Request-URI keeps the dialled user, the host:port is the PBX's, and
// switchboard record-routed the dialog.
func checkForwardedInvite(t *testing.T, pbx *sippRun, user string, port int) {
	t.Helper()
	invites := pbx.received(t, "INVITE ")
	if len(invites) == 0 {
		t.Errorf("the PBX side received no INVITE")
		return
	}
	inv := invites[0]
	if want := fmt.Sprintf("sip:%s@127.0.0.1:%d", user, port); !strings.Contains(inv.firstLine(), want) {
		t.Errorf("forwarded Request-URI %q, want user and host %q…", inv.firstLine(), want)
	}
	if rr := inv.header("Record-Route"); len(rr) == 0 {
		t.Errorf("forwarded INVITE has no Record-Route")
	} else if !strings.Contains(strings.Join(rr, ","), ";lr") {
		t.Errorf("Record-Route %q is not a loose route (;lr)", rr)
	}
	if via := inv.header("Via"); strings.Count(strings.Join(via, ","), "SIP/2.0/") < 2 {
		t.Errorf("forwarded INVITE Via %q: want switchboard's Via on top of the caller's", via)
	}
}

func TestAnsweredCall(t *testing.T) {
	t.Parallel()
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			t.Parallel()
			n := newNode(t, nodeOptions{transport: tr})
			pbx := n.pbx(t, "uas_answer.xml", 0)
			const talk = time.Second
			call := n.trunkCall(t, "uac_answer.xml", talk)
			call.succeed(t)
			pbx.succeed(t)
			checkForwardedInvite(t, pbx, hotlineNumber, n.pbxPort)
			if len(pbx.received(t, "ACK ")) == 0 || len(pbx.received(t, "BYE ")) == 0 {
				t.Errorf("ACK and BYE did not reach the PBX through switchboard")
			}
			r := n.waitEnded(call.callID)
			checkInbound(t, r)
			if r.Disposition != "answered" || r.SIPStatus != 200 {
				t.Errorf("disposition %q sip_status %d, want answered 200", r.Disposition, r.SIPStatus)
			}
			if r.AnsweredAt == nil {
				t.Errorf("answered_at missing: %s", r)
			}
			within(t, "talk_ms", r.TalkMS, talk)
			if !strings.HasPrefix(r.Recording, "rec-") {
				t.Errorf("recording %q: want the PBX's X-Recording-Id from the 200", r.Recording)
			}
			if r.CallerRaw == "" || r.CalledRaw == "" {
				t.Errorf("caller_raw %q called_raw %q: want the numbers as received", r.CallerRaw, r.CalledRaw)
			}
		})
	}
}

func TestCallerCancelsWhileRinging(t *testing.T) {
	t.Parallel()
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			t.Parallel()
			n := newNode(t, nodeOptions{transport: tr})
			pbx := n.pbx(t, "uas_ring_forever.xml", 0)
			const ring = 800 * time.Millisecond
			call := n.trunkCall(t, "uac_cancel.xml", ring)
			call.succeed(t)
			pbx.succeed(t)
			if len(pbx.received(t, "CANCEL ")) == 0 {
				t.Errorf("the CANCEL did not reach the PBX")
			}
			r := n.waitEnded(call.callID)
			checkInbound(t, r)
			if r.Disposition != "no_answer" || r.SIPStatus != 487 {
				t.Errorf("disposition %q sip_status %d, want no_answer 487", r.Disposition, r.SIPStatus)
			}
			if r.AnsweredAt != nil || r.TalkMS != 0 {
				t.Errorf("answered_at %v talk_ms %d for a call never answered", r.AnsweredAt, r.TalkMS)
			}
			within(t, "ring_ms", r.RingMS, ring)
		})
	}
}

func TestCancelCompletedElsewhere(t *testing.T) {
	t.Parallel()
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			t.Parallel()
			n := newNode(t, nodeOptions{transport: tr})
			pbx := n.pbx(t, "uas_ring_forever.xml", 0)
			call := n.trunkCall(t, "uac_cancel_elsewhere.xml", 300*time.Millisecond)
			call.succeed(t)
			pbx.succeed(t)
			r := n.waitEnded(call.callID)
			checkInbound(t, r)
			if r.Disposition != "elsewhere" {
				t.Errorf("disposition %q sip_status %d, want elsewhere", r.Disposition, r.SIPStatus)
			}
			// The PBX's phones must learn the call was answered elsewhere,
			// or they show it as missed (RFC 3326).
			c := pbx.received(t, "CANCEL ")
			if len(c) == 0 {
				t.Fatal("the CANCEL did not reach the PBX")
			}
			if reason := strings.Join(c[0].header("Reason"), ","); !strings.Contains(reason, "cause=200") {
				t.Errorf("the forwarded CANCEL carries Reason %q, want the caller's SIP;cause=200", reason)
			}
		})
	}
}

func TestCalleeRefuses(t *testing.T) {
	t.Parallel()
	cases := []struct {
		scenario    string
		code        string
		status      int
		disposition string
	}{
		{"uas_busy.xml", "486", 486, "busy"},
		{"uas_480.xml", "480", 480, "no_answer"},
	}
	for _, tr := range transports {
		for _, c := range cases {
			t.Run(tr+"/"+c.code, func(t *testing.T) {
				t.Parallel()
				n := newNode(t, nodeOptions{transport: tr})
				pbx := n.pbx(t, c.scenario, 200*time.Millisecond)
				call := n.trunkCall(t, "uac_expect_error.xml", 0, "-set", "expected", c.code)
				call.succeed(t)
				pbx.succeed(t)
				r := n.waitEnded(call.callID)
				checkInbound(t, r)
				if r.Disposition != c.disposition || r.SIPStatus != c.status {
					t.Errorf("disposition %q sip_status %d, want %s %d", r.Disposition, r.SIPStatus, c.disposition, c.status)
				}
				if r.AnsweredAt != nil {
					t.Errorf("answered_at set for a refused call: %s", r)
				}
			})
		}
	}
}

func TestCalleeHangsUp(t *testing.T) {
	t.Parallel()
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			t.Parallel()
			n := newNode(t, nodeOptions{transport: tr})
			const talk = time.Second
			pbx := n.pbx(t, "uas_answer_bye.xml", talk)
			call := n.trunkCall(t, "uac_answer_wait_bye.xml", 0)
			call.succeed(t)
			pbx.succeed(t)
			if len(call.received(t, "BYE ")) == 0 {
				t.Errorf("the PBX's BYE did not reach the caller")
			}
			r := n.waitEnded(call.callID)
			checkInbound(t, r)
			if r.Disposition != "answered" || r.SIPStatus != 200 {
				t.Errorf("disposition %q sip_status %d, want answered 200", r.Disposition, r.SIPStatus)
			}
			within(t, "talk_ms", r.TalkMS, talk)
		})
	}
}

// TestStrangerRejected: with sip.strangers: reject, a request from an
// address that is neither the PBX nor a trunk gets 403 and never reaches
// the PBX (no open relay).
func TestStrangerRejected(t *testing.T) {
	t.Parallel()
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			t.Parallel()
			n := newNode(t, nodeOptions{transport: tr, match: []string{"127.0.0.1/32"}, extraSIP: "  strangers: reject\n"})
			pbx := n.pbx(t, "uas_answer.xml", 0)
			call := startSIPp(t, sippSpec{
				name: "stranger", scenario: "uac_expect_error.xml", transport: tr,
				localIP: "127.0.0.2", remote: n.sipAddr(), service: hotlineNumber,
				extra: []string{"-set", "expected", "403"},
			})
			call.succeed(t)
			if got := pbx.received(t, "INVITE "); len(got) != 0 {
				t.Errorf("the PBX received an INVITE from an unknown source:\n%s", got[0].text)
			}
		})
	}
}

// TestStrangerDropped: by default a stranger's INVITE and OPTIONS get no
// answer at all and are counted in /metrics, while a trunk's call, placed
// after them, goes through (SPEC §1).
func TestStrangerDropped(t *testing.T) {
	t.Parallel()
	n := newNode(t, nodeOptions{match: []string{"127.0.0.1/32"}})
	pbx := n.pbx(t, "uas_answer.xml", 0)
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP("127.0.0.2")})
	if err != nil {
		t.Skipf("cannot bind 127.0.0.2: %v", err)
	}
	defer c.Close()
	me, to := c.LocalAddr().String(), n.sipAddr()
	dst, _ := net.ResolveUDPAddr("udp", to)
	for i, method := range []string{"INVITE", "OPTIONS"} {
		id := "stranger-" + strconv.Itoa(i)
		msg := method + " sip:" + hotlineNumber + "@" + to + " SIP/2.0\r\nVia: SIP/2.0/UDP " + me + ";branch=z9hG4bK-" + id +
			"\r\nMax-Forwards: 70\r\nFrom: <sip:100@" + me + ">;tag=" + id + "\r\nTo: <sip:" + hotlineNumber + "@" + to +
			">\r\nCall-ID: " + id + "\r\nCSeq: 1 " + method + "\r\nUser-Agent: friendly-scanner\r\nContent-Length: 0\r\n\r\n"
		if _, err := c.WriteToUDP([]byte(msg), dst); err != nil {
			t.Fatal(err)
		}
	}
	call := startSIPp(t, sippSpec{name: "trunk", scenario: "uac_answer.xml", remote: to, service: hotlineNumber})
	call.succeed(t)
	pbx.succeed(t)
	_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if k, _, err := c.ReadFromUDP(make([]byte, 2048)); err == nil {
		t.Errorf("the stranger got an answer (%d bytes)", k)
	}
	const metric = `switchboard_sip_dropped_total{reason="stranger"} 2`
	if m := n.get(t, "/metrics"); !strings.Contains(m, metric) {
		t.Errorf("/metrics lacks %s", metric)
	}
}

// TestOutboundCall: the PBX calls out from its own port; switchboard sends
// the call to the trunk's outbound URI and records it as outbound. Over TCP
// SIPp connects from an ephemeral port, so the PBX is known by its Via
// sent-by (127.0.0.1:<sip.pbx port>).
func TestOutboundCall(t *testing.T) {
	t.Parallel()
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			t.Parallel()
			n := newNode(t, nodeOptions{transport: tr})
			trunk := startSIPp(t, sippSpec{name: "carrier", scenario: "uas_trunk_answer.xml", transport: tr, port: n.trunkPort})
			const talk = 500 * time.Millisecond
			call := startSIPp(t, sippSpec{
				name: "pbx-out", scenario: "uac_pbx_outbound.xml", transport: tr, port: n.pbxPort,
				remote: n.sipAddr(), service: externalDest, pause: talk,
			})
			call.succeed(t)
			trunk.succeed(t)
			checkForwardedInvite(t, trunk, externalDest, n.trunkPort)
			r := n.waitEnded(call.callID)
			if r.Direction != "outbound" {
				t.Errorf("direction = %q, want outbound", r.Direction)
			}
			if r.Caller != hotlineNumber || r.Called != externalDest {
				t.Errorf("caller %q called %q, want %s → %s", r.Caller, r.Called, hotlineNumber, externalDest)
			}
			if r.Disposition != "answered" || r.SIPStatus != 200 {
				t.Errorf("disposition %q sip_status %d, want answered 200", r.Disposition, r.SIPStatus)
			}
			within(t, "talk_ms", r.TalkMS, talk)
		})
	}
}

// TestConcurrentCalls: a burst of overlapping calls all go through and each
// gets its own answered record.
func TestConcurrentCalls(t *testing.T) {
	t.Parallel()
	const calls = 40
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			t.Parallel()
			n := newNode(t, nodeOptions{transport: tr})
			pbx := startSIPp(t, sippSpec{name: "pbx", scenario: "uas_answer.xml", transport: tr, port: n.pbxPort, calls: calls})
			call := startSIPp(t, sippSpec{
				name: "trunk", scenario: "uac_answer.xml", transport: tr, remote: n.sipAddr(),
				service: hotlineNumber, pause: 500 * time.Millisecond, calls: calls,
				extra: []string{"-r", "40"},
			})
			call.succeed(t)
			pbx.succeed(t)
			for k := 1; k <= calls; k++ {
				id := call.nthCallID(k)
				r := n.waitRecord(id, "answered and ended", func(r callRecord) bool { return r.EndedAt != nil })
				if r.Disposition != "answered" || r.Caller != trunkCaller || r.Called != hotlineNumber {
					t.Errorf("call %d: %s", k, r)
				}
			}
		})
	}
}

// TestOptionsPing: OPTIONS addressed to switchboard itself gets 200 OK and
// is not forwarded to the PBX.
func TestOptionsPing(t *testing.T) {
	t.Parallel()
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			t.Parallel()
			n := newNode(t, nodeOptions{transport: tr})
			pbx := n.pbx(t, "uas_answer.xml", 0)
			ping := startSIPp(t, sippSpec{name: "ping", scenario: "uac_options.xml", transport: tr, remote: n.sipAddr()})
			ping.succeed(t)
			if got := pbx.received(t, "OPTIONS "); len(got) != 0 {
				t.Errorf("an OPTIONS for switchboard itself was forwarded to the PBX:\n%s", got[0].text)
			}
		})
	}
}

// TestNATCaller: a caller behind NAT (sipp/uac_nat.xml: Via and Contact
// name 127.0.0.99:5099, where nothing listens, with rport) gets every
// response at the address it sends from, so its call connects and ends
// (SPEC §1, RFC 3581).
func TestNATCaller(t *testing.T) {
	t.Parallel()
	n := newNode(t, nodeOptions{})
	pbx := n.pbx(t, "uas_answer.xml", 0)
	call := n.trunkCall(t, "uac_nat.xml", 500*time.Millisecond, "-key", "nat_addr", "127.0.0.99:5099")
	call.succeed(t)
	pbx.succeed(t)
	inv := pbx.received(t, "INVITE ")
	if len(inv) == 0 {
		t.Fatal("the PBX side received no INVITE")
	}
	if via := strings.Join(inv[0].header("Via"), ","); !strings.Contains(via, "127.0.0.99:5099;") || !strings.Contains(via, "received=127.0.0.1") {
		t.Errorf("forwarded Via %q: want the caller's with received=127.0.0.1 and rport", via)
	}
	if r := n.waitEnded(call.callID); r.Disposition != "answered" {
		t.Errorf("record %s: want answered", r)
	}
}
