package callstore

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/switchboard-sip/switchboard/cdr"
	"github.com/switchboard-sip/switchboard/contacts"
)

func msg(id string, at time.Time, contact int64) cdr.Message {
	return cdr.Message{
		ID: id, CallID: "cid-" + id, Direction: cdr.Received,
		Caller: "+4915112345678", CallerRaw: "015112345678", Called: "+49301234560", CalledRaw: "+49301234560",
		ContactID: contact, Content: "hello " + id + " ✓", Truncated: id == "cut", Size: 42,
		ContentType: "text/plain;charset=UTF-8", Trunk: "carrier", Source: "sip:015112345678@carrier.example",
		Node: "sb-1", Status: 202, At: at,
	}
}

func flushMessages(t testing.TB, s *Store) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.FlushMessages(ctx); err != nil {
		t.Fatal(err)
	}
}

// Messages are written by their own batched writer and read back whole,
// every field; a contact's export lists them newest first.
func TestMessagesSaveAndRead(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	first, second := msg("a1", base, 7), msg("cut", base.Add(time.Minute), 7)
	second.Direction, second.Status = cdr.Sent, 480
	s.SaveMessage(first)
	s.SaveMessage(second)
	s.SaveMessage(msg("other", base, 8))
	flushMessages(t, s)
	got, err := s.ContactMessages(ctx, 7)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != second || got[1] != first {
		t.Fatalf("ContactMessages = %+v\nwant %+v\nand  %+v", got, second, first)
	}
	// Beyond the local queue's bound a message is dropped and counted,
	// never waited for.
	s.maxPending = 0
	s.SaveMessage(msg("over", base, 7))
	if s.DroppedMessages() != 1 || s.PendingMessages() != 0 {
		t.Errorf("over the bound: %d dropped, %d pending; want 1 and 0", s.DroppedMessages(), s.PendingMessages())
	}
}

// One page of a trace orders calls and messages on one key across both
// tables, and the cursor leads through the rest without a repeat or a gap.
func TestTraceTimeline(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	var want []string // ids, newest first
	for i := range 5 {
		at := base.Add(time.Duration(10-2*i) * time.Minute)
		r := rec("call"+string(rune('a'+i)), at)
		r.ContactID = 7
		s.Save(r)
		m := msg("msg"+string(rune('a'+i)), at.Add(-time.Minute), 0) // linked by number only
		s.SaveMessage(m)
		want = append(want, r.ID, m.ID)
	}
	old := msg("too-old", base.AddDate(-2, 0, 0), 7)
	s.SaveMessage(old)
	stranger := msg("stranger", base, 0)
	stranger.Caller, stranger.Called = "+4940999", "+4940888"
	s.SaveMessage(stranger)
	flush(t, s)
	flushMessages(t, s)

	since, until := base.AddDate(-1, 0, 0), base.Add(time.Hour)
	var got []string
	cur := ""
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatal("no end of pages")
		}
		calls, msgs, next, err := s.TraceTimeline(ctx, 7, []string{"+4915112345678"}, since, until, cur, 3)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(calls) + len(msgs); n > 3 || (n < 3 && next != "") {
			t.Fatalf("page of %d items with next %q", n, next)
		}
		page := contacts.Trace{Items: calls, Messages: msgs}
		for _, e := range page.Timeline() {
			if e.Message != nil {
				got = append(got, e.Message.ID)
			} else {
				got = append(got, e.Call.ID)
			}
		}
		if next == "" {
			break
		}
		cur = next
	}
	if len(got) != len(want) {
		t.Fatalf("timeline %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("timeline %v, want %v", got, want)
		}
	}
	if _, _, _, err := s.TraceTimeline(ctx, 7, nil, since, until, "not a cursor", 3); err == nil {
		t.Error("a bad cursor was taken")
	}
}

