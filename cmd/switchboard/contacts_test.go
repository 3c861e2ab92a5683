package main

import (
	"github.com/switchboard-sip/switchboard/cdr"

	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-sip/switchboard/callctl"
	"github.com/switchboard-sip/switchboard/contacts"
	"github.com/switchboard-sip/switchboard/storage"
	"github.com/switchboard-sip/switchboard/storage/callstore"
)

// contactsFixture writes a config (region DE, Berlin time) whose database
// does not exist yet, and returns the config path and the database path.
func contactsFixture(t *testing.T) (string, string) {
	t.Helper()
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "sb.db")
	cfg := fmt.Sprintf(`timezone: Europe/Berlin
sip:
  listen: [udp://127.0.0.1:5060]
  pbx: sip:127.0.0.1:5080
  trunks:
    - name: carrier
      match: [127.0.0.1/32]
      outbound: sip:127.0.0.1:5090
      region: DE
numbers:
  region: DE
  internal: ["1xx"]
storage:
  driver: sqlite
  dsn: %s
`, dbPath)
	path := filepath.Join(dir, "switchboard.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, dbPath
}

func run(f func([]string, *bytes.Buffer, *bytes.Buffer) int, args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := f(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func contactsCmd(args []string, out, errOut *bytes.Buffer) int {
	return contactsCommand(args, out, errOut)
}
func traceCmd(args []string, out, errOut *bytes.Buffer) int { return traceCommand(args, out, errOut) }

func TestContactsCLI(t *testing.T) {
	cfg, dbPath := contactsFixture(t)
	dir := filepath.Dir(cfg)
	good := filepath.Join(dir, "good.csv")
	os.WriteFile(good, []byte("name,company,phone,phone2,tags\n"+
		"Jane Doe,ACME,030 1234567,+49 151 12345678,vip\n"+
		"Jane again,,0049 30 1234567,,b2b\n"+
		"Bad,,030-CALL-ME,,\n"), 0o600)
	clean := filepath.Join(dir, "clean.csv")
	os.WriteFile(clean, []byte("name,phone\nMax,089 123456\n"), 0o600)
	vcf := filepath.Join(dir, "phone.vcf")
	os.WriteFile(vcf, []byte("BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Anna\r\nTEL;type=CELL:0170 1234567\r\nEND:VCARD\r\n"), 0o600)

	// Reading commands need the database to exist.
	if code, _, stderr := run(contactsCmd, "find", "-c", cfg, "030 1234567"); code != 1 || !strings.Contains(stderr, "storage.dsn") {
		t.Errorf("find without database: %d %q", code, stderr)
	}
	if _, err := os.Stat(dbPath); err == nil {
		t.Fatal("find created the database")
	}

	imports := []struct {
		name   string
		args   []string
		code   int
		stdout []string
		stderr string
	}{
		{"rows rejected", []string{"import", "-c", cfg, good}, 0,
			[]string{"3 rows: 1 created, 1 merged, 1 rejected", `line 4: phone "030-CALL-ME": `}, ""},
		{"strict", []string{"import", "-c", cfg, "--strict", good}, 1, []string{"0 created, 2 merged, 1 rejected"}, ""},
		{"strict clean", []string{"import", "--strict", "-c", cfg, clean}, 0, []string{"1 created"}, ""},
		{"vcard", []string{"import", "-c", cfg, vcf}, 0, []string{"1 rows: 1 created"}, ""},
		{"missing file", []string{"import", "-c", cfg, filepath.Join(dir, "nope.csv"), clean}, 1, []string{"clean.csv: 1 rows: 0 created, 1 merged"}, "nope.csv"},
		{"no phone column", []string{"import", "-c", cfg, cfg}, 1, nil, "no phone column"},
		{"no file", []string{"import", "-c", cfg}, 2, nil, "no file"},
	}
	for _, tc := range imports {
		t.Run("import "+tc.name, func(t *testing.T) {
			code, stdout, stderr := run(contactsCmd, tc.args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, stdout, stderr)
			}
			for _, want := range tc.stdout {
				if !strings.Contains(stdout, want) {
					t.Errorf("stdout %q lacks %q", stdout, want)
				}
			}
			if !strings.Contains(stderr, tc.stderr) {
				t.Errorf("stderr %q lacks %q", stderr, tc.stderr)
			}
			if strings.Contains(stderr, "\r") {
				t.Errorf("progress bar drawn on a non-terminal: %q", stderr)
			}
		})
	}

	// Calls for the trace, as the agent records them.
	ctx := context.Background()
	db, err := storage.Open("sqlite", dbPath)
	if err != nil {
		t.Fatal(err)
	}
	store, _ := contacts.NewStore(ctx, db)
	jane, err := store.FindByNumber(ctx, "+49301234567")
	if err != nil {
		t.Fatal(err)
	}
	calls, err := callstore.New(ctx, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Two years ago at 10:30 UTC: outside the default window, inside 48 months.
	old := time.Now().UTC().AddDate(-2, 0, 0).Truncate(24 * time.Hour).Add(10*time.Hour + 30*time.Minute)
	for _, r := range []cdr.Record{
		{ID: "t1", Direction: callctl.Inbound, Caller: "+49301234567", CallerName: "=HYPERLINK(1)", Called: "+4930999", Hotline: "acme", ContactID: jane.ID,
			StartedAt: time.Now().Add(-48 * time.Hour), Disposition: cdr.NoAnswer, SIPStatus: 487, RingMS: 15500, Node: "sb-1"},
		{ID: "t2", Direction: callctl.Outbound, Caller: "101", Called: "+4915112345678", ContactID: jane.ID,
			StartedAt: time.Now().Add(-24 * time.Hour), Disposition: cdr.Answered, SIPStatus: 200, TalkMS: 61000, Recording: "rec-7",
			WrapUp: cdr.WrapUp{Resolved: ptr(true), Transcript: "Hello, Jane here."}},
		{ID: "old", Direction: callctl.Inbound, Caller: "+49301234567", ContactID: jane.ID, StartedAt: old},
	} {
		calls.Save(r)
	}
	if _, err := store.Update(ctx, jane.ID, contacts.Patch{ClientID: ptr("K-1"), Email: ptr("jane@doe.example")}); err != nil {
		t.Fatal(err)
	}
	if err := calls.Close(ctx); err != nil {
		t.Fatal(err)
	}
	db.Close()

	t.Run("find by client id and email", func(t *testing.T) {
		for _, args := range [][]string{{"--client-id", "K-1"}, {"--email", "JANE@doe.example"}} {
			code, stdout, stderr := run(contactsCmd, append([]string{"find", "-c", cfg}, args...)...)
			if code != 0 || !strings.Contains(stdout, "Jane Doe") || !strings.Contains(stdout, "K-1") {
				t.Errorf("%v: %d %q %q", args, code, stdout, stderr)
			}
		}
		if code, _, stderr := run(contactsCmd, "find", "-c", cfg, "--client-id", "K-0"); code != 1 || !strings.Contains(stderr, `no contact has client_id "K-0"`) {
			t.Errorf("unknown client id: %d %q", code, stderr)
		}
		if code, _, _ := run(contactsCmd, "find", "-c", cfg, "--client-id", "K-1", "0301"); code != 2 {
			t.Errorf("two keys: exit %d, want 2", code)
		}
	})
	t.Run("trace by client id and email", func(t *testing.T) {
		_, byNumber, _ := run(traceCmd, "-c", cfg, "--csv", "030 1234567")
		for _, args := range [][]string{{"--client-id", "K-1"}, {"--email", "jane@doe.example"}} {
			code, stdout, stderr := run(traceCmd, append([]string{"-c", cfg, "--csv"}, args...)...)
			if code != 0 || stdout != byNumber || strings.Count(stdout, "\n") != 3 {
				t.Errorf("%v: %d %q %q, by number %q", args, code, stdout, stderr, byNumber)
			}
		}
		if code, _, stderr := run(traceCmd, "-c", cfg, "--email", "nobody@doe.example"); code != 1 || !strings.Contains(stderr, "nobody@doe.example") {
			t.Errorf("unknown email: %d %q", code, stderr)
		}
	})
	t.Run("find", func(t *testing.T) {
		code, stdout, stderr := run(contactsCmd, "find", "-c", cfg, "+49 (30) 123 45 67")
		if code != 0 || !strings.Contains(stdout, "Jane Doe") || !strings.Contains(stdout, "vip, b2b") || !strings.Contains(stdout, "+4915112345678") {
			t.Errorf("%d %q %q", code, stdout, stderr)
		}
		code, stdout, _ = run(contactsCmd, "find", "-c", cfg, "--json", "0151 12345678")
		var c map[string]any
		if code != 0 || json.Unmarshal([]byte(stdout), &c) != nil || c["name"] != "Jane Doe" || c["calls_count"].(float64) != 3 {
			t.Errorf("json: %d %s", code, stdout)
		}
		if code, _, stderr := run(contactsCmd, "find", "-c", cfg, "030 7777777"); code != 1 || !strings.Contains(stderr, "no contact has +49307777777") {
			t.Errorf("unknown: %d %q", code, stderr)
		}
		if code, _, stderr := run(contactsCmd, "find", "-c", cfg, "letters"); code != 1 || !strings.Contains(stderr, "letters") {
			t.Errorf("unreadable: %d %q", code, stderr)
		}
	})
	t.Run("trace", func(t *testing.T) {
		code, stdout, stderr := run(traceCmd, "-c", cfg, "030 1234567")
		if code != 0 || !strings.Contains(stdout, "2 calls") || !strings.Contains(stdout, "no_answer") || !strings.Contains(stdout, "rec-7") ||
			strings.Contains(stdout, "old") {
			t.Errorf("%d %s %s", code, stdout, stderr)
		}
		code, stdout, _ = run(traceCmd, "-c", cfg, "--csv", "--months", "48", "030 1234567")
		rows, err := csv.NewReader(strings.NewReader(stdout)).ReadAll()
		if code != 0 || err != nil || len(rows) != 4 || rows[0][0] != "date" {
			t.Fatalf("csv: %d %v %q", code, err, stdout)
		}
		col := map[string]int{}
		for i, name := range rows[0] {
			col[name] = i
		}
		if r := rows[1]; r[col["resolved"]] != "yes" || r[col["transcript"]] != "Hello, Jane here." || r[col["kind"]] != "call" {
			t.Errorf("resolved and transcript: %v", r)
		}
		if rows[2][2] != "inbound" || rows[2][8] != "no_answer" || rows[2][10] != "15.5" || rows[2][6] != "'=HYPERLINK(1)" {
			t.Errorf("csv row %v", rows[2])
		}
		berlin, _ := time.LoadLocation("Europe/Berlin")
		if rows[3][0] != old.In(berlin).Format("2006-01-02") || rows[3][1] != old.In(berlin).Format("15:04:05") {
			t.Errorf("old call %v not in Berlin time", rows[3])
		}
		code, stdout, _ = run(traceCmd, "-c", cfg, "--json", "+4930 1234567")
		var tr map[string]any
		if code != 0 || json.Unmarshal([]byte(stdout), &tr) != nil || len(tr["items"].([]any)) != 2 {
			t.Errorf("json: %d %s", code, stdout)
		}
		for _, bad := range [][]string{{"-c", cfg}, {"-c", cfg, "--json", "--csv", "0301"}, {"-c", cfg, "--months", "0", "0301"}} {
			if code, _, _ := run(traceCmd, bad...); code != 2 {
				t.Errorf("%v: exit %d, want 2", bad, code)
			}
		}
	})
	t.Run("export and delete", func(t *testing.T) {
		id := fmt.Sprint(jane.ID)
		code, stdout, _ := run(contactsCmd, "export", "-c", cfg, id)
		var ex struct {
			Contact map[string]any   `json:"contact"`
			Calls   []map[string]any `json:"calls"`
		}
		if code != 0 || json.Unmarshal([]byte(stdout), &ex) != nil || ex.Contact["name"] != "Jane Doe" || len(ex.Calls) != 3 {
			t.Fatalf("export: %d %s", code, stdout)
		}
		code, stdout, _ = run(contactsCmd, "delete", "-c", cfg, id)
		if code != 0 || !strings.Contains(stdout, "its 3 calls") {
			t.Errorf("delete: %d %s", code, stdout)
		}
		if code, _, _ := run(contactsCmd, "export", "-c", cfg, id); code != 1 {
			t.Errorf("export after delete: exit %d", code)
		}
		if code, _, _ := run(contactsCmd, "delete", "-c", cfg, "x"); code != 2 {
			t.Errorf("bad id: exit %d", code)
		}
	})
	t.Run("usage", func(t *testing.T) {
		for _, args := range [][]string{{}, {"frobnicate"}, {"find", "-c", cfg}, {"find", "--strict", "-c", cfg, "0301"}} {
			if code, _, _ := run(contactsCmd, args...); code != 2 {
				t.Errorf("%v: exit %d, want 2", args, code)
			}
		}
	})
}

func ptr[T any](v T) *T { return &v }
