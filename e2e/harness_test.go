package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard-sip/switchboard/contacts"
)

// Numbers used by the scenarios (see ../sipp/README.md).
const (
	trunkCaller   = "+4930111222"    // From of the trunk-side UACs
	hotlineNumber = "+49301234560"   // dialled inbound; From of the PBX-side UAC
	externalDest  = "+4989555666"    // dialled outbound by the PBX
	sippTimeout   = 30 * time.Second // sipp -timeout: a hung scenario fails
	sippDeadline  = 45 * time.Second // hard kill of a sipp process
	startTimeout  = 15 * time.Second // switchboard up to a healthy /healthz
	recordTimeout = 10 * time.Second // a call record reaches its expected state
)

// ---------------------------------------------------------------- ports

var (
	portMu    sync.Mutex
	portsUsed = map[int]bool{}
)

// freePort returns a loopback port free for both UDP and TCP, never the same
// twice in one test binary.
func freePort(t testing.TB) int {
	t.Helper()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("free port: %v", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		l.Close()
		if err != nil {
			continue
		}
		u.Close()
		portMu.Lock()
		used := portsUsed[port]
		portsUsed[port] = true
		portMu.Unlock()
		if !used {
			return port
		}
	}
	t.Fatal("free port: no port free for both UDP and TCP")
	return 0
}

// freePortPair returns a port p free (for UDP and TCP) with p+1 free for
// TCP too, both reserved for this test binary.
func freePortPair(t testing.TB) int {
	t.Helper()
	for range 100 {
		p := freePort(t)
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p+1)))
		if err != nil {
			continue
		}
		l.Close()
		portMu.Lock()
		used := portsUsed[p+1]
		portsUsed[p+1] = true
		portMu.Unlock()
		if !used {
			return p
		}
	}
	t.Fatal("free port pair: none found")
	return 0
}

// listening reports whether something listens on the loopback port with
// the transport, from /proc/net (probing with bind would race the owner).
func listening(transport string, port int) bool {
	file, state := "/proc/net/udp", "07"
	if transport == "tcp" {
		file, state = "/proc/net/tcp", "0A"
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return false
	}
	suffix := fmt.Sprintf(":%04X", port)
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) > 3 && strings.HasSuffix(f[1], suffix) && f[3] == state {
			return true
		}
	}
	return false
}

// ---------------------------------------------------------------- processes

// process is a started child with its exit awaited in the background.
type process struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error // valid after done is closed
}

func startProcess(cmd *exec.Cmd) (*process, error) {
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// wait waits up to d for the exit; ok is false on timeout.
func (p *process) wait(d time.Duration) (err error, ok bool) {
	select {
	case <-p.done:
		return p.err, true
	case <-time.After(d):
		return nil, false
	}
}

// kill ends the process with SIGKILL (if still running) and reaps it.
func (p *process) kill() {
	if !p.exited() {
		_ = p.cmd.Process.Kill()
	}
	<-p.done
}

func exitCode(err error) int {
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.ExitCode()
	}
	return -1
}

// dumpFile logs a file (its tail when large) for a failed test.
func dumpFile(t testing.TB, label, path string) {
	b, err := os.ReadFile(path)
	if err != nil || len(b) == 0 {
		return
	}
	const max = 48 << 10
	if len(b) > max {
		b = append([]byte("…(cut)…\n"), b[len(b)-max:]...)
	}
	t.Logf("---- %s (%s) ----\n%s", label, path, b)
}

// ---------------------------------------------------------------- switchboard

// nodeOptions shape the config of one switchboard under test.
type nodeOptions struct {
	// transport of the PBX and trunk legs: "udp" (default) or "tcp".
	transport string
	// drain is sip.drain_timeout (default 5s).
	drain time.Duration
	// match is the trunk's match list (default 127.0.0.1/32).
	match []string
	// keepalive is sip.keepalive; 0 turns probing off (the default here:
	// SIPp's UAS scenarios count an OPTIONS as an unexpected message).
	keepalive time.Duration
	// extraSIP is YAML appended under sip: (indented two spaces).
	extraSIP string
	// pbxPort and trunkPort, when set, are used instead of fresh ports
	// (baresip needs the port above its SIP port free for TLS; several
	// nodes share one PBX).
	pbxPort, trunkPort int
	// name is the node's name (default e2e); storage, when set, replaces
	// the storage section's body (indented two spaces), e.g. PostgreSQL.
	name    string
	storage string
}

