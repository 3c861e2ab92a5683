package emergency_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/switchboard-sip/switchboard/emergency"
	"github.com/switchboard-sip/switchboard/storage/storagetest"
)

func TestMain(m *testing.M) { os.Exit(storagetest.Main(m)) }

// TestStoreCallbackWindow: a call to the number an emergency call
// presented finds it during the window and not after; another node that
// opens the same database finds it too.
func TestStoreCallbackWindow(t *testing.T) {
	ctx := context.Background()
	db := storagetest.Open(t, "emergency")
	s, err := emergency.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now().Truncate(time.Millisecond)
	a := emergency.Alert{ID: "r1", CallID: "c1", Extension: "2001", Presented: "+4930123450", Dialled: "112",
		At: at, CallbackUntil: at.Add(time.Hour)}
	if err := s.Add(ctx, a); err != nil {
		t.Fatal(err)
	}
	if got, ok := s.Callback("+4930123450", at.Add(59*time.Minute)); !ok || got.Extension != "2001" {
		t.Fatalf("within the window: %+v, %v", got, ok)
	}
	if _, ok := s.Callback("+4930123450", at.Add(time.Hour)); ok {
		t.Fatal("callback found after the window")
	}
	if _, ok := s.Callback("+4930999999", at); ok {
		t.Fatal("callback found for another number")
	}
	// A second node sharing the database loads it at start.
	other, err := emergency.Open(ctx, storagetest.Open(t, "emergency"))
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := other.Callback("+4930123450", at.Add(time.Minute)); !ok || got.ID != "r1" {
		t.Fatalf("other node: %+v, %v", got, ok)
	}
}

// TestStoreAcknowledge: an alert is open until acknowledged, who and when
// kept; a second acknowledgement changes nothing.
func TestStoreAcknowledge(t *testing.T) {
	ctx := context.Background()
	s, err := emergency.Open(ctx, storagetest.Open(t, "ack"))
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now()
	for _, id := range []string{"a", "b"} {
		if err := s.Add(ctx, emergency.Alert{ID: id, Extension: "2001", Dialled: "112", At: at, CallbackUntil: at}); err != nil {
			t.Fatal(err)
		}
	}
	open, err := s.Open(ctx)
	if err != nil || len(open) != 2 {
		t.Fatalf("open before: %v, %v", open, err)
	}
	when := at.Add(time.Minute).Truncate(time.Millisecond)
	got, err := s.Acknowledge(ctx, "a", "desk", when)
	if err != nil || got.AckedBy != "desk" || got.AckedAt == nil || !got.AckedAt.Equal(when) {
		t.Fatalf("acknowledge: %+v, %v", got, err)
	}
	if again, _ := s.Acknowledge(ctx, "a", "someone else", when.Add(time.Hour)); again.AckedBy != "desk" {
		t.Fatalf("second acknowledgement replaced the first: %+v", again)
	}
	if open, _ = s.Open(ctx); len(open) != 1 || open[0].ID != "b" {
		t.Fatalf("open after: %+v", open)
	}
	if _, err := s.Acknowledge(ctx, "nope", "desk", when); err != emergency.ErrNotFound {
		t.Fatalf("unknown id: %v", err)
	}
}
