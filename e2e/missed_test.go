package e2e

import (
	"encoding/json"
	"fmt"
	"github.com/switchboard-sip/switchboard/internal/mailtest"
	"net/mail"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard-sip/switchboard/contacts"
)

// TestMissedCallLifecycle follows one caller through a front desk's day: a
// missed call notifies by email (with the vCard and a tel: link), SMS and a
// signed webhook; a second unanswered call the same day only counts; the
// PBX's answered call-back marks the entry processed. Each channel gets
// exactly one message.
func TestMissedCallLifecycle(t *testing.T) {
	t.Parallel()
	r := startReceivers(t, false)
	n := newMissedNode(t, r, "", contacts.Contact{Name: "Jane Doe", Company: "Doe & Co", Email: "jane@example.com",
		Numbers: []contacts.Phone{{E164: trunkCaller, Raw: trunkCaller}}})

	// 1. A missed call: the caller gives up after 2.5 s of ringing.
	pbx := n.pbx(t, "uas_ring_forever.xml", 0)
	first := n.trunkCall(t, "uac_cancel.xml", 2500*time.Millisecond)
	first.succeed(t)
	pbx.succeed(t)
	e := n.waitMissed(first.callID, "notified", func(e missedEntry) bool { return e.NotifiedAt != nil })
	if e.Status != "open" || e.Count != 1 || e.Exception != "" || e.Caller != trunkCaller || e.Hotline != "acme" || e.ContactID == nil {
		t.Errorf("entry %+v: want open, count 1, no exception, caller %s, hotline acme, a contact", e, trunkCaller)
	}

	hook := next(t, r.hooks, "webhook")
	if err := verifySignature(hook); err != nil {
		t.Error(err)
	}
	var payload struct {
		Event   string         `json:"event"`
		Missed  missedEntry    `json:"missed"`
		Call    callRecord     `json:"call"`
		Contact map[string]any `json:"contact"`
		Hotline map[string]any `json:"hotline"`
	}
	if err := json.Unmarshal(hook.body, &payload); err != nil {
		t.Fatalf("webhook body %s: %v", hook.body, err)
	}
	if payload.Event != "missed.created" || payload.Missed.ID != e.ID || payload.Call.CallID != first.callID ||
		payload.Contact["name"] != "Jane Doe" || payload.Hotline["company"] != "ACME GmbH" {
		t.Errorf("webhook payload %s", hook.body)
	}

	msg := next(t, r.mails, "email")
	if len(msg.To) != 1 || msg.To[0] != "desk@example.com" || msg.From != "switchboard@example.com" {
		t.Errorf("email envelope from %q to %v", msg.From, msg.To)
	}
	m, parts := mailtest.Parse(t, msg.Data)
	if from, err := mail.ParseAddress(m.Header.Get("From")); err != nil || from.Address != "jane@example.com" {
		t.Errorf("From %q: want the caller's address", m.Header.Get("From"))
	}
	if !strings.Contains(m.Header.Get("Sender"), "switchboard@example.com") {
		t.Errorf("Sender %q: want the configured sender", m.Header.Get("Sender"))
	}
	if html := mailtest.Find(parts, "text/html"); html == nil || !strings.Contains(html.Body, `href="tel:`+trunkCaller+`"`) {
		t.Errorf("no tel: link in the HTML part: %+v", html)
	}
	if card := mailtest.Find(parts, "text/vcard"); card == nil || !strings.Contains(card.Body, "FN:Jane Doe") || !strings.Contains(card.Body, trunkCaller) {
		t.Errorf("no vCard of the caller attached: %+v", card)
	}

	sms := next(t, r.sms, "SMS request")
	var text struct{ To, From, Text string }
	if err := json.Unmarshal(sms.body, &text); err != nil {
		t.Fatalf("SMS body %s: %v", sms.body, err)
	}
	if text.To != "+4917012345" || text.From != trunkCaller || sms.header.Get("Authorization") != "Bearer e2e" {
		t.Errorf("SMS %s with Authorization %q", sms.body, sms.header.Get("Authorization"))
	}

	// 2. The same caller again, the same day: counted, not notified.
	pbx = n.pbx(t, "uas_ring_forever.xml", 0)
	second := n.trunkCall(t, "uac_cancel.xml", 2500*time.Millisecond)
	second.succeed(t)
	pbx.succeed(t)
	rep := n.waitMissed(second.callID, "recorded", func(missedEntry) bool { return true })
	if rep.Exception != "same_day_repeat" || rep.NotifiedAt != nil {
		t.Errorf("second entry %+v: want same_day_repeat, not notified", rep)
	}
	n.waitMissed(first.callID, "counting 2 calls", func(e missedEntry) bool { return e.Count == 2 })

	// 3. The PBX calls back and the caller answers: processed by that call.
	trunk := startSIPp(t, sippSpec{name: "carrier", scenario: "uas_trunk_answer.xml", port: n.trunkPort})
	back := startSIPp(t, sippSpec{name: "pbx-out", scenario: "uac_pbx_outbound.xml", port: n.pbxPort,
		remote: n.sipAddr(), service: trunkCaller, pause: 500 * time.Millisecond})
	back.succeed(t)
	trunk.succeed(t)
	rec := n.waitEnded(back.callID)
	done := n.waitMissed(first.callID, "processed", func(e missedEntry) bool { return e.Status == "processed" })
	if done.ResolvedBy != fmt.Sprint(rec.ID) || done.ProcessedAt == nil {
		t.Errorf("entry %+v: want resolved by the call-back %v", done, rec.ID)
	}
	n.waitMissed(second.callID, "processed", func(e missedEntry) bool { return e.Status == "processed" })

	// The command line shows the same entries.
	out, err := exec.Command(binPath, "calls", "--missed", "-c", n.cfgPath).CombinedOutput()
	if err != nil {
		t.Fatalf("switchboard calls --missed: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "MISSED") || !strings.Contains(string(out), "same_day_repeat") ||
		strings.Count(string(out), "processed") != 2 {
		t.Errorf("switchboard calls --missed:\n%s", out)
	}

	// Exactly one message per channel: the repeat queued nothing, and the
	// first entry's sends all succeeded at once.
	r.expectQuiet(t, "after the first entry's notifications")
}

// TestMissedCallExceptions places calls that get an entry with an
// exception and no notification.
func TestMissedCallExceptions(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		from      string
		anonymous bool
		ring      time.Duration
		exception string
	}{
		{name: "ring of 1 s", ring: time.Second, exception: "min_ring"},
		{name: "internal caller", from: "123", ring: 2500 * time.Millisecond, exception: "internal"},
		{name: "anonymous caller", anonymous: true, ring: 2500 * time.Millisecond, exception: "anonymous"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := startReceivers(t, false)
			n := newMissedNode(t, r, "")
			scenario := "uac_cancel.xml"
			if c.from != "" || c.anonymous {
				scenario = callerScenario(t, c.from, c.anonymous)
			}
			pbx := n.pbx(t, "uas_ring_forever.xml", 0)
			call := n.trunkCall(t, scenario, c.ring)
			call.succeed(t)
			pbx.succeed(t)
			e := n.waitMissed(call.callID, "recorded", func(missedEntry) bool { return true })
			if e.Exception != c.exception || e.NotifiedAt != nil || e.Status != "open" {
				t.Errorf("entry %+v: want open with exception %s, not notified", e, c.exception)
			}
			// The entry and its outbox rows are written in one transaction:
			// an entry without notified_at has none, so nothing can follow.
			r.expectQuiet(t, "excepted call")
		})
	}
}

