package e2e

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// traceMessage is a text message item of GET /api/trace (SPEC §8).
type traceMessage struct {
	ID          string `json:"id"`
	Kind        string `json:"kind"`
	Direction   string `json:"direction"`
	Caller      string `json:"caller"`
	Called      string `json:"called"`
	ContactID   *int64 `json:"contact_id"`
	Content     string `json:"content"`
	Truncated   bool   `json:"truncated"`
	ContentType string `json:"content_type"`
	Trunk       string `json:"trunk"`
	Source      string `json:"source"`
	Node        string `json:"node"`
	Status      int    `json:"status"`
	At          string `json:"at"`
}

// messageTrace is GET /api/trace with its message items.
type messageTrace struct {
	Contact *struct {
		ID int64 `json:"id"`
	} `json:"contact"`
	Items []traceMessage `json:"items"`
}

// eventNames follows /api/events and passes on the name of every event.
func (n *node) eventNames(t *testing.T) <-chan string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/api/events", n.httpPort), nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/events: %s", res.Status)
	}
	names := make(chan string, 64)
	go func() {
		defer res.Body.Close()
		sc := bufio.NewScanner(res.Body)
		for sc.Scan() {
			if ev, ok := strings.CutPrefix(sc.Text(), "event: "); ok {
				select {
				case names <- ev:
				default:
				}
			}
		}
	}()
	return names
}

func (tr messageTrace) messages() []traceMessage {
	var out []traceMessage
	for _, it := range tr.Items {
		if it.Kind == "message" {
			out = append(out, it)
		}
	}
	return out
}

