package e2e

// Calls between two real user agents nobody on this project wrote: baresip
// (Debian package baresip) as the PBX's phone and as the carrier's side,
// headless (a sine source, no audio device) and driven through its ctrl_tcp
// module, through the real switchboard binary.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	bsStart   = 10 * time.Second // baresip up and its control port open
	bsEvent   = 10 * time.Second // a SIP event between two user agents
	bsMedia   = 1500 * time.Millisecond
	minPacket = 25 // RTP packets each way in bsMedia (75 at 50/s): audio flowed
)

// needBaresip skips the test without baresip (fails when CI is set).
func needBaresip(t *testing.T) string {
	t.Helper()
	requirements(t)
	p, err := exec.LookPath("baresip")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("baresip is not installed (Debian package baresip) and CI is set")
		}
		t.Skip("baresip is not installed (Debian package baresip); set CI=1 to make this a failure")
	}
	return p
}

// bsEventMsg is one ctrl_tcp event.
type bsEventMsg struct {
	Type      string `json:"type"`
	Direction string `json:"direction"`
	PeerURI   string `json:"peeruri"`
	ID        string `json:"id"`
	Param     string `json:"param"`
}

type bsResponse struct {
	OK    bool   `json:"ok"`
	Data  string `json:"data"`
	Token string `json:"token"`
}

// baresip is one running baresip with its control connection.
type baresip struct {
	t       *testing.T
	name    string
	sipPort int
	logPath string
	proc    *process
	conn    net.Conn

	mu     sync.Mutex
	events []bsEventMsg
	wake   chan struct{}
	resp   chan bsResponse
	seq    int
}

// startBaresip runs baresip listening for SIP on 127.0.0.1:sipPort with
// one account per user (incoming calls to any of them are offered; the
// first dials), answering only when told to.
func startBaresip(t *testing.T, name string, sipPort int, users ...string) *baresip {
	t.Helper()
	bin := needBaresip(t)
	dir := t.TempDir()
	ctrl := freePort(t)
	cfg := fmt.Sprintf(`poll_method epoll
sip_listen 127.0.0.1:%d
net_interface 127.0.0.1
audio_player aubridge,nil
audio_alert aubridge,nil
audio_source ausine,440
ausrc_srate 48000
ausrc_channels 2
rtp_stats yes
rtcp_mux no
module_path /usr/lib/baresip/modules
module g711.so
module ausine.so
module aubridge.so
module_app account.so
module_app menu.so
module_app ctrl_tcp.so
ctrl_tcp_listen 127.0.0.1:%d
`, sipPort, ctrl)
	var acc strings.Builder
	for _, u := range users {
		fmt.Fprintf(&acc, "<sip:%s@127.0.0.1:%d>;regint=0;answermode=manual;audio_codecs=PCMU,PCMA\n", u, sipPort)
	}
	if err := os.WriteFile(filepath.Join(dir, "config"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "accounts"), []byte(acc.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	b := &baresip{t: t, name: name, sipPort: sipPort, logPath: filepath.Join(dir, "baresip.log"),
		wake: make(chan struct{}, 1), resp: make(chan bsResponse, 1)}
	f, err := os.Create(b.logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-f", dir)
	cmd.Stdout, cmd.Stderr = f, f
	if b.proc, err = startProcess(cmd); err != nil {
		t.Fatalf("start baresip: %v", err)
	}
	f.Close()
	t.Cleanup(func() {
		if b.conn != nil {
			b.conn.Close()
		}
		b.proc.kill()
		if t.Failed() {
			dumpFile(t, "baresip "+name, b.logPath)
		}
	})
	deadline := time.Now().Add(bsStart)
	for {
		c, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(ctrl)))
		if err == nil {
			b.conn = c
			break
		}
		if b.proc.exited() || time.Now().After(deadline) {
			t.Fatalf("baresip %s: control port never opened: %v", name, err)
		}
		time.Sleep(20 * time.Millisecond) // polling a port: no event to await
	}
	go b.read()
	return b
}

// read parses the netstrings of the control connection.
func (b *baresip) read() {
	r := bufio.NewReader(b.conn)
	for {
		n, err := r.ReadString(':')
		if err != nil {
			return
		}
		size, err := strconv.Atoi(strings.TrimSpace(n[:len(n)-1]))
		if err != nil || size > 1<<20 {
			return
		}
		msg := make([]byte, size+1) // and the trailing comma
		if _, err := io.ReadFull(r, msg); err != nil {
			return
		}
		var head struct {
			Event    bool `json:"event"`
			Response bool `json:"response"`
		}
		_ = json.Unmarshal(msg[:size], &head)
		switch {
		case head.Event:
			var e bsEventMsg
			_ = json.Unmarshal(msg[:size], &e)
			b.mu.Lock()
			b.events = append(b.events, e)
			b.mu.Unlock()
			select {
			case b.wake <- struct{}{}:
			default:
			}
		case head.Response:
			var res bsResponse
			_ = json.Unmarshal(msg[:size], &res)
			b.resp <- res
		}
	}
}

// do runs a baresip command and returns its answer.
func (b *baresip) do(command, params string) string {
	b.t.Helper()
	b.seq++
	tok := strconv.Itoa(b.seq)
	msg, _ := json.Marshal(map[string]string{"command": command, "params": params, "token": tok})
	if _, err := fmt.Fprintf(b.conn, "%d:%s,", len(msg), msg); err != nil {
		b.t.Fatalf("baresip %s: %s: %v", b.name, command, err)
	}
	select {
	case r := <-b.resp:
		if !r.OK {
			b.t.Fatalf("baresip %s: %s %s: %s", b.name, command, params, r.Data)
		}
		return r.Data
	case <-time.After(bsEvent):
		b.t.Fatalf("baresip %s: no answer to %s", b.name, command)
	}
	return ""
}

func (b *baresip) mark() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.events)
}

