package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/emiago/sipgo"
	gosip "github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/agent"
	"github.com/switchboard-sip/switchboard/configs"
	"github.com/switchboard-sip/switchboard/contacts"
)

const demoUsage = `usage: switchboard demo [--http ADDR] [--duration D] [--pace D] [--token T]

Starts switchboard on loopback with a demo config, a simulated PBX and a
simulated carrier trunk placing a varied stream of calls (answered, missed,
busy, blocked, to two hotlines, from known and new callers). Open the board
URL it prints; Ctrl-C stops it.
`

// demoConfig is the demo's switchboard config; the %s are filled with
// free loopback ports and a temporary database.
const demoConfig = `node: demo
sip:
  listen: [udp://127.0.0.1:%[1]d]
  pbx: sip:127.0.0.1:%[2]d
  trunks:
    - name: carrier
      match: [127.0.0.1/32]
      outbound: sip:127.0.0.1:%[3]d
      region: DE
      trust_identity: true
  drain_timeout: 2s
numbers:
  region: DE
  internal: ["2xx"]
storage:
  dsn: %[4]s
blocking:
  entries:
    - {number: "+4915112345678", action: block, reason: "spam (demo)"}
hotlines:
  - name: acme
    numbers: ["+49301234560"]
    company: ACME GmbH
    greeting: "Good {{daypart .Now}}, ACME GmbH, this is the front desk, how can I help?"
    display: "{{.Hotline.Company}}: {{with .Contact}}{{.Name}}{{else}}{{.Caller.National}}{{end}}"
    caller_name_prefix: "ACME: "
  - name: globex
    numbers: ["+49301234570"]
    company: Globex Corporation
    greeting: "Globex Corporation, good {{daypart .Now}}!"
    display: "Globex: {{with .Contact}}{{.Name}}{{else}}{{.Caller.National}}{{end}}"
    caller_name_prefix: "Globex: "
missed:
  min_ring: 1s
http:
  listen: %[5]s
  token: %[6]q
log:
  level: warn
`

// Hotline numbers of the demo config.
const (
	demoACME   = "+49301234560"
	demoGlobex = "+49301234570"
)

// demoContact is a caller the demo imports before the first call.
type demoContact struct{ name, company, number string }

var demoContacts = []demoContact{
	{"Jane Doe", "Doe Consulting", "+4930111222"},
	{"Max Mustermann", "Mustermann & Söhne", "+498955512345"},
	{"Aiko Tanaka", "Tanaka Trading", "+4917612345678"},
}

// demoOutcome is what the simulated PBX and caller do with one call.
type demoOutcome int

const (
	demoAnswer  demoOutcome = iota // rings, answered, talk, PBX hangs up
	demoMissed                     // rings until the caller gives up
	demoBusy                       // the PBX answers 486
	demoBlocked                    // switchboard refuses the caller
)

func (o demoOutcome) String() string {
	return [...]string{"answered", "missed", "busy", "blocked"}[o]
}

// demoCall is one call of the script.
type demoCall struct {
	from, name, to string
	outcome        demoOutcome
	ring, talk     time.Duration
}

// demoScript is the repeating stream of calls: every kind of outcome, both
// hotlines, known callers and new ones.
var demoScript = []demoCall{
	{"+4930111222", "Jane Doe", demoACME, demoAnswer, 3 * time.Second, 8 * time.Second},
	{"+4940987654", "", demoGlobex, demoMissed, 6 * time.Second, 0},
	{"+4915112345678", "Win A Prize", demoACME, demoBlocked, 0, 0},
	{"+498955512345", "", demoGlobex, demoAnswer, 2 * time.Second, 5 * time.Second},
	{"+4917612345678", "Aiko", demoACME, demoBusy, 2 * time.Second, 0},
	{"+4922155599", "Neue Kundin", demoACME, demoAnswer, 4 * time.Second, 6 * time.Second},
	{"+4930111222", "Jane Doe", demoGlobex, demoMissed, 5 * time.Second, 0},
	{"+436641234567", "", demoGlobex, demoAnswer, 3 * time.Second, 4 * time.Second},
}

// demoCommand is `switchboard demo` (SPEC §6).
func demoCommand(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, demoUsage); fs.PrintDefaults() }
	httpAddr := fs.String("http", "127.0.0.1:8080", "address of the board (a free port is taken when it is in use)")
	duration := fs.Duration("duration", 0, "stop after this long (0: run until Ctrl-C)")
	pace := fs.Duration("pace", 4*time.Second, "time between two new calls")
	speed := fs.Float64("speed", 1, "ring and talk times are divided by this")
	token := fs.String("token", "", "API token: the board then asks for it")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *pace <= 0 || *speed <= 0 {
		fmt.Fprintln(stderr, "switchboard demo: --pace and --speed must be positive")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	// sipgo logs through the default slog logger in places; the simulated
	// phones' chatter would drown the summary.
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer slog.SetDefault(old)
	d := &demo{out: stdout, pace: *pace, speed: *speed}
	if err := d.run(ctx, *httpAddr, *token, stderr); err != nil {
		fmt.Fprintln(stderr, "switchboard demo:", err)
		return 1
	}
	return 0
}

