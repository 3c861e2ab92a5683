package web

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/switchboard-sip/switchboard/callctl"
	"github.com/switchboard-sip/switchboard/cdr"
	"github.com/switchboard-sip/switchboard/storage"
	"github.com/switchboard-sip/switchboard/storage/storagetest"
)

// TestEventsFromOtherNodes: with two nodes on one PostgreSQL, a board on
// node B sees node A's calls and missed-call events, once (SPEC §11).
func TestEventsFromOtherNodes(t *testing.T) {
	dbA := storagetest.Open(t, "sb")
	if dbA.Driver != storage.Postgres {
		t.Skip("one node per SQLite file: nothing to relay")
	}
	dbB := storagetest.Open(t, "sb")
	a, _ := newHubServer(t, HubOptions{Relay: dbA.Bus()})
	_, srvB := newHubServer(t, HubOptions{Relay: dbB.Bus()})
	for _, db := range []*storage.DB{dbA, dbB} {
		select {
		case <-db.Bus().Ready():
		case <-time.After(10 * time.Second):
			t.Fatal("a node does not listen")
		}
	}
	s := openStream(t, srvB.URL+"/api/events", nil)
	a.Observe(callctl.Event{Type: callctl.EventRinging, Record: cdr.Record{
		ID: "r1", CallID: "c1", Direction: cdr.Inbound, Caller: "+4930111", Node: "a", StartedAt: time.Now()}})
	e := s.nextEvent()
	var ev CallEvent
	if err := json.Unmarshal([]byte(e.Data), &ev); err != nil || e.Type != string(callctl.EventRinging) || ev.Call.ID != "r1" || ev.Call.Node != "a" {
		t.Fatalf("node b got %+v (%v), want node a's ringing call r1", e, err)
	}
	a.Publish(EventMissedProcessed, map[string]string{"id": "m1"})
	if e := s.nextEvent(); e.Type != EventMissedProcessed || e.Data != `{"id":"m1"}` {
		t.Fatalf("node b got %+v, want missed.processed m1", e)
	}
}