// waitEvent waits for an event of the type from index since on.
func (b *baresip) waitEvent(since int, typ string) bsEventMsg {
	b.t.Helper()
	deadline := time.NewTimer(bsEvent)
	defer deadline.Stop()
	for {
		b.mu.Lock()
		for _, e := range b.events[min(since, len(b.events)):] {
			if e.Type == typ {
				b.mu.Unlock()
				return e
			}
		}
		b.mu.Unlock()
		select {
		case <-b.wake:
		case <-deadline.C:
			b.t.Fatalf("baresip %s: no %s event", b.name, typ)
		}
	}
}

var ssrcRE = regexp.MustCompile(`ssrc='(\d+) cname`)

// ssrcs reads the local and remote SSRC of the current call from
// callstat: each side's SDP as the other received it.
func (b *baresip) ssrcs() (local, remote string) {
	b.t.Helper()
	data := b.do("callstat", "")
	// The audio media lists its local attributes, then its remote ones.
	m := ssrcRE.FindAllStringSubmatch(data, -1)
	if len(m) != 2 {
		b.t.Fatalf("baresip %s: want a local and a remote SSRC in callstat:\n%s", b.name, data)
	}
	return m[0][1], m[1][1]
}

var packetsRE = regexp.MustCompile(`packets:\s+(\d+)\s+(\d+)`)

// rtpPackets waits for the RTP summary baresip prints at the end of the
// n-th call (counting from 1) and returns the packets sent and received.
func (b *baresip) rtpPackets(n int) (tx, rx int) {
	b.t.Helper()
	deadline := time.Now().Add(bsEvent)
	for {
		data, _ := os.ReadFile(b.logPath)
		if m := packetsRE.FindAllStringSubmatch(string(data), -1); len(m) >= n {
			tx, _ = strconv.Atoi(m[n-1][1])
			rx, _ = strconv.Atoi(m[n-1][2])
			return tx, rx
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("baresip %s: no RTP summary for call %d", b.name, n)
		}
		time.Sleep(20 * time.Millisecond) // polling a log file: no event to await
	}
}

// bsPair is a switchboard with baresip as the PBX's phone and as the
// carrier's user agent.
type bsPair struct {
	n          *node
	pbx, trunk *baresip
	transport  string
	calls      map[*baresip]int // answered calls per agent, for rtpPackets
}

func newBsPair(t *testing.T, transport string) *bsPair {
	pbxPort, trunkPort := freePortPair(t), freePortPair(t)
	n := newNode(t, nodeOptions{transport: transport, pbxPort: pbxPort, trunkPort: trunkPort})
	return &bsPair{n: n, transport: transport, calls: map[*baresip]int{},
		pbx:   startBaresip(t, "pbx", pbxPort, hotlineNumber),
		trunk: startBaresip(t, "trunk", trunkPort, trunkCaller, externalDest)}
}

// dialURI is what a user agent dials to reach number through switchboard.
func (p *bsPair) dialURI(number string) string {
	u := "sip:" + number + "@" + p.n.sipAddr()
	if p.transport == "tcp" {
		u += ";transport=tcp"
	}
	return u
}

