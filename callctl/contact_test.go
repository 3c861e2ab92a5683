package callctl_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-sip/switchboard/callctl"
	"github.com/switchboard-sip/switchboard/contacts"
	"github.com/switchboard-sip/switchboard/storage"
	"github.com/switchboard-sip/switchboard/storage/storagetest"
)

func newContactCache(t testing.TB) (*contacts.Store, *contacts.Cache) {
	t.Helper()
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
	cache, err := contacts.NewCache(ctx, store, contacts.CacheOptions{Poll: time.Hour, Block: 1 << 16})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cache.Close(context.Background()) })
	return store, cache
}

func TestContactStage(t *testing.T) {
	ctx := context.Background()
	store, cache := newContactCache(t)
	known, err := store.Create(ctx, contacts.Contact{Name: "Known", Numbers: []contacts.Phone{{E164: "+4930111"}}})
	if err != nil {
		t.Fatal(err)
	}
	stage, err := callctl.NewContactStage(cache)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name     string
		call     callctl.Call
		wantID   int64 // -1: a new contact
		wantName string
	}{
		{"known caller inbound", callctl.Call{Direction: callctl.Inbound, Caller: callctl.Party{E164: "+4930111", Name: "Someone Else"}}, known.ID, "Known"},
		{"known callee outbound", callctl.Call{Direction: callctl.Outbound, Caller: callctl.Party{Raw: "101", Internal: true}, Called: callctl.Party{E164: "+4930111"}}, known.ID, "Known"},
		{"new caller with display name", callctl.Call{Direction: callctl.Inbound, Caller: callctl.Party{E164: "+4930222", Raw: "030222", Name: "Jane\r\nDoe"}}, -1, "Jane Doe"},
		{"new caller, number as name", callctl.Call{Direction: callctl.Inbound, Caller: callctl.Party{E164: "+4930333", Name: "+49 30 333"}}, -1, ""},
		{"new caller, placeholder name", callctl.Call{Direction: callctl.Inbound, Caller: callctl.Party{E164: "+4930444", Name: "Unknown"}}, -1, ""},
		{"new callee outbound", callctl.Call{Direction: callctl.Outbound, Caller: callctl.Party{Raw: "101", Internal: true, Name: "Reception"}, Called: callctl.Party{E164: "+4930555"}}, -1, ""},
		{"anonymous", callctl.Call{Direction: callctl.Inbound, Caller: callctl.Party{Anonymous: true, Name: "Anonymous"}}, 0, ""},
		{"anonymous with number", callctl.Call{Direction: callctl.Inbound, Caller: callctl.Party{E164: "+4930666", Anonymous: true}}, 0, ""},
		{"internal", callctl.Call{Direction: callctl.Outbound, Called: callctl.Party{Raw: "102", Internal: true}}, 0, ""},
		{"unreadable", callctl.Call{Direction: callctl.Inbound, Caller: callctl.Party{Raw: "abc"}}, 0, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.call
			check := stage.Check(&c)
			if d := stage.Handle(ctx, &c); d.Verdict != callctl.Continue {
				t.Fatalf("verdict %v", d.Verdict)
			}
			switch tc.wantID {
			case 0:
				if c.ContactID != 0 || check.Skip == "" {
					t.Errorf("contact %d (check %+v), want none", c.ContactID, check)
				}
				return
			case -1:
				if c.ContactID == 0 || c.ContactID == known.ID || !check.Create || check.Name != tc.wantName {
					t.Errorf("contact %d, check %+v, want a new one named %q", c.ContactID, check, tc.wantName)
				}
			default:
				if c.ContactID != tc.wantID || check.Contact == nil {
					t.Errorf("contact %d, want %d", c.ContactID, tc.wantID)
				}
			}
			if in := cache.ByID(c.ContactID); in == nil || in.Name != tc.wantName {
				t.Errorf("cached %+v, want name %q", in, tc.wantName)
			}
			// A second call from the number finds the same contact.
			again := tc.call
			stage.Handle(ctx, &again)
			if again.ContactID != c.ContactID {
				t.Errorf("second call linked to %d, first to %d", again.ContactID, c.ContactID)
			}
		})
	}
	if err := cache.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := store.FindByNumber(ctx, "+4930222")
	if err != nil || got.Name != "Jane Doe" || got.Source != contacts.SourceCall || got.Numbers[0].Raw != "030222" {
		t.Errorf("stored %+v, %v", got, err)
	}
}

// TestContactStageConcurrentFirstCalls: 100 simultaneous first calls from
// one number make one contact.
func TestContactStageConcurrentFirstCalls(t *testing.T) {
	ctx := context.Background()
	store, cache := newContactCache(t)
	stage, _ := callctl.NewContactStage(cache)
	const n = 100
	ids := make([]int64, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := callctl.Call{Direction: callctl.Inbound, Caller: callctl.Party{E164: "+4930999888", Name: "Jane"}}
			stage.Handle(ctx, &c)
			ids[i] = c.ContactID
		}()
	}
	wg.Wait()
	for i, id := range ids {
		if id == 0 || id != ids[0] {
			t.Fatalf("call %d linked to %d, call 0 to %d", i, id, ids[0])
		}
	}
	if err := cache.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	items, _, err := store.Search(ctx, "", 10, "")
	if err != nil || len(items) != 1 || items[0].ID != ids[0] {
		t.Errorf("stored %d contacts (%v), want exactly contact %d", len(items), err, ids[0])
	}
}

func TestNewContactStageNeedsIndex(t *testing.T) {
	if _, err := callctl.NewContactStage(nil); err == nil {
		t.Error("nil index accepted")
	}
}

// BenchmarkContactStage measures the stage on the INVITE path: a known
// caller (a map lookup) and a first call (an id from the reserved block and
// a queued write). Neither touches the disk.
func BenchmarkContactStage(b *testing.B) {
	ctx := context.Background()
	_, cache := newContactCache(b)
	stage, _ := callctl.NewContactStage(cache)
	const known = 100000
	for i := range known {
		cache.FindOrCreate(contacts.Phone{E164: fmt.Sprintf("+4930%07d", i)}, "Known")
	}
	if err := cache.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	b.Run("known", func(b *testing.B) {
		calls := make([]callctl.Call, 1024)
		for i := range calls {
			calls[i] = callctl.Call{Direction: callctl.Inbound, Caller: callctl.Party{E164: fmt.Sprintf("+4930%07d", i*97%known)}}
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			c := &calls[i%len(calls)]
			stage.Handle(ctx, c)
		}
	})
	b.Run("known-parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			c := callctl.Call{Direction: callctl.Inbound, Caller: callctl.Party{E164: "+49300000042"}}
			for pb.Next() {
				stage.Handle(ctx, &c)
			}
		})
	})
	b.Run("first-call", func(b *testing.B) {
		calls := make([]callctl.Call, b.N)
		for i := range calls {
			calls[i] = callctl.Call{Direction: callctl.Inbound, Caller: callctl.Party{E164: fmt.Sprintf("+4940%09d", i), Name: "New Caller"}}
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := range calls {
			stage.Handle(ctx, &calls[i])
		}
		b.StopTimer()
		if st := cache.Stats(); st.Exhausted > 0 {
			b.Logf("%d first calls found no reserved id", st.Exhausted)
		}
	})
}
