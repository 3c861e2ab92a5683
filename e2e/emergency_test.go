package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/switchboard-sip/switchboard/internal/pgtest"
)

// emergencyCaller is the caller identity the emergency scenario presents
// (P-Asserted-Identity); the phone is extension 2001 "Reception".
const (
	emergencyCaller   = "+4930123450"
	emergencyLocation = "Reception, ground floor"
)

// emergencyNode is a switchboard set against emergency calls in every way
// an administrator might by mistake (SPEC §1): a block of "+49*" both ways
// and of anonymous callers, a rule that rejects every call, max_cps 1 (on
// the node and on the trunk), extensions 1xx (so that 112 is also an
// internal pattern) and the outside-line prefix 0. A second trunk, backup,
// takes calls out when the first fails. extra is appended to the config.
func emergencyNode(t *testing.T, r *receivers, backupPort int, window, extra string) *node {
	t.Helper()
	n := prepareNode(t, nodeOptions{})
	n.launch(emergencyConfig(n, r, backupPort, window)+extra, nil)
	return n
}

// emergencyConfig is the config of emergencyNode.
func emergencyConfig(n *node, r *receivers, backupPort int, window string) string {
	cfg := n.config()
	cfg = strings.Replace(cfg, "      trust_identity: true\n", fmt.Sprintf(`      trust_identity: true
      max_cps: 1
    - name: backup
      match: [127.0.0.2/32]
      outbound: sip:127.0.0.1:%d
      region: DE
  max_cps: 1
`, backupPort), 1)
	cfg = strings.Replace(cfg, "numbers:\n  region: DE\n", "numbers:\n  region: DE\n  internal: [\"1xx\", \"2xxx\"]\n  outside_prefix: \"0\"\n", 1)
	cfg += fmt.Sprintf(`blocking:
  anonymous: block
  entries:
    - {number: "+49*", action: block, reason: far too broad}
rules:
  - name: nothing goes out
    when: 'true'
    then: {reject: 403}
missed:
  min_ring: 30s
  exceptions: {internal: true, anonymous: true, unknown_contact: true, same_day_repeat: true, absent: true}
  email: {smtp: "smtp://%[1]s", from: switchboard@example.com, to: [desk@example.com]}
  webhook: {url: "%[2]s", secret: %[3]q}
  sms: {url: "%[6]s", to: []}
emergency:
  callback_window: %[4]s
  locations: {"2001": %[5]q}
  notify: {email: [security@example.com], sms: ["+4917099999"], webhook: "%[2]s"}
`, r.smtpAddr, r.hookURL, hookSecret, window, emergencyLocation, r.smsURL)
	return cfg
}

// emergencyCall places an emergency call from the PBX's port to ruri.
func (n *node) emergencyCall(t *testing.T, ruri string, pause time.Duration) *sippRun {
	t.Helper()
	return startSIPp(t, sippSpec{name: "pbx-emergency", scenario: "uac_pbx_emergency.xml", port: n.pbxPort,
		remote: n.sipAddr(), pause: pause, extra: []string{"-set", "ruri", ruri}})
}

// emergencyRecord is the part of a call record an emergency call shows.
type emergencyRecord struct {
	CallID            string `json:"call_id"`
	Direction         string `json:"direction"`
	Disposition       string `json:"disposition"`
	Emergency         bool   `json:"emergency"`
	EmergencyCallback string `json:"emergency_callback"`
	ID                string `json:"id"`
}

func (n *node) waitEmergencyRecord(t *testing.T, callID string, cond func(emergencyRecord) bool) emergencyRecord {
	t.Helper()
	deadline := time.Now().Add(recordTimeout)
	var last []emergencyRecord
	for time.Now().Before(deadline) {
		list, err := getList[emergencyRecord](n, "/api/calls?limit=100")
		if err == nil {
			last = list
			for _, r := range list {
				if r.CallID == callID && cond(r) {
					return r
				}
			}
		}
		time.Sleep(50 * time.Millisecond) // records are written asynchronously: poll
	}
	t.Fatalf("record of %s not as expected; records: %+v", callID, last)
	return emergencyRecord{}
}

