package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const explainConfig = `
sip:
  listen: [udp://127.0.0.1:0]
  pbx: sip:127.0.0.1:5080
  trunks:
    - {name: carrier, match: [127.0.0.1/32], outbound: "sip:127.0.0.1:5090", region: DE}
storage: {dsn: DB}
timezone: Europe/Berlin
numbers: {region: DE, internal: ["1xx"]}
blocking:
  entries:
    - {number: "+4915112345678", action: block, reason: spam}
    - {number: "+49900*", action: block, direction: out, reason: premium rate}
hotlines:
  - name: acme
    numbers: ["+49301234560"]
    company: ACME GmbH
    greeting: "Good {{daypart .Now}}, ACME GmbH"
    caller_name_prefix: "ACME: "
    hours: ["mon-fri 08:00-18:00"]
rules:
  - name: night
    when: 'called.e164 == "+49301234561"'
    then: {reject: 486}
`

func writeExplainConfig(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "sb.yaml")
	cfg := strings.Replace(explainConfig, "DB", filepath.Join(dir, "sb.db"), 1)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestExplain(t *testing.T) {
	path := writeExplainConfig(t)
	tests := []struct {
		name   string
		args   []string
		action string
		code   int
		check  func(t *testing.T, ex explanation)
	}{
		{"hotline open", []string{"--from", "030 111222", "--to", "0301234560", "--name", "Jane Roe", "--at", "2026-11-23T10:00"}, "forward", 0,
			func(t *testing.T, ex explanation) {
				if ex.Hotline == nil || !ex.Hotline.Open || ex.Hotline.Greeting != "Good morning, ACME GmbH" {
					t.Errorf("hotline = %+v", ex.Hotline)
				}
				if ex.DisplayName != "ACME: Jane Roe" || ex.Caller.E164 != "+4930111222" {
					t.Errorf("display %q caller %+v", ex.DisplayName, ex.Caller)
				}
				if ex.Contact == nil || !ex.Contact.Create || ex.Contact.Name != "Jane Roe" {
					t.Errorf("contact = %+v", ex.Contact)
				}
			}},
		{"hotline closed", []string{"--from", "030111222", "--to", "+49301234560", "--at", "2026-11-22T10:00"}, "reject", 480, nil},
		{"blocked caller", []string{"--from", "0151 12345678", "--to", "0301234560"}, "reject", 603, nil},
		{"rule rejects", []string{"--from", "030111222", "--to", "0301234561"}, "reject", 486, nil},
		{"outbound to blocked prefix", []string{"--from", "101", "--to", "0900 123456", "--source", "127.0.0.1:5080"}, "reject", 603, nil},
		{"outbound allowed", []string{"--from", "101", "--to", "030 999999", "--source", "127.0.0.1:5080"}, "forward", 0,
			func(t *testing.T, ex explanation) {
				if ex.Direction != "outbound" || ex.Decision.Target != "sip:127.0.0.1:5090" || !ex.Caller.Internal {
					t.Errorf("got %+v", ex)
				}
			}},
		{"unknown source", []string{"--from", "1", "--to", "2", "--source", "192.0.2.1"}, "reject", 403, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			args := append([]string{"explain", "-c", path, "--json"}, tc.args...)
			if code := dispatch(args, &out, &errb); code != 0 {
				t.Fatalf("exit %d: %s", code, errb.String())
			}
			var ex explanation
			if err := json.Unmarshal(out.Bytes(), &ex); err != nil {
				t.Fatalf("%v: %s", err, out.String())
			}
			if ex.Decision.Action != tc.action || ex.Decision.Code != tc.code {
				t.Fatalf("decision %+v, want %s %d", ex.Decision, tc.action, tc.code)
			}
			if tc.check != nil {
				tc.check(t, ex)
			}
		})
	}
	var out, errb bytes.Buffer
	if code := dispatch([]string{"explain", "-c", path, "--from", "030111222", "--to", "0301234560"}, &out, &errb); code != 0 {
		t.Fatalf("text output: exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "hotline") || !strings.Contains(out.String(), "decision") {
		t.Errorf("text output lacks lines:\n%s", out.String())
	}
}
