package callctl

import (
	"github.com/switchboard-sip/switchboard/cdr"

	"context"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"
)

// RecordSink stores call records. Save must not block: it runs on the SIP path.
type RecordSink interface {
	Save(r cdr.Record)
	ByCallID(ctx context.Context, callID string) (cdr.Record, error)
}

// EventType names a change in a call's life, as published to observers.
type EventType string

// Events of a call's life.
const (
	EventRinging  EventType = "call.ringing"
	EventAnswered EventType = "call.answered"
	EventEnded    EventType = "call.ended"
)

// Event is published to observers when a call changes state. Call is nil for
// calls that were set up before a restart.
type Event struct {
	Type   EventType
	Record cdr.Record
	Call   *Call
}

// Tracker follows every call from INVITE to its end and writes its record.
// It is safe for concurrent use; the SIP layer drives it.
type Tracker struct {
	sink      RecordSink
	observers []func(Event)
	now       func() time.Time

	mu     sync.Mutex
	byCall map[string]*Active // Call-ID → the call's latest attempt
	active int                // answered and not yet ended
}

// NewTracker returns a tracker writing to sink and telling observers of
// every state change. Observers must not block.
func NewTracker(sink RecordSink, observers ...func(Event)) *Tracker {
	return &Tracker{sink: sink, observers: observers, now: time.Now, byCall: map[string]*Active{}}
}

// Active is one call attempt in progress.
type Active struct {
	t    *Tracker
	Call *Call

	mu     sync.Mutex
	rec    cdr.Record
	ended  bool
	ringAt time.Time
}

// NewID returns a record id: time-ordered, unique enough across nodes.
func NewID(t time.Time) string {
	return strconv.FormatInt(t.UnixMilli(), 36) + strconv.FormatUint(rand.Uint64()&0xffffffffff, 36)
}

// Start opens the record for a call whose INVITE was accepted.
func (t *Tracker) Start(c *Call) *Active {
	if c.StartedAt.IsZero() {
		c.StartedAt = t.now()
	}
	if c.ID == "" {
		c.ID = NewID(c.StartedAt)
	}
	a := &Active{t: t, Call: c, rec: recordOf(c)}
	t.mu.Lock()
	t.byCall[c.CallID] = a
	t.mu.Unlock()
	t.sink.Save(a.rec)
	return a
}

func recordOf(c *Call) cdr.Record {
	return cdr.Record{
		ID: c.ID, CallID: c.CallID, Direction: c.Direction, Trunk: c.Trunk,
		Caller: c.Caller.E164, CallerRaw: c.Caller.RecordRaw(), CallerName: c.Caller.Name,
		Called: c.Called.E164, CalledRaw: c.Called.RecordRaw(),
		Hotline: c.Hotline, Campaign: c.Campaign, ContactID: c.ContactID, Node: c.Node, StartedAt: c.StartedAt,
		Emergency: c.Emergency, EmergencyCallback: c.CallbackOf,
	}
}

// Forwarded publishes call.ringing as soon as the INVITE went on to the far
// side, so the board shows the call before the phone even rings (SPEC §8).
func (a *Active) Forwarded() {
	a.t.publish(Event{Type: EventRinging, Record: a.Record(), Call: a.Call})
}

// Ringing notes the first 18x from the far side; ring time counts from it.
func (a *Active) Ringing() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.ended || a.rec.RingingAt != nil {
		return
	}
	now := a.t.now()
	a.ringAt = now
	a.rec.RingingAt = &now
}

// Answered notes the 2xx that set up the dialog; the record is saved at once
// so that a restart before the BYE loses nothing. recording is the PBX's
// reference to its recording of the call, when it sent one; answeredBy
// names the phone that took it (SPEC §2 answered_by).
func (a *Active) Answered(status int, recording, answeredBy string) {
	a.mu.Lock()
	if a.ended || a.rec.AnsweredAt != nil {
		a.mu.Unlock()
		return
	}
	a.rec.Recording = recording
	a.rec.AnsweredBy = answeredBy
	now := a.t.now()
	a.rec.AnsweredAt = &now
	a.rec.SIPStatus = status
	a.rec.Disposition = cdr.Answered
	a.rec.RingMS = a.ringMS(now)
	r := a.rec
	a.mu.Unlock()
	a.t.mu.Lock()
	a.t.active++
	a.t.mu.Unlock()
	a.t.sink.Save(r)
	a.t.publish(Event{Type: EventAnswered, Record: r, Call: a.Call})
}