// requestUser is the user part (or tel: number) of a request line.
func requestURI(m sipMsg) string {
	f := strings.Fields(m.firstLine())
	if len(f) < 2 {
		return ""
	}
	return f[1]
}

// TestEmergencyAlwaysThrough: with a block of "+49*", a rule rejecting
// every call, max_cps 1 saturated by other calls, an emergency call in
// every form the PBX dials reaches the trunk with the Request-URI's number
// and the From the PBX sent; the front desk's webhook and mailbox hear of
// it within a second; with the first trunk answering 503 the call reaches
// the second at once.
func TestEmergencyAlwaysThrough(t *testing.T) {
	r := startReceivers(t, false)
	backupPort := freePort(t)
	n := emergencyNode(t, r, backupPort, "60m", "")
	events := n.subscribeEvents(t)

	// Other calls keep the CPS limit saturated for the whole test: about
	// 20 INVITEs a second from the trunk side, refused with 503 (or 403
	// by the rule, for the one a second the limit lets in).
	saturate := startSIPp(t, sippSpec{name: "saturate", scenario: "uac_flood.xml", remote: n.sipAddr(),
		service: hotlineNumber, calls: 400, extra: []string{"-r", "20", "-l", "40"}})
	defer saturate.proc.kill()
	// The positive control: the limit refuses calls now.
	n.waitMetricAtLeast(t, `switchboard_sip_requests_total{class="5xx",method="INVITE"}`, 5)

	forms := []struct{ ruri, want string }{
		{"sip:112@" + n.sipAddr(), "sip:112@"},
		{"sip:+49112@" + n.sipAddr() + ";user=phone", "sip:+49112@"},
		{"sip:0112@" + n.sipAddr(), "sip:0112@"},
		{"tel:112", "tel:112"},
	}
	for i, f := range forms {
		trunk := startSIPp(t, sippSpec{name: "carrier-" + strconv.Itoa(i), scenario: "uas_trunk_answer.xml", port: n.trunkPort})
		invited := time.Now()
		pbx := n.emergencyCall(t, f.ruri, 200*time.Millisecond)
		pbx.succeed(t)
		trunk.succeed(t)
		inv := trunk.received(t, "INVITE ")
		if len(inv) != 1 {
			t.Fatalf("%s: the trunk received %d INVITEs", f.ruri, len(inv))
		}
		if got := requestURI(inv[0]); !strings.HasPrefix(got, f.want) ||
			strings.Contains(f.ruri, ";user=phone") != strings.Contains(got, ";user=phone") {
			t.Errorf("%s: Request-URI at the trunk %q, want the number as dialled (%s…)", f.ruri, got, f.want)
		}
		from := strings.Join(inv[0].header("From"), " ")
		if !strings.Contains(from, `"Reception" <sip:2001@`) {
			t.Errorf("%s: From at the trunk %q, want the PBX's", f.ruri, from)
		}
		if pai := strings.Join(inv[0].header("P-Asserted-Identity"), " "); !strings.Contains(pai, emergencyCaller) {
			t.Errorf("%s: P-Asserted-Identity at the trunk %q", f.ruri, pai)
		}
		rec := n.waitEmergencyRecord(t, pbx.callID, func(r emergencyRecord) bool { return r.Disposition == "answered" })
		if !rec.Emergency || rec.Direction != "outbound" {
			t.Errorf("%s: record %+v, want an outbound emergency call", f.ruri, rec)
		}
		if i == 0 {
			checkEmergencyTold(t, r, events, invited, pbx.callID)
		}
	}

	// An ordinary call to a German number is still refused (by the block
	// list, the rule or the limit, whichever comes first): the config
	// refuses everything but emergency calls.
	ordinary := startSIPp(t, sippSpec{name: "pbx-ordinary", scenario: "uac_pbx_outbound.xml", port: n.pbxPort,
		remote: n.sipAddr(), service: "+4930999999"})
	if code := ordinary.wait(t); code == 0 {
		t.Error("an ordinary call went through the config that refuses everything")
	}

	// The first trunk fails with 503: the call goes on to the backup.
	carrier := startSIPp(t, sippSpec{name: "carrier-503", scenario: "uas_503.xml", port: n.trunkPort})
	backup := startSIPp(t, sippSpec{name: "backup", scenario: "uas_trunk_answer.xml", port: backupPort})
	start := time.Now()
	pbx := n.emergencyCall(t, "sip:112@"+n.sipAddr(), 200*time.Millisecond)
	pbx.succeed(t)
	carrier.succeed(t)
	backup.succeed(t)
	if inv := backup.received(t, "INVITE "); len(inv) != 1 {
		t.Fatalf("the backup trunk received %d INVITEs", len(inv))
	} else if got := requestURI(inv[0]); !strings.HasPrefix(got, "sip:112@") {
		t.Errorf("Request-URI at the backup %q", got)
	}
	t.Logf("emergency call through the backup trunk after a 503, set up and ended in %v", time.Since(start).Round(time.Millisecond))
	n.waitMetricAtLeast(t, "switchboard_emergency_calls_total", float64(len(forms)+1))
}

