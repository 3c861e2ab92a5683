package e2e

// Calls through the real switchboard binary with linphonec (Debian package
// linphone-cli, liblinphone 5.1) as the PBX's phone and as the carrier's
// user agent, next to the baresip suite: a second real-phone stack that
// nobody on this project wrote. linphonec leaves Content-Length out of
// some responses over UDP (RFC 3261 §18.3), which the fast path must read.

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

const lpEvent = 15 * time.Second // a SIP event between two user agents

// needLinphonec skips the test without linphonec (fails when CI is set).
func needLinphonec(t *testing.T) string {
	t.Helper()
	requirements(t)
	p, err := exec.LookPath("linphonec")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("linphonec is not installed (Debian package linphone-cli) and CI is set")
		}
		t.Skip("linphonec is not installed (Debian package linphone-cli); set CI=1 to make this a failure")
	}
	return p
}

// linphone is one running linphonec driven through its standard input.
type linphone struct {
	t    *testing.T
	name string
	in   io.WriteCloser
	proc *process
	log  string

	mu    sync.Mutex
	lines []string
	wake  chan struct{}
}

// startLinphone runs linphonec on 127.0.0.1:sipPort (UDP, or TCP) with
// files instead of a sound card, in a home of its own (liblinphone only
// starts its core with a writable database directory).
func startLinphone(t *testing.T, name string, sipPort int, transport string) *linphone {
	t.Helper()
	bin := needLinphonec(t)
	home := t.TempDir()
	if err := os.MkdirAll(filepath.Join(home, ".local", "share", "linphone"), 0o755); err != nil {
		t.Fatal(err)
	}
	rtp := freePortPair(t)
	udp, tcp, param := sipPort, -1, ""
	if transport == "tcp" {
		udp, tcp, param = -1, sipPort, ";transport=tcp" // -1: a port of its choice
	}
	rc := fmt.Sprintf("[sip]\nsip_port=%d\nsip_tcp_port=%d\nsip_tls_port=-1\nbind_address=127.0.0.1\nguess_hostname=0\n"+
		"contact=sip:%s@127.0.0.1:%d%s\n[rtp]\naudio_rtp_port=%d\n[video]\nautomatically_initiate=0\n[sound]\nechocancellation=0\n",
		udp, tcp, name, sipPort, param, rtp)
	rcPath := filepath.Join(home, "linphonerc")
	if err := os.WriteFile(rcPath, []byte(rc), 0o644); err != nil {
		t.Fatal(err)
	}
	l := &linphone{t: t, name: name, log: filepath.Join(home, "linphonec.log"), wake: make(chan struct{}, 1)}
	cmd := exec.Command(bin, "-c", rcPath, "-d", "6", "-l", l.log)
	cmd.Env = append(os.Environ(), "HOME="+home)
	var err error
	if l.in, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if l.proc, err = startProcess(cmd); err != nil {
		t.Fatalf("start linphonec: %v", err)
	}
	go l.read(out)
	t.Cleanup(func() {
		_, _ = io.WriteString(l.in, "quit\n")
		if _, ok := l.proc.wait(3 * time.Second); !ok {
			l.proc.kill()
		}
		if t.Failed() {
			l.mu.Lock()
			t.Logf("linphonec %s said:\n%s", name, strings.Join(l.lines, "\n"))
			l.mu.Unlock()
			dumpFile(t, "linphonec "+name, l.log)
		}
	})
	l.do("soundcard use files")
	l.waitLine(0, "Using wav files")
	return l
}

func (l *linphone) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		l.mu.Lock()
		l.lines = append(l.lines, sc.Text())
		l.mu.Unlock()
		select {
		case l.wake <- struct{}{}:
		default:
		}
	}
}

// do types a command.
func (l *linphone) do(cmd string) {
	l.t.Helper()
	if _, err := io.WriteString(l.in, cmd+"\n"); err != nil {
		l.t.Fatalf("linphonec %s: %s: %v", l.name, cmd, err)
	}
}

func (l *linphone) mark() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.lines)
}

// waitLine waits for an output line containing what, from index since on.
func (l *linphone) waitLine(since int, what string) string {
	l.t.Helper()
	deadline := time.NewTimer(lpEvent)
	defer deadline.Stop()
	for {
		l.mu.Lock()
		for _, s := range l.lines[min(since, len(l.lines)):] {
			if strings.Contains(s, what) {
				l.mu.Unlock()
				return s
			}
		}
		l.mu.Unlock()
		select {
		case <-l.wake:
		case <-deadline.C:
			l.t.Fatalf("linphonec %s: no line with %q", l.name, what)
		}
	}
}

// lpPair is a switchboard with linphonec as the PBX's phone and as the
// carrier's user agent.
type lpPair struct {
	n          *node
	pbx, trunk *linphone
	transport  string
	seen       map[string]bool // Call-IDs of the records already checked
}