// SetTranscript keeps the transcript (or its URL) a PBX sent in the header
// named by wrapup.transcript_header, on its 2xx or its BYE; the record
// saved next (the answer or the hangup) carries it. Call it before
// Answered or Hangup.
func (a *Active) SetTranscript(text string) {
	if text == "" {
		return
	}
	a.mu.Lock()
	a.rec.WrapUp.Transcript = cdr.CutTranscript(text)
	a.mu.Unlock()
}

func (a *Active) ringMS(now time.Time) int64 {
	if a.ringAt.IsZero() {
		return 0
	}
	return now.Sub(a.ringAt).Milliseconds()
}

// Final notes a final non-2xx response (from the far side, or from
// switchboard itself when local is true) and ends the attempt.
func (a *Active) Final(status int, local bool, reason string) {
	a.finish(status, DispositionFor(status, local), reason)
}

// Decided ends an attempt that switchboard itself refused (blocked, closed,
// rejected by a rule) with the stage's disposition.
func (a *Active) Decided(d Decision) {
	disp := d.Disposition
	if disp == "" {
		disp = DispositionFor(d.Code, true)
	}
	a.finish(d.Code, disp, d.Reason)
}

// Cancelled ends an unanswered attempt that the caller cancelled. A CANCEL
// with Reason cause=200 means another device answered (RFC 3326): not missed.
func (a *Active) Cancelled(elsewhere bool) {
	disp := cdr.NoAnswer
	if elsewhere {
		disp = cdr.Elsewhere
	}
	a.finish(StatusRequestTerminated, disp, "cancelled")
}

func (a *Active) finish(status int, disp cdr.Disposition, reason string) {
	a.mu.Lock()
	if a.ended || a.rec.AnsweredAt != nil {
		a.mu.Unlock()
		return
	}
	a.ended = true
	now := a.t.now()
	a.rec.EndedAt = &now
	a.rec.SIPStatus = status
	a.rec.Disposition = disp
	a.rec.EndReason = reason
	a.rec.RingMS = a.ringMS(now)
	r := a.rec
	a.mu.Unlock()
	a.t.forget(a)
	a.t.sink.Save(r)
	a.t.publish(Event{Type: EventEnded, Record: r, Call: a.Call})
}

// Hangup ends an answered call (BYE from either side, or the maximum call
// length reached). It reports whether the call was still up.
func (a *Active) Hangup(reason string) bool { return a.hangupAt(reason, a.t.now()) }

func (a *Active) hangupAt(reason string, now time.Time) bool {
	a.mu.Lock()
	if a.ended || a.rec.AnsweredAt == nil {
		a.mu.Unlock()
		return false
	}
	if now.Before(*a.rec.AnsweredAt) {
		now = *a.rec.AnsweredAt
	}
	a.ended = true
	a.rec.EndedAt = &now
	a.rec.TalkMS = now.Sub(*a.rec.AnsweredAt).Milliseconds()
	if reason != "" {
		a.rec.EndReason = reason
	}
	r := a.rec
	a.mu.Unlock()
	a.t.mu.Lock()
	a.t.active--
	a.t.mu.Unlock()
	a.t.forget(a)
	a.t.sink.Save(r)
	a.t.publish(Event{Type: EventEnded, Record: r, Call: a.Call})
	return true
}

// Record returns a copy of the current record.
func (a *Active) Record() cdr.Record {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.rec
}

func (t *Tracker) forget(a *Active) {
	t.mu.Lock()
	if t.byCall[a.Call.CallID] == a {
		delete(t.byCall, a.Call.CallID)
	}
	t.mu.Unlock()
}

func (t *Tracker) publish(e Event) {
	for _, o := range t.observers {
		o(e)
	}
}

// Bye ends the answered call with this Call-ID. Calls set up before a restart
// are not in memory: their record is read back and completed, off the SIP
// path. It reports whether a call in memory was ended.
func (t *Tracker) Bye(callID string) bool { return t.bye(callID, time.Time{}, "") }

// ByeWithTranscript is Bye for a BYE that carries the PBX's transcript
// (the header named by wrapup.transcript_header); empty keeps what the
// call has.
func (t *Tracker) ByeWithTranscript(callID, transcript string) bool {
	return t.bye(callID, time.Time{}, transcript)
}

// ByeAt is Bye for a BYE first sent at a known time (zero: now): a
// balancer that sent it to a dead node first passes it on late, and the
// call ended when it was sent (SPEC §11).
func (t *Tracker) ByeAt(callID string, at time.Time) bool { return t.bye(callID, at, "") }