// checkEmergencyTold: call.emergency on the event stream, the webhook and
// the email, each within a second of the INVITE, with the extension, its
// name, the location from config and the number dialled.
func checkEmergencyTold(t *testing.T, r *receivers, events <-chan sseEvent, invited time.Time, callID string) {
	t.Helper()
	for {
		ev := next(t, events, "call.emergency on /api/events")
		if ev.typ != "call.emergency" {
			continue
		}
		var e struct {
			CallID    string `json:"call_id"`
			Extension string `json:"extension"`
			Name      string `json:"name"`
			Location  string `json:"location"`
			Dialled   string `json:"dialled"`
		}
		if err := json.Unmarshal([]byte(ev.data), &e); err != nil {
			t.Fatal(err)
		}
		if e.CallID != callID || e.Extension != "2001" || e.Name != "Reception" || e.Location != emergencyLocation || e.Dialled == "" {
			t.Errorf("call.emergency: %s", ev.data)
		}
		if d := ev.at.Sub(invited); d > time.Second {
			t.Errorf("call.emergency %v after the INVITE, want within 1s", d)
		}
		break
	}
	hook := next(t, r.hooks, "the emergency webhook")
	if d := hook.at.Sub(invited); d > time.Second {
		t.Errorf("webhook %v after the INVITE, want within 1s", d)
	}
	if err := verifySignature(hook); err != nil {
		t.Error(err)
	}
	if ev := hook.header.Get("X-Switchboard-Event"); ev != "call.emergency" {
		t.Errorf("webhook event %q", ev)
	}
	body := string(hook.body)
	for _, want := range []string{`"extension":"2001"`, emergencyLocation, `"name":"Reception"`} {
		if !strings.Contains(body, want) {
			t.Errorf("webhook body lacks %s: %s", want, body)
		}
	}
	sms := next(t, r.sms, "the emergency SMS")
	if d := sms.at.Sub(invited); d > time.Second {
		t.Errorf("SMS %v after the INVITE, want within 1s", d)
	}
	if b := string(sms.body); !strings.Contains(b, "+4917099999") || !strings.Contains(b, "EMERGENCY CALL") || !strings.Contains(b, emergencyLocation) {
		t.Errorf("SMS body: %s", b)
	}
	mail := next(t, r.mails, "the emergency email")
	if d := time.Since(invited); d > 2*time.Second {
		t.Errorf("email %v after the INVITE", d)
	}
	text := string(mail.Data)
	if len(mail.To) != 1 || mail.To[0] != "security@example.com" {
		t.Errorf("email to %v, want security@example.com", mail.To)
	}
	for _, want := range []string{"EMERGENCY CALL", "2001", emergencyLocation, "Reception"} {
		if !strings.Contains(text, want) {
			t.Errorf("email lacks %q:\n%s", want, text)
		}
	}
}