type demo struct {
	out   io.Writer
	pace  time.Duration
	speed float64

	sipPort, pbxPort, trunkPort int

	mu     sync.Mutex
	plans  map[string]demoCall // Call-ID → what the PBX does with it
	counts map[string]int      // outcome as seen by the caller → calls
}

func (d *demo) printf(format string, args ...any) {
	d.mu.Lock()
	defer d.mu.Unlock()
	fmt.Fprintf(d.out, format, args...)
}

func (d *demo) scaled(t time.Duration) time.Duration { return time.Duration(float64(t) / d.speed) }

func (d *demo) run(ctx context.Context, httpAddr, token string, stderr io.Writer) error {
	dir, err := os.MkdirTemp("", "switchboard-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ports, err := freeUDPPorts(3)
	if err != nil {
		return err
	}
	d.sipPort, d.pbxPort, d.trunkPort = ports[0], ports[1], ports[2]
	d.plans, d.counts = map[string]demoCall{}, map[string]int{}
	if ln, err := net.Listen("tcp", httpAddr); err != nil {
		httpAddr = "127.0.0.1:0"
	} else {
		ln.Close()
	}
	if httpAddr == "127.0.0.1:0" {
		ln, err := net.Listen("tcp", httpAddr)
		if err != nil {
			return err
		}
		httpAddr = ln.Addr().String()
		ln.Close()
	}
	path := filepath.Join(dir, "demo.yaml")
	text := fmt.Sprintf(demoConfig, d.sipPort, d.pbxPort, d.trunkPort, filepath.Join(dir, "demo.db"), httpAddr, token)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		return err
	}
	cfg, err := configs.Load(path)
	if err != nil {
		return fmt.Errorf("demo config: %w", err)
	}
	log, err := newLogger(cfg.Log, stderr)
	if err != nil {
		return err
	}
	defer log.Sync()
	a, err := start(cfg, path, log)
	if err != nil {
		return err
	}
	defer shutdown(a, log, "demo stopped")
	if err := d.seedContacts(ctx, a); err != nil {
		return err
	}

	// The simulated PBX and trunk speak SIP to switchboard like real ones.
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	pbx, err := d.startPBX(ctx, quiet)
	if err != nil {
		return err
	}
	defer pbx.Close()
	trunk, err := d.startTrunk(ctx, quiet)
	if err != nil {
		return err
	}
	defer trunk.close()

	url := "http://" + httpAddr + "/"
	d.printf("Switchboard demo is running.\n\n  Board:  %s\n", url)
	if token != "" {
		d.printf("  Token:  %s\n", token)
	}
	d.printf("  SIP:    udp 127.0.0.1:%d (PBX simulated on :%d, trunk on :%d)\n\nCalls, as they end (Ctrl-C stops):\n", d.sipPort, d.pbxPort, d.trunkPort)

	var calls sync.WaitGroup
	callCtx, cancelCalls := context.WithCancel(context.Background())
	tick := time.NewTicker(d.pace)
	defer tick.Stop()
	for i := 0; ; i++ {
		c := demoScript[i%len(demoScript)]
		calls.Add(1)
		go func() {
			defer calls.Done()
			d.place(callCtx, trunk, c)
		}()
		select {
		case <-tick.C:
			continue
		case <-ctx.Done():
		}
		break
	}
	// Calls in progress end the way a caller hangs up.
	cancelCalls()
	calls.Wait()
	d.mu.Lock()
	fmt.Fprintf(d.out, "\nStopped. %d answered, %d missed, %d busy, %d blocked, %d failed.\n",
		d.counts["answered"], d.counts["missed"], d.counts["busy"], d.counts["blocked"], d.counts["failed"])
	d.mu.Unlock()
	return nil
}

// freeUDPPorts finds n loopback ports free for UDP.
func freeUDPPorts(n int) ([]int, error) {
	var conns []net.PacketConn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	var ports []int
	for range n {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		conns = append(conns, c)
		ports = append(ports, c.LocalAddr().(*net.UDPAddr).Port)
	}
	return ports, nil
}

