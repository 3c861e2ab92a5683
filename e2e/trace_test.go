package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// callerAs writes a copy of a trunk scenario whose caller sends its number
// in another format.
func callerAs(t *testing.T, scenario, number string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(scenarioDir, scenario))
	if err != nil {
		t.Fatal(err)
	}
	s := strings.ReplaceAll(string(b), trunkCaller, number)
	path := filepath.Join(t.TempDir(), scenario)
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	rel, err := filepath.Rel(scenarioDir, path)
	if err != nil {
		t.Fatal(err)
	}
	return rel
}

// TestTraceAcrossNumberFormats: calls from one caller sending its number
// internationally and nationally land on one contact, and the contact trace
// lists them with their dispositions and durations (SPEC §2).
func TestTraceAcrossNumberFormats(t *testing.T) {
	n := newNode(t, nodeOptions{})

	pbx := n.pbx(t, "uas_answer.xml", 0)
	answered := n.trunkCall(t, callerAs(t, "uac_answer.xml", "+4930111222"), time.Second)
	answered.succeed(t)
	pbx.succeed(t)
	first := n.waitEnded(answered.callID)

	pbx = n.pbx(t, "uas_busy.xml", 0)
	busy := n.trunkCall(t, callerAs(t, "uac_expect_error.xml", "030111222"), 0, "-set", "expected", "486")
	busy.succeed(t)
	pbx.succeed(t)
	second := n.waitEnded(busy.callID)
	if first.Caller != "+4930111222" || second.Caller != "+4930111222" || second.CallerRaw != "030111222" {
		t.Fatalf("callers %q and %q (raw %q): want one E.164 number", first.Caller, second.Caller, second.CallerRaw)
	}

	type traceItem = struct {
		CallID      string `json:"call_id"`
		ContactID   *int64 `json:"contact_id"`
		Disposition string `json:"disposition"`
		SIPStatus   int    `json:"sip_status"`
		TalkMS      int64  `json:"talk_ms"`
	}
	traceSettled := func(items []traceItem) bool {
		if len(items) != 2 {
			return false
		}
		for _, it := range items {
			if it.Disposition == "" {
				return false
			}
		}
		return true
	}
	var trace struct {
		Contact *struct {
			ID         int64 `json:"id"`
			CallsCount int64 `json:"calls_count"`
		} `json:"contact"`
		Items []traceItem `json:"items"`
	}
	// Asked in yet another format: national with separators.
	u := fmt.Sprintf("http://127.0.0.1:%d/api/trace?number=%s&months=12", n.httpPort, url.QueryEscape("030 / 111 222"))
	deadline := time.Now().Add(recordTimeout)
	for {
		res, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		err = json.NewDecoder(res.Body).Decode(&trace)
		res.Body.Close()
		if err != nil {
			t.Fatalf("GET %s: %v", u, err)
		}
		if traceSettled(trace.Items) && trace.Contact != nil && trace.Contact.CallsCount == 2 || time.Now().After(deadline) {
			break
		}
		// The trace reads written rows: the contact row and each call's
		// final version are written behind the call.
		time.Sleep(50 * time.Millisecond)
	}
	if trace.Contact == nil || len(trace.Items) != 2 {
		t.Fatalf("trace: contact %v, %d calls, want one contact with 2 calls", trace.Contact, len(trace.Items))
	}
	byCall := map[string]int{}
	for i, it := range trace.Items {
		byCall[it.CallID] = i
		if it.ContactID == nil || *it.ContactID != trace.Contact.ID {
			t.Errorf("call %s not linked to contact %d", it.CallID, trace.Contact.ID)
		}
	}
	a, b := trace.Items[byCall[answered.callID]], trace.Items[byCall[busy.callID]]
	if a.Disposition != "answered" || a.SIPStatus != 200 {
		t.Errorf("answered call in the trace: %+v", a)
	}
	within(t, "talk_ms", a.TalkMS, time.Second)
	if b.Disposition != "busy" || b.SIPStatus != 486 || b.TalkMS != 0 {
		t.Errorf("busy call in the trace: %+v", b)
	}
}