// TestMessagesInTrace sends a MESSAGE each way through the real binary
// with SIPp, trunk to PBX and PBX to trunk, and finds both in the contact
// trace of the API and of `switchboard trace` (text, --json, --csv) with
// content, direction, delivery status and the rest of SPEC §8's fields,
// the longer one cut at messages.max_content; a contact delete removes
// them (SPEC §2).
func TestMessagesInTrace(t *testing.T) {
	n := newNode(t, nodeOptions{})
	n.reload(t, "messages:\n  max_content: 24\n", true)
	events := n.eventNames(t)

	const inText, outText = "Please call me back", "We will call you back today at five"
	pbx := startSIPp(t, sippSpec{name: "pbx", scenario: "uas_message.xml", port: n.pbxPort})
	in := startSIPp(t, sippSpec{name: "trunk", scenario: "uac_message.xml", remote: n.sipAddr(), service: "201",
		extra: []string{"-set", "from", trunkCaller, "-set", "text", inText}})
	in.succeed(t)
	pbx.succeed(t)
	if got := pbx.received(t, "MESSAGE "); len(got) != 1 || !strings.Contains(got[0].text, inText) {
		t.Fatalf("PBX received %d MESSAGEs: %v", len(got), got)
	}

	carrier := startSIPp(t, sippSpec{name: "carrier", scenario: scenarioWith(t, "uas_message.xml", "SIP/2.0 200 OK", "SIP/2.0 202 Accepted"), port: n.trunkPort})
	out := startSIPp(t, sippSpec{name: "pbx-out", scenario: "uac_message.xml", port: n.pbxPort, remote: n.sipAddr(), service: trunkCaller,
		extra: []string{"-set", "from", "201", "-set", "text", outText}})
	out.succeed(t)
	carrier.succeed(t)

	// The board's stream tells of both as they pass.
	want := map[string]bool{"message.received": true, "message.sent": true}
	for timeout := time.After(5 * time.Second); len(want) > 0; {
		select {
		case ev := <-events:
			delete(want, ev)
		case <-timeout:
			t.Fatalf("no %v on /api/events", want)
		}
	}

	// The records are written behind the messages: wait for both.
	var tr messageTrace
	deadline := time.Now().Add(recordTimeout)
	for {
		tr = messageTrace{}
		n.api(t, http.MethodGet, "/api/trace?number=030111222", "", nil, &tr)
		if (len(tr.messages()) == 2 && tr.Contact != nil) || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond) // polling the API: no event to await
	}
	msgs := tr.messages()
	if len(msgs) != 2 || tr.Contact == nil {
		t.Fatalf("trace: contact %v, messages %+v; want a contact and 2 messages", tr.Contact, msgs)
	}
	sent, received := msgs[0], msgs[1] // newest first
	if received.Direction != "received" || strings.TrimSpace(received.Content) != inText || received.Truncated ||
		received.Caller != trunkCaller || received.Called != "201" || received.Status != 200 {
		t.Errorf("received message: %+v", received)
	}
	if sent.Direction != "sent" || sent.Content != outText[:24] || !sent.Truncated ||
		sent.Caller != "201" || sent.Called != trunkCaller || sent.Status != 202 {
		t.Errorf("sent message: %+v", sent)
	}
	for _, m := range msgs {
		if m.ContactID == nil || *m.ContactID != tr.Contact.ID || m.Trunk != "carrier" || m.Node != "e2e" ||
			!strings.HasPrefix(m.ContentType, "text/plain") || !strings.HasPrefix(m.Source, "sip:") || m.At == "" {
			t.Errorf("message %s: %+v; want contact %d, trunk carrier, node e2e, text/plain, a source and a time", m.Direction, m, tr.Contact.ID)
		}
	}

	// The command line shows the same, in all three forms.
	cli := func(args ...string) string {
		t.Helper()
		b, err := exec.Command(binPath, append([]string{"trace", "-c", n.cfgPath}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("switchboard trace %v: %v\n%s", args, err, b)
		}
		return string(b)
	}
	if text := cli("030 111222"); !strings.Contains(text, "2 messages") || !strings.Contains(text, inText) ||
		!strings.Contains(text, "received") || !strings.Contains(text, "sent") || !strings.Contains(text, "cut:") {
		t.Errorf("switchboard trace:\n%s", text)
	}
	var js messageTrace
	if err := json.Unmarshal([]byte(cli("--json", trunkCaller)), &js); err != nil || len(js.messages()) != 2 ||
		js.messages()[0].Content != sent.Content || js.messages()[1].Direction != "received" {
		t.Errorf("switchboard trace --json: %v, %+v", err, js.messages())
	}
	rows, err := csv.NewReader(strings.NewReader(cli("--csv", trunkCaller))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	col := map[string]int{}
	for i, name := range rows[0] {
		col[name] = i
	}
	kinds := map[string]int{}
	for _, r := range rows[1:] {
		if len(r) == len(rows[0]) && r[col["kind"]] == "message" {
			kinds[r[col["direction"]]]++
		}
	}
	if _, ok := col["kind"]; !ok || kinds["received"] != 1 || kinds["sent"] != 1 {
		t.Errorf("switchboard trace --csv: %q", rows)
	}

	// A privacy export holds them, a privacy request takes them with the
	// contact.
	b, err := exec.Command(binPath, "contacts", "export", "-c", n.cfgPath, fmt.Sprint(tr.Contact.ID)).CombinedOutput()
	var ex struct {
		Messages []traceMessage `json:"messages"`
	}
	if err != nil || json.Unmarshal(b, &ex) != nil || len(ex.Messages) != 2 || ex.Messages[1].Content != received.Content {
		t.Errorf("contacts export: %v\n%s", err, b)
	}
	if code, body := n.api(t, http.MethodDelete, fmt.Sprintf("/api/contacts/%d", tr.Contact.ID), "", nil, nil); code >= 300 {
		t.Fatalf("DELETE contact: %d %s", code, body)
	}
	var after messageTrace
	n.api(t, http.MethodGet, "/api/trace?number=030111222", "", nil, &after)
	if len(after.messages()) != 0 {
		t.Errorf("after the contact's deletion the trace still has %+v", after.messages())
	}
}