// sseEvent is one event of /api/events with its arrival time.
type sseEvent struct {
	at        time.Time
	typ, data string
}

// subscribeEvents reads /api/events until the test ends.
func (n *node) subscribeEvents(t *testing.T) <-chan sseEvent {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/api/events", n.httpPort), nil)
	req.Header.Set("Accept", "text/event-stream")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/events: %s", res.Status)
	}
	out := make(chan sseEvent, 1000)
	go func() {
		defer res.Body.Close()
		sc := bufio.NewScanner(res.Body)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event:"):
				ev.typ = strings.TrimSpace(line[len("event:"):])
			case strings.HasPrefix(line, "data:"):
				ev.data += strings.TrimSpace(line[len("data:"):])
			case line == "":
				if ev.typ != "" {
					ev.at = time.Now()
					select {
					case out <- ev:
					default:
					}
				}
				ev = sseEvent{}
			}
		}
	}()
	return out
}

// waitMetricAtLeast waits until a Prometheus sample (name with labels, as
// written on /metrics) reaches min.
func (n *node) waitMetricAtLeast(t *testing.T, sample string, min float64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		res, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", n.httpPort))
		if err == nil {
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			for _, line := range strings.Split(string(b), "\n") {
				if v, ok := strings.CutPrefix(line, sample+" "); ok {
					last = line
					if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil && f >= min {
						return
					}
				}
			}
		}
		time.Sleep(50 * time.Millisecond) // polling /metrics: no event to await
	}
	t.Fatalf("%s did not reach %v (last %q)", sample, min, last)
}

// TestEmergencyDuringDrain: while switchboard drains (SIGTERM, a call
// still up), an emergency call still reaches the trunk. It
// comes over TCP from the PBX's address (a PBX connects from any port; its
// Via names its own), since its UDP port holds the call that keeps the
// drain going.
func TestEmergencyDuringDrain(t *testing.T) {
	r := startReceivers(t, false)
	n := emergencyNode(t, r, freePort(t), "60m", "")
	trunk := startSIPp(t, sippSpec{name: "carrier", scenario: "uas_trunk_answer.xml", port: n.trunkPort, calls: 2})
	held := n.emergencyCall(t, "sip:112@"+n.sipAddr(), 4*time.Second)
	n.waitEmergencyRecord(t, held.callID, func(r emergencyRecord) bool { return r.Disposition == "answered" })
	n.signal(syscall.SIGTERM)
	// The positive control: the node drains (an ordinary call would get
	// 503, as sip's TestEmergencyWhileDraining shows on both paths; over
	// TCP here its ACK would reach the carrier's SIPp as a stray).
	if !n.waitLog(5*time.Second, "draining") {
		t.Fatal("no drain in the log after SIGTERM")
	}
	during := startSIPp(t, sippSpec{name: "pbx-emergency-drain", scenario: "uac_pbx_emergency.xml", transport: "tcp", port: n.pbxPort,
		remote: n.sipAddr(), pause: 200 * time.Millisecond, extra: []string{"-set", "ruri", "sip:112@" + n.sipAddr()}})
	during.succeed(t)
	// The held call's BYE ends the drain; the node may exit before the
	// BYE's 200 is back at the PBX (a race of the drain, not of emergency
	// calls), so only its end at the carrier is checked.
	held.wait(t)
	trunk.succeed(t)
	if inv := trunk.received(t, "INVITE "); len(inv) != 2 {
		t.Fatalf("the trunk received %d INVITEs, want the held call's and the one during the drain", len(inv))
	}
	if code := n.waitExit(15 * time.Second); code != 0 {
		t.Errorf("exit status %d after the drain", code)
	}
}

