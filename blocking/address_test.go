package blocking_test

import (
	"context"
	"testing"

	"github.com/switchboard-sip/switchboard/blocking"
)

func TestNormalizeAddress(t *testing.T) {
	tests := []struct {
		raw, want string
		wantErr   bool
	}{
		{raw: "spam@example.net", want: "spam@example.net"},
		{raw: "  Spam@Example.NET ", want: "Spam@example.net"}, // the user keeps its case (RFC 3261 §19.1.4)
		{raw: "sip:spam@example.net", want: "spam@example.net"},
		{raw: "SIPS:spam@example.net", want: "spam@example.net"},
		{raw: "*@Spam.Example", want: "*@spam.example"},
		{raw: "sp%61m@example.net", want: "spam@example.net"}, // compared unescaped
		{raw: "+4930123@carrier.example", want: "+4930123@carrier.example"},
		{raw: "bob@[2001:db8::1]", want: "bob@[2001:db8::1]"},
		{raw: "bob@192.0.2.7", want: "bob@192.0.2.7"},
		{raw: "@example.net", wantErr: true},
		{raw: "spam@", wantErr: true},
		{raw: "spam@example.net:5060", wantErr: true},
		{raw: "spam@example.net;transport=tcp", wantErr: true},
		{raw: "a@b@c", wantErr: true},
		{raw: "sp am@example.net", wantErr: true},
		{raw: "spam*@example.net", wantErr: true},
		{raw: "spam@exa mple.net", wantErr: true},
		{raw: "spam@-bad.example", wantErr: true},
		{raw: "spam@bad..example", wantErr: true},
		{raw: "sp%zzam@example.net", wantErr: true},
		{raw: "spam\x00@example.net", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			got, err := blocking.NormalizeAddress(tt.raw)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("NormalizeAddress(%q) = %q, want an error", tt.raw, got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("NormalizeAddress(%q) = %q, %v; want %q", tt.raw, got, err, tt.want)
			}
			// The CLI and the API read addresses through NormalizeNumber.
			if n, err := blocking.NormalizeNumber(tt.raw, "DE", exact); err != nil || n != tt.want {
				t.Errorf("NormalizeNumber(%q) = %q, %v; want %q", tt.raw, n, err, tt.want)
			}
			if err := blocking.CheckEntryNumber(got); err != nil {
				t.Errorf("CheckEntryNumber(%q): %v", got, err)
			}
		})
	}
	// Only the normalised spelling is an entry.
	for _, n := range []string{"Spam@Example.NET", "sip:spam@example.net"} {
		if err := blocking.CheckEntryNumber(n); err == nil {
			t.Errorf("CheckEntryNumber(%q) accepted a spelling that is not the normalised one", n)
		}
	}
}

func TestIndexLookupAddress(t *testing.T) {
	entries := []blocking.Entry{
		{Number: "spam@example.net", Action: blocking.Block, Direction: blocking.Both, Reason: "spam"},
		{Number: "*@spam.example", Action: blocking.Block, Direction: blocking.In, Reason: "spam domain"},
		{Number: "ceo@spam.example", Action: blocking.Allow, Direction: blocking.Both},
		{Number: "*@friends.example", Action: blocking.Allow, Direction: blocking.Both},
		{Number: "mallory@friends.example", Action: blocking.Block, Direction: blocking.Both, Reason: "allow wins"},
		{Number: "*@premium.example", Action: blocking.Block, Direction: blocking.Out, Reason: "no calls there"},
		{Number: "+4930*", Action: blocking.Block, Direction: blocking.Both, Reason: "a number prefix"},
	}
	for i := range entries {
		if err := entries[i].Normalize(); err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
	}
	ix := blocking.NewIndex(entries)
	tests := []struct {
		user, host  string
		dir         blocking.Direction
		wantBlocked bool
		wantEntry   string // "" for no entry
	}{
		{"spam", "example.net", blocking.In, true, "spam@example.net"},
		{"spam", "EXAMPLE.NET", blocking.In, true, "spam@example.net"},          // host: any case
		{"Spam", "example.net", blocking.In, false, ""},                         // user: case-sensitive
		{"spam", "example.net", blocking.Out, true, "spam@example.net"},         // both directions
		{"eggs", "example.net", blocking.In, false, ""},                         // another user of the host
		{"anyone", "Spam.Example", blocking.In, true, "*@spam.example"},         // the whole domain
		{"anyone", "spam.example", blocking.Out, false, ""},                     // inbound only
		{"anyone", "sip.spam.example", blocking.In, false, ""},                  // not its subdomains
		{"ceo", "spam.example", blocking.In, false, "ceo@spam.example"},         // allow wins over the domain
		{"mallory", "friends.example", blocking.In, false, "*@friends.example"}, // a domain allow wins too
		{"bob", "premium.example", blocking.Out, true, "*@premium.example"},
		{"+4930123", "carrier.example", blocking.In, false, ""}, // an address is not its number
		{"", "example.net", blocking.In, false, ""},
		{"spam", "", blocking.In, false, ""},
	}
	for _, tt := range tests {
		m := ix.LookupAddress(tt.user, tt.host, tt.dir)
		got := ""
		if m.Entry != nil {
			got = m.Entry.Number
		}
		if m.Blocked != tt.wantBlocked || got != tt.wantEntry {
			t.Errorf("LookupAddress(%q, %q, %s) = blocked %v by %q; want %v by %q", tt.user, tt.host, tt.dir, m.Blocked, got, tt.wantBlocked, tt.wantEntry)
		}
	}
	// Lookup takes an address too (the CLI's "stays allowed" note).
	if m := ix.Lookup("anyone@spam.example", blocking.In); !m.Blocked {
		t.Error("Lookup of an address did not reach the address entries")
	}
	// Number lookups never see address keys.
	if m := ix.Lookup("+4930123", blocking.In); !m.Blocked || m.Entry.Number != "+4930*" {
		t.Errorf("number lookup: %+v", m)
	}
}

