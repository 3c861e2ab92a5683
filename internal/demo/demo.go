// Package demo is `switchboard demo`: switchboard on loopback with a demo
// config, a simulated PBX and a simulated carrier trunk placing a varied
// stream of calls. The command starts the agent through a Starter, so that
// logging and shutdown stay where the CLI keeps them.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/switchboard-sip/switchboard/agent"
	"github.com/switchboard-sip/switchboard/configs"
	"github.com/switchboard-sip/switchboard/contacts"
	"github.com/switchboard-sip/switchboard/internal/simsip"
)

// Starter starts an agent from the demo's config (written to path) and
// returns the function that stops it.
type Starter func(cfg *configs.Config, path string) (a *agent.Agent, stop func(), err error)

// Options are the demo's knobs, from the command's flags.
type Options struct {
	// Out receives the board's address and a line per finished call.
	Out io.Writer
	// HTTPAddr is the board's address; a free port is taken when it is
	// in use.
	HTTPAddr string
	// Token is the API token; the board then asks for it.
	Token string
	// Pace is the time between two new calls.
	Pace time.Duration
	// Speed divides the ring and talk times.
	Speed float64
	// Start starts the agent.
	Start Starter
}

// Run runs the demo until ctx ends, then stops the calls in progress and
// prints a summary.
func Run(ctx context.Context, o Options) error {
	if o.Pace <= 0 || o.Speed <= 0 {
		return errors.New("pace and speed must be positive")
	}
	d := &demo{out: o.Out, start: o.Start, pace: o.Pace, speed: o.Speed}
	return d.run(ctx, o.HTTPAddr, o.Token)
}

// config is the demo's switchboard config; the %s are filled with
// free loopback ports and a temporary database.
const config = `node: demo
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
	acme   = "+49301234560"
	globex = "+49301234570"
)

// contact is a caller the demo imports before the first call.
type contact struct{ name, company, number string }

var people = []contact{
	{"Jane Doe", "Doe Consulting", "+4930111222"},
	{"Max Mustermann", "Mustermann & Söhne", "+498955512345"},
	{"Aiko Tanaka", "Tanaka Trading", "+4917612345678"},
}

// call is one call of the script.
type call struct {
	from, name, to string
	plan           simsip.Plan
}

// script is the repeating stream of calls: every kind of outcome, both
// hotlines, known callers and new ones.
var script = []call{
	{"+4930111222", "Jane Doe", acme, simsip.Plan{Outcome: simsip.Answer, Ring: 3 * time.Second, Talk: 8 * time.Second}},
	{"+4940987654", "", globex, simsip.Plan{Outcome: simsip.Missed, Ring: 6 * time.Second}},
	{"+4915112345678", "Win A Prize", acme, simsip.Plan{Outcome: simsip.Blocked}},
	{"+498955512345", "", globex, simsip.Plan{Outcome: simsip.Answer, Ring: 2 * time.Second, Talk: 5 * time.Second}},
	{"+4917612345678", "Aiko", acme, simsip.Plan{Outcome: simsip.Busy, Ring: 2 * time.Second}},
	{"+4922155599", "Neue Kundin", acme, simsip.Plan{Outcome: simsip.Answer, Ring: 4 * time.Second, Talk: 6 * time.Second}},
	{"+4930111222", "Jane Doe", globex, simsip.Plan{Outcome: simsip.Missed, Ring: 5 * time.Second}},
	{"+436641234567", "", globex, simsip.Plan{Outcome: simsip.Answer, Ring: 3 * time.Second, Talk: 4 * time.Second}},
}

type demo struct {
	out   io.Writer
	start Starter
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

func (d *demo) run(ctx context.Context, httpAddr, token string) error {
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
	text := fmt.Sprintf(config, d.sipPort, d.pbxPort, d.trunkPort, filepath.Join(dir, "demo.db"), httpAddr, token)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		return err
	}
	cfg, err := configs.Load(path)
	if err != nil {
		return fmt.Errorf("demo config: %w", err)
	}
	a, stop, err := d.start(cfg, path)
	if err != nil {
		return err
	}
	defer stop()
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
		c := script[i%len(script)]
		calls.Add(1)
		go func() {
			defer calls.Done()
			d.place(callCtx, trunk, c)
		}()
		if i%len(script) == 1 {
			calls.Add(1)
			go func() {
				defer calls.Done()
				d.text(callCtx, trunk, texts[(i/len(script))%len(texts)])
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
	for _, c := range people {
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
func (d *demo) place(ctx context.Context, t *simsip.Trunk, c call) {
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
	if c.to == globex {
		hotline = "Globex Corporation"
	}
	d.printf("  %s  %-34s → %-19s %s%s\n", started.Format("15:04:05"), who, hotline, res.Outcome, detail)
}

// texts are the text messages the demo's callers send between their
// calls, so that the contact trace shows messages next to calls (SPEC §2).
var texts = []simsip.Text{
	{From: "+4930111222", To: acme, Body: "Hi, Jane here. Please call me back after 4 pm, it is about order 4711."},
	{From: "+4917612345678", To: acme, Body: "Your line was busy. Is the shop open on Saturday?"},
}

// text sends one text message from the trunk and prints how it went.
func (d *demo) text(ctx context.Context, t *simsip.Trunk, m simsip.Text) {
	m.Target = fmt.Sprintf("127.0.0.1:%d", d.sipPort)
	started := time.Now()
	status, err := t.Text(ctx, m)
	outcome := fmt.Sprintf("delivered (%d)", status)
	switch {
	case err != nil:
		outcome = "failed: " + err.Error()
	case status >= 300:
		outcome = fmt.Sprintf("not delivered (%d)", status)
	}
	d.printf("  %s  %-34s → %-19s text %s\n", started.Format("15:04:05"), m.From, "ACME GmbH", outcome)
}
