package callctl

import (
	"github.com/switchboard-sip/switchboard/cdr"

	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// memSink keeps saved records by id, as the store's upsert does.
type memSink struct {
	mu   sync.Mutex
	recs map[string]cdr.Record
}

func (m *memSink) Save(r cdr.Record) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.recs == nil {
		m.recs = map[string]cdr.Record{}
	}
	m.recs[r.ID] = r
}

func (m *memSink) ByCallID(_ context.Context, id string) (cdr.Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range m.recs {
		if r.CallID == id {
			return r, nil
		}
	}
	return cdr.Record{}, errors.New("not found")
}

func (m *memSink) get(id string) cdr.Record {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.recs[id]
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time      { return c.t }
func (c *clock) add(d time.Duration) { c.t = c.t.Add(d) }

func newTestTracker() (*Tracker, *memSink, *clock, *[]Event) {
	sink := &memSink{}
	var events []Event
	t := NewTracker(sink, func(e Event) { events = append(events, e) })
	c := &clock{t: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)}
	t.now = c.now
	return t, sink, c, &events
}

func TestTrackerLifecycles(t *testing.T) {
	tests := []struct {
		name     string
		run      func(a *Active, tr *Tracker, c *clock)
		disp     cdr.Disposition
		status   int
		ringMS   int64
		talkMS   int64
		ended    bool
		answered bool
	}{
		{"answered then bye", func(a *Active, tr *Tracker, c *clock) {
			c.add(time.Second)
			a.Ringing()
			c.add(3 * time.Second)
			a.Answered(200, "rec-1", "")
			c.add(10 * time.Second)
			tr.Bye(a.Call.CallID)
		}, cdr.Answered, 200, 3000, 10000, true, true},
		{"busy", func(a *Active, _ *Tracker, c *clock) {
			a.Final(486, false, "Busy Here")
		}, cdr.Busy, 486, 0, 0, true, false},
		{"caller cancel while ringing", func(a *Active, _ *Tracker, c *clock) {
			a.Ringing()
			c.add(5 * time.Second)
			a.Cancelled(false)
		}, cdr.NoAnswer, 487, 5000, 0, true, false},
		{"cancel answered elsewhere", func(a *Active, _ *Tracker, c *clock) {
			a.Ringing()
			a.Cancelled(true)
		}, cdr.Elsewhere, 487, 0, 0, true, false},
		{"far side 480", func(a *Active, _ *Tracker, _ *clock) { a.Final(480, false, "") }, cdr.NoAnswer, 480, 0, 0, true, false},
		{"far side 404", func(a *Active, _ *Tracker, _ *clock) { a.Final(404, false, "") }, cdr.Rejected, 404, 0, 0, true, false},
		{"no response", func(a *Active, _ *Tracker, _ *clock) { a.Final(408, true, "timeout") }, cdr.Failed, 408, 0, 0, true, false},
		{"blocked", func(a *Active, _ *Tracker, _ *clock) {
			a.Decided(Decision{Code: 603, Disposition: cdr.Blocked, Reason: "spam"})
		}, cdr.Blocked, 603, 0, 0, true, false},
		{"answered, still up", func(a *Active, _ *Tracker, _ *clock) { a.Answered(200, "", "") }, cdr.Answered, 200, 0, 0, false, true},
		{"late final after answer is ignored", func(a *Active, _ *Tracker, _ *clock) {
			a.Answered(200, "", "")
			a.Final(487, false, "")
		}, cdr.Answered, 200, 0, 0, false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr, sink, c, _ := newTestTracker()
			a := tr.Start(&Call{CallID: "c1", Direction: Inbound})
			tc.run(a, tr, c)
			r := sink.get(a.Call.ID)
			if r.Disposition != tc.disp || r.SIPStatus != tc.status {
				t.Fatalf("got %s/%d, want %s/%d", r.Disposition, r.SIPStatus, tc.disp, tc.status)
			}
			if r.RingMS != tc.ringMS || r.TalkMS != tc.talkMS {
				t.Errorf("ring/talk = %d/%d ms, want %d/%d", r.RingMS, r.TalkMS, tc.ringMS, tc.talkMS)
			}
			if (r.EndedAt != nil) != tc.ended || (r.AnsweredAt != nil) != tc.answered {
				t.Errorf("ended=%v answered=%v, want %v %v", r.EndedAt != nil, r.AnsweredAt != nil, tc.ended, tc.answered)
			}
		})
	}
}

func TestTrackerByeAfterRestart(t *testing.T) {
	tr, sink, c, events := newTestTracker()
	a := tr.Start(&Call{CallID: "c2", Direction: Inbound})
	a.Answered(200, "", "")
	// A new tracker over the same records is a restarted switchboard.
	tr2 := NewTracker(sink, func(e Event) { *events = append(*events, e) })
	c.add(7 * time.Second)
	tr2.now = c.now
	tr2.completeStored("c2")
	r := sink.get(a.Call.ID)
	if r.EndedAt == nil || r.TalkMS != 7000 || r.Disposition != cdr.Answered {
		t.Fatalf("record after restart BYE: %+v", r)
	}
}

func TestTrackerExpire(t *testing.T) {
	tr, sink, c, _ := newTestTracker()
	old := tr.Start(&Call{CallID: "old"})
	old.Answered(200, "", "")
	c.add(2 * time.Hour)
	fresh := tr.Start(&Call{CallID: "fresh"})
	fresh.Answered(200, "", "")
	if n := tr.Expire(time.Hour); n != 1 {
		t.Fatalf("expired %d calls, want 1", n)
	}
	if r := sink.get(old.Call.ID); r.EndedAt == nil || r.EndReason != "max_call_duration" {
		t.Errorf("old call not closed: %+v", r)
	}
	if tr.ActiveCalls() != 1 || tr.Pending() != 1 {
		t.Errorf("active=%d pending=%d, want 1 and 1", tr.ActiveCalls(), tr.Pending())
	}
}

func TestTrackerKeepsAnswerDetails(t *testing.T) {
	tr, sink, _, _ := newTestTracker()
	a := tr.Start(&Call{CallID: "c3", Hotline: "acme", Campaign: "radio"})
	a.Answered(200, "rec-42", "201")
	tr.Bye("c3")
	if r := sink.get(a.Call.ID); r.Recording != "rec-42" || r.AnsweredBy != "201" || r.Campaign != "radio" || r.EndedAt == nil {
		t.Fatalf("record %+v", r)
	}
}

// A transcript the PBX sent travels with the record saved at the hangup,
// bounded to cdr.MaxTranscript.
func TestActiveTranscript(t *testing.T) {
	tr, sink, _, _ := newTestTracker()
	a := tr.Start(&Call{CallID: "tx-1", Direction: Inbound})
	a.Answered(200, "", "101")
	a.SetTranscript(strings.Repeat("x", cdr.MaxTranscript+10))
	a.Hangup("")
	got := sink.get(a.Call.ID)
	if len(got.Transcript) != cdr.MaxTranscript {
		t.Errorf("transcript %d bytes, want %d", len(got.Transcript), cdr.MaxTranscript)
	}
	b := tr.Start(&Call{CallID: "tx-2", Direction: Inbound})
	b.Answered(200, "", "101")
	if !tr.ByeWithTranscript("tx-2", "Caller: thanks, bye") {
		t.Fatal("ByeWithTranscript did not end the call")
	}
	if got := sink.get(b.Call.ID); got.Transcript != "Caller: thanks, bye" || got.EndedAt == nil {
		t.Errorf("after a BYE with a transcript: %q, ended %v", got.Transcript, got.EndedAt)
	}
}
