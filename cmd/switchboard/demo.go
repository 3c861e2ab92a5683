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
	"sync"
	"syscall"
	"time"

	"github.com/switchboard-sip/switchboard/agent"
	"github.com/switchboard-sip/switchboard/configs"
	"github.com/switchboard-sip/switchboard/contacts"
	"github.com/switchboard-sip/switchboard/internal/simsip"
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

// demoCall is one call of the script.
type demoCall struct {
	from, name, to string
	plan           simsip.Plan
}

// demoScript is the repeating stream of calls: every kind of outcome, both
// hotlines, known callers and new ones.
var demoScript = []demoCall{
	{"+4930111222", "Jane Doe", demoACME, simsip.Plan{Outcome: simsip.Answer, Ring: 3 * time.Second, Talk: 8 * time.Second}},
	{"+4940987654", "", demoGlobex, simsip.Plan{Outcome: simsip.Missed, Ring: 6 * time.Second}},
	{"+4915112345678", "Win A Prize", demoACME, simsip.Plan{Outcome: simsip.Blocked}},
	{"+498955512345", "", demoGlobex, simsip.Plan{Outcome: simsip.Answer, Ring: 2 * time.Second, Talk: 5 * time.Second}},
	{"+4917612345678", "Aiko", demoACME, simsip.Plan{Outcome: simsip.Busy, Ring: 2 * time.Second}},
	{"+4922155599", "Neue Kundin", demoACME, simsip.Plan{Outcome: simsip.Answer, Ring: 4 * time.Second, Talk: 6 * time.Second}},
	{"+4930111222", "Jane Doe", demoGlobex, simsip.Plan{Outcome: simsip.Missed, Ring: 5 * time.Second}},
	{"+436641234567", "", demoGlobex, simsip.Plan{Outcome: simsip.Answer, Ring: 3 * time.Second, Talk: 4 * time.Second}},
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
	plans  map[string]simsip.Plan // Call-ID → what the PBX does with it
	counts map[string]int         // outcome as seen by the caller → calls
}

func (d *demo) printf(format string, args ...any) {
	d.mu.Lock()
	defer d.mu.Unlock()
	fmt.Fprintf(d.out, format, args...)
}

func (d *demo) run(ctx context.Context, httpAddr, token string, stderr io.Writer) error {
	dir, err := os.MkdirTemp("", "switchboard-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ports, err := simsip.FreeUDPPorts(3)
	if err != nil {
		return err
	}
	d.sipPort, d.pbxPort, d.trunkPort = ports[0], ports[1], ports[2]
	d.plans, d.counts = map[string]simsip.Plan{}, map[string]int{}
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
	pbx, err := simsip.StartPBX(d.pbxPort, d.speed, d.plan)
	if err != nil {
		return err
	}
	defer pbx.Close()
	trunk, err := simsip.StartTrunk(d.trunkPort, d.speed)
	if err != nil {
		return err
	}
	defer trunk.Close()

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
		if i%len(demoScript) == 1 {
			calls.Add(1)
			go func() {
				defer calls.Done()
				d.text(callCtx, trunk, demoTexts[(i/len(demoScript))%len(demoTexts)])
			}()
		}
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

// plan is what the simulated PBX does with a call of the script; a call
// it does not know is answered.
func (d *demo) plan(callID string) simsip.Plan {
	d.mu.Lock()
	defer d.mu.Unlock()
	if p, ok := d.plans[callID]; ok {
		return p
	}
	return simsip.Plan{Outcome: simsip.Answer, Ring: 2 * time.Second, Talk: 5 * time.Second}
}

// place makes one call from the trunk and prints how it went.
func (d *demo) place(ctx context.Context, t *simsip.Trunk, c demoCall) {
	callID := t.NewCallID()
	d.mu.Lock()
	d.plans[callID] = c.plan
	d.mu.Unlock()
	started := time.Now()
	res := t.Place(ctx, simsip.Call{CallID: callID, From: c.from, Name: c.name, To: c.to, Plan: c.plan,
		Target: fmt.Sprintf("127.0.0.1:%d", d.sipPort), Identity: true})
	d.mu.Lock()
	delete(d.plans, callID)
	d.counts[res.Outcome]++
	d.mu.Unlock()
	detail := ""
	switch {
	case res.Outcome == "answered":
		detail = fmt.Sprintf(", talked %s", res.Talked.Round(time.Second))
	case res.Err != nil:
		detail = ": " + res.Err.Error()
	case res.Status != 0:
		detail = fmt.Sprintf(" (%d)", res.Status)
	}
	if res.Outcome == "missed" && res.Err != nil {
		detail = " (" + res.Err.Error() + ")"
	}
	who := c.from
	if c.name != "" {
		who = c.name + " " + c.from
	}
	hotline := "ACME GmbH"
	if c.to == demoGlobex {
		hotline = "Globex Corporation"
	}
	d.printf("  %s  %-34s → %-19s %s%s\n", started.Format("15:04:05"), who, hotline, res.Outcome, detail)
}