// node is one switchboard under test with its ports, config and log.
type node struct {
	t         *testing.T
	opts      nodeOptions
	dir       string
	cfgPath   string
	logPath   string
	sipPort   int // switchboard's SIP port, UDP and TCP
	pbxPort   int // sip.pbx
	trunkPort int // the trunk's outbound
	httpPort  int

	mu   sync.Mutex
	proc *process
	runs int
}

// newNode writes a config for a fresh switchboard, starts it and waits for
// /healthz. The process is killed when the test ends; its log is printed
// when the test failed.
func newNode(t *testing.T, opts nodeOptions) *node {
	t.Helper()
	if opts.name == "" {
		opts.name = "e2e"
	}
	n := prepareNode(t, opts)
	n.launch(n.config(), nil)
	return n
}

// prepareNode fills opts' defaults and picks the node's folder and ports;
// launch then starts it.
func prepareNode(t *testing.T, opts nodeOptions) *node {
	t.Helper()
	requirements(t)
	if opts.transport == "" {
		opts.transport = "udp"
	}
	if opts.drain == 0 {
		opts.drain = 5 * time.Second
	}
	if len(opts.match) == 0 {
		opts.match = []string{"127.0.0.1/32"}
	}
	dir := t.TempDir()
	n := &node{
		t: t, opts: opts, dir: dir,
		cfgPath:   filepath.Join(dir, "switchboard.yaml"),
		logPath:   filepath.Join(dir, "switchboard.log"),
		sipPort:   freePort(t),
		pbxPort:   opts.pbxPort,
		trunkPort: opts.trunkPort,
		httpPort:  freePort(t),
	}
	if n.pbxPort == 0 {
		n.pbxPort = freePort(t)
	}
	if n.trunkPort == 0 {
		n.trunkPort = freePort(t)
	}
	return n
}

