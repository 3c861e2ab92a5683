package sip

import (
	"context"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	gosip "github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/callctl"
	"github.com/switchboard-sip/switchboard/emergency"
)

// emergencyPipeline is identify and the emergency stage for German
// trunks, then a stage that rejects every call that reaches it (a rule
// written too broadly).
func emergencyPipeline(t testing.TB) callctl.Pipeline {
	st := callctl.NewEmergencyStage(callctl.EmergencyOptions{Numbers: emergency.NewNumbers("0", nil), Region: "DE"})
	return append(identifyPipeline(t), st, rejectAll{})
}

type rejectAll struct{}

func (rejectAll) Name() string { return "reject all" }
func (rejectAll) Handle(_ context.Context, _ *callctl.Call) callctl.Decision {
	return callctl.Decision{Verdict: callctl.Reject, Code: gosip.StatusForbidden, Reason: "rule"}
}

// TestEmergencyNextTrunkWhenDown: the first trunk's target answered the
// keep-alive and stopped; an emergency call from the PBX goes to the
// second trunk at once, with the number as dialled, while an ordinary
// call is still refused by the pipeline; on either path (fast or sipgo).
func TestEmergencyNextTrunkWhenDown(t *testing.T) {
	for _, fast := range []bool{false, true} {
		t.Run(map[bool]string{false: "sipgo", true: "fast"}[fast], func(t *testing.T) {
			var alive atomic.Bool
			alive.Store(true)
			first := newPeer(t, func(p *udpPeer, d datagram) {
				if alive.Load() {
					pbxAnswer(p, d)
				}
			})
			second := newPeer(t, pbxAnswer)
			h := startProxy(t, harnessOpts{fast: fast, pipeline: emergencyPipeline(t),
				options: func(o *Options) { o.Keepalive = 100 * time.Millisecond; o.MaxCPS = 1 },
				routing: func(r *Routing) {
					u1 := gosip.Uri{Scheme: "sip", Host: "127.0.0.1", Port: first.addr().Port}
					u2 := gosip.Uri{Scheme: "sip", Host: "127.0.0.1", Port: second.addr().Port}
					r.Trunks[0].Outbound = &u1
					r.Trunks = append(r.Trunks, Trunk{Name: "backup", Region: "DE", Outbound: &u2,
						Match: func(netip.AddrPort) bool { return false }})
					r.Emergency = emergency.NewNumbers("0", nil).Is
				}})
			waitAnswersOptions(t, h.p, "carrier")
			alive.Store(false)
			waitTarget(t, h.p, "carrier", false)
			pbx := h.pbx
			me := pbx.addr().String()
			for i, ruri := range []string{"sip:0112@" + h.addr.String(), "tel:112"} {
				id := "call-emergency-down-" + strconv.Itoa(i)
				begin := time.Now()
				pbx.send(t, h.addr, rawReq{method: "INVITE", ruri: ruri,
					via:  []string{"SIP/2.0/UDP " + me + ";branch=z9hG4bK-" + id + ";rport"},
					from: `"Reception" <sip:2001@` + me + ">;tag=e" + strconv.Itoa(i), to: "<" + ruri + ">", callID: id, cseq: 1,
					extra: []string{"Contact: <sip:2001@" + me + ">"}, body: testSDP}.bytes())
				d, ok := pbx.waitFor(0, 5*time.Second, func(d datagram) bool { return rawCallID(d.b) == id && resStatus(d.b) >= 200 })
				if !ok || resStatus(d.b) != gosip.StatusOK {
					t.Fatalf("%s: no 200 (%v): %s", ruri, ok, d.b)
				}
				inv, ok := second.waitFor(0, time.Second, isReq("INVITE", id))
				if !ok {
					t.Fatalf("%s: the second trunk got no INVITE", ruri)
				}
				want := "INVITE sip:0112@"
				if strings.HasPrefix(ruri, "tel:") {
					want = "INVITE tel:112 "
				}
				if line := rawFirstLine(inv.b); !strings.HasPrefix(line, want) {
					t.Errorf("%s: at the second trunk %q, want %q…", ruri, line, want)
				}
				if took := time.Since(begin); took > time.Second {
					t.Errorf("%s: answered after %v, want at once", ruri, took)
				}
				if _, ok := first.waitFor(0, 0, isReq("INVITE", id)); ok {
					t.Errorf("%s: the trunk marked down got the INVITE first", ruri)
				}
			}
			// The positive control: an ordinary call is refused.
			id := "call-ordinary"
			ruri := "sip:030123456@" + h.addr.String()
			pbx.send(t, h.addr, rawReq{method: "INVITE", ruri: ruri,
				via:  []string{"SIP/2.0/UDP " + me + ";branch=z9hG4bK-" + id + ";rport"},
				from: "<sip:2001@" + me + ">;tag=o", to: "<" + ruri + ">", callID: id, cseq: 1,
				extra: []string{"Contact: <sip:2001@" + me + ">"}, body: testSDP}.bytes())
			d, ok := pbx.waitFor(0, 5*time.Second, func(d datagram) bool { return rawCallID(d.b) == id && resStatus(d.b) >= 200 })
			if !ok || (resStatus(d.b) != gosip.StatusForbidden && resStatus(d.b) != gosip.StatusServiceUnavailable) {
				t.Errorf("ordinary call: %v %d, want refused", ok, resStatus(d.b))
			}
		})
	}
}

