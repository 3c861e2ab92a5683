package callctl

import (
	"github.com/switchboard-sip/switchboard/cdr"

	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/switchboard-sip/switchboard/configs"
)

// contactsByNumber is a ContactFinder over a fixed map, standing in for
// the contact cache.
func contactsByNumber(m map[string]*ContactInfo) ContactFinder {
	return ContactFinderFunc(func(c *Call) *ContactInfo { return m[c.Remote().Key()] })
}

func testHotlines(t testing.TB) []configs.Hotline {
	t.Helper()
	loc, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	hours, err := configs.ParseHours([]string{"mon-fri 08:00-18:00"}, loc)
	if err != nil {
		t.Fatal(err)
	}
	return []configs.Hotline{
		{
			Name: "acme", Numbers: []string{"+49301234560", "+4930123457*"}, Company: "ACME GmbH",
			Greeting:         "Good {{daypart .Now}}, ACME GmbH, how can I help?",
			Display:          "{{.Hotline.Company}}: {{with .Contact}}{{.Name}}{{else}}{{.Caller.National}}{{end}}",
			CallerNamePrefix: "ACME: ", Location: loc, OpeningHours: hours,
			Closed:   configs.Closed{Response: 480, Announcement: "closed.wav"},
			Campaign: "radio-spring",
		},
		{Name: "acme-vip", Numbers: []string{"+493012345799"}, Company: "ACME VIP", CallerNamePrefix: "VIP: ", Route: "sip:vip@127.0.0.1:5070", Location: loc},
		{Name: "shop", Numbers: []string{"+4940*"}, Company: "Shop", Location: loc, Closed: configs.Closed{Response: 486}, OpeningHours: mustHours(t, []string{"sat 10:00-12:00"}, loc)},
		{Name: "tags", Numbers: []string{"+4989*"}, Greeting: "{{index .Call.Tags 0}}", CallerNamePrefix: "T: ", Location: loc},
	}
}

func mustHours(t testing.TB, h []string, loc *time.Location) configs.Hours {
	t.Helper()
	hours, err := configs.ParseHours(h, loc)
	if err != nil {
		t.Fatal(err)
	}
	return hours
}

// A Monday, 10:00 in Berlin.
var mondayMorning = time.Date(2024, 1, 15, 9, 0, 0, 0, time.UTC)