// launch writes cfg, stores people in the node's database before the
// start, starts switchboard and waits for /healthz. The process is killed
// when the test ends; its config and log are printed when the test failed.
func (n *node) launch(cfg string, people []contacts.Contact) {
	t := n.t
	t.Helper()
	if err := os.WriteFile(n.cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if len(people) > 0 {
		seedContacts(t, filepath.Join(n.dir, "sb.db"), people)
	}
	t.Cleanup(func() {
		n.mu.Lock()
		p := n.proc
		n.mu.Unlock()
		if p != nil {
			p.kill()
		}
		if t.Failed() {
			dumpFile(t, "switchboard config", n.cfgPath)
			dumpFile(t, "switchboard log", n.logPath)
		}
	})
	n.start()
}

func (n *node) config() string {
	param := ""
	if n.opts.transport == "tcp" {
		param = ";transport=tcp"
	}
	quoted := make([]string, len(n.opts.match))
	for i, m := range n.opts.match {
		quoted[i] = strconv.Quote(m)
	}
	storage := "  dsn: " + filepath.Join(n.dir, "sb.db") + "\n"
	if n.opts.storage != "" {
		storage = n.opts.storage
	}
	return fmt.Sprintf(`node: %[12]s
sip:
  listen: [udp://127.0.0.1:%[1]d, tcp://127.0.0.1:%[1]d]
  pbx: sip:127.0.0.1:%[2]d%[3]s
  trunks:
    - name: carrier
      match: [%[4]s]
      outbound: sip:127.0.0.1:%[5]d%[3]s
      region: DE
      trust_identity: true
  max_call_duration: 1h
  drain_timeout: %[6]s
  keepalive: %[9]s
%[11]s%[10]snumbers:
  region: DE
storage:
%[7]shttp:
  listen: 127.0.0.1:%[8]d
log:
  level: debug
`, n.sipPort, n.pbxPort, param, strings.Join(quoted, ", "), n.trunkPort,
		n.opts.drain, storage, n.httpPort, n.opts.keepalive, n.opts.extraSIP,
		fastPath(), n.opts.name)
}

// fastPath is the sip.fast_path line: SWITCHBOARD_FAST_PATH=0 or =1 runs
// every e2e test with it off or on; unset, the config's default holds.
func fastPath() string {
	switch os.Getenv("SWITCHBOARD_FAST_PATH") {
	case "0":
		return "  fast_path: false\n"
	case "1":
		return "  fast_path: true\n"
	}
	return ""
}

// start runs the binary with the node's config (again, after a stop) and
// waits until /healthz answers 200.
func (n *node) start() {
	t := n.t
	t.Helper()
	f, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	n.runs++
	fmt.Fprintf(f, "==== e2e: start #%d at %s\n", n.runs, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(binPath, "run", "-c", n.cfgPath)
	cmd.Dir = n.dir
	cmd.Stdout, cmd.Stderr = f, f
	p, err := startProcess(cmd)
	f.Close() // the child holds its own descriptor
	if err != nil {
		t.Fatalf("start switchboard: %v", err)
	}
	n.mu.Lock()
	n.proc = p
	n.mu.Unlock()
	n.waitHealthy(p)
}

func (n *node) waitHealthy(p *process) {
	t := n.t
	t.Helper()
	url := fmt.Sprintf("http://127.0.0.1:%d/healthz", n.httpPort)
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(startTimeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	last := "no answer"
	for {
		resp, err := client.Get(url)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			t.Fatalf("switchboard not healthy within %v: %s", startTimeout, last)
		}
		select {
		case <-p.done:
			t.Fatalf("switchboard exited during start-up (status %d)", exitCode(p.err))
		case <-tick.C:
		}
	}
}

func (n *node) current() *process {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.proc
}

// signal sends sig to the running switchboard.
func (n *node) signal(sig syscall.Signal) {
	n.t.Helper()
	if err := n.current().cmd.Process.Signal(sig); err != nil {
		n.t.Fatalf("signal %v: %v", sig, err)
	}
}

// waitExit waits up to d for switchboard to exit and returns its status.
func (n *node) waitExit(d time.Duration) int {
	n.t.Helper()
	err, ok := n.current().wait(d)
	if !ok {
		n.t.Fatalf("switchboard still running %v after the signal", d)
	}
	return exitCode(err)
}

// kill ends switchboard with SIGKILL, as a crash would.
func (n *node) kill() {
	n.t.Helper()
	n.signal(syscall.SIGKILL)
	n.waitExit(5 * time.Second)
}

// waitLog waits up to d for a line of the switchboard log that contains
// all the substrings (case-insensitive); it reports whether one came.
func (n *node) waitLog(d time.Duration, subs ...string) bool {
	deadline := time.Now().Add(d)
	for {
		if b, err := os.ReadFile(n.logPath); err == nil {
			for _, line := range strings.Split(strings.ToLower(string(b)), "\n") {
				all := true
				for _, s := range subs {
					all = all && strings.Contains(line, strings.ToLower(s))
				}
				if all {
					return true
				}
			}
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond) // polling a file: no event to await
	}
}

// sipAddr is switchboard's SIP address for the UACs.
func (n *node) sipAddr() string { return fmt.Sprintf("127.0.0.1:%d", n.sipPort) }

// ---------------------------------------------------------------- call records

// callRecord is a call record as GET /api/calls returns it (SPEC §8).
type callRecord struct {
	ID          any        `json:"id"`
	CallID      string     `json:"call_id"`
	Direction   string     `json:"direction"`
	Caller      string     `json:"caller"`
	CallerRaw   string     `json:"caller_raw"`
	Called      string     `json:"called"`
	CalledRaw   string     `json:"called_raw"`
	Hotline     string     `json:"hotline"`
	Node        string     `json:"node"`
	StartedAt   *time.Time `json:"started_at"`
	RingingAt   *time.Time `json:"ringing_at"`
	AnsweredAt  *time.Time `json:"answered_at"`
	EndedAt     *time.Time `json:"ended_at"`
	RingMS      int64      `json:"ring_ms"`
	TalkMS      int64      `json:"talk_ms"`
	SIPStatus   int        `json:"sip_status"`
	Disposition string     `json:"disposition"`
	Recording   string     `json:"recording"`
	EndReason   string     `json:"end_reason"`
}

func (r callRecord) String() string {
	b, _ := json.Marshal(r)
	return string(b)
}

// calls fetches the newest call records.
func (n *node) calls() ([]callRecord, error) {
	return getList[callRecord](n, "/api/calls?limit=100")
}

// getList fetches a list endpoint and checks its SPEC §8 shape
// ({"items": [...], "next": ""}).
func getList[T any](n *node, path string) ([]T, error) {
	client := &http.Client{Timeout: 2 * time.Second}
	resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d%s", n.httpPort, path))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %s", path, resp.Status, body)
	}
	var list struct {
		Items []T     `json:"items"`
		Next  *string `json:"next"`
	}
	if err := json.Unmarshal(body, &list); err != nil || list.Items == nil || list.Next == nil {
		return nil, fmt.Errorf(`GET %s: want {"items": [...], "next": ""}, got %s (%v)`, path, body, err)
	}
	return list.Items, nil
}

