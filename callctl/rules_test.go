package callctl

import (
	"github.com/switchboard-sip/switchboard/cdr"

	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/switchboard-sip/switchboard/blocking"
	"github.com/switchboard-sip/switchboard/configs"
	"github.com/switchboard-sip/switchboard/contacts"
	"github.com/switchboard-sip/switchboard/storage"
	"github.com/switchboard-sip/switchboard/storage/storagetest"
	"github.com/switchboard-sip/switchboard/templates"
)

func TestRulesStage(t *testing.T) {
	hotlines, err := templates.CompileHotlines(testHotlines(t), templates.Options{})
	if err != nil {
		t.Fatal(err)
	}
	contacts := contactsByNumber(map[string]*ContactInfo{
		"+4915111": {ID: 1, Name: "Jane", Tags: []string{"vip"}},
		"+4915666": {ID: 6, Name: "Spammer", Tags: []string{"spam"}, Fields: map[string]string{"note": "x"}},
	})
	rules := []configs.Rule{
		{Name: "vip", When: `"vip" in contact.tags`, Then: configs.Action{Header: map[string]string{"X-Priority": "1"}, Tag: configs.Strings{"vip"}}},
		{Name: "note", When: `contact.fields.note == "x"`, Then: configs.Action{Header: map[string]string{"X-Note": "a\r\nX-Evil: 1"}}},
		{Name: "spam", When: `"spam" in contact.tags`, Then: configs.Action{Reject: &configs.Reject{Code: 603, Announcement: "go-away.wav"}}},
		{Name: "closed acme", When: `hotline.name == "acme" && !hotline.open`, Then: configs.Action{Route: "sip:voicemail@127.0.0.1", Notify: []string{"boss@acme.example"}}},
		{Name: "local evening", When: `call.direction == "outbound" && now.getHours() >= 18`, Then: configs.Action{Tag: configs.Strings{"evening"}}},
		{Name: "outbound", When: `call.direction == "outbound" && called.e164.startsWith("+44")`, Then: configs.Action{SkipNotify: true, Tag: configs.Strings{"uk"}}},
	}
	core, logs := observer.New(zap.WarnLevel)
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	stage, err := NewRulesStage(rules, PolicyOptions{Hotlines: hotlines, Contacts: contacts, Location: berlin, Log: zap.New(core)})
	if err != nil {
		t.Fatal(err)
	}
	in := func(from, to string) *Call {
		return &Call{Direction: Inbound, CallID: "c", StartedAt: mondayMorning, Caller: Party{E164: from}, Called: Party{E164: to}}
	}
	closedCall := in("+4915222", "+49301234560")
	closedCall.Hotline = "acme"
	closedCall.StartedAt = mondayMorning.Add(12 * time.Hour)

	tests := []struct {
		name        string
		call        *Call
		wantVerdict Verdict
		wantCode    int
		wantTarget  string
		wantHeaders map[string]string
		wantTags    []string
		wantErrors  int
	}{
		{"vip gets a header and a tag", in("+4915111", "+49301234560"), Continue, 0, "", map[string]string{"X-Priority": "1"}, []string{"vip"}, 1},
		{"reject by contact tag", in("+4915666", "+49301234560"), Reject, 603, "", map[string]string{"X-Note": "a X-Evil: 1"}, nil, 0},
		{"unknown caller: runtime error skipped", in("+4915222", "+49301234560"), Continue, 0, "", nil, nil, 1},
		{"closed hotline routed", closedCall, Route, 0, "sip:voicemail@127.0.0.1", nil, nil, 1},
		{"outbound rule", &Call{Direction: Outbound, StartedAt: mondayMorning, Called: Party{E164: "+44201234"}}, Continue, 0, "", nil, []string{"uk"}, 1},
		// 17:30 UTC is 18:30 in Berlin, the config's zone.
		{"now is local", &Call{Direction: Outbound, StartedAt: mondayMorning.Add(8*time.Hour + 30*time.Minute), Called: Party{E164: "+44201234"}}, Continue, 0, "", nil, []string{"evening", "uk"}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := logs.Len()
			d := stage.Handle(context.Background(), tt.call)
			if d.Verdict != tt.wantVerdict || d.Code != tt.wantCode || d.Target != tt.wantTarget {
				t.Fatalf("Handle = %+v, want verdict %d code %d target %q", d, tt.wantVerdict, tt.wantCode, tt.wantTarget)
			}
			if d.Verdict == Reject && (d.Disposition != cdr.Blocked || d.Announcement != "go-away.wav" || d.Reason != "rule spam") {
				t.Errorf("reject decision %+v", d)
			}
			if len(tt.call.Headers) != len(tt.wantHeaders) {
				t.Errorf("headers %v, want %v", tt.call.Headers, tt.wantHeaders)
			}
			for k, v := range tt.wantHeaders {
				if tt.call.Headers[k] != v {
					t.Errorf("header %s = %q, want %q", k, tt.call.Headers[k], v)
				}
			}
			if !slices.Equal(tt.call.Tags, tt.wantTags) {
				t.Errorf("tags %v, want %v", tt.call.Tags, tt.wantTags)
			}
			if got := logs.Len() - before; got != tt.wantErrors {
				t.Errorf("%d rule errors logged, want %d", got, tt.wantErrors)
			}
		})
	}

	t.Run("notify and skip_notify", func(t *testing.T) {
		r := stage.Evaluate(closedCall)
		if !slices.Equal(r.Notify, []string{"boss@acme.example"}) || r.SkipNotify {
			t.Errorf("notify %v skip %v", r.Notify, r.SkipNotify)
		}
		r = stage.Evaluate(&Call{Direction: Outbound, Called: Party{E164: "+44201234"}})
		if !r.SkipNotify {
			t.Errorf("skip_notify not set")
		}
	})
}