func TestHotlineStage(t *testing.T) {
	contacts := contactsByNumber(map[string]*ContactInfo{
		"+4915111": {ID: 42, Name: "Jane Doe", Tags: []string{"vip"}},
		"+4915666": {ID: 66, Name: "Eve\r\nX-Evil: 1"},
	})
	core, logs := observer.New(zap.WarnLevel)
	stage, err := NewHotlineStage(testHotlines(t), PolicyOptions{Contacts: contacts, Log: zap.New(core)})
	if err != nil {
		t.Fatal(err)
	}
	call := func(from, name, to string, at time.Time) *Call {
		return &Call{Direction: Inbound, CallID: "c1", StartedAt: at,
			Caller: Party{E164: from, National: "0" + strings.TrimPrefix(from, "+49"), Name: name},
			Called: Party{E164: to}}
	}
	forwarded := call("+4915222", "", "+4969000", mondayMorning)
	forwarded.OriginalCalled = &Party{E164: "+49301234560"}
	out := call("+4915222", "", "+49301234560", mondayMorning)
	out.Direction = Outbound

	tests := []struct {
		name        string
		call        *Call
		wantHotline string
		wantDisplay string // DisplayName for the PBX
		wantContact string // X-Switchboard-Contact
		wantTarget  string
		wantCode    int // 0: continue
		wantGreet   string
	}{
		{"exact number, contact known", call("+4915111", "Janey", "+49301234560", mondayMorning),
			"acme", "ACME: Jane Doe", "42", "", 0, "Good morning, ACME GmbH, how can I help?"},
		{"prefix, received display name", call("+4915222", "John", "+49301234571", mondayMorning),
			"acme", "ACME: John", "", "", 0, "Good morning, ACME GmbH, how can I help?"},
		{"no name: national number", call("+4915222", "", "+49301234571", mondayMorning),
			"acme", "ACME: 015222", "", "", 0, ""},
		{"longest prefix wins over exact sibling", call("+4915222", "", "+493012345799", mondayMorning),
			"acme-vip", "VIP: 015222", "", "sip:vip@127.0.0.1:5070", 0, ""},
		{"closed at night", call("+4915222", "", "+49301234560", mondayMorning.Add(12*time.Hour)),
			"acme", "ACME: 015222", "", "", 480, ""},
		{"closed with its own response", call("+4915222", "", "+4940111", mondayMorning),
			"shop", "015222", "", "", 486, ""},
		{"no hotline", call("+4915222", "", "+4969000", mondayMorning), "", "", "", "", 0, ""},
		{"forwarded: original called number", forwarded, "acme", "ACME: 015222", "", "", 0, ""},
		{"outbound has no hotline", out, "", "", "", "", 0, ""},
		{"injected contact name is cleaned", call("+4915666", "", "+49301234560", mondayMorning),
			"acme", "ACME: Eve X-Evil: 1", "66", "", 0, ""},
		{"injected received name is cleaned", call("+4915222", "Eve\r\nX-Evil: 1", "+49301234560", mondayMorning),
			"acme", "ACME: Eve X-Evil: 1", "", "", 0, ""},
		{"template failing at run time fails open", call("+4915222", "", "+4989111", mondayMorning),
			"tags", "T: 015222", "", "", 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Pipeline{stage, NewClosedStage(stage)}.Run(context.Background(), tt.call)
			c := tt.call
			if tt.wantCode == 0 && d.Verdict != Continue {
				t.Fatalf("Handle = %+v, want continue", d)
			}
			if tt.wantCode != 0 {
				if d.Verdict != Reject || d.Code != tt.wantCode || d.Disposition != cdr.Closed {
					t.Fatalf("Handle = %+v, want reject %d closed", d, tt.wantCode)
				}
				if tt.wantHotline == "acme" && d.Announcement != "closed.wav" {
					t.Errorf("announcement %q, want closed.wav", d.Announcement)
				}
			}
			if c.Hotline != tt.wantHotline || c.DisplayName != tt.wantDisplay || c.Target != tt.wantTarget {
				t.Errorf("call hotline %q display %q target %q, want %q %q %q", c.Hotline, c.DisplayName, c.Target, tt.wantHotline, tt.wantDisplay, tt.wantTarget)
			}
			if wantCampaign := map[string]string{"acme": "radio-spring"}[tt.wantHotline]; c.Campaign != wantCampaign {
				t.Errorf("campaign %q, want %q", c.Campaign, wantCampaign)
			}
			if got := c.Headers[HeaderHotline]; got != tt.wantHotline {
				t.Errorf("%s = %q, want %q", HeaderHotline, got, tt.wantHotline)
			}
			if got := c.Headers[HeaderContact]; got != tt.wantContact {
				t.Errorf("%s = %q, want %q", HeaderContact, got, tt.wantContact)
			}
			for name, v := range c.Headers {
				if strings.ContainsAny(v, "\r\n") {
					t.Errorf("header %s = %q has a line break", name, v)
				}
			}
			if q := QuoteDisplayName(c.DisplayName); strings.ContainsAny(q, "\r\n") {
				t.Errorf("quoted display name %q has a line break", q)
			}
			if tt.wantGreet != "" {
				if r := stage.Evaluate(c); r.Rendered.Greeting != tt.wantGreet {
					t.Errorf("greeting %q, want %q", r.Rendered.Greeting, tt.wantGreet)
				}
			}
		})
	}
	if logs.FilterMessage("hotline template failed").Len() != 1 {
		t.Errorf("template failure logged %d times, want once", logs.FilterMessage("hotline template failed").Len())
	}
}

func TestHotlineResultForBoard(t *testing.T) {
	stage, err := NewHotlineStage(testHotlines(t), PolicyOptions{
		Contacts: contactsByNumber(map[string]*ContactInfo{"+4915111": {ID: 1, Name: "<b>Jane</b>"}})})
	if err != nil {
		t.Fatal(err)
	}
	r := stage.Evaluate(&Call{Direction: Inbound, StartedAt: mondayMorning, Caller: Party{E164: "+4915111"}, Called: Party{E164: "+49301234560"}})
	if !r.Open || r.Hotline == nil || r.Hotline.Name() != "acme" {
		t.Fatalf("Evaluate = %+v", r)
	}
	if r.Rendered.Display != "ACME GmbH: <b>Jane</b>" || r.HTML.Display != "ACME GmbH: &lt;b&gt;Jane&lt;/b&gt;" {
		t.Errorf("display %q, html %q", r.Rendered.Display, r.HTML.Display)
	}
}

func TestNewHotlineStageErrors(t *testing.T) {
	_, err := NewHotlineStage([]configs.Hotline{{Name: "a", Greeting: "{{nope}}"}}, PolicyOptions{})
	if err == nil || !strings.Contains(err.Error(), `hotlines[0].greeting: template: line 1: function "nope" not defined`) {
		t.Errorf("error %v does not name the hotline and line", err)
	}
}