// TestMissedNotificationFaults: the SMTP server is down when the call ends
// and comes back; the webhook receiver is down while switchboard restarts.
// Each notification arrives exactly once.
func TestMissedNotificationFaults(t *testing.T) {
	t.Parallel()
	r := startReceivers(t, true)
	r.hookDown.Store(true)
	n := newMissedNode(t, r, "")
	pbx := n.pbx(t, "uas_ring_forever.xml", 0)
	call := n.trunkCall(t, "uac_cancel.xml", 2500*time.Millisecond)
	call.succeed(t)
	pbx.succeed(t)
	e := n.waitMissed(call.callID, "notified", func(e missedEntry) bool { return e.NotifiedAt != nil })
	next(t, r.sms, "SMS request")
	next(t, r.hookRefused, "refused webhook")

	// SMTP comes back: the email goes out on a retry.
	r.startSMTP(t)
	next(t, r.mails, "email after the SMTP server came back")

	// switchboard restarts with the webhook still pending.
	n.signal(syscall.SIGTERM)
	if code := n.waitExit(15 * time.Second); code != 0 {
		t.Fatalf("switchboard exited %d after SIGTERM, want 0", code)
	}
	r.hookDown.Store(false)
	n.start()
	hook := next(t, r.hooks, "webhook after the restart")
	if err := verifySignature(hook); err != nil {
		t.Error(err)
	}
	var p struct {
		Missed missedEntry `json:"missed"`
	}
	if err := json.Unmarshal(hook.body, &p); err != nil || p.Missed.ID != e.ID {
		t.Errorf("webhook for %q (%v), want %s", p.Missed.ID, err, e.ID)
	}
	// Once delivered, nothing is sent again: a second call of the same
	// number is a repeat, and its entry settles when the queue is idle.
	pbx = n.pbx(t, "uas_ring_forever.xml", 0)
	again := n.trunkCall(t, "uac_cancel.xml", 2500*time.Millisecond)
	again.succeed(t)
	pbx.succeed(t)
	n.waitMissed(again.callID, "recorded", func(missedEntry) bool { return true })
	r.expectQuiet(t, "after delivery")
}
