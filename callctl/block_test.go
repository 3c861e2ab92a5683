package callctl_test

import (
	"github.com/switchboard-sip/switchboard/cdr"

	"context"
	"testing"

	"github.com/switchboard-sip/switchboard/blocking"
	"github.com/switchboard-sip/switchboard/callctl"
	"github.com/switchboard-sip/switchboard/configs"
	"github.com/switchboard-sip/switchboard/storage"
	"github.com/switchboard-sip/switchboard/storage/storagetest"
)

// newBlockStore opens a real block list in a temporary SQLite file with
// config entries and stored entries.
func newBlockStore(t *testing.T, cfg configs.Blocking, stored ...blocking.Entry) *blocking.Store {
	t.Helper()
	ctx := context.Background()
	db, err := storage.Open(storagetest.Target(t, "sb"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	var ce []blocking.ConfigEntry
	for _, e := range cfg.Entries {
		ce = append(ce, blocking.ConfigEntry(e))
	}
	config, err := blocking.FromConfig(ce)
	if err != nil {
		t.Fatal(err)
	}
	s, err := blocking.Open(ctx, db, config)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range stored {
		if _, err := s.Add(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func inbound(from string) *callctl.Call {
	return &callctl.Call{Direction: callctl.Inbound, Caller: callctl.Party{E164: from, Raw: from}, Called: callctl.Party{E164: "+49301234560"}}
}

func outbound(to string) *callctl.Call {
	return &callctl.Call{Direction: callctl.Outbound, Caller: callctl.Party{Raw: "201", Internal: true}, Called: callctl.Party{E164: to, Raw: to}}
}

func TestBlockStage(t *testing.T) {
	cfg := configs.Blocking{
		Anonymous:    "block",
		Response:     603,
		Announcement: "blocked.wav",
		Entries: []configs.BlockEntry{
			{Number: "+49900*", Action: "block", Direction: "out", Reason: "premium rate"},
			{Number: "+49110", Action: "allow", Direction: "both"},
			{Number: "+4915112345678", Action: "block", Direction: "both", Reason: "spam"},
		},
	}
	store := newBlockStore(t, cfg,
		blocking.Entry{Number: "+49*", Action: blocking.Block, Direction: blocking.Out, Reason: "no calls to germany", Source: blocking.SourceCLI},
		blocking.Entry{Number: "+4930*", Action: blocking.Allow, Direction: blocking.Out, Source: blocking.SourceAPI},
		blocking.Entry{Number: "+33999*", Action: blocking.Block, Direction: blocking.In, Reason: "robocalls", Source: blocking.SourceAPI},
	)
	stage, err := callctl.NewBlockStage(cfg, store)
	if err != nil {
		t.Fatal(err)
	}
	anon := inbound("")
	anon.Caller.Anonymous = true

	tests := []struct {
		name       string
		call       *callctl.Call
		wantReject bool
		wantReason string
	}{
		{"config entry inbound", inbound("+4915112345678"), true, "spam"},
		{"config entry outbound (both)", outbound("+4915112345678"), true, "spam"},
		{"stored prefix inbound", inbound("+339991234"), true, "robocalls"},
		{"stored prefix is inbound only", outbound("+339991234"), false, ""},
		{"premium rate outbound", outbound("+499001234567"), true, "premium rate"},
		{"premium rate inbound passes", inbound("+499001234567"), false, ""},
		{"allow under blocked prefix (config allow, stored block)", outbound("+49110"), false, ""},
		{"stored allow under stored block", outbound("+4930123456"), false, ""},
		{"outbound under stored block", outbound("+4940123456"), true, "no calls to germany"},
		{"unlisted", inbound("+441234567"), false, ""},
		{"anonymous blocked", anon, true, "anonymous"},
		{"internal caller ignored", &callctl.Call{Direction: callctl.Inbound, Caller: callctl.Party{Raw: "201", Internal: true}}, false, ""},
		{"no number", inbound(""), false, ""},
		{"raw key when not E.164", &callctl.Call{Direction: callctl.Outbound, Called: callctl.Party{Raw: "+4915112345678"}}, true, "spam"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := stage.Handle(context.Background(), tt.call)
			if got := d.Verdict == callctl.Reject; got != tt.wantReject {
				t.Fatalf("Handle = %+v, want reject %v", d, tt.wantReject)
			}
			if !tt.wantReject {
				return
			}
			if d.Code != 603 || d.Disposition != cdr.Blocked || d.Reason != tt.wantReason || d.Announcement != "blocked.wav" {
				t.Errorf("Handle = %+v, want 603 blocked %q with announcement", d, tt.wantReason)
			}
		})
	}

	t.Run("anonymous allowed by config", func(t *testing.T) {
		cfg := cfg
		cfg.Anonymous = "allow"
		s, err := callctl.NewBlockStage(cfg, store)
		if err != nil {
			t.Fatal(err)
		}
		if d := s.Handle(context.Background(), anon); d.Verdict != callctl.Continue {
			t.Errorf("Handle(anonymous) = %+v, want continue", d)
		}
		// Privacy: id with a trusted P-Asserted-Identity: the number is
		// hidden from the callee, not from us.
		hidden := inbound("+4915112345678")
		hidden.Caller.Anonymous = true
		if d := s.Handle(context.Background(), hidden); d.Verdict != callctl.Reject || d.Reason != "spam" {
			t.Errorf("Handle(withheld blocked number) = %+v, want rejected as spam", d)
		}
	})

	t.Run("change takes effect on the next call", func(t *testing.T) {
		call := inbound("+441234567")
		if _, err := store.Add(context.Background(), blocking.Entry{Number: "+44123*", Reason: "new"}); err != nil {
			t.Fatal(err)
		}
		if d := stage.Handle(context.Background(), call); d.Verdict != callctl.Reject || d.Reason != "new" {
			t.Errorf("Handle = %+v, want rejected for reason new", d)
		}
	})
}

func TestNewBlockStage(t *testing.T) {
	idx := blocking.NewIndex(nil)
	tests := []struct {
		name     string
		cfg      configs.Blocking
		list     callctl.Blocklist
		wantErr  bool
		wantCode int
	}{
		{"default response", configs.Blocking{Anonymous: "block"}, idx, false, 603},
		{"custom response", configs.Blocking{Anonymous: "block", Response: 403}, idx, false, 403},
		{"bad anonymous", configs.Blocking{Anonymous: "maybe"}, idx, true, 0},
		{"bad response", configs.Blocking{Response: 200}, idx, true, 0},
		{"no list", configs.Blocking{}, nil, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := callctl.NewBlockStage(tt.cfg, tt.list)
			if (err != nil) != tt.wantErr {
				t.Fatalf("NewBlockStage = %v, want error %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			c := inbound("")
			c.Caller.Anonymous = true
			if d := s.Handle(context.Background(), c); d.Code != tt.wantCode {
				t.Errorf("code %d, want %d", d.Code, tt.wantCode)
			}
		})
	}
}

// TestBlockStageSIPAddresses runs calls through Identify and the block
// stage: entries for a SIP address (user@host) and a whole domain
// (*@host) match the caller's From or P-Asserted-Identity inbound and the
// Request-URI outbound, the host in any case and the user exactly (RFC
// 3261 §19.1.4), and leave everyone else alone.
func TestBlockStageSIPAddresses(t *testing.T) {
	cfg := configs.Blocking{
		Response: 603,
		Entries: []configs.BlockEntry{
			{Number: "spam@example.net", Action: "block", Direction: "both", Reason: "spam address"},
			{Number: "*@robocall.example", Action: "block", Direction: "out", Reason: "robocall domain"},
		},
	}
	store := newBlockStore(t, cfg,
		blocking.Entry{Number: "*@spam.example", Action: blocking.Block, Direction: blocking.In, Reason: "spam domain", Source: blocking.SourceCLI},
		blocking.Entry{Number: "boss@spam.example", Action: blocking.Allow, Direction: blocking.Both, Source: blocking.SourceAPI},
	)
	stage, err := callctl.NewBlockStage(cfg, store)
	if err != nil {
		t.Fatal(err)
	}
	identify := callctl.NewIdentify(normalizer(t))
	in := func(from callctl.Address, pai ...callctl.Address) *callctl.Call {
		return &callctl.Call{Direction: callctl.Inbound, Trusted: true, Region: "DE", Signalling: callctl.Signalling{
			RequestURI: sipAddr("", "+49301234560", "sb.example"), From: from,
			To: sipAddr("", "+49301234560", "sb.example"), PAI: pai}}
	}
	out := func(ruri callctl.Address) *callctl.Call {
		return &callctl.Call{Direction: callctl.Outbound, Region: "DE", Signalling: callctl.Signalling{
			RequestURI: ruri, From: sipAddr("", "201", "pbx.example"), To: ruri}}
	}
	tel := callctl.Address{Scheme: "tel", User: "+4915112345678"}
	tests := []struct {
		name       string
		call       *callctl.Call
		wantReason string // "" for not blocked
	}{
		{"From address", in(sipAddr("", "spam", "example.net")), "spam address"},
		{"From address, host in capitals", in(sipAddr("", "spam", "EXAMPLE.Net")), "spam address"},
		{"From address, user in capitals is another user", in(sipAddr("", "SPAM", "example.net")), ""},
		{"From domain", in(sipAddr("Robo", "anyone", "spam.example")), "spam domain"},
		{"From domain with a number as user", in(sipAddr("", "+4915112345678", "spam.example")), "spam domain"},
		{"From domain behind an asserted number", in(sipAddr("", "anyone", "spam.example"), tel), "spam domain"},
		{"asserted address", in(sipAddr("", "+4930999", "carrier.example"), sipAddr("", "spam", "example.net")), "spam address"},
		{"allow wins over the domain", in(sipAddr("", "boss", "spam.example")), ""},
		{"subdomain untouched", in(sipAddr("", "anyone", "sip.spam.example")), ""},
		{"other caller untouched", in(sipAddr("", "+4915112345678", "carrier.example")), ""},
		{"tel: caller untouched", in(tel), ""},
		{"outbound Request-URI address", out(sipAddr("", "spam", "example.net")), "spam address"},
		{"outbound domain", out(sipAddr("", "+4930123", "Robocall.example")), "robocall domain"},
		{"inbound-only domain passes outbound", out(sipAddr("", "anyone", "spam.example")), ""},
		{"robocall domain is outbound only", in(sipAddr("", "anyone", "robocall.example")), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			identify.Handle(context.Background(), tt.call)
			d := stage.Handle(context.Background(), tt.call)
			if tt.wantReason == "" {
				if d.Verdict != callctl.Continue {
					t.Fatalf("Handle = %+v, want continue", d)
				}
				return
			}
			if d.Verdict != callctl.Reject || d.Code != 603 || d.Disposition != cdr.Blocked || d.Reason != tt.wantReason {
				t.Fatalf("Handle = %+v, want 603 blocked %q", d, tt.wantReason)
			}
		})
	}
}

// A record names a SIP caller that has no number by its address, so the
// board can block it; numbers, extensions and anonymous callers keep their
// raw form.
func TestPartyRecordRaw(t *testing.T) {
	for _, tt := range []struct {
		p    callctl.Party
		want string
	}{
		{callctl.Party{Raw: "spam", Host: "Example.NET"}, "spam@example.net"},
		{callctl.Party{Raw: "030111222", E164: "+4930111222", Host: "carrier.example"}, "030111222"},
		{callctl.Party{Raw: "110", Host: "carrier.example"}, "110"},
		{callctl.Party{Raw: "201", Internal: true, Host: "pbx.example"}, "201"},
		{callctl.Party{Raw: "anonymous", Anonymous: true, Host: "anonymous.invalid"}, "anonymous"},
		{callctl.Party{Raw: "spam"}, "spam"}, // tel: or no host
	} {
		if got := tt.p.RecordRaw(); got != tt.want {
			t.Errorf("RecordRaw(%+v) = %q, want %q", tt.p, got, tt.want)
		}
	}
}
