package e2e

import (
	"encoding/json"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// waitReceived waits until the SIPp run has received a message whose start
// line begins with prefix (SIPp writes its message trace as it goes).
func waitReceived(t *testing.T, r *sippRun, prefix string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(r.received(t, prefix)) == 0 {
		if r.proc.exited() || time.Now().After(deadline) {
			t.Fatalf("sipp %s never received %q", r.spec.name, prefix)
		}
		time.Sleep(10 * time.Millisecond) // polling a trace file: no event to await
	}
}

// waitAnswered waits until the call is answered end to end: the record says
// so and the ACK reached the PBX.
func waitAnswered(t *testing.T, n *node, call, pbx *sippRun) {
	t.Helper()
	n.waitRecord(call.callID, "answered", func(r callRecord) bool { return r.AnsweredAt != nil })
	waitReceived(t, pbx, "ACK ")
}

func TestRestartMidCallAfterKill(t *testing.T) {
	t.Parallel()
	restartMidCall(t, syscall.SIGKILL)
}

func TestRestartMidCallAfterDrain(t *testing.T) {
	t.Parallel()
	restartMidCall(t, syscall.SIGTERM)
}

// restartMidCall stops switchboard with sig during an answered call, starts
// it again with the same config and database, and checks that the caller's
// BYE is still routed to the PBX (loose routing on the Route header) and
// that the call's record is completed. UDP only: a restart breaks TCP
// connections, which SIPp treats as a failed call.
func restartMidCall(t *testing.T, sig syscall.Signal) {
	const (
		drain = time.Second     // shorter than the call: the call outlives the drain
		talk  = 6 * time.Second // the caller sends BYE after this pause
	)
	n := newNode(t, nodeOptions{drain: drain})
	pbx := n.pbx(t, "uas_answer.xml", 0)
	call := n.trunkCall(t, "uac_answer.xml", talk)
	waitAnswered(t, n, call, pbx)
	answered := time.Now()

	switch sig {
	case syscall.SIGKILL:
		// A kill loses what the writer has not written yet (its batch
		// window); the test is about routing and completing a call whose
		// record is in the database.
		n.waitStored(call.callID)
		n.kill()
	default:
		stopped := time.Now()
		n.signal(sig)
		if code := n.waitExit(drain + 3*time.Second); code != 0 {
			t.Errorf("exit status after %v = %d, want 0", sig, code)
		}
		t.Logf("switchboard exited %v after %v (drain_timeout %v)", time.Since(stopped).Round(time.Millisecond), sig, drain)
	}
	n.start()
	if gap := time.Since(answered); gap > talk-time.Second {
		t.Fatalf("restart took until %v after the answer; the scenario's BYE comes at %v", gap, talk)
	}

	call.succeed(t)
	pbx.succeed(t)
	if len(pbx.received(t, "BYE ")) == 0 {
		t.Errorf("the BYE sent after the restart did not reach the PBX")
	}
	r := n.waitEnded(call.callID)
	checkInbound(t, r)
	if r.Disposition != "answered" || r.SIPStatus != 200 {
		t.Errorf("disposition %q sip_status %d, want answered 200", r.Disposition, r.SIPStatus)
	}
	within(t, "talk_ms", r.TalkMS, talk)
}

// TestDrainRefusesNewCalls: while switchboard drains after SIGTERM, an
// established call goes on but a new INVITE gets 503 with Retry-After; when
// the last call ends it exits 0 with the call's record written.
func TestDrainRefusesNewCalls(t *testing.T) {
	t.Parallel()
	const (
		drain = 8 * time.Second
		talk  = 3 * time.Second
	)
	n := newNode(t, nodeOptions{drain: drain})
	pbx := n.pbx(t, "uas_answer.xml", 0)
	first := n.trunkCall(t, "uac_answer.xml", talk)
	waitAnswered(t, n, first, pbx)

	if r := n.health(t, "/readyz"); r.code != 200 {
		t.Errorf("/readyz before SIGTERM = %d %+v, want 200", r.code, r)
	}
	n.signal(syscall.SIGTERM)
	if !n.waitLog(2*time.Second, `"msg":"draining"`) {
		t.Logf("no log line mentioning the drain; sending the new INVITE anyway")
	}
	if r := n.health(t, "/readyz"); r.code != 503 || r.Status != "draining" {
		t.Errorf("/readyz while draining = %d %+v, want 503 draining", r.code, r)
	}
	if h := n.health(t, "/healthz"); h.code != 200 {
		t.Errorf("/healthz while draining = %d %+v, want 200 (alive)", h.code, h)
	}
	second := startSIPp(t, sippSpec{
		name: "trunk2", scenario: "uac_expect_error.xml", remote: n.sipAddr(),
		service: hotlineNumber, extra: []string{"-set", "expected", "503"},
	})
	second.succeed(t)
	if got := second.received(t, "SIP/2.0 503"); len(got) == 0 {
		t.Errorf("no 503 for an INVITE during the drain")
	} else if ra := got[0].header("Retry-After"); len(ra) == 0 || strings.TrimSpace(ra[0]) == "" {
		t.Errorf("503 without Retry-After:\n%s", got[0].text)
	}

	first.succeed(t)
	pbx.succeed(t)
	if n := len(pbx.received(t, "INVITE ")); n != 1 {
		t.Errorf("the PBX received %d INVITEs, want 1 (the call set up before the drain)", n)
	}
	if code := n.waitExit(drain + 3*time.Second); code != 0 {
		t.Errorf("exit status after SIGTERM = %d, want 0", code)
	}

	n.start() // to read the flushed record
	r := n.waitEnded(first.callID)
	checkInbound(t, r)
	if r.Disposition != "answered" || r.SIPStatus != 200 {
		t.Errorf("disposition %q sip_status %d, want answered 200", r.Disposition, r.SIPStatus)
	}
	within(t, "talk_ms", r.TalkMS, talk)
}

// waitStored waits until the database itself (read by `switchboard calls`,
// not the API, which also shows records still in the writer's queue) holds
// the answered record of callID.
func (n *node) waitStored(callID string) {
	t := n.t
	t.Helper()
	deadline := time.Now().Add(recordTimeout)
	for {
		out, err := exec.Command(binPath, "calls", "--json", "--limit", "100", "-c", n.cfgPath).Output()
		var list struct {
			Items []callRecord `json:"items"`
		}
		if err == nil && json.Unmarshal(out, &list) == nil {
			for _, r := range list.Items {
				if r.CallID == callID && r.AnsweredAt != nil {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("call record %s: not in the database within %v (%v): %s", callID, recordTimeout, err, out)
		}
		time.Sleep(50 * time.Millisecond) // the writer batches: poll
	}
}