func TestEither(t *testing.T) {
	block := &blocking.Entry{Number: "+49*", Action: blocking.Block}
	allow := &blocking.Entry{Number: "*@ok.example", Action: blocking.Allow}
	b, a := blocking.Match{Blocked: true, Entry: block}, blocking.Match{Entry: allow}
	if m := blocking.Either(b, a); m.Blocked || m.Entry != allow {
		t.Errorf("allow after block: %+v, want the allow", m)
	}
	if m := blocking.Either(blocking.Match{}, b); !m.Blocked || m.Entry != block {
		t.Errorf("none then block: %+v, want the block", m)
	}
	if m := blocking.Either(); m.Blocked || m.Entry != nil {
		t.Errorf("nothing: %+v", m)
	}
}

func TestStoreAddresses(t *testing.T) {
	config, err := blocking.FromConfig([]blocking.ConfigEntry{
		{Number: "sip:Spam@Example.NET", Action: "block", Direction: "both", Reason: "from the config"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if config[0].Number != "Spam@example.net" {
		t.Fatalf("config entry read as %q", config[0].Number)
	}
	if _, err := blocking.FromConfig([]blocking.ConfigEntry{{Number: "spam@example.net:5060", Action: "block", Direction: "both"}}); err == nil {
		t.Error("FromConfig took an address with a port")
	}
	s := openStore(t, "addresses", config)
	ctx := context.Background()
	e, err := s.Add(ctx, blocking.Entry{Number: "*@spam.example", Reason: "robocalls"})
	if err != nil {
		t.Fatal(err)
	}
	if m := s.LookupAddress("x", "SPAM.example", blocking.In); !m.Blocked || m.Entry.ID != e.ID {
		t.Errorf("stored domain entry: %+v", m)
	}
	if m := s.LookupAddress("Spam", "example.net", blocking.Out); !m.Blocked || m.Entry.Reason != "from the config" {
		t.Errorf("config address entry: %+v", m)
	}
	if _, err := s.Add(ctx, blocking.Entry{Number: "Spam@Example.NET"}); err == nil {
		t.Error("Add took an address that is not normalised")
	}
	if _, err := s.RemoveNumber(ctx, "*@spam.example"); err != nil {
		t.Fatal(err)
	}
	if m := s.LookupAddress("x", "spam.example", blocking.In); m.Blocked {
		t.Error("removed domain entry still blocks")
	}
}

// An address lookup allocates nothing, with address entries or without:
// it runs for every INVITE from a SIP URI.
func TestLookupAddressAllocs(t *testing.T) {
	none := blocking.NewIndex([]blocking.Entry{{Number: "+49*", Action: blocking.Block, Direction: blocking.Both}})
	some := blocking.NewIndex([]blocking.Entry{
		{Number: "spam@example.net", Action: blocking.Block, Direction: blocking.Both},
		{Number: "*@spam.example", Action: blocking.Block, Direction: blocking.Both},
	})
	for name, ix := range map[string]*blocking.Index{"no address entries": none, "address entries": some} {
		if n := testing.AllocsPerRun(100, func() {
			ix.LookupAddress("robot", "Spam.Example", blocking.In)
			ix.LookupAddress("+4930123", "carrier.example", blocking.In)
		}); n != 0 {
			t.Errorf("%s: %v allocations per lookup, want 0", name, n)
		}
	}
	if m := some.LookupAddress("robot", "Spam.Example", blocking.In); !m.Blocked {
		t.Error("the domain entry does not match")
	}
}

func BenchmarkLookupAddress(b *testing.B) {
	ix := blocking.NewIndex([]blocking.Entry{
		{Number: "spam@example.net", Action: blocking.Block, Direction: blocking.Both},
		{Number: "*@spam.example", Action: blocking.Block, Direction: blocking.Both},
	})
	b.ReportAllocs()
	for b.Loop() {
		ix.LookupAddress("+4915112345678", "carrier.example", blocking.In)
	}
}
