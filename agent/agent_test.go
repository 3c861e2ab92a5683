package agent

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/switchboard-sip/switchboard/blocking"
	"github.com/switchboard-sip/switchboard/configs"
)

const (
	spammer = "+4915112345678" // blocked by the test config
	hotline = "+49301234560"
)

// testConfig is a config on free loopback ports with one block entry;
// extra is appended (more top-level keys).
func testConfig(t *testing.T, dir string, sipPort, httpPort int, extra string) *configs.Config {
	t.Helper()
	text := fmt.Sprintf(`
sip:
  listen: [udp://127.0.0.1:%d]
  pbx: sip:127.0.0.1:5080
  trunks: [{name: carrier, match: [127.0.0.1/32], region: DE}]
storage: {dsn: %q}
http: {listen: "127.0.0.1:%d"}
log: {level: error}
hotlines:
  - {name: acme, numbers: [%q], company: ACME GmbH}
%s`, sipPort, filepath.Join(dir, "sb.db"), httpPort, hotline, extra)
	if !strings.Contains(extra, "blocking:") {
		text += fmt.Sprintf("blocking:\n  entries: [{number: %q, action: block, reason: spam}]\n", spammer)
	}
	if !strings.Contains(extra, "numbers:") {
		text += "numbers: {region: DE}\n"
	}
	path := filepath.Join(dir, fmt.Sprintf("sb-%d.yaml", time.Now().UnixNano()))
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := configs.Load(path)
	if err != nil {
		t.Fatalf("config: %v\n%s", err, text)
	}
	return cfg
}

// freePort is a loopback port free for UDP and TCP at the time of asking.
func freePort(t *testing.T) int {
	t.Helper()
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", l.Addr().String())
		l.Close()
		if err == nil {
			u.Close()
			return port
		}
	}
	t.Fatal("no free port")
	return 0
}

// testAgent is a running agent with its ports.
type testAgent struct {
	*Agent
	dir               string
	sipPort, httpPort int
}

func startAgent(t *testing.T, extra string) *testAgent {
	t.Helper()
	ta := &testAgent{dir: t.TempDir(), sipPort: freePort(t), httpPort: freePort(t)}
	a, err := New(ta.config(t, extra), zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	ta.Agent = a
	return ta
}

func (ta *testAgent) config(t *testing.T, extra string) *configs.Config {
	return testConfig(t, ta.dir, ta.sipPort, ta.httpPort, extra)
}

func (ta *testAgent) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d%s", ta.httpPort, path))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// invite sends one INVITE from number over UDP, written line by line, and
// returns the final status; the non-2xx final is acknowledged (RFC 3261
// §17.1.1.3).
func (ta *testAgent) invite(t *testing.T, from string) int {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Error(err)
		return 0
	}
	defer conn.Close()
	local := conn.LocalAddr().String()
	callID := fmt.Sprintf("agent-test-%d", time.Now().UnixNano())
	branch := "z9hG4bK" + strconv.FormatInt(time.Now().UnixNano(), 36)
	head := func(method, to string) string {
		return fmt.Sprintf("%s sip:%s@127.0.0.1:%d SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=%s\r\nMax-Forwards: 70\r\n"+
			"From: <sip:%s@127.0.0.1>;tag=t1\r\nTo: %s\r\nCall-ID: %s\r\nCSeq: 1 %s\r\n",
			method, hotline, ta.sipPort, local, branch, from, to, callID, method)
	}
	dst := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: ta.sipPort}
	msg := head("INVITE", "<sip:"+hotline+"@127.0.0.1>") + "Contact: <sip:caller@" + local + ">\r\nContent-Length: 0\r\n\r\n"
	if _, err := conn.WriteTo([]byte(msg), dst); err != nil {
		t.Error(err)
		return 0
	}
	buf := make([]byte, 65535)
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn.SetReadDeadline(deadline)
		n, _, err := conn.ReadFrom(buf)
		if err != nil {
			t.Errorf("INVITE from %s: no final response: %v", from, err)
			return 0
		}
		resp := string(buf[:n])
		code, _ := strconv.Atoi(strings.Fields(resp + " x x")[1])
		if code < 200 {
			continue
		}
		to := regexp.MustCompile(`(?mi)^To:\s*(.*?)\r$`).FindStringSubmatch(resp)
		if code >= 300 && len(to) == 2 {
			conn.WriteTo([]byte(head("ACK", to[1])+"Content-Length: 0\r\n\r\n"), dst)
		}
		return code
	}
}

// metric reads one sample of /metrics, 0 when absent.
func (ta *testAgent) metric(t *testing.T, sample string) float64 {
	t.Helper()
	_, body := ta.get(t, "/metrics")
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), sample+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return 0
}

