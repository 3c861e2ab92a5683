package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// reload writes the node's config with extra sections and waits until the
// running switchboard took it (SIGHUP), or refused it when want is false.
func (n *node) reload(t *testing.T, extra string, want bool) {
	t.Helper()
	n.reloadConfig(t, n.config()+extra, want)
}

// reloadConfig writes cfg as the node's config and waits until the running
// switchboard took it (SIGHUP), or refused it when want is false.
func (n *node) reloadConfig(t *testing.T, cfg string, want bool) {
	t.Helper()
	line := "config reloaded"
	if !want {
		line = "config reload refused"
	}
	before := n.logCount(line)
	if err := os.WriteFile(n.cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	n.signal(syscall.SIGHUP)
	deadline := time.Now().Add(5 * time.Second)
	for n.logCount(line) <= before {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the log after SIGHUP", line)
		}
		time.Sleep(20 * time.Millisecond) // polling a file: no event to await
	}
}

func (n *node) logCount(s string) int {
	b, _ := os.ReadFile(n.logPath)
	return strings.Count(string(b), s)
}

// TestPolicyThroughReloads drives device blocking, hotlines, opening hours
// and rules end to end with SIPp, each change made by editing the config
// and sending SIGHUP to the running agent (SPEC §1, §5, §7): no restart.
func TestPolicyThroughReloads(t *testing.T) {
	n := newNode(t, nodeOptions{})
	// Through the API, so that the running agent knows the contact at once.
	body := `{"name": "Jane Doe", "numbers": ["030 111222"], "tags": ["banned-later"]}`
	res, err := http.Post(fmt.Sprintf("http://127.0.0.1:%d/api/contacts", n.httpPort), "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusCreated && res.StatusCode != http.StatusOK {
		t.Fatalf("POST /api/contacts: %s", res.Status)
	}

	// 1. A blocked prefix: 603, and the PBX never sees the INVITE.
	n.reload(t, `blocking:
  entries:
    - {number: "+4930111*", action: block, reason: spam}
`, true)
	blocked := n.trunkCall(t, "uac_expect_error.xml", 0, "-set", "expected", "603")
	blocked.succeed(t)
	if r := n.waitEnded(blocked.callID); r.Disposition != "blocked" || r.Caller != trunkCaller {
		t.Errorf("blocked call record: %s", r)
	}

	// 2. An allowed number under the blocked prefix passes, and reaches the
	// PBX as a hotline call with the prefixed caller name and its header.
	tomorrow := strings.ToLower(time.Now().UTC().Add(36 * time.Hour).Weekday().String()[:3])
	policy := `blocking:
  entries:
    - {number: "+4930111*", action: block, reason: spam}
    - {number: "` + trunkCaller + `", action: allow}
    - {number: "+49900*", action: block, direction: out, reason: premium rate}
hotlines:
  - name: acme
    numbers: ["` + hotlineNumber + `"]
    company: ACME GmbH
    greeting: "ACME GmbH, good {{daypart .Now}}"
    caller_name_prefix: "ACME: "
  - name: night
    numbers: ["+49301234561"]
    company: Night Desk
    hours: ["` + tomorrow + ` 00:00-00:01"]
    closed: {response: 480}
`
	n.reload(t, policy, true)
	pbx := n.pbx(t, "uas_answer.xml", 0)
	call := n.trunkCall(t, "uac_answer.xml", 200*time.Millisecond)
	call.succeed(t)
	pbx.succeed(t)
	invites := pbx.received(t, "INVITE ")
	if len(invites) != 1 {
		t.Fatalf("PBX received %d INVITEs", len(invites))
	}
	from := strings.Join(invites[0].header("From"), " ")
	if !strings.Contains(from, `"ACME: Jane Doe"`) {
		t.Errorf("From at the PBX %q: want the display name ACME: Jane Doe", from)
	}
	if h := invites[0].header("X-Switchboard-Hotline"); len(h) != 1 || h[0] != "acme" {
		t.Errorf("X-Switchboard-Hotline at the PBX: %q", h)
	}
	if h := invites[0].header("X-Switchboard-Contact"); len(h) != 1 || h[0] == "" {
		t.Errorf("X-Switchboard-Contact at the PBX: %q", h)
	}
	if r := n.waitEnded(call.callID); r.Hotline != "acme" || r.Disposition != "answered" {
		t.Errorf("hotline call record: %s", r)
	}

	// 3. A closed hotline answers with its closed response.
	closed := startSIPp(t, sippSpec{name: "trunk-night", scenario: "uac_expect_error.xml", remote: n.sipAddr(),
		service: "+49301234561", extra: []string{"-set", "expected", "480"}})
	closed.succeed(t)
	if r := n.waitEnded(closed.callID); r.Disposition != "closed" || r.Hotline != "night" {
		t.Errorf("closed hotline record: %s", r)
	}

	// 4. An outbound call to a blocked prefix is refused.
	out := startSIPp(t, sippSpec{name: "pbx-out", scenario: "uac_expect_error.xml", port: n.pbxPort,
		remote: n.sipAddr(), service: "0900123456", extra: []string{"-set", "expected", "603"}})
	out.succeed(t)
	if r := n.waitEnded(out.callID); r.Direction != "outbound" || r.Disposition != "blocked" || r.Called != "+49900123456" {
		t.Errorf("outbound blocked record: %s", r)
	}

	// 5. A rule rejects the call by the contact's tag.
	rule := policy + `rules:
  - name: banned
    when: '"banned-later" in contact.tags'
    then: {reject: 486}
`
	n.reload(t, rule, true)
	busy := n.trunkCall(t, "uac_expect_error.xml", 0, "-set", "expected", "486")
	busy.succeed(t)

	// 6. An invalid config is refused; the rule stays in force.
	n.reload(t, rule+"colour: blue\n", false)
	again := n.trunkCall(t, "uac_expect_error.xml", 0, "-set", "expected", "486")
	again.succeed(t)
}

