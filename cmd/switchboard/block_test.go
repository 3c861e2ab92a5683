package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// blockConfig writes a config whose database lives in the test's
// directory, with one config entry.
func blockConfig(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "switchboard.yaml")
	cfg := `sip:
  listen: [udp://127.0.0.1:5060]
  pbx: sip:127.0.0.1:5080
  trunks:
    - {name: carrier, match: [127.0.0.1/32], outbound: "sip:127.0.0.1:5090", region: DE}
numbers: {region: DE, internal: ["1xx"]}
storage: {driver: sqlite, dsn: ` + filepath.Join(dir, "sb.db") + `}
blocking:
  entries:
    - {number: "+49110", action: allow}
`
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestBlockCommand(t *testing.T) {
	cfg := blockConfig(t)
	steps := []struct {
		name       string
		args       []string
		wantCode   int
		wantOut    []string
		wantErr    string
		notWantOut string
	}{
		{"add national number with flags after it", []string{"add", "0151 12345678", "-c", cfg, "--reason", "spam"}, 0,
			[]string{`blocked +4915112345678 (id 1, direction both, reason "spam")`}, "", ""},
		{"add prefix outbound", []string{"add", "-c", cfg, "0900*", "--direction", "out", "--reason", "premium rate"}, 0,
			[]string{"blocked +49900* (id 2, direction out"}, "", ""},
		{"add under an allow entry warns", []string{"add", "+49 110", "-c", cfg}, 0,
			[]string{"blocked +49110 (id 3", "note: +49110 stays allowed for direction in by the allow entry +49110"}, "", ""},
		{"allow", []string{"allow", "+49 900 1234567", "-c", cfg, "--direction", "out"}, 0,
			[]string{"allowed +499001234567 (id 4, direction out)"}, "", ""},
		{"list", []string{"list", "-c", cfg}, 0,
			[]string{"ID", "-   +49110", "config", "1   +4915112345678", "block", "both", "cli", "spam", "2   +49900*"}, "", ""},
		{"remove by id", []string{"remove", "-c", cfg, "3"}, 0, []string{"removed 3 block +49110 (direction both)"}, "", ""},
		{"remove by number in any format", []string{"remove", "-c", cfg, "015112345678"}, 0, []string{"removed 1 block +4915112345678"}, "", ""},
		{"remove config entry", []string{"remove", "-c", cfg, "+49110"}, 1, nil, "+49110 is set in the config file", ""},
		{"remove unknown", []string{"remove", "-c", cfg, "+4930999999"}, 1, nil, "no stored entry for +4930999999", ""},
		{"list after removal", []string{"list", "-c", cfg}, 0, []string{"+49900*"}, "", "+4915112345678"},
		{"bad number", []string{"add", "-c", cfg, "hello"}, 1, nil, "switchboard block add: number \"hello\"", ""},
		{"bad direction", []string{"add", "-c", cfg, "+4930123", "--direction", "up"}, 1, nil, `direction "up"`, ""},
		{"missing number", []string{"add", "-c", cfg}, 2, nil, "want 1 argument(s), got 0", ""},
		{"flag for another command", []string{"list", "-c", cfg, "--reason", "x"}, 2, nil, "--reason does not apply", ""},
		{"unknown command", []string{"drop"}, 2, nil, `unknown command "drop"`, ""},
		{"missing config", []string{"list", "-c", filepath.Join(t.TempDir(), "none.yaml")}, 1, nil, "does not exist", ""},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := blockCommand(st.args, &out, &errOut)
			if code != st.wantCode {
				t.Fatalf("exit %d, want %d; stdout %q stderr %q", code, st.wantCode, out.String(), errOut.String())
			}
			for _, w := range st.wantOut {
				if !strings.Contains(out.String(), w) {
					t.Errorf("stdout %q does not contain %q", out.String(), w)
				}
			}
			if st.notWantOut != "" && strings.Contains(out.String(), st.notWantOut) {
				t.Errorf("stdout %q contains %q", out.String(), st.notWantOut)
			}
			if !strings.Contains(errOut.String(), st.wantErr) {
				t.Errorf("stderr %q does not contain %q", errOut.String(), st.wantErr)
			}
		})
	}

	t.Run("list json", func(t *testing.T) {
		var out, errOut bytes.Buffer
		if code := blockCommand([]string{"list", "--json", "-c", cfg}, &out, &errOut); code != 0 {
			t.Fatalf("exit %d: %s", code, errOut.String())
		}
		var got struct {
			Items []map[string]any `json:"items"`
			Next  *string          `json:"next"`
		}
		if err := json.Unmarshal(out.Bytes(), &got); err != nil {
			t.Fatal(err)
		}
		if len(got.Items) != 3 || got.Next == nil {
			t.Fatalf("list --json = %s", out.String())
		}
		for _, k := range []string{"id", "number", "action", "direction", "reason"} {
			if _, ok := got.Items[0][k]; !ok {
				t.Errorf("item has no %s: %v", k, got.Items[0])
			}
		}
	})
}
