package web

import (
	"testing"
	"time"

	"github.com/switchboard-sip/switchboard/callctl"
	"github.com/switchboard-sip/switchboard/cdr"
)

// benchCall is the three events of one answered hotline call.
func benchCall() []callctl.Event {
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	c := &callctl.Call{ID: "r1", CallID: "abc@host", Direction: callctl.Inbound, Hotline: "acme",
		Company: "ACME GmbH", Greeting: "Good morning, ACME", Display: "ACME: Jane",
		Caller: callctl.Party{E164: "+4930111222", National: "030 111222", Raw: "+4930111222"},
		Called: callctl.Party{E164: "+49301234560", National: "030 1234560"}}
	r := cdr.Record{ID: "r1", CallID: c.CallID, Direction: c.Direction, Caller: "+4930111222", Called: "+49301234560",
		Hotline: "acme", StartedAt: now, Node: "n1"}
	ringing := r
	answered := r
	at := now.Add(time.Second)
	answered.AnsweredAt, answered.Disposition, answered.SIPStatus = &at, cdr.Answered, 200
	ended := answered
	end := at.Add(time.Minute)
	ended.EndedAt, ended.TalkMS = &end, 60000
	return []callctl.Event{{Type: callctl.EventRinging, Record: ringing, Call: c},
		{Type: callctl.EventAnswered, Record: answered, Call: c}, {Type: callctl.EventEnded, Record: ended, Call: c}}
}

// BenchmarkHubCallNoClient is the hub's work for one call (three events)
// while nobody watches the board: it should cost no allocation.
func BenchmarkHubCallNoClient(b *testing.B) {
	h := NewHub(HubOptions{})
	defer h.Close()
	evs := benchCall()
	b.ReportAllocs()
	for b.Loop() {
		for _, e := range evs {
			h.publishCall(e)
		}
	}
}

// BenchmarkHubCallOneClient is the same with one board connected: each
// event is encoded once.
func BenchmarkHubCallOneClient(b *testing.B) {
	h := NewHub(HubOptions{ClientBuffer: 1 << 16})
	defer h.Close()
	c, _, _ := h.subscribe(0, false)
	defer h.unsubscribe(c)
	evs := benchCall()
	b.ReportAllocs()
	for b.Loop() {
		for _, e := range evs {
			h.publishCall(e)
		}
		for range evs {
			<-c.ch
		}
	}
}