// TestNoHeaderInjection: a display name crafted to break out of its quotes
// and smuggle a header into the INVITE becomes the name of the
// caller's new contact and reaches the PBX as a harmless display name, not
// as a header (SPEC §5). (The API refuses such names outright.)
func TestNoHeaderInjection(t *testing.T) {
	n := newNode(t, nodeOptions{})
	n.reload(t, `hotlines:
  - name: acme
    numbers: ["`+hotlineNumber+`"]
    company: ACME GmbH
    caller_name_prefix: "ACME: "
`, true)
	b, err := os.ReadFile(filepath.Join(scenarioDir, "uac_answer.xml"))
	if err != nil {
		t.Fatal(err)
	}
	evil := strings.ReplaceAll(string(b), `From: "Trunk Caller"`, `From: "Eve\" >, X-Evil: 1"`)
	if evil == string(b) {
		t.Fatal("uac_answer.xml has no From to rewrite")
	}
	path := filepath.Join(t.TempDir(), "uac_evil.xml")
	if err := os.WriteFile(path, []byte(evil), 0o644); err != nil {
		t.Fatal(err)
	}
	rel, err := filepath.Rel(scenarioDir, path)
	if err != nil {
		t.Fatal(err)
	}
	pbx := n.pbx(t, "uas_answer.xml", 0)
	call := n.trunkCall(t, rel, 100*time.Millisecond)
	call.succeed(t)
	pbx.succeed(t)
	invites := pbx.received(t, "INVITE ")
	if len(invites) != 1 {
		t.Fatalf("PBX received %d INVITEs", len(invites))
	}
	if h := invites[0].header("X-Evil"); len(h) != 0 {
		t.Fatalf("the injected header reached the PBX: %q", h)
	}
	from := strings.Join(invites[0].header("From"), " ")
	if !strings.HasPrefix(from, `"ACME: Eve`) || strings.ContainsAny(from, "\r\n") {
		t.Errorf("From at the PBX: %q", from)
	}
	t.Logf("From at the PBX: %s", from)
}