// A contact's deletion takes its messages, written or still queued;
// retention prunes old ones and spares the contacts recent messages
// link to; a merge moves them.
func TestMessagesDeletePruneRelink(t *testing.T) {
	s, tg := newStore(t)
	ctx := context.Background()
	cs, err := contacts.NewStore(ctx, openRaw(t, tg))
	if err != nil {
		t.Fatal(err)
	}
	cs.UseCalls(s)
	cs.UseMessages(s)
	jane, err := cs.Create(ctx, contacts.Contact{Name: "Jane", Source: contacts.SourceCall,
		Numbers: []contacts.Phone{{E164: "+4915112345678", Raw: "015112345678"}}})
	if err != nil {
		t.Fatal(err)
	}
	texter, err := cs.Create(ctx, contacts.Contact{Name: "Texter", Source: contacts.SourceCall,
		Numbers: []contacts.Phone{{E164: "+4940111", Raw: "+4940111"}}})
	if err != nil {
		t.Fatal(err)
	}
	s.SaveMessage(msg("written", base, jane.ID))
	flushMessages(t, s)
	other := msg("other", time.Now(), texter.ID)
	s.SaveMessage(other)
	flushMessages(t, s)
	tr, err := cs.Trace(ctx, contacts.TraceQuery{ContactID: jane.ID, Now: base.Add(time.Hour)})
	if err != nil || len(tr.Messages) != 1 || tr.Messages[0].ID != "written" || len(tr.Timeline()) != 1 {
		t.Fatalf("contact trace: %+v, %v; want the written message", tr.Messages, err)
	}
	ex, err := cs.Export(ctx, jane.ID)
	if err != nil || len(ex.Messages) == 0 {
		t.Fatalf("export: %d messages, %v", len(ex.Messages), err)
	}
	// One saved just before the privacy request: queued, or being
	// written, or written, it goes with the contact.
	s.SaveMessage(msg("queued", base, jane.ID))
	if _, err := cs.Delete(ctx, jane.ID); err != nil {
		t.Fatal(err)
	}
	flushMessages(t, s)
	if left, err := s.ContactMessages(ctx, jane.ID); err != nil || len(left) != 0 {
		t.Errorf("after the contact's deletion: %d messages left (%v)", len(left), err)
	}

	// Retention: the texter's message is recent, so the contact it
	// created stays although it has no call.
	s.SaveMessage(msg("ancient", base.AddDate(-3, 0, 0), texter.ID))
	flushMessages(t, s)
	s.Retain(ctx, time.Now(), 24*time.Hour*400, cs)
	if left, _ := s.ContactMessages(ctx, texter.ID); len(left) != 1 || left[0].ID != "other" {
		t.Errorf("after retention: %+v, want the recent message only", left)
	}
	if _, err := cs.Get(ctx, texter.ID); err != nil {
		t.Errorf("contact with a recent message: %v, want it kept", err)
	}

	if err := s.Relink(ctx, texter.ID, 99); err != nil {
		t.Fatal(err)
	}
	if moved, _ := s.ContactMessages(ctx, 99); len(moved) != 1 {
		t.Errorf("relink moved %d messages, want 1", len(moved))
	}
	if _, err := cs.Get(ctx, jane.ID); !errors.Is(err, contacts.ErrNotFound) {
		t.Errorf("deleted contact: %v", err)
	}
}

// The writer deletes again what it wrote for a contact deleted while its
// batch was being committed, and a contact deleted while its messages
// wait in the queue takes them out of it.
func TestMessagesDeletedWhileWritten(t *testing.T) {
	// The queue alone, without a writer taking from it.
	q := newMessageQueue()
	q.pending = append(q.pending, msg("waiting", base, 5), msg("kept", base, 6))
	q.saved = 2
	q.dropContact(5)
	if len(q.pending) != 1 || q.pending[0].ID != "kept" || q.written != 1 || q.deleted[5] {
		t.Fatalf("after dropping contact 5: pending %v, written %d, marked %v", q.pending, q.written, q.deleted)
	}
	q.writing = true
	q.dropContact(6)
	if len(q.pending) != 0 || !q.deleted[6] {
		t.Fatalf("dropping contact 6 during a write: pending %v, marked %v", q.pending, q.deleted)
	}

	// The store: the batch landed after the contact's DELETE ran.
	s, _ := newStore(t)
	ctx := context.Background()
	batch := []cdr.Message{msg("in-flight", base, 6), msg("other", base, 7)}
	if err := s.insertMessages(ctx, batch); err != nil {
		t.Fatal(err)
	}
	s.msgs.mu.Lock()
	s.msgs.deleted = map[int64]bool{6: true} // the writer's queue is empty: nothing resets it
	s.msgs.mu.Unlock()
	if err := s.deleteAgain(ctx, batch); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.ContactMessages(ctx, 6); len(got) != 0 {
		t.Errorf("messages of the deleted contact left: %+v", got)
	}
	if got, _ := s.ContactMessages(ctx, 7); len(got) != 1 {
		t.Errorf("another contact's message went too: %+v", got)
	}
}
