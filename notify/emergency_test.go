package notify_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-sip/switchboard/configs"
	"github.com/switchboard-sip/switchboard/metrics"
	"github.com/switchboard-sip/switchboard/notify"
	"github.com/switchboard-sip/switchboard/storage"
	"github.com/switchboard-sip/switchboard/storage/storagetest"
	"github.com/switchboard-sip/switchboard/wire"
)

// TestEmergencyNotice: an emergency call's notice goes to
// emergency.notify at once (the webhook channel exists although no
// missed-call webhook is configured), is retried while the receiver
// fails, and is queued once however often it is asked for.
func TestEmergencyNotice(t *testing.T) {
	rcv := newReceiver(t, 503, 204)
	sms := newReceiver(t, 200)
	yaml := fmt.Sprintf(configYAML, "", false, false, "tel:", sms.srv.URL+"/sms", "POST", "") +
		fmt.Sprintf("emergency:\n  notify: {webhook: %q, sms: [\"+4917011111\"]}\n", rcv.srv.URL+"/emergency")
	cfg, err := configs.Parse([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	db, err := storage.Open(storagetest.Target(t, "sb"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	outcomes := make(chan notify.Outcome, 10)
	n, err := notify.New(context.Background(), notify.Options{DB: db, Config: cfg, Metrics: metrics.New(),
		BaseDelay: 20 * time.Millisecond, MaxDelay: 100 * time.Millisecond, Poll: time.Minute,
		OnOutcome: func(o notify.Outcome) { outcomes <- o }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close(context.Background()) })
	e := wire.Emergency{ID: "r1", CallID: "c1", Extension: "2001", Name: "Reception", Location: "Ground floor",
		Dialled: "112", At: "2030-03-04T10:15:00.000+01:00"}
	start := time.Now()
	if k, err := n.Emergency(context.Background(), e, wire.Call{ID: "r1"}); err != nil || k != 2 {
		t.Fatalf("queued %d, %v; want 2 (webhook and SMS)", k, err)
	}
	if k, _ := n.Emergency(context.Background(), e, wire.Call{ID: "r1"}); k != 0 {
		t.Fatalf("queued again: %d rows", k)
	}
	first := <-rcv.hits
	if d := time.Since(start); d > time.Second {
		t.Errorf("first webhook after %v with a poll of a minute: not sent at once", d)
	}
	if first.header.Get("X-Switchboard-Event") != notify.EventEmergency {
		t.Errorf("event header %q", first.header.Get("X-Switchboard-Event"))
	}
	var p notify.Payload
	if err := json.Unmarshal(first.body, &p); err != nil || p.Emergency == nil || p.Emergency.Location != "Ground floor" {
		t.Fatalf("payload %s (%v)", first.body, err)
	}
	second := <-rcv.hits // after the 503, retried
	if second.header.Get("X-Switchboard-Delivery") != first.header.Get("X-Switchboard-Delivery") {
		t.Error("the retry is another delivery")
	}
	text := <-sms.hits
	if b := string(text.body); !strings.Contains(b, "EMERGENCY CALL to 112 from extension 2001 (Reception), Ground floor") {
		t.Errorf("SMS %s", b)
	}
	sent := 0
	for sent < 2 {
		select {
		case o := <-outcomes:
			if o.Status == notify.StatusSent {
				sent++
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%d of 2 sent", sent)
		}
	}
}