// TestEmergencyBoardInBrowser: the board in Chromium shows an emergency
// call above everything within a second of the INVITE, with the location
// from the config and whether it was answered; the banner is back after a
// reload and goes only when someone acknowledges it, whose name and time
// are recorded.
func TestEmergencyBoardInBrowser(t *testing.T) {
	exe := chromiumPath(t)
	r := startReceivers(t, false)
	n := prepareNode(t, nodeOptions{})
	cfg := emergencyConfig(n, r, freePort(t), "60m")
	cfg = strings.Replace(cfg, "http:\n", "http:\n  token: "+boardToken+"\n", 1)
	n.launch(cfg, nil)
	ctx := browser(t, exe)
	signIn(t, ctx, n)
	if v := value(t, ctx, "count banners", chromedp.Evaluate[int](`document.querySelectorAll("#emergency .alert").length`)); v != 0 {
		t.Fatalf("%d emergency banners before any call", v)
	}

	trunk := startSIPp(t, sippSpec{name: "carrier", scenario: "uas_trunk_answer.xml", port: n.trunkPort})
	invited := time.Now()
	pbx := n.emergencyCall(t, "sip:0112@"+n.sipAddr(), 1500*time.Millisecond)
	step(t, ctx, "see the emergency banner", chromedp.WaitVisible(chromedp.CSS(`#emergency .alert`)))
	seen := time.Since(invited)
	banner := value(t, ctx, "read the banner", chromedp.Text(chromedp.CSS(`#emergency .alert`)))
	t.Logf("emergency banner after %v (SIPp start included): %q", seen.Round(time.Millisecond), banner)
	if seen > time.Second {
		t.Errorf("the banner came %v after the INVITE, want within 1s", seen)
	}
	for _, want := range []string{"2001", "Reception", emergencyLocation, "0112"} {
		if !strings.Contains(banner, want) {
			t.Errorf("banner %q lacks %q", banner, want)
		}
	}
	top := value(t, ctx, "find what is on top", chromedp.Evaluate[bool](
		`document.getElementById("emergency").getBoundingClientRect().top <= document.querySelector("header.top").getBoundingClientRect().top`))
	if !top {
		t.Error("the emergency banner is not above the board's header")
	}
	step(t, ctx, "see it answered", chromedp.WaitVisible(chromedp.CSS(`#emergency .alert[data-answered="yes"]`)))
	pbx.succeed(t)
	trunk.succeed(t)

	// A reload keeps it.
	step(t, ctx, "reload the board", chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(`#status[data-state="live"]`)))
	step(t, ctx, "see the banner after the reload", chromedp.WaitVisible(chromedp.CSS(`#emergency .alert[data-answered="yes"]`)))
	id := value(t, ctx, "read the banner's call", chromedp.AttributeValue(chromedp.CSS(`#emergency .alert`), "data-emergency-id")).Value

	step(t, ctx, "acknowledge it",
		chromedp.SendKeys(chromedp.CSS(`#emergency .alert input.by`), "Anna"),
		chromedp.Click(chromedp.CSS(`#emergency .alert button.ack`)),
		chromedp.WaitNotPresent(chromedp.CSS(`#emergency .alert`)))
	var got struct {
		AcknowledgedBy string  `json:"acknowledged_by"`
		AcknowledgedAt *string `json:"acknowledged_at"`
		Answered       bool    `json:"answered"`
	}
	if code, body := n.api(t, http.MethodGet, "/api/emergencies/"+id, "", map[string]string{"Authorization": "Bearer " + boardToken}, &got); code != http.StatusOK ||
		got.AcknowledgedBy != "Anna" || got.AcknowledgedAt == nil || !got.Answered {
		t.Errorf("acknowledged emergency call: %d %s", code, body)
	}
	step(t, ctx, "reload again", chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(`#status[data-state="live"]`)))
	// The board loaded its lists: the recent call is there, the banner not.
	step(t, ctx, "see the call in recent calls", chromedp.WaitVisible(chromedp.CSS(`#recent li[data-disposition="answered"]`)))
	if v := value(t, ctx, "count banners", chromedp.Evaluate[int](`document.querySelectorAll("#emergency .alert").length`)); v != 0 {
		t.Errorf("%d emergency banners after the acknowledgement", v)
	}
}