func newLpPair(t *testing.T, transport string) *lpPair {
	pbxPort, trunkPort := freePortPair(t), freePortPair(t)
	n := newNode(t, nodeOptions{transport: transport, pbxPort: pbxPort, trunkPort: trunkPort})
	return &lpPair{n: n, transport: transport, seen: map[string]bool{},
		pbx: startLinphone(t, "pbx", pbxPort, transport), trunk: startLinphone(t, "trunk", trunkPort, transport)}
}

// ring places a call from caller to number through switchboard and waits
// until the callee rings and the caller hears it.
func (p *lpPair) ring(t *testing.T, caller, callee *linphone, number string) (c0, e0 int, at time.Time) {
	t.Helper()
	c0, e0, at = caller.mark(), callee.mark(), time.Now()
	uri := "sip:" + number + "@" + p.n.sipAddr()
	if p.transport == "tcp" {
		uri += ";transport=tcp"
	}
	caller.do("call " + uri)
	callee.waitLine(e0, "Receiving new incoming call")
	caller.waitLine(c0, "ringing")
	return c0, e0, at
}

// record waits for the record of the call placed at or after since (the
// first such record not checked before).
func (p *lpPair) record(t *testing.T, since time.Time, direction string) callRecord {
	t.Helper()
	deadline := time.Now().Add(lpEvent)
	for {
		rs, err := p.n.calls()
		if err == nil {
			for _, r := range rs {
				if r.Direction == direction && r.StartedAt != nil && !r.StartedAt.Before(since.Add(-time.Second)) && r.EndedAt != nil && !p.seen[r.CallID] {
					p.seen[r.CallID] = true
					t.Logf("call record: %s", r)
					return r
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no ended %s record since %v: %v", direction, since, err)
		}
		time.Sleep(50 * time.Millisecond) // polling the API: no event to await
	}
}

// answered runs an answered call with audio, optionally a hold and resume
// (re-INVITE) by the caller, and a BYE from hangup's side.
func (p *lpPair) answered(t *testing.T, caller, callee *linphone, number, direction string, hold bool, hangup *linphone) {
	t.Helper()
	c0, e0, at := p.ring(t, caller, callee, number)
	callee.do("answer")
	for _, l := range []struct {
		ph *linphone
		i  int
	}{{caller, c0}, {callee, e0}} {
		l.ph.waitLine(l.i, "connected")
		l.ph.waitLine(l.i, "Media streams established")
	}
	if hold {
		h, hc := callee.mark(), caller.mark()
		caller.do("pause")
		callee.waitLine(h, "has been paused by")
		caller.waitLine(hc, "is now paused")
		r := caller.mark()
		caller.do("resume") // the callee's linphonec prints nothing on it
		caller.waitLine(r, "Media streams established")
	}
	time.Sleep(time.Second) // talk
	hangup.do("terminate")
	caller.waitLine(c0, "ended")
	callee.waitLine(e0, "ended")
	r := p.record(t, at, direction)
	if r.Disposition != "answered" || r.TalkMS <= 0 || r.AnsweredAt == nil {
		t.Errorf("record %s: want answered with talk time", r)
	}
	if r.RingingAt == nil {
		t.Errorf("record %s: no ringing_at for a call that rang", r)
	}
}

// TestLinphoneCalls: answered calls both ways with media, hold and resume
// from each side's caller, BYE from each side, and CANCEL while ringing,
// with linphonec on both sides, over UDP and TCP.
func TestLinphoneCalls(t *testing.T) {
	needLinphonec(t)
	for _, transport := range []string{"udp", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			t.Parallel()
			p := newLpPair(t, transport)
			t.Run("inbound answered, held, caller hangs up", func(t *testing.T) {
				p.answered(t, p.trunk, p.pbx, hotlineNumber, "inbound", true, p.trunk)
			})
			t.Run("inbound answered, callee hangs up", func(t *testing.T) {
				p.answered(t, p.trunk, p.pbx, hotlineNumber, "inbound", false, p.pbx)
			})
			t.Run("outbound answered, held, callee hangs up", func(t *testing.T) {
				p.answered(t, p.pbx, p.trunk, externalDest, "outbound", true, p.trunk)
			})
			t.Run("cancel while ringing", func(t *testing.T) {
				const ring = 800 * time.Millisecond
				_, e0, at := p.ring(t, p.trunk, p.pbx, hotlineNumber)
				time.Sleep(ring)
				p.trunk.do("terminate")
				p.pbx.waitLine(e0, "ended")
				r := p.record(t, at, "inbound")
				if r.Disposition != "no_answer" || r.EndReason != "cancelled" || r.AnsweredAt != nil {
					t.Errorf("record %s: want no_answer, cancelled, never answered", r)
				}
				within(t, "ring_ms", r.RingMS, ring)
			})
		})
	}
}
