package blocking_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/switchboard-sip/switchboard/blocking"
	"github.com/switchboard-sip/switchboard/storage"
	"github.com/switchboard-sip/switchboard/storage/storagetest"
)

func TestMain(m *testing.M) { os.Exit(storagetest.Main(m)) }

// openStore opens a store on the test's database called name (see
// storagetest.Target): the same name is the same database.
func openStore(t testing.TB, name string, config []blocking.Entry) *blocking.Store {
	t.Helper()
	s, err := blocking.Open(context.Background(), storagetest.Open(t, name), config)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestIndexLookup(t *testing.T) {
	entries := []blocking.Entry{
		{Number: "+4915112345678", Action: blocking.Block, Direction: blocking.Both, Reason: "spam"},
		{Number: "+49900*", Action: blocking.Block, Direction: blocking.Out, Reason: "premium rate"},
		{Number: "+49*", Action: blocking.Block, Direction: blocking.In, Reason: "all of germany"},
		{Number: "+49110", Action: blocking.Allow, Direction: blocking.Both},
		{Number: "+4930*", Action: blocking.Allow, Direction: blocking.In, Reason: "berlin"},
		{Number: "+49301*", Action: blocking.Block, Direction: blocking.In, Reason: "not even berlin"},
		{Number: "+4417*", Action: blocking.Block, Direction: blocking.Both, Reason: "short"},
		{Number: "+44170", Action: blocking.Block, Direction: blocking.Both, Reason: "exact"},
		{Number: "+441*", Action: blocking.Block, Direction: blocking.Both, Reason: "long"},
		{Number: "0900*", Action: blocking.Block, Direction: blocking.Out, Reason: "raw national"},
	}
	ix := blocking.NewIndex(entries)
	tests := []struct {
		name       string
		number     string
		dir        blocking.Direction
		blocked    bool
		wantReason string // "" and !blocked: no entry or an allow entry
		wantAllow  bool
	}{
		{"exact block inbound", "+4915112345678", blocking.In, true, "spam", false},
		{"exact block outbound (both)", "+4915112345678", blocking.Out, true, "spam", false},
		{"premium outbound blocked", "+499001234567", blocking.Out, true, "premium rate", false},
		{"premium inbound falls to +49*", "+499001234567", blocking.In, true, "all of germany", false},
		{"unlisted outbound", "+33123456789", blocking.Out, false, "", false},
		{"unlisted inbound", "+33123456789", blocking.In, false, "", false},
		{"allow under blocked prefix", "+49110", blocking.In, false, "", true},
		{"allow wins over any block", "+49110", blocking.Out, false, "", true},
		{"prefix allow wins over a longer block prefix", "+493011111", blocking.In, false, "berlin", true},
		{"allow is per direction", "+493011111", blocking.Out, false, "", false},
		{"longest block prefix gives the reason", "+44180", blocking.In, true, "long", false},
		{"exact beats prefixes", "+44170", blocking.In, true, "exact", false},
		{"prefix matches its own key", "+4417", blocking.In, true, "short", false},
		{"more specific prefix", "+441712", blocking.In, true, "short", false},
		{"raw number", "09001234", blocking.Out, true, "raw national", false},
		{"empty number", "", blocking.In, false, "", false},
		{"number longer than any entry", "+4915112345678999", blocking.In, true, "all of germany", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := ix.Lookup(tt.number, tt.dir)
			if m.Blocked != tt.blocked {
				t.Fatalf("Lookup(%q, %s).Blocked = %v, want %v (entry %+v)", tt.number, tt.dir, m.Blocked, tt.blocked, m.Entry)
			}
			switch {
			case tt.wantAllow:
				if m.Entry == nil || m.Entry.Action != blocking.Allow {
					t.Fatalf("Lookup(%q) entry = %+v, want an allow entry", tt.number, m.Entry)
				}
			case tt.blocked:
				if m.Entry.Reason != tt.wantReason {
					t.Errorf("Lookup(%q) reason = %q, want %q", tt.number, m.Entry.Reason, tt.wantReason)
				}
			default:
				if m.Entry != nil {
					t.Errorf("Lookup(%q) entry = %+v, want none", tt.number, m.Entry)
				}
			}
		})
	}
	if ix.Len() != len(entries) {
		t.Errorf("Len = %d, want %d", ix.Len(), len(entries))
	}
}

