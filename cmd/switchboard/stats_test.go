package main

import (
	"github.com/switchboard-sip/switchboard/cdr"

	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-sip/switchboard/callctl"
	"github.com/switchboard-sip/switchboard/contacts"
	"github.com/switchboard-sip/switchboard/storage"
	"github.com/switchboard-sip/switchboard/storage/callstore"
)

func statsCmd(args []string, out, errOut *bytes.Buffer) int { return statsCommand(args, out, errOut) }

func TestStatsCLI(t *testing.T) {
	cfg, dbPath := contactsFixture(t)
	data, _ := os.ReadFile(cfg)
	data = append(data, []byte("hotlines:\n  - {name: acme, numbers: [\"+49301234560\"], company: ACME GmbH, campaign: radio}\n")...)
	os.WriteFile(cfg, data, 0o600)
	ctx := context.Background()
	db, err := storage.Open("sqlite", dbPath)
	if err != nil {
		t.Fatal(err)
	}
	store, _ := contacts.NewStore(ctx, db)
	jane, err := store.Create(ctx, contacts.Contact{Name: "=Jane", Numbers: []contacts.Phone{{E164: "+49301234567"}}})
	if err != nil {
		t.Fatal(err)
	}
	calls, _ := callstore.New(ctx, db, nil)
	now := time.Now().UTC().Add(-time.Hour)
	for i, d := range []cdr.Disposition{cdr.Answered, cdr.Answered, cdr.NoAnswer, cdr.Busy, cdr.Blocked} {
		calls.Save(cdr.Record{ID: fmt.Sprint("c", i), Direction: callctl.Inbound, Caller: "+49301234567", ContactID: jane.ID,
			Hotline: "acme", Campaign: "radio", StartedAt: now.Add(time.Duration(i) * time.Minute), Disposition: d, RingMS: 1000, TalkMS: 60000})
	}
	// Another contact's call, which --contact leaves out.
	calls.Save(cdr.Record{ID: "other", Direction: callctl.Inbound, Caller: "+49301111111", ContactID: jane.ID + 1000,
		Hotline: "acme", StartedAt: now, Disposition: cdr.Answered})
	// 40 days ago: outside the default 30 days.
	calls.Save(cdr.Record{ID: "old", Direction: callctl.Inbound, Hotline: "acme", StartedAt: now.AddDate(0, 0, -40), Disposition: cdr.Answered})
	if err := calls.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	yes := true
	if _, err := calls.SetWrapUp(ctx, "c0", cdr.WrapUp{Reason: "order", Resolved: &yes}); err != nil {
		t.Fatal(err)
	}
	if err := calls.Close(ctx); err != nil {
		t.Fatal(err)
	}
	db.Close()

	// --contact by a national number and by id: Jane's calls only.
	for _, who := range []string{"030 1234567", fmt.Sprint(jane.ID)} {
		code, stdout, stderr := run(statsCmd, "-c", cfg, "--json", "--contact", who)
		var c struct {
			Totals     struct{ Calls int64 }
			TopCallers []struct{ Calls int64 } `json:"top_callers"`
			Resolved   struct {
				Share float64
				Count int64
			}
		}
		if err := json.Unmarshal([]byte(stdout), &c); code != 0 || err != nil || c.Totals.Calls != 5 || len(c.TopCallers) != 1 ||
			c.Resolved.Count != 1 || c.Resolved.Share != 1 {
			t.Errorf("--contact %s: %d %v %s %s", who, code, err, stdout, stderr)
		}
	}
	if code, _, stderr := run(statsCmd, "-c", cfg, "--contact", "030 9999999"); code != 1 || !strings.Contains(stderr, "030 9999999") {
		t.Errorf("--contact unknown: %d %q", code, stderr)
	}

	code, stdout, stderr := run(statsCmd, "-c", cfg, "--json")
	var r struct {
		Totals     struct{ Calls, Answered, Missed int64 }
		Hotlines   []struct{ Name, Company string }
		TopCallers []struct {
			Name   string
			Number string
			Calls  int64
		} `json:"top_callers"`
		ByDay []struct{ Date string } `json:"by_day"`
	}
	if err := json.Unmarshal([]byte(stdout), &r); code != 0 || err != nil {
		t.Fatalf("--json: %d %v %s %s", code, err, stdout, stderr)
	}
	if r.Totals.Calls != 6 || r.Totals.Answered != 3 || r.Totals.Missed != 2 || len(r.Hotlines) != 1 || r.Hotlines[0].Company != "ACME GmbH" ||
		len(r.TopCallers) != 2 || r.TopCallers[0].Name != "=Jane" || r.TopCallers[0].Number != "+49301234567" || len(r.ByDay) != 30 {
		t.Errorf("--json: %+v", r)
	}
	code, stdout, _ = run(statsCmd, "-c", cfg, "--since", "1000h")
	if code != 0 || !strings.Contains(stdout, "7 calls, 4 answered, 2 missed") || !strings.Contains(stdout, "ACME GmbH") {
		t.Errorf("text, --since 1000h: %d %s", code, stdout)
	}
	code, stdout, _ = run(statsCmd, "-c", cfg, "--csv", "--hotline", "nope")
	rows, err := csv.NewReader(strings.NewReader(stdout)).ReadAll()
	if code != 0 || err != nil || rows[0][0] != "section" || rows[2][0] != "totals" || rows[2][3] != "0" {
		t.Errorf("--csv: %d %v %q", code, err, stdout)
	}
	code, stdout, _ = run(statsCmd, "-c", cfg, "--csv")
	if code != 0 || !strings.Contains(stdout, "top_caller,'=Jane,+49301234567,5") {
		t.Errorf("--csv top caller: %s", stdout)
	}
	code, stdout, stderr = run(statsCmd, "-c", cfg, "--rebuild")
	if code != 0 || !strings.Contains(stdout, "from 7 inbound calls") {
		t.Errorf("--rebuild: %d %q %q", code, stdout, stderr)
	}
	for _, bad := range [][]string{{"--since", "yesterday"}, {"--json", "--csv"}, {"extra"}} {
		if code, _, stderr := run(statsCmd, append([]string{"-c", cfg}, bad...)...); code != 2 || stderr == "" {
			t.Errorf("%v: exit %d %q", bad, code, stderr)
		}
	}
}