// TestEmergencyCallback: within the callback window, an anonymous call to
// the number the emergency call presented reaches the extension that made
// it, although anonymous callers are blocked, that number's hotline is
// closed, a rule rejects every call and the carrier's max_cps is saturated;
// after the window the same call is treated as any call (blocked).
func TestEmergencyCallback(t *testing.T) {
	r := startReceivers(t, false)
	tomorrow := strings.ToLower(time.Now().UTC().Add(36 * time.Hour).Weekday().String()[:3])
	const window = 4 * time.Second
	n := emergencyNode(t, r, freePort(t), window.String(), `hotlines:
  - name: company
    numbers: ["`+emergencyCaller+`"]
    company: ACME GmbH
    hours: ["`+tomorrow+` 00:00-00:01"]
    closed: {response: 480}
`)
	trunk := startSIPp(t, sippSpec{name: "carrier", scenario: "uas_trunk_answer.xml", port: n.trunkPort})
	made := time.Now()
	call := n.emergencyCall(t, "sip:112@"+n.sipAddr(), 100*time.Millisecond)
	call.succeed(t)
	trunk.succeed(t)
	em := n.waitEmergencyRecord(t, call.callID, func(r emergencyRecord) bool { return r.Emergency })
	// The front desk's notifications were sent: the window is open once
	// the emergency call is recorded, which comes right after them.
	next(t, r.hooks, "the emergency webhook")

	anonymous := []string{
		`"Trunk Caller" <sip:+4930111222@[local_ip]:[local_port]>`, `"Anonymous" <sip:anonymous@anonymous.invalid>`,
		"P-Asserted-Identity: <sip:+4930111222@[local_ip]>", "Privacy: id",
	}
	// Other calls from the carrier keep its max_cps (1) and sip.max_cps
	// saturated while the emergency services call back.
	saturate := startSIPp(t, sippSpec{name: "saturate", scenario: "uac_flood.xml", remote: n.sipAddr(),
		service: hotlineNumber, calls: 200, extra: []string{"-r", "20", "-l", "40"}})
	n.waitMetricAtLeast(t, `switchboard_sip_requests_total{class="5xx",method="INVITE"}`, 5)
	pbx := n.pbx(t, "uas_answer.xml", 0)
	back := startSIPp(t, sippSpec{name: "psap", scenario: scenarioWith(t, "uac_answer.xml", anonymous...), remote: n.sipAddr(),
		service: emergencyCaller, pause: 100 * time.Millisecond})
	back.succeed(t)
	pbx.succeed(t)
	if time.Since(made) >= window {
		t.Fatalf("the call back took %v, longer than the window %v: the test cannot tell", time.Since(made), window)
	}
	inv := pbx.received(t, "INVITE ")
	if len(inv) != 1 {
		t.Fatalf("the PBX received %d INVITEs", len(inv))
	}
	if got := requestURI(inv[0]); !strings.HasPrefix(got, "sip:2001@") {
		t.Errorf("call back reached the PBX for %q, want extension 2001", got)
	}
	rec := n.waitEmergencyRecord(t, back.callID, func(r emergencyRecord) bool { return r.Disposition == "answered" })
	if rec.EmergencyCallback != em.ID || rec.Direction != "inbound" {
		t.Errorf("call back record %+v, want it linked to the emergency call %s", rec, em.ID)
	}
	saturate.proc.kill()

	// After the window: blocked as any anonymous caller.
	time.Sleep(time.Until(made.Add(window + 200*time.Millisecond))) // the window is a span of time: nothing to await
	late := startSIPp(t, sippSpec{name: "psap-late", scenario: scenarioWith(t, "uac_expect_error.xml", anonymous...), remote: n.sipAddr(),
		service: emergencyCaller, extra: []string{"-set", "expected", "603"}})
	late.succeed(t)
	rec = n.waitEmergencyRecord(t, late.callID, func(r emergencyRecord) bool { return r.Disposition == "blocked" })
	if rec.EmergencyCallback != "" {
		t.Errorf("late call linked to the emergency call: %+v", rec)
	}
}

