package main

import (
	"github.com/switchboard-sip/switchboard/cdr"

	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/switchboard-sip/switchboard/callctl"
	"github.com/switchboard-sip/switchboard/storage"
	"github.com/switchboard-sip/switchboard/storage/callstore"
)

// callsFixture writes a config whose SQLite file holds four calls from
// the last hour, the newest first in the slice.
func callsFixture(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "sb.db")
	db, err := storage.Open("sqlite", dbPath)
	if err != nil {
		t.Fatal(err)
	}
	store, err := callstore.New(context.Background(), db, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	mk := func(id string, ago time.Duration, dir callctl.Direction, disp cdr.Disposition, status int, ring, talk int64) cdr.Record {
		return cdr.Record{
			ID: id, CallID: id + "@pbx", Direction: dir, Caller: "+4915112345678", CallerRaw: "015112345678",
			Called: "+49301234560", CalledRaw: "0301234560", Hotline: "acme", StartedAt: now.Add(-ago),
			Disposition: disp, SIPStatus: status, RingMS: ring, TalkMS: talk, Node: "sb-1",
		}
	}
	for _, r := range []cdr.Record{
		mk("c1", 50*time.Minute, callctl.Inbound, cdr.Answered, 200, 3200, 61000),
		mk("c2", 40*time.Minute, callctl.Inbound, cdr.NoAnswer, 487, 12000, 0),
		mk("c3", 20*time.Minute, callctl.Outbound, cdr.Busy, 486, 1000, 0),
		mk("c4", 5*time.Minute, callctl.Inbound, cdr.Busy, 486, 800, 0),
	} {
		store.Save(r)
	}
	if err := store.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	db.Close()

	cfg := fmt.Sprintf(`timezone: Europe/Berlin
sip:
  listen: [udp://127.0.0.1:5060]
  pbx: sip:127.0.0.1:5080
  trunks:
    - name: carrier
      match: [127.0.0.1/32]
      outbound: sip:127.0.0.1:5090
      region: DE
storage:
  driver: sqlite
  dsn: %s
`, dbPath)
	path := filepath.Join(dir, "switchboard.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func runCalls(args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := callsCommand(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestCallsCommandTable(t *testing.T) {
	cfg := callsFixture(t)
	tests := []struct {
		name  string
		args  []string
		calls []string // dispositions of the rows, in order
	}{
		{"all", nil, []string{"busy", "busy", "no_answer", "answered"}},
		{"missed", []string{"--missed"}, []string{"busy", "no_answer"}},
		{"since", []string{"--since", "30m"}, []string{"busy", "busy"}},
		{"limit", []string{"--limit", "3"}, []string{"busy", "busy", "no_answer"}},
		{"missed since", []string{"--missed", "-since", "10m"}, []string{"busy"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runCalls(append([]string{"-c", cfg}, tt.args...)...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
			if !strings.HasPrefix(lines[0], "STARTED") || !strings.Contains(lines[0], "TALK S") {
				t.Fatalf("no header: %q", lines[0])
			}
			rows := lines[1:]
			if len(rows) != len(tt.calls) {
				t.Fatalf("%d rows, want %d:\n%s", len(rows), len(tt.calls), out)
			}
			col := strings.Index(lines[0], "DISPOSITION")
			for i, row := range rows {
				if got := strings.Fields(row[col:])[0]; got != tt.calls[i] {
					t.Errorf("row %d disposition %q, want %q (aligned columns?)\n%s", i, got, tt.calls[i], out)
				}
			}
		})
	}

	t.Run("values and time zone", func(t *testing.T) {
		_, out, _ := runCalls("-c", cfg, "--limit", "100")
		last := strings.Split(strings.TrimRight(out, "\n"), "\n")[4]
		berlin, _ := time.LoadLocation("Europe/Berlin")
		started := time.Now().Add(-50 * time.Minute).In(berlin).Format("2006-01-02 15:")
		for _, want := range []string{started, "inbound", "+4915112345678", "+49301234560", "acme", "answered", "200", "3.2", "61.0"} {
			if !strings.Contains(last, want) {
				t.Errorf("row %q lacks %q", last, want)
			}
		}
	})
}

func TestCallsCommandJSON(t *testing.T) {
	cfg := callsFixture(t)
	code, out, errOut := runCalls("-c", cfg, "--json", "--missed")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var got struct {
		Items []map[string]any `json:"items"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if len(got.Items) != 2 || got.Items[0]["id"] != "c4" || got.Items[1]["id"] != "c2" {
		t.Fatalf("items = %v", got.Items)
	}
	started, _ := got.Items[0]["started_at"].(string)
	if _, err := time.Parse(time.RFC3339, started); err != nil || !strings.Contains(started, ".") ||
		!(strings.HasSuffix(started, "+01:00") || strings.HasSuffix(started, "+02:00")) {
		t.Errorf("started_at = %q, want RFC 3339 with ms in Europe/Berlin", started)
	}
}

func TestCallsCommandErrors(t *testing.T) {
	dir := t.TempDir()
	missingDB := filepath.Join(dir, "missing.yaml")
	os.WriteFile(missingDB, []byte(`sip:
  listen: [udp://127.0.0.1:5060]
  pbx: sip:127.0.0.1:5080
  trunks: [{name: carrier, match: [127.0.0.1/32], outbound: "sip:127.0.0.1:5090"}]
storage: {driver: sqlite, dsn: `+filepath.Join(dir, "nowhere", "sb.db")+`}
`), 0o600)
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("sip: {listen: 5}\nbogus: 1\n"), 0o600)
	notDB := filepath.Join(dir, "notdb.yaml")
	garbage := filepath.Join(dir, "garbage.db")
	os.WriteFile(garbage, bytes.Repeat([]byte("not a database "), 500), 0o600)
	os.WriteFile(notDB, []byte(`sip:
  listen: [udp://127.0.0.1:5060]
  pbx: sip:127.0.0.1:5080
  trunks: [{name: carrier, match: [127.0.0.1/32], outbound: "sip:127.0.0.1:5090"}]
storage: {driver: sqlite, dsn: `+garbage+`}
`), 0o600)

	tests := []struct {
		name    string
		args    []string
		want    int
		mention string
	}{
		{"config file missing", []string{"-c", filepath.Join(dir, "none.yaml")}, 1, "none.yaml"},
		{"invalid config", []string{"-c", bad}, 1, "bogus"},
		{"database missing", []string{"-c", missingDB}, 1, "sb.db"},
		{"not a database", []string{"-c", notDB}, 1, "switchboard calls:"},
		{"bad since", []string{"-c", missingDB, "--since", "yesterday"}, 2, "--since"},
		{"bad limit", []string{"--limit", "0"}, 2, "--limit"},
		{"unknown flag", []string{"--nope"}, 2, "nope"},
		{"stray argument", []string{"extra"}, 2, "extra"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runCalls(tt.args...)
			if code != tt.want {
				t.Fatalf("exit %d, want %d (stderr %q)", code, tt.want, errOut)
			}
			if out != "" {
				t.Errorf("stdout = %q, want nothing", out)
			}
			if !strings.Contains(errOut, tt.mention) {
				t.Errorf("stderr %q does not mention %q", errOut, tt.mention)
			}
			if tt.want == 1 && strings.Count(strings.TrimRight(errOut, "\n"), "\n") != 0 {
				t.Errorf("stderr has several lines: %q", errOut)
			}
		})
	}
}