func TestNewRulesStageErrors(t *testing.T) {
	_, err := NewRulesStage([]configs.Rule{
		{Name: "ok", When: "true", Then: configs.Action{SkipNotify: true}},
		{Name: "bad", When: `"vip" in contact.tgs`, Then: configs.Action{SkipNotify: true}},
	}, PolicyOptions{})
	if err == nil || !strings.Contains(err.Error(), "rules[1].when: line 1, column 17: contact has no field tgs") {
		t.Errorf("error %v does not name the rule", err)
	}
}

// TestRulesRejectByContactTag runs the hotline and rules stages over a real
// contact index in SQLite: a caller whose contact is tagged blocked-caller
// is rejected by a rule, an untagged one gets the hotline's display name.
func TestRulesRejectByContactTag(t *testing.T) {
	ctx := context.Background()
	db, err := storage.Open(storagetest.Target(t, "sb"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	store, err := contacts.NewStore(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []contacts.Contact{
		{Name: "Mallory", Tags: []string{"blocked-caller"}, Numbers: []contacts.Phone{{E164: "+4915166"}}},
		{Name: "Jane Doe", Tags: []string{"customer"}, Numbers: []contacts.Phone{{E164: "+4915111"}}},
	} {
		if _, err := store.Create(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	cache, err := contacts.NewCache(ctx, store, contacts.CacheOptions{Poll: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cache.Close(context.Background()) })
	finder := IndexContacts(cache)

	hotline, err := NewHotlineStage(testHotlines(t), PolicyOptions{Contacts: finder})
	if err != nil {
		t.Fatal(err)
	}
	rules, err := NewRulesStage([]configs.Rule{
		{Name: "tagged", When: `"blocked-caller" in contact.tags`, Then: configs.Action{Reject: &configs.Reject{Code: 486}}},
		{Name: "customers reach the night line", When: `!hotline.open && "customer" in contact.tags`, Then: configs.Action{Route: "sip:night@127.0.0.1"}},
	}, PolicyOptions{Hotlines: hotline.Hotlines(), Contacts: finder})
	if err != nil {
		t.Fatal(err)
	}
	p := Pipeline{hotline, rules, NewClosedStage(hotline)}
	night := mondayMorning.Add(12 * time.Hour)
	tests := []struct {
		name        string
		from        string
		at          time.Time
		wantCode    int
		wantTarget  string
		wantDisplay string
	}{
		{"tagged contact rejected", "+4915166", mondayMorning, 486, "", "ACME: Mallory"},
		{"customer passes", "+4915111", mondayMorning, 0, "", "ACME: Jane Doe"},
		{"unknown caller passes", "+4915222", mondayMorning, 0, "", "ACME: 015222"},
		{"closed: customer routed by a rule", "+4915111", night, 0, "sip:night@127.0.0.1", "ACME: Jane Doe"},
		{"closed: others get the closed response", "+4915222", night, 480, "", "ACME: 015222"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &Call{Direction: Inbound, StartedAt: tt.at, Caller: Party{E164: tt.from, National: "0" + tt.from[3:]}, Called: Party{E164: "+49301234560"}}
			d := p.Run(ctx, c)
			if d.Code != tt.wantCode || c.Target != tt.wantTarget || c.DisplayName != tt.wantDisplay {
				t.Errorf("decision %+v target %q display %q, want code %d target %q display %q", d, c.Target, c.DisplayName, tt.wantCode, tt.wantTarget, tt.wantDisplay)
			}
		})
	}
}

// BenchmarkPolicyStages is the policy part of the INVITE path: blocking
// over 100,000 entries, the hotline with its templates, three rules and
// the closed check.
func BenchmarkPolicyStages(b *testing.B) {
	entries := make([]blocking.Entry, 0, 100_000)
	for i := range 100_000 {
		entries = append(entries, blocking.Entry{Number: fmt.Sprintf("+49%010d", i*7919), Action: blocking.Block, Direction: blocking.Both})
	}
	block, err := NewBlockStage(configs.Blocking{}, blocking.NewIndex(entries))
	if err != nil {
		b.Fatal(err)
	}
	contacts := contactsByNumber(map[string]*ContactInfo{"+4915111": {ID: 1, Name: "Jane", Tags: []string{"vip"}}})
	hotline, err := NewHotlineStage(testHotlines(b), PolicyOptions{Contacts: contacts})
	if err != nil {
		b.Fatal(err)
	}
	rules, err := NewRulesStage([]configs.Rule{
		{Name: "vip", When: `"vip" in contact.tags`, Then: configs.Action{Header: map[string]string{"X-Priority": "1"}}},
		{Name: "night", When: `now.getHours() >= 22`, Then: configs.Action{SkipNotify: true}},
		{Name: "berlin", When: `caller.e164.startsWith("+4930")`, Then: configs.Action{Tag: configs.Strings{"berlin"}}},
	}, PolicyOptions{Hotlines: hotline.Hotlines(), Contacts: contacts})
	if err != nil {
		b.Fatal(err)
	}
	p := Pipeline{block, hotline, rules, NewClosedStage(hotline)}
	ctx := context.Background()
	for b.Loop() {
		c := &Call{Direction: Inbound, StartedAt: mondayMorning, Caller: Party{E164: "+4915111", National: "015111"}, Called: Party{E164: "+49301234571"}}
		if d := p.Run(ctx, c); d.Verdict != Continue {
			b.Fatal(d)
		}
	}
}