func TestEntryNormalize(t *testing.T) {
	tests := []struct {
		name    string
		e       blocking.Entry
		wantErr bool
	}{
		{"defaults", blocking.Entry{Number: "+4930123"}, false},
		{"prefix", blocking.Entry{Number: "+49900*"}, false},
		{"plus prefix", blocking.Entry{Number: "+*", Action: blocking.Allow, Direction: blocking.Out}, false},
		{"raw digits", blocking.Entry{Number: "110"}, false},
		{"empty", blocking.Entry{}, true},
		{"star only", blocking.Entry{Number: "*"}, true},
		{"plus only", blocking.Entry{Number: "+"}, true},
		{"letters", blocking.Entry{Number: "+49abc"}, true},
		{"star inside", blocking.Entry{Number: "+49*1"}, true},
		{"bad action", blocking.Entry{Number: "+49", Action: "drop"}, true},
		{"bad direction", blocking.Entry{Number: "+49", Direction: "sideways"}, true},
		{"control in reason", blocking.Entry{Number: "+49", Reason: "a\r\nb"}, true},
		{"too long", blocking.Entry{Number: "+123456789012345678901"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.e.Normalize()
			if (err != nil) != tt.wantErr {
				t.Fatalf("Normalize(%+v) = %v, want error %v", tt.e, err, tt.wantErr)
			}
			if err == nil && (tt.e.Action == "" || tt.e.Direction == "") {
				t.Errorf("defaults not filled: %+v", tt.e)
			}
		})
	}
}

func TestStoreAddRemove(t *testing.T) {
	ctx := context.Background()
	config, err := blocking.FromConfig([]blocking.ConfigEntry{
		{Number: "+49900*", Action: "block", Direction: "out", Reason: "premium rate"},
		{Number: "+49110", Action: "allow"},
	})
	if err != nil {
		t.Fatal(err)
	}
	s := openStore(t, "sb", config)

	steps := []struct {
		name    string
		do      func() error
		number  string
		dir     blocking.Direction
		blocked bool
	}{
		{"config entry in force", nil, "+49900123", blocking.Out, true},
		{"not blocked yet", nil, "+4915112345678", blocking.In, false},
		{"add takes effect at once", func() error {
			_, err := s.Add(ctx, blocking.Entry{Number: "+4915112345678", Reason: "spam", Source: blocking.SourceCLI})
			return err
		}, "+4915112345678", blocking.In, true},
		{"add a prefix", func() error {
			_, err := s.Add(ctx, blocking.Entry{Number: "+491*", Direction: blocking.In, Reason: "mobiles"})
			return err
		}, "+49170000", blocking.In, true},
		{"stored allow under stored prefix", func() error {
			_, err := s.Add(ctx, blocking.Entry{Number: "+49170000", Action: blocking.Allow})
			return err
		}, "+49170000", blocking.In, false},
		{"remove by number", func() error {
			removed, err := s.RemoveNumber(ctx, "+4915112345678")
			if err == nil && len(removed) != 1 {
				err = fmt.Errorf("removed %d entries, want 1", len(removed))
			}
			return err
		}, "+4915112345678", blocking.In, true}, // still under +491*
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if st.do != nil {
				if err := st.do(); err != nil {
					t.Fatal(err)
				}
			}
			if m := s.Lookup(st.number, st.dir); m.Blocked != st.blocked {
				t.Errorf("Lookup(%s, %s) = %+v, want blocked %v", st.number, st.dir, m, st.blocked)
			}
		})
	}

	t.Run("list and remove by id", func(t *testing.T) {
		es, next, err := s.List(ctx, 0, 0)
		if err != nil || next != 0 {
			t.Fatalf("List = %v, %d, %v", es, next, err)
		}
		if len(es) != 2 {
			t.Fatalf("List gave %d entries, want 2: %+v", len(es), es)
		}
		for _, e := range es {
			if _, err := s.Remove(ctx, e.ID); err != nil {
				t.Fatal(err)
			}
		}
		if m := s.Lookup("+49170001", blocking.In); m.Blocked {
			t.Errorf("still blocked after remove: %+v", m)
		}
		if s.Len() != len(config) {
			t.Errorf("Len = %d, want %d", s.Len(), len(config))
		}
	})

	t.Run("errors", func(t *testing.T) {
		if _, err := s.Remove(ctx, 9999); !errors.Is(err, blocking.ErrNotFound) {
			t.Errorf("Remove(9999) = %v, want ErrNotFound", err)
		}
		if _, err := s.RemoveNumber(ctx, "+49900*"); !errors.Is(err, blocking.ErrConfigEntry) {
			t.Errorf("RemoveNumber(config entry) = %v, want ErrConfigEntry", err)
		}
		if _, err := s.RemoveNumber(ctx, "+1"); !errors.Is(err, blocking.ErrNotFound) {
			t.Errorf("RemoveNumber(+1) = %v, want ErrNotFound", err)
		}
		if _, err := s.Add(ctx, blocking.Entry{Number: "abc"}); err == nil {
			t.Error("Add(abc) succeeded")
		}
		if _, err := s.Add(ctx, blocking.Entry{Number: "+1", Source: blocking.SourceConfig}); err == nil {
			t.Error("Add with source config succeeded")
		}
	})

	t.Run("duplicate add updates the reason", func(t *testing.T) {
		a, err := s.Add(ctx, blocking.Entry{Number: "+331", Reason: "one"})
		if err != nil {
			t.Fatal(err)
		}
		b, err := s.Add(ctx, blocking.Entry{Number: "+331", Reason: "two"})
		if err != nil {
			t.Fatal(err)
		}
		if a.ID != b.ID {
			t.Errorf("ids %d and %d, want the same row", a.ID, b.ID)
		}
		if m := s.Lookup("+331", blocking.In); m.Entry == nil || m.Entry.Reason != "two" {
			t.Errorf("Lookup = %+v, want reason two", m.Entry)
		}
	})

	t.Run("set config", func(t *testing.T) {
		s.SetConfig(nil)
		if m := s.Lookup("+49900123", blocking.Out); m.Blocked {
			t.Errorf("config entry still in force after SetConfig(nil)")
		}
		if m := s.Lookup("+331", blocking.In); !m.Blocked {
			t.Errorf("stored entry lost by SetConfig")
		}
	})
}

