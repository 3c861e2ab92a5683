package callstore

import (
	"github.com/switchboard-sip/switchboard/cdr"

	"context"
	"errors"
	"testing"

	"github.com/switchboard-sip/switchboard/storage"
)

// The wrap-up survives whatever the call path saves later, whether the
// record was pending or written when the front desk set it.
func TestWrapUpSurvivesLaterSaves(t *testing.T) {
	ctx := context.Background()
	want := cdr.WrapUp{Reason: "order", Satisfaction: 4, Notes: "wants a callback\nafter 5"}
	check := func(t *testing.T, s *Store, id string) {
		t.Helper()
		got, err := s.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if got.WrapUp.Reason != want.Reason || got.Satisfaction != want.Satisfaction || got.Notes != want.Notes || got.WrapUp.At == nil {
			t.Errorf("wrap-up = %+v, want %+v", got.WrapUp, want)
		}
	}
	for _, tt := range []struct {
		name    string
		written bool // the record is in the database before the wrap-up
	}{{"pending", false}, {"written", true}} {
		t.Run(tt.name, func(t *testing.T) {
			s, path := newStore(t)
			r := rec("w1", base)
			s.Save(r)
			if tt.written {
				flush(t, s)
			}
			got, err := s.SetWrapUp(ctx, "w1", want)
			if err != nil || got.WrapUp.Reason != "order" {
				t.Fatalf("SetWrapUp = %+v, %v", got.WrapUp, err)
			}
			// The call path saves again (the BYE), never having seen it.
			r.TalkMS = 5000
			s.Save(r)
			check(t, s, "w1")
			flush(t, s)
			check(t, s, "w1")
			var reason string
			var score int
			if err := openRaw(t, path).QueryRow(`SELECT reason, satisfaction FROM calls WHERE id = 'w1'`).Scan(&reason, &score); err != nil || reason != "order" || score != 4 {
				t.Errorf("row: %q %d %v", reason, score, err)
			}
			if got, _ := s.Get(ctx, "w1"); got.TalkMS != 5000 {
				t.Errorf("talk_ms = %d, the later save was lost", got.TalkMS)
			}
		})
	}
	t.Run("unknown call", func(t *testing.T) {
		s, _ := newStore(t)
		if _, err := s.SetWrapUp(ctx, "nope", want); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("err = %v, want not found", err)
		}
	})
}

// A transcript from the PBX (the call path) is kept beside the front
// desk's wrap-up, and resolved is stored and read back, pending or written.
func TestTranscriptFromCallPathAndResolved(t *testing.T) {
	ctx := context.Background()
	for _, written := range []bool{false, true} {
		s, _ := newStore(t)
		r := rec("t1", base)
		s.Save(r)
		if written {
			flush(t, s)
		}
		yes := true
		if _, err := s.SetWrapUp(ctx, "t1", cdr.WrapUp{Reason: "order", Resolved: &yes}); err != nil {
			t.Fatal(err)
		}
		r.WrapUp.Transcript = "caller: hello"
		s.Save(r) // the hangup, with the PBX's transcript header
		for _, stage := range []string{"pending", "flushed"} {
			got, err := s.Get(ctx, "t1")
			if err != nil {
				t.Fatal(err)
			}
			if got.Resolved == nil || !*got.Resolved || got.Transcript != "caller: hello" || got.WrapUp.Reason != "order" {
				t.Errorf("written=%v %s: resolved %v transcript %q reason %q", written, stage, got.Resolved, got.Transcript, got.WrapUp.Reason)
			}
			flush(t, s)
		}
	}
}
