package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

const (
	boardToken   = "board-e2e-token"
	boardCompany = "ACME GmbH"
	boardContact = "Jane Doe"
	boardRing    = 3 * time.Second // the PBX rings this long before it answers
	boardLocale  = "de_DE"
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
// contact for the scenarios' caller (contact 1). seed, when not nil, runs
// before the switchboard starts (its database is n.dir/sb.db).
func boardNode(t *testing.T, seed func(n *node)) *node {
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
  keepalive: 0s # SIPp's UAS scenarios abort on an OPTIONS probe
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
	if seed != nil {
		seed(n)
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
	// A 24-hour locale: the board's times must follow it.
	step(t, ctx, "set the locale", chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, emulation.SetLocaleOverride, emulation.SetLocaleOverrideParams{Locale: boardLocale})
		return err
	}))
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

// signIn opens the board of n and signs in with the token.
func signIn(t *testing.T, ctx context.Context, n *node) {
	t.Helper()
	url := fmt.Sprintf("http://127.0.0.1:%d/", n.httpPort)
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
}

// TestBoardInBrowser drives the receptionist board in real Chromium while
// SIPp places calls through switchboard.
func TestBoardInBrowser(t *testing.T) {
	exe := chromiumPath(t)
	n := boardNode(t, nil)
	ctx := browser(t, exe)
	signIn(t, ctx, n)

	// A call that rings, is answered, and ends.
	pbx := startSIPp(t, sippSpec{name: "pbx", scenario: ringThenAnswer(t), port: n.pbxPort, pause: boardRing})
	invited := time.Now()
	trunk := n.trunkCall(t, "uac_answer.xml", time.Second)
	step(t, ctx, "see the ringing card", chromedp.WaitVisible(chromedp.CSS(`#ringing .card`)))
	card := value(t, ctx, "read the ringing card", chromedp.Text(chromedp.CSS(`#ringing .card`)))
	seen := time.Since(invited)
	t.Logf("ringing card after %v (SIPp start included): %q", seen.Round(time.Millisecond), card)
	for _, want := range []string{boardCompany, boardContact, "how can I help?", "Doe Consulting", "030 111222", "First call"} {
		if !strings.Contains(card, want) {
			t.Errorf("ringing card %q lacks %q", card, want)
		}
	}
	for _, bad := range []string{"Unknown number", "Not in contacts"} {
		if strings.Contains(card, bad) {
			t.Errorf("ringing card of a known contact %q says %q", card, bad)
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
	checkLocaleTime(t, ctx, `#recent li[data-disposition="answered"] .when`)
	wrapUpInBrowser(t, ctx)

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

// checkLocaleTime checks that a time on the board is written the way the
// browser's locale (boardLocale, 24-hour) writes it.
func checkLocaleTime(t *testing.T, ctx context.Context, sel string) {
	t.Helper()
	got := value(t, ctx, "read a time", chromedp.Text(chromedp.CSS(sel)))
	want := value(t, ctx, "format a time the locale's way", chromedp.Evaluate[string](
		`new Intl.DateTimeFormat(undefined, {timeStyle: "short"}).format(new Date(2026, 0, 2, 15, 4))`))
	if want != "15:04" {
		t.Fatalf("the browser's locale is not %s (formats 15:04 as %q)", boardLocale, want)
	}
	if !regexp.MustCompile(`^[0-2]\d:[0-5]\d$`).MatchString(got) {
		t.Errorf("time %q on the board is not 24-hour as the %s locale writes it", got, boardLocale)
	}
}

// wrapUpInBrowser fills in the wrap-up of the answered call with the
// keyboard only, then checks what the board shows and the API stored.
func wrapUpInBrowser(t *testing.T, ctx context.Context) {
	t.Helper()
	row := `#recent li[data-disposition="answered"]`
	id := value(t, ctx, "read the call id", chromedp.AttributeValue(chromedp.CSS(row), "data-call-id")).Value
	reasons := value(t, ctx, "count the offered reasons", chromedp.Evaluate[[]string](
		`[...document.querySelectorAll("#wrapup-reasons option")].map(o => o.value)`))
	if strings.Join(reasons, ",") != "order,complaint,support,sales,other" {
		t.Errorf("wrap-up offers reasons %q, want wrapup.reasons", reasons)
	}
	step(t, ctx, "open the wrap-up form from the keyboard",
		chromedp.Focus(chromedp.CSS(row+` button.wrapup`)),
		chromedp.KeyEvent(kb.Enter),
		chromedp.WaitVisible(chromedp.CSS(`#wrapup-dialog`)))
	focused := value(t, ctx, "see where the focus is", chromedp.Evaluate[string](`document.activeElement.id`))
	if focused != "wrapup-reason" {
		t.Errorf("the wrap-up form opens with the focus on %q, want the reason", focused)
	}
	step(t, ctx, "fill in the wrap-up with the keyboard",
		chromedp.KeyEvent("invoice question"),
		chromedp.KeyEvent(kb.Tab),        // to the satisfaction radios ("none" first)
		chromedp.KeyEvent(kb.ArrowRight), // 1
		chromedp.KeyEvent(kb.ArrowRight), // 2
		chromedp.KeyEvent(kb.ArrowRight), // 3
		chromedp.KeyEvent(kb.ArrowRight), // 4
		chromedp.KeyEvent(kb.Tab),
		chromedp.KeyEvent("Wants a call back"),
		chromedp.KeyEvent(kb.Tab),        // to the resolved radios ("not said" first)
		chromedp.KeyEvent(kb.ArrowRight), // yes
		chromedp.KeyEvent(kb.Tab),        // to the transcript
		chromedp.KeyEvent("Caller: my invoice"),
		chromedp.KeyEvent(kb.Tab), // to Save
		chromedp.KeyEvent(kb.Enter),
		chromedp.WaitNotVisible(chromedp.CSS(`#wrapup-dialog`)))
	summary := value(t, ctx, "read the wrap-up on the row", chromedp.Text(chromedp.CSS(row+` .wrapped`)))
	if !strings.Contains(summary, "invoice question") || !strings.Contains(summary, "4/5") || !strings.Contains(summary, "resolved") {
		t.Errorf("the row shows the wrap-up as %q", summary)
	}
	rec := value(t, ctx, "fetch the record", chromedp.Evaluate[map[string]any](
		fmt.Sprintf(`fetch("/api/calls/" + %q).then(r => r.json())`, id), chromedp.EvalAwaitPromise))
	if rec["reason"] != "invoice question" || rec["satisfaction"] != float64(4) || rec["notes"] != "Wants a call back" ||
		rec["resolved"] != true || rec["transcript"] != "Caller: my invoice" {
		t.Errorf("stored wrap-up: reason %v, satisfaction %v, notes %v, resolved %v, transcript %v",
			rec["reason"], rec["satisfaction"], rec["notes"], rec["resolved"], rec["transcript"])
	}
	by, _ := rec["answered_by"].(string)
	meta := value(t, ctx, "read the row", chromedp.Text(chromedp.CSS(row)))
	if by != "" && !strings.Contains(meta, "answered by "+by) {
		t.Errorf("the row %q does not say who answered (%q)", meta, by)
	}
	t.Logf("answered_by %q; row %q", by, meta)
}