// waitRecord polls the API until the record of callID satisfies cond
// (records are written asynchronously) and returns it.
func (n *node) waitRecord(callID, what string, cond func(callRecord) bool) callRecord {
	t := n.t
	t.Helper()
	deadline := time.Now().Add(recordTimeout)
	var last string
	for {
		list, err := n.calls()
		if err != nil {
			last = err.Error()
		} else {
			last = fmt.Sprintf("no record with call_id %q among %d", callID, len(list))
			for _, r := range list {
				if r.CallID == callID {
					if cond(r) {
						return r
					}
					last = r.String()
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("call record %s: not %s within %v; last seen: %s", callID, what, recordTimeout, last)
		}
		time.Sleep(50 * time.Millisecond) // records are written asynchronously: poll
	}
}

// waitEnded waits for the record of callID to have ended_at set.
func (n *node) waitEnded(callID string) callRecord {
	n.t.Helper()
	r := n.waitRecord(callID, "ended", func(r callRecord) bool { return r.EndedAt != nil })
	n.t.Logf("call record: %s", r)
	return r
}

// ---------------------------------------------------------------- sipp

// sippSpec describes one SIPp run (one call unless calls is set).
type sippSpec struct {
	name      string        // label in logs: "trunk", "pbx", …
	scenario  string        // file name in ../sipp
	transport string        // "udp" or "tcp"
	localIP   string        // -i, default 127.0.0.1
	port      int           // -p, 0 = a fresh free port
	remote    string        // host:port to call; empty for a UAS
	service   string        // -s, the dialled number
	pause     time.Duration // -d
	calls     int           // -m, default 1
	extra     []string      // further sipp arguments
}

// sippRun is a running or finished SIPp process with its trace files.
type sippRun struct {
	spec   sippSpec
	dir    string
	callID string // Call-ID of the first call
	base   string // Call-IDs are base-1, base-2, …
	proc   *process
	cancel context.CancelFunc
}

var nameRE = regexp.MustCompile(`[^A-Za-z0-9]+`)

// startSIPp starts SIPp in the foreground with a hard deadline; the process
// is killed when the test ends and its traces are printed when it failed.
// A UAS is awaited until it listens.
func startSIPp(t *testing.T, spec sippSpec) *sippRun {
	t.Helper()
	requirements(t)
	if spec.transport == "" {
		spec.transport = "udp"
	}
	if spec.localIP == "" {
		spec.localIP = "127.0.0.1"
	}
	if spec.port == 0 {
		spec.port = freePort(t)
	}
	if spec.calls == 0 {
		spec.calls = 1
	}
	dir := filepath.Join(t.TempDir(), spec.name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	mode := "u1"
	if spec.transport == "tcp" {
		mode = "t1"
	}
	callID := fmt.Sprintf("e2e-%s-%s-%d", nameRE.ReplaceAllString(t.Name(), "."), spec.name, time.Now().UnixNano())
	args := []string{
		"-sf", filepath.Join(scenarioDir, spec.scenario),
		"-t", mode,
		"-i", spec.localIP,
		"-p", strconv.Itoa(spec.port),
		"-m", strconv.Itoa(spec.calls),
		"-nostdin",
		"-timeout", fmt.Sprintf("%ds", int(sippTimeout/time.Second)),
		"-timeout_error",
		"-cid_str", callID + "-%u",
		"-trace_msg", "-message_file", filepath.Join(dir, "messages.log"),
		"-trace_err", "-error_file", filepath.Join(dir, "errors.log"),
		"-trace_logs", "-log_file", filepath.Join(dir, "logs.log"),
	}
	if spec.service != "" {
		args = append(args, "-s", spec.service)
	}
	if spec.pause > 0 {
		args = append(args, "-d", strconv.FormatInt(spec.pause.Milliseconds(), 10))
	}
	args = append(args, spec.extra...)
	if spec.remote != "" {
		args = append(args, spec.remote)
	}
	ctx, cancel := context.WithTimeout(context.Background(), sippDeadline)
	cmd := exec.CommandContext(ctx, sippPath, args...)
	cmd.Dir = dir
	screen, err := os.Create(filepath.Join(dir, "screen.log"))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	fmt.Fprintf(screen, "$ sipp %s\n", strings.Join(args, " "))
	cmd.Stdout, cmd.Stderr = screen, screen
	p, err := startProcess(cmd)
	screen.Close()
	if err != nil {
		cancel()
		t.Fatalf("start sipp %s: %v", spec.name, err)
	}
	r := &sippRun{spec: spec, dir: dir, callID: callID + "-1", base: callID, proc: p, cancel: cancel}
	t.Cleanup(func() {
		p.kill()
		cancel()
		if t.Failed() {
			r.dump(t)
		}
	})
	if spec.remote == "" {
		r.waitListening(t)
	}
	return r
}

// nthCallID is the Call-ID of the run's k-th call (from 1).
func (r *sippRun) nthCallID(k int) string { return fmt.Sprintf("%s-%d", r.base, k) }

func (r *sippRun) dump(t testing.TB) {
	for _, f := range []string{"screen.log", "errors.log", "logs.log", "messages.log"} {
		dumpFile(t, "sipp "+r.spec.name+" "+r.spec.scenario+" "+f, filepath.Join(r.dir, f))
	}
}

func (r *sippRun) waitListening(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !listening(r.spec.transport, r.spec.port) {
		if r.proc.exited() {
			t.Fatalf("sipp %s exited before listening (status %d)", r.spec.name, exitCode(r.proc.err))
		}
		if time.Now().After(deadline) {
			t.Fatalf("sipp %s not listening on %s port %d", r.spec.name, r.spec.transport, r.spec.port)
		}
		time.Sleep(5 * time.Millisecond) // polling /proc: no event to await
	}
}

// wait waits for SIPp to finish and returns its exit status.
func (r *sippRun) wait(t *testing.T) int {
	t.Helper()
	err, ok := r.proc.wait(sippDeadline + 5*time.Second)
	if !ok {
		t.Fatalf("sipp %s still running after %v", r.spec.name, sippDeadline)
	}
	return exitCode(err)
}

// succeed waits for SIPp and fails the test unless its call succeeded
// (exit status 0: every message of the scenario as expected).
func (r *sippRun) succeed(t *testing.T) {
	t.Helper()
	if code := r.wait(t); code != 0 {
		t.Errorf("sipp %s (%s) exited with status %d, want 0 (call failed)", r.spec.name, r.spec.scenario, code)
	}
}

// ---------------------------------------------------------------- SIP traces

// sipMsg is one message of a SIPp message trace.
type sipMsg struct {
	sent bool
	text string
}

func (m sipMsg) firstLine() string {
	line, _, _ := strings.Cut(m.text, "\n")
	return strings.TrimSpace(line)
}

// header returns the values of a header (full name, case-insensitive).
func (m sipMsg) header(name string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(m.text))
	sc.Scan() // start line
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if line == "" {
			break
		}
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.EqualFold(strings.TrimSpace(k), name) {
			out = append(out, strings.TrimSpace(v))
		}
	}
	return out
}

// messages parses the -trace_msg file of the run.
func (r *sippRun) messages(t *testing.T) []sipMsg {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(r.dir, "messages.log"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []sipMsg
	var cur *sipMsg
	var body bytes.Buffer
	flush := func() {
		if cur != nil {
			cur.text = strings.TrimLeft(body.String(), "\r\n")
			out = append(out, *cur)
		}
		cur = nil
		body.Reset()
	}
	for _, line := range strings.SplitAfter(string(b), "\n") {
		switch {
		case strings.HasPrefix(line, "----------------------------------------------- "):
			flush()
		case cur == nil && strings.Contains(line, " message sent "):
			cur = &sipMsg{sent: true}
		case cur == nil && strings.Contains(line, " message received "):
			cur = &sipMsg{}
		case cur != nil:
			body.WriteString(line)
		}
	}
	flush()
	return out
}

// received returns the messages SIPp received whose start line begins with
// prefix ("INVITE ", "SIP/2.0 503", …).
func (r *sippRun) received(t *testing.T, prefix string) []sipMsg {
	t.Helper()
	var out []sipMsg
	for _, m := range r.messages(t) {
		if !m.sent && strings.HasPrefix(m.firstLine(), prefix) {
			out = append(out, m)
		}
	}
	return out
}