// A blocked call counts in switchboard_blocked_calls_total (SPEC §8) and
// in the calls counter with its disposition.
func TestBlockedCallMetric(t *testing.T) {
	ta := startAgent(t, "")
	const sample = `switchboard_blocked_calls_total{direction="inbound"}`
	if got := ta.metric(t, sample); got != 0 {
		t.Fatalf("before any call: %s = %v", sample, got)
	}
	for i := range 2 {
		if code := ta.invite(t, spammer); code != 603 {
			t.Fatalf("call %d from the blocked number: %d, want 603", i, code)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for ta.metric(t, sample) != 2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if got := ta.metric(t, sample); got != 2 {
		t.Errorf("%s = %v after two blocked calls, want 2", sample, got)
	}
	calls := `switchboard_calls_total{direction="inbound",disposition="blocked",hotline=""}`
	if got := ta.metric(t, calls); got != 2 {
		t.Errorf("%s = %v, want 2", calls, got)
	}
}

// A refused reload changes nothing: the block list of the old config stays
// in force even when the new one dropped the entry (the old code swapped
// the block list before the stages compiled).
func TestRefusedReloadKeepsBlocking(t *testing.T) {
	ta := startAgent(t, "")
	noBlock := "blocking: {entries: []}\n"
	tests := []struct {
		name string
		cfg  func() *configs.Config
	}{
		{"stage does not compile", func() *configs.Config {
			c := ta.config(t, noBlock)
			c.Blocking.Anonymous = "sometimes" // as a caller bypassing configs.Validate could pass
			return c
		}},
		{"rule does not compile", func() *configs.Config {
			c := ta.config(t, noBlock)
			c.Rules = []configs.Rule{{Name: "bad", When: "caller.e164 ==", Then: configs.Action{Tag: []string{"x"}}}}
			return c
		}},
		{"announcement missing", func() *configs.Config {
			c := ta.config(t, noBlock)
			c.Blocking.Announcement = filepath.Join(ta.dir, "missing.wav")
			return c
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := ta.Reload(tc.cfg()); err == nil {
				t.Fatal("reload accepted")
			}
			if m := ta.blocks.Lookup(spammer, blocking.In); !m.Blocked {
				t.Errorf("after the refused reload %s is no longer blocked", spammer)
			}
			if code := ta.invite(t, spammer); code != 603 {
				t.Errorf("call from %s: %d, want 603", spammer, code)
			}
		})
	}
	// A valid reload without the entry does unblock: the test can fail.
	if err := ta.Reload(ta.config(t, noBlock)); err != nil {
		t.Fatal(err)
	}
	if ta.blocks.Lookup(spammer, blocking.In).Blocked {
		t.Errorf("after a valid reload without the entry %s is still blocked", spammer)
	}
}

// A reload of numbers.region reaches the API: a national number is read
// with the new region.
func TestReloadNumbersRegion(t *testing.T) {
	ta := startAgent(t, "")
	body := strings.NewReader(`{"name": "Marie Curie", "numbers": ["+33 1 23 45 67 89"]}`)
	resp, err := http.Post(fmt.Sprintf("http://127.0.0.1:%d/api/contacts", ta.httpPort), "application/json", body)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST /api/contacts: %s", resp.Status)
	}
	find := func() int {
		code, body := ta.get(t, "/api/contacts?number="+url.QueryEscape("01 23 45 67 89"))
		if code != http.StatusOK {
			return 0
		}
		var list struct{ Items []json.RawMessage }
		if err := json.Unmarshal([]byte(body), &list); err != nil {
			t.Fatalf("%v: %s", err, body)
		}
		return len(list.Items)
	}
	if n := find(); n != 0 {
		t.Fatalf("with region DE the French national number found %d contacts", n)
	}
	if err := ta.Reload(ta.config(t, "numbers: {region: FR}\n")); err != nil {
		t.Fatal(err)
	}
	if n := find(); n != 1 {
		t.Errorf("after the reload to region FR: %d contacts, want 1", n)
	}
}

// Reloads while calls, API requests and the housekeeping run: with -race
// this finds any config read that a reload can race (the old agent wrote
// its config under the housekeeping goroutine).
func TestReloadUnderLoad(t *testing.T) {
	old := housekeepEvery
	housekeepEvery = 2 * time.Millisecond
	t.Cleanup(func() { housekeepEvery = old })
	ta := startAgent(t, "")
	configsToggle := []*configs.Config{
		ta.config(t, "numbers: {region: FR}\nmissed: {min_ring: 3s}\n"),
		ta.config(t, "timezone: Europe/Berlin\n"),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	var calls int
	var mu sync.Mutex
	for w := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 15 && ctx.Err() == nil; i++ {
				code := ta.invite(t, spammer)
				if w == 0 {
					ta.get(t, "/api/contacts?number=0301234567")
				}
				mu.Lock()
				calls++
				mu.Unlock()
				if code == 0 {
					return
				}
			}
		}()
	}
	for i := 0; i < 30 && ctx.Err() == nil; i++ {
		if err := ta.Reload(configsToggle[i%2]); err != nil {
			t.Fatalf("reload %d: %v", i, err)
		}
		_ = ta.Config().Storage.Retention.D()
		time.Sleep(5 * time.Millisecond)
	}
	wg.Wait()
	if calls != 45 {
		t.Errorf("%d calls completed, want 45", calls)
	}
}

// The routing takes the URIs configs parsed as they are: a sips: PBX
// without a port is reached on 5061 (the old second parser said 5060), and
// a trunk's transport parameter reaches the forwarded request.
func TestRoutingFromConfigURIs(t *testing.T) {
	cfg, err := configs.Parse([]byte(`
sip:
  listen: [udp://127.0.0.1:0]
  pbx: sips:127.0.0.1
  trunks: [{name: carrier, match: [127.0.0.1/32], outbound: "sip:carrier@192.0.2.7:5070;transport=tcp"}]
`))
	if err != nil {
		t.Fatal(err)
	}
	r, err := buildRouting(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got := r.PBX.String(); got != "127.0.0.1:5061" {
		t.Errorf("PBX address %s, want 127.0.0.1:5061", got)
	}
	if got := r.PBXURI.String(); got != "sips:127.0.0.1" {
		t.Errorf("PBX URI %s, want sips:127.0.0.1", got)
	}
	out := r.Trunks[0].Outbound
	if out == nil || out.String() != "sip:carrier@192.0.2.7:5070;transport=tcp" {
		t.Errorf("trunk outbound %v, want sip:carrier@192.0.2.7:5070;transport=tcp", out)
	}
}