func (d *demo) seedContacts(ctx context.Context, a *agent.Agent) error {
	for _, c := range demoContacts {
		_, err := a.Contacts().Create(ctx, contacts.Contact{Name: c.name, Company: c.company,
			Numbers: []contacts.Phone{{E164: c.number, Raw: c.number}}, Source: contacts.Source("import")})
		if err != nil && !errors.Is(err, contacts.ErrConflict) {
			return fmt.Errorf("demo contacts: %w", err)
		}
	}
	return nil
}

// demoSDP is a minimal audio offer or answer: the demo carries no media.
func demoSDP(port int) []byte {
	return []byte("v=0\r\no=demo 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio " +
		strconv.Itoa(port) + " RTP/AVP 0 8\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n")
}

// listenUDP serves srv on a loopback port.
func listenUDP(ctx context.Context, srv *sipgo.Server, port int) error {
	conn, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return err
	}
	go func() {
		<-ctx.Done()
		conn.Close()
	}()
	go srv.ServeUDP(conn)
	return nil
}

// startPBX runs the simulated PBX: it rings and then answers, stays busy
// or rings until the caller gives up, as the call's plan says.
func (d *demo) startPBX(ctx context.Context, log *slog.Logger) (*sipgo.UserAgent, error) {
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("demo-pbx"), sipgo.WithUserAgentHostname("127.0.0.1"))
	if err != nil {
		return nil, err
	}
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(log))
	if err != nil {
		ua.Close()
		return nil, err
	}
	cli, err := sipgo.NewClient(ua, sipgo.WithClientLogger(log), sipgo.WithClientHostname("127.0.0.1"), sipgo.WithClientPort(d.pbxPort))
	if err != nil {
		ua.Close()
		return nil, err
	}
	dialogs := sipgo.NewDialogServerCache(cli, gosip.ContactHeader{Address: gosip.Uri{Scheme: "sip", User: "pbx", Host: "127.0.0.1", Port: d.pbxPort}})
	srv.OnInvite(func(req *gosip.Request, tx gosip.ServerTransaction) {
		ds, err := dialogs.ReadInvite(req, tx)
		if err != nil {
			tx.Respond(gosip.NewResponseFromRequest(req, 400, "Bad Request", nil))
			return
		}
		d.mu.Lock()
		plan, ok := d.plans[req.CallID().Value()]
		d.mu.Unlock()
		if !ok {
			plan = demoCall{outcome: demoAnswer, ring: 2 * time.Second, talk: 5 * time.Second}
		}
		// The transaction ends when the handler returns: answer in it.
		d.answer(ctx, ds, tx, plan)
	})
	srv.OnAck(func(req *gosip.Request, tx gosip.ServerTransaction) { dialogs.ReadAck(req, tx) })
	srv.OnBye(func(req *gosip.Request, tx gosip.ServerTransaction) { dialogs.ReadBye(req, tx) })
	if err := listenUDP(ctx, srv, d.pbxPort); err != nil {
		ua.Close()
		return nil, err
	}
	return ua, nil
}

func (d *demo) answer(ctx context.Context, ds *sipgo.DialogServerSession, tx gosip.ServerTransaction, plan demoCall) {
	defer ds.Close()
	if plan.outcome == demoBusy {
		ds.Respond(180, "Ringing", nil)
		if !wait(ctx, tx.Done(), d.scaled(plan.ring)) {
			return
		}
		ds.Respond(486, "Busy Here", nil)
		return
	}
	ds.Respond(180, "Ringing", nil)
	if plan.outcome == demoMissed {
		// Nobody picks up: the caller cancels, and the transaction
		// answers the INVITE 487 on its own.
		select {
		case <-tx.Done():
		case <-ctx.Done():
		}
		return
	}
	if !wait(ctx, tx.Done(), d.scaled(plan.ring)) {
		return
	}
	if err := ds.RespondSDP(demoSDP(4000)); err != nil {
		return
	}
	if !wait(ctx, ds.Context().Done(), d.scaled(plan.talk)) {
		return // the caller hung up first
	}
	bctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ds.Bye(bctx)
}

// wait waits d unless done or ctx ends first; it reports whether d passed.
func wait(ctx context.Context, done <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-done:
		return false
	case <-ctx.Done():
		return false
	}
}

// demoTrunk is the simulated carrier: it places the calls.
type demoTrunk struct {
	ua      *sipgo.UserAgent
	dialogs *sipgo.DialogClientCache
	cancel  context.CancelFunc
}

func (t *demoTrunk) close() {
	t.cancel()
	t.ua.Close()
}

