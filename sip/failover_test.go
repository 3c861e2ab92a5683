package sip

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	gosip "github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/callctl"
	"github.com/switchboard-sip/switchboard/cdr"
)

// silentPBX answers OPTIONS while alive and nothing else; with trying it
// sends a 100 to every INVITE and then nothing.
func silentPBX(alive *atomic.Bool, trying bool) func(*udpPeer, datagram) {
	return func(p *udpPeer, d datagram) {
		req, ok := peerRequest(d)
		if !ok {
			return
		}
		switch {
		case req.Method == gosip.OPTIONS && alive.Load():
			reply(p, d.from, gosip.NewResponseFromRequest(req, 200, "OK", nil))
		case req.IsInvite() && trying:
			reply(p, d.from, gosip.NewResponseFromRequest(req, gosip.StatusTrying, "Trying", nil))
		}
	}
}

// TestResponseTimeout: a next hop that sends nothing within
// sip.response_timeout fails the call over at once, to the hotline's
// fallback when it has one, else with 503 and Retry-After and a failed
// record (SPEC §1); one that sent a 100 is alive and keeps the call.
func TestResponseTimeout(t *testing.T) { onBothPaths(t, testResponseTimeout) }

func testResponseTimeout(t *testing.T) {
	fallback := newPeer(t, pbxAnswer)
	for _, c := range []struct {
		name     string
		trying   bool
		pipeline func(t *testing.T) callctl.Pipeline
	}{
		{name: "503"},
		{name: "fallback", pipeline: func(t *testing.T) callctl.Pipeline {
			return append(identifyPipeline(t), fallbackStage{"sip:" + fallback.addr().String()})
		}},
		{name: "alive", trying: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			var alive atomic.Bool
			o := harnessOpts{pbx: silentPBX(&alive, c.trying), options: func(o *Options) { o.ResponseTimeout = 300 * time.Millisecond }}
			if c.pipeline != nil {
				o.pipeline = c.pipeline(t)
			}
			h := startProxy(t, o)
			tr := h.trunk
			id := "call-timeout-" + c.name
			begin := time.Now()
			tr.send(t, h.addr, callerInvite(tr, h.addr, id, "<sip:+4930111222@"+tr.addr().String()+">;tag=c1").bytes())
			d, ok := tr.waitFor(0, 3*time.Second, func(d datagram) bool { return rawCallID(d.b) == id && resStatus(d.b) >= 200 })
			took := time.Since(begin)
			switch c.name {
			case "503":
				if !ok || resStatus(d.b) != 503 || rawHeader(d.b, "Retry-After") == "" || took > 2*time.Second {
					t.Fatalf("final %d (Retry-After %q) after %s, want 503 with Retry-After soon after 300 ms", resStatus(d.b), rawHeader(d.b, "Retry-After"), took)
				}
				h.waitRecord(t, id, cdr.Failed)
			case "fallback":
				if !ok || resStatus(d.b) != 200 {
					t.Fatalf("final %d after %s, want the fallback's 200", resStatus(d.b), took)
				}
				if _, ok := fallback.waitFor(0, time.Second, isReq("INVITE", id)); !ok {
					t.Error("the fallback got no INVITE")
				}
				if got := len(rawHeaders(d.b, "Via")); got != 1 {
					t.Errorf("the caller's 200 has %d Vias, want 1", got)
				}
			case "alive":
				if ok {
					t.Fatalf("a next hop that sent 100 was given up: %d after %s", resStatus(d.b), took)
				}
				if _, ok := h.pbx.waitFor(0, time.Second, isReq("INVITE", id)); !ok {
					t.Fatal("the INVITE never reached the PBX")
				}
			}
		})
	}
}

// TestDownWhileWaiting: a call waiting for its first response when the
// keep-alive marks its target down ends with 503 at once, not after
// Timer B (SPEC §1).
func TestDownWhileWaiting(t *testing.T) { onBothPaths(t, testDownWhileWaiting) }

