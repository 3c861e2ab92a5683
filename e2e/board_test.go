package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

const (
	boardToken   = "board-e2e-token"
	boardCompany = "ACME GmbH"
	boardContact = "Jane Doe"
	boardRing    = 3 * time.Second // the PBX rings this long before it answers
)

// chromiumPath finds headless Chromium: the test skips without it, and
// fails under CI.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium is not installed (Debian package chromium) and CI is set")
	}
	t.Skip("chromium is not installed (Debian package chromium); set CI=1 to make this a failure")
	return ""
}

// boardNode starts a switchboard with a token, a hotline and a known
// contact for the scenarios' caller.
func boardNode(t *testing.T) *node {
	t.Helper()
	requirements(t)
	dir := t.TempDir()
	n := &node{
		t: t, opts: nodeOptions{transport: "udp", drain: 2 * time.Second, match: []string{"127.0.0.1/32"}}, dir: dir,
		cfgPath:   filepath.Join(dir, "switchboard.yaml"),
		logPath:   filepath.Join(dir, "switchboard.log"),
		sipPort:   freePort(t),
		pbxPort:   freePort(t),
		trunkPort: freePort(t),
		httpPort:  freePort(t),
	}
	cfg := fmt.Sprintf(`node: e2e
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
storage:
  dsn: %[4]s
blocking:
  response: 603
hotlines:
  - name: acme
    numbers: ["%[5]s"]
    company: %[6]s
    greeting: "Good {{daypart .Now}}, ACME GmbH, how can I help?"
missed:
  min_ring: 1s
http:
  listen: 127.0.0.1:%[7]d
  token: %[8]s
log:
  level: debug
`, n.sipPort, n.pbxPort, n.trunkPort, filepath.Join(dir, "sb.db"), hotlineNumber, boardCompany, n.httpPort, boardToken)
	if err := os.WriteFile(n.cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	csv := filepath.Join(dir, "contacts.csv")
	if err := os.WriteFile(csv, []byte("name,company,phone\n"+boardContact+",Doe Consulting,"+trunkCaller+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(binPath, "contacts", "import", "-c", n.cfgPath, csv).CombinedOutput(); err != nil {
		t.Fatalf("contacts import: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		if p := n.current(); p != nil {
			p.kill()
		}
		if t.Failed() {
			dumpFile(t, "switchboard config", n.cfgPath)
			dumpFile(t, "switchboard log", n.logPath)
		}
	})
	n.start()
	return n
}

// ringThenAnswer is the repository's uas_answer scenario with a pause
// (-d) between the 180 and the 200, so that the call rings for a while.
func ringThenAnswer(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(scenarioDir, "uas_answer.xml"))
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(b), "</send>", "</send>\n\n  <pause/>\n", 1)
	s = strings.Replace(s, `name="uas_answer"`, `name="uas_ring_answer"`, 1)
	path := filepath.Join(t.TempDir(), "uas_ring_answer.xml")
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	rel, err := filepath.Rel(scenarioDir, path)
	if err != nil {
		t.Fatal(err)
	}
	return rel
}

// browser starts headless Chromium with a fresh profile.
func browser(t *testing.T, exe string) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 1000),
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(alloc, chromedp.WithLogf(t.Logf))
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() {
		cancelTimeout()
		cancelCtx()
		cancelAlloc()
	})
	return ctx
}

// step runs browser actions and fails the test with what was being done.
func step(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("board: %s: %v", what, err)
	}
}

// value runs one browser action that returns a value.
func value[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("board: %s: %v", what, err)
	}
	return v
}

