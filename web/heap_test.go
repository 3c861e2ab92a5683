package web

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/switchboard-sip/switchboard/callctl"
	"github.com/switchboard-sip/switchboard/storage"
	"github.com/switchboard-sip/switchboard/storage/callstore"
)

// TestNothingKeptAfterTheCall: above SIP, a call that has ended leaves
// nothing alive: not in the tracker, the record writer (with its journal)
// or the board's event hub (whose history is a fixed ring). The live heap
// after thousands of calls is what it was before them (SPEC §9 memory).
func TestNothingKeptAfterTheCall(t *testing.T) {
	if testing.Short() {
		t.Skip("a few thousand calls")
	}
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "sb.db")
	db, err := storage.Open(storage.SQLite, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	store, err := callstore.New(ctx, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close(ctx)
	if err := store.OpenJournal(ctx, callstore.JournalPath(storage.SQLite, path)); err != nil {
		t.Fatal(err)
	}
	h := NewHub(HubOptions{})
	defer h.Close()
	tr := callctl.NewTracker(store, h.Observe)
	n := 0
	calls := func(count int) {
		for range count {
			n++
			a := tr.Start(&callctl.Call{CallID: fmt.Sprintf("heap-%d@test", n), Direction: callctl.Inbound, Hotline: "acme",
				Greeting: "Good morning, ACME", Display: "ACME: Jane",
				Caller: callctl.Party{E164: "+4930111222", National: "030 111222", Raw: "+4930111222"},
				Called: callctl.Party{E164: "+49301234560"}, Headers: map[string]string{"X-Hotline": "acme"}})
			a.Forwarded()
			a.Ringing()
			a.Answered(200, "", "")
			a.Hangup("")
		}
		deadline := time.Now().Add(30 * time.Second)
		// A flood overflows the hub's inbox: dropped events count as done.
		for st := h.Stats(); st.Published+st.Overflow < uint64(3*n); st = h.Stats() {
			if time.Now().After(deadline) {
				t.Fatalf("hub handled %d of %d events", st.Published+st.Overflow, 3*n)
			}
			time.Sleep(time.Millisecond)
		}
		fctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := store.Flush(fctx); err != nil {
			t.Fatal(err)
		}
	}
	live := func() uint64 {
		runtime.GC()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	// A first round fills the hub's ring and grows the buffers that are
	// kept between bursts (bounded) to their high-water mark.
	const more = 20000
	calls(more)
	before := live()
	calls(more)
	after := live()
	perCall := (int64(after) - int64(before)) / more
	t.Logf("live heap %d → %d bytes after %d calls (%d bytes a call)", before, after, more, perCall)
	if perCall > 64 {
		t.Errorf("%d bytes of live heap per ended call, want none", perCall)
	}
	if tr.Pending() != 0 || store.Pending() != 0 {
		t.Errorf("tracker keeps %d calls, writer %d records", tr.Pending(), store.Pending())
	}
}