// ring places a call from caller to number and waits until callee rings;
// it returns the Call-ID and the event indexes before the call.
func (p *bsPair) ring(t *testing.T, caller, callee *baresip, number string) (callID string, c0, e0 int) {
	t.Helper()
	c0, e0 = caller.mark(), callee.mark()
	caller.do("dial", p.dialURI(number))
	in := callee.waitEvent(e0, "CALL_INCOMING")
	caller.waitEvent(c0, "CALL_RINGING")
	return in.ID, c0, e0
}

// answered runs an answered call with a few seconds of audio, optionally a
// hold and resume (re-INVITE) by the caller, and a BYE from hangup's side.
func (p *bsPair) answered(t *testing.T, caller, callee *baresip, number string, hold bool, hangup *baresip) string {
	t.Helper()
	id, c0, e0 := p.ring(t, caller, callee, number)
	callee.do("accept", "")
	callee.waitEvent(e0, "CALL_ESTABLISHED")
	caller.waitEvent(c0, "CALL_ESTABLISHED")
	// The SDP passed unchanged: each side knows the other's SSRC.
	cl, cr := caller.ssrcs()
	el, er := callee.ssrcs()
	if cr != el || er != cl {
		t.Errorf("SSRCs: caller %s/%s, callee %s/%s: the SDP was changed on the way", cl, cr, el, er)
	}
	if hold {
		h := callee.mark()
		caller.do("hold", "")
		callee.waitEvent(h, "CALL_REMOTE_SDP")
		r := callee.mark()
		caller.do("resume", "")
		callee.waitEvent(r, "CALL_REMOTE_SDP")
	}
	time.Sleep(bsMedia) // the audio this test measures
	other := caller
	if hangup == caller {
		other = callee
	}
	o := other.mark()
	hangup.do("hangup", "")
	other.waitEvent(o, "CALL_CLOSED")
	for _, b := range []*baresip{caller, callee} {
		p.calls[b]++
		tx, rx := b.rtpPackets(p.calls[b])
		if tx < minPacket || rx < minPacket {
			t.Errorf("baresip %s: RTP sent %d, received %d: want at least %d each way", b.name, tx, rx, minPacket)
		}
	}
	r := p.n.waitEnded(id)
	if r.Disposition != "answered" || r.TalkMS <= 0 {
		t.Errorf("record %s: want answered with talk time", r)
	}
	return id
}

// TestBaresipCalls: answered calls both ways with audio, BYE from each
// side, hold and resume, cancel and busy, over UDP and TCP.
func TestBaresipCalls(t *testing.T) {
	needBaresip(t)
	for _, transport := range []string{"udp", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			t.Parallel()
			p := newBsPair(t, transport)
			t.Run("inbound answered, held, caller hangs up", func(t *testing.T) {
				p.answered(t, p.trunk, p.pbx, hotlineNumber, true, p.trunk)
			})
			t.Run("inbound answered, callee hangs up", func(t *testing.T) {
				p.answered(t, p.trunk, p.pbx, hotlineNumber, false, p.pbx)
			})
			t.Run("outbound answered, callee hangs up", func(t *testing.T) {
				id := p.answered(t, p.pbx, p.trunk, externalDest, false, p.trunk)
				if r := p.n.waitEnded(id); r.Direction != "outbound" {
					t.Errorf("record %s: want outbound", r)
				}
			})
			t.Run("cancel", func(t *testing.T) {
				id, _, e0 := p.ring(t, p.trunk, p.pbx, hotlineNumber)
				p.trunk.do("hangup", "")
				p.pbx.waitEvent(e0, "CALL_CLOSED")
				if r := p.n.waitEnded(id); r.Disposition != "no_answer" {
					t.Errorf("record %s: want no_answer", r)
				}
			})
			t.Run("busy", func(t *testing.T) {
				id, c0, _ := p.ring(t, p.trunk, p.pbx, hotlineNumber)
				p.pbx.do("hangup", "")
				if e := p.trunk.waitEvent(c0, "CALL_CLOSED"); !strings.Contains(e.Param, "486") {
					t.Errorf("the caller's call closed with %q, want 486", e.Param)
				}
				if r := p.n.waitEnded(id); r.SIPStatus != 486 || r.Disposition != "busy" {
					t.Errorf("record %s: want 486 busy", r)
				}
			})
		})
	}
}