func testDownWhileWaiting(t *testing.T) {
	var alive atomic.Bool
	alive.Store(true)
	h := startProxy(t, harnessOpts{pbx: silentPBX(&alive, false), options: func(o *Options) { o.Keepalive = 100 * time.Millisecond }})
	if _, ok := h.pbx.waitFor(0, 5*time.Second, func(d datagram) bool { return strings.HasPrefix(rawFirstLine(d.b), "OPTIONS ") }); !ok {
		t.Fatal("the PBX was never probed")
	}
	waitTarget(t, h.p, "pbx", true)
	tr := h.trunk
	const id = "call-down-waiting"
	tr.send(t, h.addr, callerInvite(tr, h.addr, id, "<sip:+4930111222@"+tr.addr().String()+">;tag=c1").bytes())
	if _, ok := h.pbx.waitFor(0, 5*time.Second, isReq("INVITE", id)); !ok {
		t.Fatal("the INVITE never reached the PBX")
	}
	time.Sleep(100 * time.Millisecond)
	if d, ok := tr.waitFor(0, 10*time.Millisecond, func(d datagram) bool { return rawCallID(d.b) == id && resStatus(d.b) >= 200 }); ok {
		t.Fatalf("answered %d while the PBX was still up", resStatus(d.b))
	}
	alive.Store(false)
	waitTarget(t, h.p, "pbx", false)
	down := time.Now()
	d, ok := tr.waitFor(0, 3*time.Second, func(d datagram) bool { return rawCallID(d.b) == id && resStatus(d.b) >= 200 })
	if !ok || resStatus(d.b) != 503 {
		t.Fatalf("final %d, want 503 once the PBX was marked down", resStatus(d.b))
	}
	if took := time.Since(down); took > time.Second {
		t.Errorf("503 came %s after the PBX was marked down", took)
	}
	h.waitRecord(t, id, cdr.Failed)
}

// TestLateAnswerAfterFailover: a next hop that answers 200 after
// sip.response_timeout gave up on it (the caller already has its 503)
// gets ACK and BYE from switchboard, and its 200 never reaches the caller.
func TestLateAnswerAfterFailover(t *testing.T) { onBothPaths(t, testLateAnswerAfterFailover) }

func testLateAnswerAfterFailover(t *testing.T) {
	late := func(p *udpPeer, d datagram) {
		req, ok := peerRequest(d)
		if !ok {
			return
		}
		if !req.IsInvite() {
			reply(p, d.from, gosip.NewResponseFromRequest(req, 200, "OK", nil))
			return
		}
		time.Sleep(600 * time.Millisecond) // well past the response timeout
		res := gosip.NewResponseFromRequest(req, 200, "OK", []byte(testSDP))
		res.To().Params.Add("tag", "late")
		res.AppendHeader(gosip.NewHeader("Contact", "<sip:pbx@"+p.addr().String()+">"))
		res.AppendHeader(gosip.NewHeader("Content-Type", "application/sdp"))
		reply(p, d.from, res)
	}
	h := startProxy(t, harnessOpts{pbx: late, options: func(o *Options) { o.ResponseTimeout = 300 * time.Millisecond }})
	tr := h.trunk
	const id = "call-late"
	tr.send(t, h.addr, callerInvite(tr, h.addr, id, "<sip:+4930111222@"+tr.addr().String()+">;tag=c1").bytes())
	d, ok := tr.waitFor(0, 3*time.Second, func(d datagram) bool { return rawCallID(d.b) == id && resStatus(d.b) >= 200 })
	if !ok || resStatus(d.b) != 503 {
		t.Fatalf("final %d, want 503 after the response timeout", resStatus(d.b))
	}
	for _, method := range []string{"ACK", "BYE"} {
		if _, ok := h.pbx.waitFor(0, 3*time.Second, isReq(method, id)); !ok {
			t.Errorf("the late 200 got no %s from switchboard", method)
		}
	}
	for _, d := range tr.since(0) {
		if isRes(200, "INVITE", id)(d) {
			t.Error("the late 200 reached the caller, who had its 503")
		}
	}
	h.waitRecord(t, id, cdr.Failed)
}