// ByeWith is ByeAt for a BYE that may carry the PBX's transcript.
func (t *Tracker) ByeWith(callID string, at time.Time, transcript string) bool {
	return t.bye(callID, at, transcript)
}

func (t *Tracker) bye(callID string, at time.Time, transcript string) bool {
	if at.IsZero() {
		at = t.now()
	}
	t.mu.Lock()
	a := t.byCall[callID]
	t.mu.Unlock()
	if a != nil {
		a.SetTranscript(transcript)
		return a.hangupAt("", at)
	}
	go t.completeStoredAt(callID, at)
	return false
}

func (t *Tracker) completeStored(callID string) { t.completeStoredAt(callID, t.now()) }

func (t *Tracker) completeStoredAt(callID string, now time.Time) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := t.sink.ByCallID(ctx, callID)
	if err != nil || r.AnsweredAt == nil {
		return
	}
	if r.EndedAt != nil {
		if r.EndReason != cdr.ReasonNodeLost {
			return
		}
		// A survivor closed the call when its node died; the call went on
		// and this is its end (SPEC §11).
		r.Disposition, r.EndReason = cdr.Answered, ""
	}
	if now.Before(*r.AnsweredAt) {
		now = *r.AnsweredAt
	}
	r.EndedAt = &now
	r.TalkMS = now.Sub(*r.AnsweredAt).Milliseconds()
	t.sink.Save(r)
	t.publish(Event{Type: EventEnded, Record: r})
}

// CancelStored ends the unanswered call with this Call-ID whose CANCEL
// matched no transaction: set up before a restart, its record is read back
// and finished as a cancelled call (no_answer, or elsewhere), off the SIP
// path.
func (t *Tracker) CancelStored(callID string, elsewhere bool) {
	t.mu.Lock()
	a := t.byCall[callID]
	t.mu.Unlock()
	if a != nil {
		a.Cancelled(elsewhere)
		return
	}
	go t.cancelStored(callID, elsewhere)
}

func (t *Tracker) cancelStored(callID string, elsewhere bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := t.sink.ByCallID(ctx, callID)
	if err != nil || r.AnsweredAt != nil || r.EndedAt != nil {
		return
	}
	now := t.now()
	r.EndedAt = &now
	r.SIPStatus = StatusRequestTerminated
	r.Disposition = cdr.NoAnswer
	if elsewhere {
		r.Disposition = cdr.Elsewhere
	}
	r.EndReason = "cancelled"
	if r.RingingAt == nil {
		// When it began to ring was not stored: from the start, as the
		// 180 follows a forwarded INVITE within moments.
		r.RingingAt = &r.StartedAt
	}
	r.RingMS = now.Sub(*r.RingingAt).Milliseconds()
	t.sink.Save(r)
	t.publish(Event{Type: EventEnded, Record: r})
}

// ActiveCalls counts answered calls not yet ended.
func (t *Tracker) ActiveCalls() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.active
}

// Pending counts attempts in progress (ringing or answered).
func (t *Tracker) Pending() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.byCall)
}

// Expire hangs up answered calls older than max: dialogs whose BYE never
// came must not stay open forever.
func (t *Tracker) Expire(max time.Duration) int {
	cut := t.now().Add(-max)
	t.mu.Lock()
	var old []*Active
	for _, a := range t.byCall {
		a.mu.Lock()
		if a.rec.AnsweredAt != nil && a.rec.AnsweredAt.Before(cut) {
			old = append(old, a)
		}
		a.mu.Unlock()
	}
	t.mu.Unlock()
	n := 0
	for _, a := range old {
		if a.Hangup("max_call_duration") {
			n++
		}
	}
	return n
}

// DispositionFor maps a final SIP status to a disposition (SPEC §3). Errors
// that switchboard generated itself (no response, transport error, 5xx of
// its own) are failures, not the far side's answer.
func DispositionFor(status int, local bool) cdr.Disposition {
	switch {
	case status >= 200 && status < 300:
		return cdr.Answered
	case status == StatusRequestTimeout || status == StatusTemporarilyUnavailable || status == StatusRequestTerminated:
		if local && status == StatusRequestTimeout {
			return cdr.Failed
		}
		return cdr.NoAnswer
	case status == StatusBusyHere || status == StatusBusyEverywhere:
		return cdr.Busy
	case local:
		return cdr.Failed
	default:
		return cdr.Rejected
	}
}
