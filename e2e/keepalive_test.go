package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestKeepaliveDeadPBX: with sip.keepalive set, a PBX that stops answering
// OPTIONS shows as down in /healthz and /metrics, and a new call gets 503
// with Retry-After within a second instead of waiting 32 s (SPEC §1).
func TestKeepaliveDeadPBX(t *testing.T) {
	t.Parallel()
	n := newNode(t, nodeOptions{keepalive: 200 * time.Millisecond})
	pbx, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: n.pbxPort})
	if err != nil {
		t.Fatalf("PBX socket: %v", err)
	}
	defer pbx.Close()
	var alive atomic.Bool
	alive.Store(true)
	go answerOptions(pbx, &alive)

	n.waitTarget(t, "pbx", true)
	alive.Store(false)
	n.waitTarget(t, "pbx", false)
	metric := fmt.Sprintf(`switchboard_sip_target_up{target="pbx",uri="sip:127.0.0.1:%d"} 0`, n.pbxPort)
	if m := n.get(t, "/metrics"); !strings.Contains(m, metric) {
		t.Errorf("/metrics lacks %s", metric)
	}

	caller, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer caller.Close()
	me := caller.LocalAddr().String()
	invite := "INVITE sip:" + hotlineNumber + "@" + n.sipAddr() + " SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP " + me + ";branch=z9hG4bK-dead1;rport\r\nMax-Forwards: 70\r\n" +
		"From: <sip:" + trunkCaller + "@" + me + ">;tag=a\r\nTo: <sip:" + hotlineNumber + "@" + n.sipAddr() + ">\r\n" +
		"Call-ID: dead-pbx-1\r\nCSeq: 1 INVITE\r\nContact: <sip:c@" + me + ">\r\nContent-Length: 0\r\n\r\n"
	begin := time.Now()
	if _, err := caller.WriteToUDP([]byte(invite), &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: n.sipPort}); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	for {
		_ = caller.SetReadDeadline(begin.Add(5 * time.Second))
		k, _, err := caller.ReadFromUDP(buf)
		if err != nil {
			t.Fatalf("no final response: %v", err)
		}
		msg := string(buf[:k])
		if strings.HasPrefix(msg, "SIP/2.0 1") {
			continue
		}
		took := time.Since(begin)
		if !strings.HasPrefix(msg, "SIP/2.0 503") || !strings.Contains(msg, "\r\nRetry-After: ") || took > time.Second {
			t.Errorf("after %s got:\n%s\nwant 503 with Retry-After within 1 s", took, msg)
		}
		break
	}
	r := n.waitEnded("dead-pbx-1")
	if r.SIPStatus != 503 || r.Disposition != "failed" {
		t.Errorf("record %s: want status 503, failed", r)
	}
}

// answerOptions answers every OPTIONS with 200 while alive is set.
func answerOptions(c *net.UDPConn, alive *atomic.Bool) {
	buf := make([]byte, 4096)
	for {
		k, from, err := c.ReadFromUDP(buf)
		if err != nil {
			return
		}
		msg := string(buf[:k])
		if !alive.Load() || !strings.HasPrefix(msg, "OPTIONS ") {
			continue
		}
		head, _, _ := strings.Cut(msg, "\r\n\r\n")
		var b strings.Builder
		b.WriteString("SIP/2.0 200 OK\r\n")
		for _, l := range strings.Split(head, "\r\n")[1:] {
			name, _, _ := strings.Cut(l, ":")
			switch strings.ToLower(strings.TrimSpace(name)) {
			case "via", "from", "to", "call-id", "cseq":
				b.WriteString(l + "\r\n")
			}
		}
		b.WriteString("Content-Length: 0\r\n\r\n")
		_, _ = c.WriteToUDP([]byte(b.String()), from)
	}
}

// get fetches an HTTP path of the node and returns the body.
func (n *node) get(t *testing.T, path string) string {
	t.Helper()
	client := &http.Client{Timeout: 2 * time.Second}
	resp, err := client.Get("http://127.0.0.1:" + strconv.Itoa(n.httpPort) + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// waitTarget waits until /healthz reports the keep-alive target up or down.
func (n *node) waitTarget(t *testing.T, name string, up bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		last = n.get(t, "/healthz")
		var h struct {
			Status  string `json:"status"`
			Targets []struct {
				Name      string    `json:"name"`
				Up        bool      `json:"up"`
				CheckedAt time.Time `json:"checked_at"`
			} `json:"sip_targets"`
		}
		if err := json.Unmarshal([]byte(last), &h); err == nil {
			for _, s := range h.Targets {
				if s.Name == name && s.Up == up && !s.CheckedAt.IsZero() {
					return
				}
			}
		}
		time.Sleep(50 * time.Millisecond) // polling an HTTP endpoint: no event to await
	}
	t.Fatalf("/healthz never showed %s up=%v; last: %s", name, up, last)
}