// TestEmergencyAcrossNodes: two nodes share PostgreSQL (SPEC §11). An
// emergency call through node a shows on node b's event stream and in its
// open list, and the call back arriving at node b reaches the extension.
func TestEmergencyAcrossNodes(t *testing.T) {
	requirements(t)
	pg, err := pgtest.Start()
	if err != nil {
		if pgtest.Required() {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	t.Cleanup(pg.Stop)
	dsn, err := pg.NewDatabase(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	r := startReceivers(t, false)
	storage := fmt.Sprintf("  driver: postgres\n  dsn: %q\n", dsn)
	pbxPort := freePort(t)
	nodes := map[string]*node{}
	for _, name := range []string{"a", "b"} {
		n := prepareNode(t, nodeOptions{name: name, pbxPort: pbxPort, storage: storage})
		n.launch(emergencyConfig(n, r, freePort(t), "60m"), nil)
		nodes[name] = n
	}
	a, b := nodes["a"], nodes["b"]
	events := b.subscribeEvents(t)

	trunk := startSIPp(t, sippSpec{name: "carrier", scenario: "uas_trunk_answer.xml", port: a.trunkPort})
	invited := time.Now()
	call := a.emergencyCall(t, "sip:112@"+a.sipAddr(), 100*time.Millisecond)
	for {
		ev := next(t, events, "call.emergency on node b's stream")
		if ev.typ == "call.emergency" && strings.Contains(ev.data, call.callID) {
			t.Logf("node b heard of the emergency call on node a after %v", ev.at.Sub(invited).Round(time.Millisecond))
			break
		}
	}
	call.succeed(t)
	trunk.succeed(t)
	var open struct {
		Items []struct {
			CallID   string `json:"call_id"`
			Location string `json:"location"`
		} `json:"items"`
	}
	if code, body := b.api(t, http.MethodGet, "/api/emergencies", "", nil, &open); code != http.StatusOK ||
		len(open.Items) != 1 || open.Items[0].CallID != call.callID || open.Items[0].Location != emergencyLocation {
		t.Errorf("node b's open emergency calls: %d %s", code, body)
	}

	pbx := startSIPp(t, sippSpec{name: "pbx", scenario: "uas_answer.xml", port: pbxPort})
	anonymous := []string{
		`"Trunk Caller" <sip:+4930111222@[local_ip]:[local_port]>`, `"Anonymous" <sip:anonymous@anonymous.invalid>`,
		"P-Asserted-Identity: <sip:+4930111222@[local_ip]>", "Privacy: id",
	}
	back := startSIPp(t, sippSpec{name: "psap", scenario: scenarioWith(t, "uac_answer.xml", anonymous...), remote: b.sipAddr(),
		service: emergencyCaller, pause: 100 * time.Millisecond})
	back.succeed(t)
	pbx.succeed(t)
	if inv := pbx.received(t, "INVITE "); len(inv) != 1 || !strings.HasPrefix(requestURI(inv[0]), "sip:2001@") {
		t.Errorf("the call back through node b did not reach extension 2001: %d INVITEs", len(inv))
	}
	// One notification per recipient, whichever node sends it.
	next(t, r.hooks, "the emergency webhook")
	select {
	case h := <-r.hooks:
		t.Errorf("a second webhook: %s", h.body)
	case <-time.After(2 * time.Second): // nothing more may come: a span of time, nothing to await
	}
}