// waitAnswersOptions waits until the named target answered a probe (only
// such a target can be marked down).
func waitAnswersOptions(t *testing.T, p *Proxy, name string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for _, s := range p.Targets() {
			if s.Name == name && s.AnswersOptions {
				return
			}
		}
		time.Sleep(20 * time.Millisecond) // the prober's state: nothing to await
	}
	t.Fatalf("target %s never answered a probe: %+v", name, p.Targets())
}

// TestEmergencyWhileDraining: a draining proxy over UDP (fast path or
// sipgo) refuses an ordinary call with 503 and forwards an emergency call.
func TestEmergencyWhileDraining(t *testing.T) {
	for _, fast := range []bool{false, true} {
		t.Run(map[bool]string{false: "sipgo", true: "fast"}[fast], func(t *testing.T) {
			out := newPeer(t, pbxAnswer)
			h := startProxy(t, harnessOpts{fast: fast, pipeline: emergencyPipeline(t),
				routing: func(r *Routing) {
					u := gosip.Uri{Scheme: "sip", Host: "127.0.0.1", Port: out.addr().Port}
					r.Trunks[0].Outbound = &u
					r.Emergency = emergency.NewNumbers("0", nil).Is
				}})
			h.p.Drain()
			me := h.pbx.addr().String()
			for _, c := range []struct {
				id, user string
				want     int
			}{{"call-drain-ordinary", "030123456", gosip.StatusServiceUnavailable}, {"call-drain-112", "112", gosip.StatusOK}} {
				ruri := "sip:" + c.user + "@" + h.addr.String()
				h.pbx.send(t, h.addr, rawReq{method: "INVITE", ruri: ruri,
					via:  []string{"SIP/2.0/UDP " + me + ";branch=z9hG4bK-" + c.id + ";rport"},
					from: `"Reception" <sip:2001@` + me + ">;tag=d", to: "<" + ruri + ">", callID: c.id, cseq: 1,
					extra: []string{"Contact: <sip:2001@" + me + ">"}, body: testSDP}.bytes())
				d, ok := h.pbx.waitFor(0, 5*time.Second, func(d datagram) bool { return rawCallID(d.b) == c.id && resStatus(d.b) >= 200 })
				if !ok || resStatus(d.b) != c.want {
					t.Errorf("%s while draining: %v %d, want %d", c.user, ok, resStatus(d.b), c.want)
				}
			}
			if _, ok := out.waitFor(0, time.Second, isReq("INVITE", "call-drain-112")); !ok {
				t.Error("the emergency call did not reach the trunk")
			}
		})
	}
}
