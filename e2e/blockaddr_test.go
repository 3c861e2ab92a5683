package e2e

import (
	"net/http"
	"os/exec"
	"strings"
	"testing"
)

// TestBlockSIPAddress blocks by SIP address end to end (SPEC §1, §7): a
// whole domain added with `switchboard block add *@spam.example` and one
// address added through POST /api/blocks refuse callers whose From holds
// them with blocking.response, whether or not the trunk asserts a number,
// while a caller from a number (and a user of the blocked address's host)
// still reaches the PBX.
func TestBlockSIPAddress(t *testing.T) {
	n := newNode(t, nodeOptions{})
	// The CLI writes the database; the API's add below reloads every stored
	// entry into the running agent, the CLI's included.
	if out, err := exec.Command(binPath, "block", "add", "-c", n.cfgPath, "--reason", "spam domain", "*@Spam.Example").CombinedOutput(); err != nil {
		t.Fatalf("block add: %v\n%s", err, out)
	} else if !strings.Contains(string(out), "*@spam.example") {
		t.Errorf("block add printed %q, want the normalised domain *@spam.example", out)
	}
	if code, body := n.api(t, http.MethodPost, "/api/blocks", `{"number": "sip:spam@EXAMPLE.net", "reason": "spam address"}`, nil, nil); code != http.StatusCreated {
		t.Fatalf("POST /api/blocks: %d %s", code, body)
	} else if !strings.Contains(body, `"number":"spam@example.net"`) {
		t.Errorf("POST /api/blocks answered %s, want the normalised address", body)
	}

	fromURI := "<sip:" + trunkCaller + "@[local_ip]:[local_port]>"
	pai := "P-Asserted-Identity: <sip:" + trunkCaller + "@[local_ip]>"
	cases := []struct {
		name      string
		repl      []string
		reason    string
		callerRaw string // the record names the caller by its address when it has no number
	}{
		// No asserted identity: From is the caller.
		{"address", []string{fromURI, "<sip:spam@example.net>", pai, "X-Asserted: none"}, "spam address", "spam@example.net"},
		// The trunk asserts a number; the From domain still counts.
		{"domain behind a number", []string{fromURI, "<sip:robot@spam.example>"}, "spam domain", trunkCaller},
	}
	for _, c := range cases {
		call := n.trunkCall(t, scenarioWith(t, "uac_expect_error.xml", c.repl...), 0, "-set", "expected", "603")
		call.succeed(t)
		if r := n.waitEnded(call.callID); r.Disposition != "blocked" || r.SIPStatus != 603 {
			t.Errorf("%s: record %s, want blocked with 603", c.name, r)
		}
		var list struct {
			Items []struct {
				CallID    string `json:"call_id"`
				CallerRaw string `json:"caller_raw"`
				EndReason string `json:"end_reason"`
			} `json:"items"`
		}
		n.api(t, http.MethodGet, "/api/calls?limit=100", "", nil, &list)
		for _, it := range list.Items {
			if it.CallID == call.callID && (it.EndReason != c.reason || it.CallerRaw != c.callerRaw) {
				t.Errorf("%s: end_reason %q, caller_raw %q; want the entry's reason %q and %q", c.name, it.EndReason, it.CallerRaw, c.reason, c.callerRaw)
			}
		}
	}

	// Positive controls: a caller sending its number, and another user of
	// the blocked address's host, reach the PBX and are answered.
	for _, repl := range [][]string{nil, {fromURI, "<sip:friend@example.net>", pai, "X-Asserted: none"}} {
		pbx := n.pbx(t, "uas_answer.xml", 0)
		call := n.trunkCall(t, scenarioWith(t, "uac_answer.xml", repl...), 0)
		call.succeed(t)
		pbx.succeed(t)
		if r := n.waitEnded(call.callID); r.Disposition != "answered" {
			t.Errorf("control call %v: record %s, want answered", repl, r)
		}
	}
}
