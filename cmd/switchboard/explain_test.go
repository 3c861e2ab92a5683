package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchboard-sip/switchboard/agent"
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
    - {number: "+491*", action: block, direction: out, reason: too broad}
    - {number: "*@spam.example", action: block, reason: spam domain}
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
		check  func(t *testing.T, ex agent.Explanation)
	}{
		{"hotline open", []string{"--from", "030 111222", "--to", "0301234560", "--name", "Jane Roe", "--at", "2026-11-23T10:00"}, "forward", 0,
			func(t *testing.T, ex agent.Explanation) {
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
		{"blocked SIP domain", []string{"--from", "sip:robot@Spam.Example", "--to", "0301234560"}, "reject", 603,
			func(t *testing.T, ex agent.Explanation) {
				if ex.Decision.Reason != "spam domain" {
					t.Errorf("reason %q, want the domain entry's", ex.Decision.Reason)
				}
			}},
		{"other SIP domain", []string{"--from", "robot@example.org", "--to", "0301234560", "--at", "2026-11-23T10:00"}, "forward", 0, nil},
		{"rule rejects", []string{"--from", "030111222", "--to", "0301234561"}, "reject", 486, nil},
		{"outbound to blocked prefix", []string{"--from", "101", "--to", "0900 123456", "--source", "127.0.0.1:5080"}, "reject", 603, nil},
		{"outbound allowed", []string{"--from", "101", "--to", "030 999999", "--source", "127.0.0.1:5080"}, "forward", 0,
			func(t *testing.T, ex agent.Explanation) {
				if ex.Direction != "outbound" || ex.Decision.Target != "sip:127.0.0.1:5090" || !ex.Caller.Internal {
					t.Errorf("got %+v", ex)
				}
			}},
		{"emergency passes every check", []string{"--from", "101", "--to", "112", "--source", "127.0.0.1:5080"}, "forward", 0,
			func(t *testing.T, ex agent.Explanation) {
				if ex.Emergency != "passes every check" || ex.Decision.Target != "sip:127.0.0.1:5090" || ex.Block.Blocked {
					t.Errorf("got %+v", ex)
				}
			}},
		{"outbound to the too broad block", []string{"--from", "101", "--to", "+491123456", "--source", "127.0.0.1:5080"}, "reject", 603,
			func(t *testing.T, ex agent.Explanation) {
				if ex.Emergency != "" {
					t.Errorf("ordinary call marked emergency: %+v", ex)
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
			var ex agent.Explanation
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
	out.Reset()
	if code := dispatch([]string{"explain", "-c", path, "--from", "101", "--to", "tel:112", "--source", "127.0.0.1:5080"}, &out, &errb); code != 0 {
		t.Fatalf("text output: exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "emergency: passes every check") && !strings.Contains(out.String(), "emergency  passes every check") {
		t.Errorf("emergency call's explanation lacks the emergency line:\n%s", out.String())
	}
}

// explain is a dry run: in an empty folder, with the embedded default
// config (storage.dsn switchboard.db), it decides and leaves no file.
func TestExplainEmptyFolderCreatesNothing(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	var out, errb bytes.Buffer
	if code := dispatch([]string{"explain", "--json", "--from", "0151 12345678", "--to", "0301234560"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var ex agent.Explanation
	if err := json.Unmarshal(out.Bytes(), &ex); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	if ex.Decision.Action != "forward" || ex.Caller.E164 != "+4915112345678" || len(ex.Notes) == 0 {
		t.Errorf("explanation without a database: %+v", ex)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("explain left %s in an empty folder", e.Name())
	}
}

// With a database, explain finds a contact and the stored blocks, and
// changes nothing in it: no contact ids reserved, not a byte written.
func TestExplainReadsDatabaseWithoutWriting(t *testing.T) {
	path := writeExplainConfig(t)
	dir := filepath.Dir(path)
	csv := filepath.Join(dir, "people.csv")
	if err := os.WriteFile(csv, []byte("name,phone\nJane Doe,+4930111222\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := dispatch([]string{"contacts", "import", "-c", path, csv}, &out, &errb); code != 0 {
		t.Fatalf("import: exit %d: %s", code, errb.String())
	}
	if code := dispatch([]string{"block", "add", "-c", path, "+4930999888", "--reason", "stored"}, &out, &errb); code != 0 {
		t.Fatalf("block add: exit %d: %s", code, errb.String())
	}
	db := filepath.Join(dir, "sb.db")
	before := fileDigests(t, dir)
	explainJSON := func(from string) agent.Explanation { return explainOn(t, path, from) }
	known := explainJSON("030 111222")
	if known.Contact == nil || known.Contact.Found == nil || known.Contact.Found.Name != "Jane Doe" {
		t.Errorf("known caller: contact %+v, want Jane Doe found", known.Contact)
	}
	if known.Hotline == nil || known.Hotline.Greeting == "" || !known.Hotline.Reached {
		t.Errorf("known caller: hotline %+v", known.Hotline)
	}
	unknown := explainJSON("030 555666")
	if unknown.Contact == nil || !unknown.Contact.Create {
		t.Errorf("unknown caller: contact %+v, want one to be created", unknown.Contact)
	}
	blocked := explainJSON("030 999888")
	if blocked.Decision.Code != 603 || !blocked.Block.Blocked {
		t.Errorf("stored block: decision %+v block %+v", blocked.Decision, blocked.Block)
	}
	// The entry in the block list's JSON shape, as GET /api/blocks has it.
	if e := blocked.Block.Entry; e == nil || e.Number != "+4930999888" || e.Action != "block" || e.Source == "" || e.ID == 0 || e.CreatedAt == nil {
		t.Errorf("stored block: entry %+v, want the stored entry of +4930999888 with id, source and created_at", e)
	}
	// A blocked call still names the hotline it called.
	if h := blocked.Hotline; h == nil || h.Name != "acme" || h.Reached {
		t.Errorf("blocked call: hotline %+v, want acme named but not reached", h)
	}
	if stages := stageNames(blocked.Steps); stages != "identify emergency block" {
		t.Errorf("blocked call ran stages %q, want identify emergency block", stages)
	}
	if after := fileDigests(t, dir); after != before {
		t.Errorf("explain changed the folder of %s:\nbefore %s\nafter  %s", db, before, after)
	}
}

func stageNames(steps []agent.ExplainStep) string {
	var names []string
	for _, s := range steps {
		names = append(names, s.Stage)
	}
	return strings.Join(names, " ")
}

// fileDigests names every file of dir with a digest of its content.
func fileDigests(t *testing.T, dir string) string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s:%x ", e.Name(), sha256.Sum256(data))
	}
	return b.String()
}
