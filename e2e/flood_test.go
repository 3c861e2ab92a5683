package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestStrangerFlood measures what a flood from strangers costs: INVITE,
// OPTIONS and REGISTER from 127.0.0.2-9 at 20,000 requests a second, first
// alone (switchboard's CPU per dropped request, from /proc), then while
// SIPp places legitimate calls from the trunk at 100 calls/s: every call
// must complete and no stranger may get an answer. It runs only with
// SWITCHBOARD_FLOOD=1 (a measurement, several seconds of load):
//
//	SWITCHBOARD_FLOOD=1 go test -count=1 -v -run TestStrangerFlood ./e2e
func TestStrangerFlood(t *testing.T) {
	if os.Getenv("SWITCHBOARD_FLOOD") != "1" {
		t.Skip("a measurement: set SWITCHBOARD_FLOOD=1")
	}
	const (
		rate  = 20000 // stranger requests a second
		phase = 5 * time.Second
		calls = 500 // legitimate calls at 100 calls/s
	)
	n := newNode(t, nodeOptions{match: []string{"127.0.0.1/32"}})
	pid := n.current().cmd.Process.Pid
	var senders []*net.UDPConn
	for i := 2; i <= 9; i++ {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, byte(i))})
		if err != nil {
			t.Skipf("cannot bind 127.0.0.%d: %v", i, err)
		}
		defer c.Close()
		senders = append(senders, c)
	}
	dst, _ := net.ResolveUDPAddr("udp", n.sipAddr())
	msgs := floodMessages(senders, n.sipAddr())
	flood := func(d time.Duration) int {
		sent := 0
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		end := time.Now().Add(d)
		for start := time.Now(); time.Now().Before(end); <-tick.C {
			due := int(time.Since(start).Seconds()*rate) - sent
			for range due {
				k := sent % len(msgs)
				_, _ = senders[k%len(senders)].WriteToUDP(msgs[k], dst)
				sent++
			}
		}
		return sent
	}

	idle0 := procCPU(t, pid)
	time.Sleep(phase)
	idle := procCPU(t, pid) - idle0
	cpu0 := procCPU(t, pid)
	if addr := os.Getenv("SWITCHBOARD_PPROF"); addr != "" {
		go saveProfile(t, addr, phase-time.Second) // where the time goes
	}
	sent := flood(phase)
	cpu := procCPU(t, pid) - cpu0 - idle
	t.Logf("strangers alone: %d requests in %v, switchboard CPU %v beyond idle (%v idle): %.2f µs per dropped request",
		sent, phase, cpu, idle, float64(cpu.Microseconds())/float64(sent))

	pbx := startSIPp(t, sippSpec{name: "pbx", scenario: "uas_answer.xml", port: n.pbxPort, calls: calls})
	run := startSIPp(t, sippSpec{name: "trunk", scenario: "uac_answer.xml", remote: n.sipAddr(), service: hotlineNumber,
		pause: 200 * time.Millisecond, calls: calls, extra: []string{"-r", "100", "-l", "200"}})
	sent = flood(time.Duration(calls/100+1) * time.Second)
	code := run.wait(t)
	done := completed(t, run)
	pbx.proc.kill()
	t.Logf("with %d stranger requests at %d/s: %d of %d legitimate calls completed (sipp exit %d)", sent, rate, len(done), calls, code)
	if len(done) < calls*999/1000 {
		t.Errorf("%d of %d legitimate calls completed during the flood, want ≥ 99.9 %%", len(done), calls)
	}
	for i, c := range senders {
		_ = c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		if k, _, err := c.ReadFromUDP(make([]byte, 2048)); err == nil {
			t.Errorf("stranger 127.0.0.%d got an answer (%d bytes)", i+2, k)
		}
	}
	if m := n.get(t, "/metrics"); !strings.Contains(m, `switchboard_sip_dropped_total{reason="stranger"}`) {
		t.Error("/metrics does not count the dropped strangers")
	}
}

// floodMessages are a scanner's requests from each sender: INVITE,
// OPTIONS and REGISTER, each with its own Call-ID.
func floodMessages(senders []*net.UDPConn, to string) [][]byte {
	var out [][]byte
	for i, s := range senders {
		me := s.LocalAddr().String()
		for j, m := range []string{"INVITE", "OPTIONS", "REGISTER"} {
			id := fmt.Sprintf("flood-%d-%d", i, j)
			out = append(out, []byte(m+" sip:100@"+to+" SIP/2.0\r\nVia: SIP/2.0/UDP "+me+";branch=z9hG4bK-"+id+";rport\r\n"+
				"Max-Forwards: 70\r\nFrom: \"100\" <sip:100@"+to+">;tag="+id+"\r\nTo: <sip:100@"+to+">\r\n"+
				"Call-ID: "+id+"\r\nCSeq: 1 "+m+"\r\nUser-Agent: friendly-scanner\r\nContact: <sip:100@"+me+">\r\n"+
				"Content-Length: 0\r\n\r\n"))
		}
	}
	return out
}

// procCPU is a process's user and system time so far (/proc, Linux).
func procCPU(t *testing.T, pid int) time.Duration {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	// Fields after the command name (which may hold spaces) in ")".
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond // USER_HZ is 100 on Linux
}

// saveProfile writes a CPU profile of the running switchboard (started
// with SWITCHBOARD_PPROF) to flood.prof in the working directory.
func saveProfile(t *testing.T, addr string, d time.Duration) {
	resp, err := http.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, int(d.Seconds())))
	if err != nil {
		t.Logf("profile: %v", err)
		return
	}
	defer resp.Body.Close()
	f, err := os.Create("flood.prof")
	if err != nil {
		return
	}
	defer f.Close()
	_, _ = io.Copy(f, resp.Body)
}