// TestBoardInBrowser drives the receptionist board in real Chromium while
// SIPp places calls through switchboard.
func TestBoardInBrowser(t *testing.T) {
	exe := chromiumPath(t)
	n := boardNode(t)
	ctx := browser(t, exe)
	url := fmt.Sprintf("http://127.0.0.1:%d/", n.httpPort)

	// Sign in with the token.
	step(t, ctx, "open the board", chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS(`#signin-form`)))
	step(t, ctx, "sign in",
		chromedp.SendKeys(chromedp.CSS(`#token`), boardToken),
		chromedp.Click(chromedp.CSS(`#signin-form button[type="submit"]`)))
	// Either the board opens or the form says why not: whichever comes
	// first (the mutation observer wakes the poll on each change).
	signInErr := value(t, ctx, "wait for the sign-in result", chromedp.Poll[string](
		`!document.getElementById("board").hidden ? "ok" : document.getElementById("signin-error").textContent`,
		chromedp.WithPollingMutation()))
	if signInErr != "ok" {
		t.Fatalf("board sign-in refused: %q", signInErr)
	}
	step(t, ctx, "see the stream live", chromedp.WaitVisible(chromedp.CSS(`#status[data-state="live"]`)))

	// A call that rings, is answered, and ends.
	pbx := startSIPp(t, sippSpec{name: "pbx", scenario: ringThenAnswer(t), port: n.pbxPort, pause: boardRing})
	invited := time.Now()
	trunk := n.trunkCall(t, "uac_answer.xml", time.Second)
	step(t, ctx, "see the ringing card", chromedp.WaitVisible(chromedp.CSS(`#ringing .card`)))
	card := value(t, ctx, "read the ringing card", chromedp.Text(chromedp.CSS(`#ringing .card`)))
	seen := time.Since(invited)
	t.Logf("ringing card after %v (SIPp start included): %q", seen.Round(time.Millisecond), card)
	for _, want := range []string{boardCompany, boardContact, "how can I help?", "Doe Consulting", "030 111222"} {
		if !strings.Contains(card, want) {
			t.Errorf("ringing card %q lacks %q", card, want)
		}
	}
	answered := value(t, ctx, "count calls in progress", chromedp.Evaluate[int](`document.querySelectorAll("#active li").length`))
	if answered != 0 || seen >= boardRing {
		t.Errorf("the ringing card came after the answer (%v, %d calls in progress)", seen, answered)
	}
	step(t, ctx, "see the call answered", chromedp.WaitVisible(chromedp.CSS(`#active li`)),
		chromedp.WaitNotPresent(chromedp.CSS(`#ringing .card`)))
	trunk.succeed(t)
	pbx.succeed(t)
	step(t, ctx, "see the call in recent calls",
		chromedp.WaitVisible(chromedp.CSS(`#recent li[data-disposition="answered"]`)),
		chromedp.WaitNotPresent(chromedp.CSS(`#active li`)))
	recent := value(t, ctx, "read the recent call", chromedp.Text(chromedp.CSS(`#recent li[data-disposition="answered"]`)))
	if !strings.Contains(recent, boardContact) {
		t.Errorf("recent call %q lacks the caller's name", recent)
	}

	// A missed call: rings until the caller gives up.
	pbx = startSIPp(t, sippSpec{name: "pbx-missed", scenario: "uas_ring_forever.xml", port: n.pbxPort})
	trunk = n.trunkCall(t, "uac_cancel.xml", 1500*time.Millisecond)
	step(t, ctx, "see the missed call ring", chromedp.WaitVisible(chromedp.CSS(`#ringing .card`)))
	trunk.succeed(t)
	pbx.succeed(t)
	step(t, ctx, "see the missed call in recent calls", chromedp.WaitVisible(chromedp.CSS(`#recent li[data-disposition="no_answer"]`)))
	step(t, ctx, "see the missed-call entry", chromedp.WaitVisible(chromedp.CSS(`#missed li[data-missed-id]`)))
	missedID := value(t, ctx, "read the missed-call id", chromedp.AttributeValue(chromedp.CSS(`#missed li[data-missed-id]`), "data-missed-id")).Value
	sel := fmt.Sprintf(`#missed li[data-missed-id=%q]`, missedID)
	step(t, ctx, "mark it processed",
		chromedp.Click(chromedp.CSS(sel+` button.processed`)),
		chromedp.WaitNotPresent(chromedp.CSS(sel)))

	// Block the caller from the recent calls; the next call is refused.
	step(t, ctx, "block the number",
		chromedp.Click(chromedp.CSS(`#recent li[data-disposition="answered"] button.block`)),
		chromedp.WaitVisible(chromedp.CSS(`#block-dialog`)),
		chromedp.SendKeys(chromedp.CSS(`#block-reason`), "nuisance calls"),
		chromedp.Click(chromedp.CSS(`#block-confirm`)),
		chromedp.WaitNotVisible(chromedp.CSS(`#block-dialog`)))
	toast := value(t, ctx, "read the toast", chromedp.TextContent(chromedp.CSS(`#toast`)))
	blockErr := value(t, ctx, "read the block error", chromedp.TextContent(chromedp.CSS(`#block-error`)))
	if !strings.Contains(toast, "Blocked") {
		t.Fatalf("after blocking: toast %q, error %q", toast, blockErr)
	}
	blocked := n.trunkCall(t, "uac_expect_error.xml", 0, "-set", "expected", "603")
	blocked.succeed(t)
	step(t, ctx, "see the blocked call", chromedp.WaitVisible(chromedp.CSS(`#recent li[data-disposition="blocked"]`)))
}