func (d *demo) startTrunk(ctx context.Context, log *slog.Logger) (*demoTrunk, error) {
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("demo-trunk"), sipgo.WithUserAgentHostname("127.0.0.1"))
	if err != nil {
		return nil, err
	}
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(log))
	if err != nil {
		ua.Close()
		return nil, err
	}
	cli, err := sipgo.NewClient(ua, sipgo.WithClientLogger(log), sipgo.WithClientHostname("127.0.0.1"), sipgo.WithClientPort(d.trunkPort))
	if err != nil {
		ua.Close()
		return nil, err
	}
	t := &demoTrunk{ua: ua, dialogs: sipgo.NewDialogClientCache(cli,
		gosip.ContactHeader{Address: gosip.Uri{Scheme: "sip", User: "trunk", Host: "127.0.0.1", Port: d.trunkPort}})}
	srv.OnBye(func(req *gosip.Request, tx gosip.ServerTransaction) { t.dialogs.ReadBye(req, tx) })
	lctx, cancel := context.WithCancel(context.Background())
	t.cancel = cancel
	if err := listenUDP(lctx, srv, d.trunkPort); err != nil {
		cancel()
		ua.Close()
		return nil, err
	}
	return t, nil
}

// place makes one call from the trunk and prints how it went.
func (d *demo) place(ctx context.Context, t *demoTrunk, c demoCall) {
	callID := gosip.CallIDHeader(fmt.Sprintf("demo-%d@127.0.0.1", time.Now().UnixNano()))
	d.mu.Lock()
	d.plans[string(callID)] = c
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		delete(d.plans, string(callID))
		d.mu.Unlock()
	}()
	from := &gosip.FromHeader{DisplayName: c.name, Address: gosip.Uri{Scheme: "sip", User: c.from, Host: "127.0.0.1"}, Params: gosip.NewParams()}
	from.Params.Add("tag", gosip.GenerateTagN(16))
	to := &gosip.ToHeader{Address: gosip.Uri{Scheme: "sip", User: c.to, Host: "127.0.0.1"}, Params: gosip.NewParams()}
	pai := gosip.NewHeader("P-Asserted-Identity", "<sip:"+c.from+"@127.0.0.1>")
	if c.name != "" {
		pai = gosip.NewHeader("P-Asserted-Identity", `"`+c.name+`" <sip:`+c.from+"@127.0.0.1>")
	}
	ctype := gosip.ContentTypeHeader("application/sdp")
	recipient := gosip.Uri{Scheme: "sip", User: c.to, Host: "127.0.0.1", Port: d.sipPort}

	started := time.Now()
	result := "failed"
	detail := ""
	defer func() {
		d.mu.Lock()
		d.counts[result]++
		d.mu.Unlock()
		who := c.from
		if c.name != "" {
			who = c.name + " " + c.from
		}
		hotline := "ACME GmbH"
		if c.to == demoGlobex {
			hotline = "Globex Corporation"
		}
		d.printf("  %s  %-34s → %-19s %s%s\n", started.Format("15:04:05"), who, hotline, result, detail)
	}()

	sess, err := t.dialogs.Invite(ctx, recipient, demoSDP(5000), from, to, &callID, pai, &ctype)
	if err != nil {
		detail = ": " + err.Error()
		return
	}
	defer sess.Close()
	waitCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	if c.outcome == demoMissed {
		// The caller gives up after the ring time.
		stop := time.AfterFunc(d.scaled(c.ring), cancel)
		defer stop.Stop()
	}
	err = sess.WaitAnswer(waitCtx, sipgo.AnswerOptions{})
	var resp *sipgo.ErrDialogResponse
	switch {
	case errors.As(err, &resp):
		switch code := resp.Res.StatusCode; {
		case code == 486 || code == 600:
			result = "busy"
		case c.outcome == demoBlocked:
			result = "blocked"
		default:
			result = "rejected"
		}
		detail = fmt.Sprintf(" (%d %s)", resp.Res.StatusCode, resp.Res.Reason)
		return
	case ctx.Err() != nil:
		result = "stopped"
		return
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || waitCtx.Err() != nil:
		result = "missed"
		detail = fmt.Sprintf(" (rang %s)", time.Since(started).Round(time.Second))
		return
	case err != nil:
		detail = ": " + err.Error()
		return
	}
	result = "answered"
	if err := sess.Ack(ctx); err != nil {
		detail = ": ACK: " + err.Error()
		return
	}
	answered := time.Now()
	// The PBX hangs up after the talk time; a stopping demo hangs up first.
	select {
	case <-sess.Context().Done():
	case <-ctx.Done():
		bctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		sess.Bye(bctx)
		cancel()
	}
	detail = fmt.Sprintf(", talked %s", time.Since(answered).Round(time.Second))
}