func TestStoreList(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, "sb", nil)
	for i := range 5 {
		if _, err := s.Add(ctx, blocking.Entry{Number: fmt.Sprintf("+4930%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name  string
		limit int
		pages []int
	}{
		{"all", 0, []int{5}},
		{"by two", 2, []int{2, 2, 1}},
		{"exact fit", 5, []int{5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var after int64
			var got []int
			for {
				es, next, err := s.List(ctx, after, tt.limit)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, len(es))
				if next == 0 {
					break
				}
				after = next
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.pages) {
				t.Errorf("pages %v, want %v", got, tt.pages)
			}
		})
	}
}

// TestStoreAcrossProcesses stands for the CLI changing the list while the
// agent runs: two handles on one database file, like two processes.
func TestStoreAcrossProcesses(t *testing.T) {
	ctx := context.Background()
	path := "sb"
	agent := openStore(t, path, nil)
	cli := openStore(t, path, nil)

	e, err := cli.Add(ctx, blocking.Entry{Number: "+4915112345678", Reason: "spam", Source: blocking.SourceCLI})
	if err != nil {
		t.Fatal(err)
	}
	if storagetest.Pass(t) == storage.SQLite && agent.Lookup(e.Number, blocking.In).Blocked {
		t.Fatal("agent saw the change before polling") // on PostgreSQL it is pushed
	}
	if err := agent.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if m := agent.Lookup(e.Number, blocking.In); !m.Blocked || m.Entry.Reason != "spam" || m.Entry.Source != blocking.SourceCLI {
		t.Fatalf("after refresh: %+v", m.Entry)
	}
	if _, err := cli.Remove(ctx, e.ID); err != nil {
		t.Fatal(err)
	}

	// Watch picks the removal up by itself.
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { agent.Watch(wctx, 5*time.Millisecond, func(err error) { t.Error(err) }); close(done) }()
	defer func() { cancel(); <-done }()
	// Polling is what Watch does, so the test polls its result; the test
	// timeout bounds the loop.
	for agent.Lookup(e.Number, blocking.In).Blocked {
		time.Sleep(time.Millisecond)
	}
}

func BenchmarkLookup100k(b *testing.B) {
	entries := make([]blocking.Entry, 0, 100_000)
	for i := range 95_000 {
		entries = append(entries, blocking.Entry{Number: fmt.Sprintf("+49%010d", i*7919), Action: blocking.Block, Direction: blocking.Both})
	}
	for i := range 5_000 {
		entries = append(entries, blocking.Entry{Number: fmt.Sprintf("+%d*", 100000+i*13), Action: blocking.Block, Direction: blocking.Both})
	}
	ix := blocking.NewIndex(entries)
	numbers := []string{"+4900000079190", "+33123456789", "+1000131234567", "+491701234567"}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		ix.Lookup(numbers[i%len(numbers)], blocking.In)
	}
}

// TestStorePushedToOtherNodes: on PostgreSQL a block added on one node is
// in force on another without any polling (SPEC §11, LISTEN/NOTIFY).
func TestStorePushedToOtherNodes(t *testing.T) {
	ctx := context.Background()
	db := storagetest.Open(t, "sb")
	if db.Driver != storage.Postgres {
		t.Skip("one node per SQLite file: the command line's changes are polled")
	}
	a := openStore(t, "sb", nil)
	otherDB := storagetest.Open(t, "sb")
	b, err := blocking.Open(ctx, otherDB, nil)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-otherDB.Bus().Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("node b does not listen")
	}
	e, err := a.Add(ctx, blocking.Entry{Number: "+4915112345678", Reason: "spam"})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !b.Lookup(e.Number, blocking.In).Blocked {
		if time.Now().After(deadline) {
			t.Fatal("node b never saw the block")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := a.Remove(ctx, e.ID); err != nil {
		t.Fatal(err)
	}
	for b.Lookup(e.Number, blocking.In).Blocked {
		if time.Now().After(deadline) {
			t.Fatal("node b never saw the removal")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
