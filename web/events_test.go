package web

import (
	"github.com/switchboard-sip/switchboard/cdr"

	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-sip/switchboard/callctl"
)

// sseEvent is one parsed block of an event stream; comment lines are
// reported as events with only Comment set.
type sseEvent struct {
	ID, Type, Data, Comment string
}

// sseStream reads an event stream.
type sseStream struct {
	t    *testing.T
	resp *http.Response
	r    *bufio.Reader
}

func openStream(t *testing.T, url string, header http.Header) *sseStream {
	t.Helper()
	// A stream that stalls fails the test rather than hanging it.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %s %s", url, resp.Status, b)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Fatalf("Content-Type %q", ct)
	}
	s := &sseStream{t: t, resp: resp, r: bufio.NewReader(resp.Body)}
	// The stream starts with a comment once the client is subscribed:
	// events published after it are the client's.
	if e := s.next(); e.Comment == "" {
		t.Fatalf("stream did not start with a comment: %+v", e)
	}
	return s
}

// next reads one block (or one comment); the test fails on a read error.
func (s *sseStream) next() sseEvent {
	s.t.Helper()
	var e sseEvent
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			s.t.Fatalf("read event stream: %v (partial %+v)", err, e)
		}
		line = strings.TrimRight(line, "\n")
		switch {
		case line == "":
			if e != (sseEvent{}) {
				return e
			}
		case strings.HasPrefix(line, ":"):
			if e == (sseEvent{}) {
				e.Comment = strings.TrimSpace(line[1:])
			}
		case strings.HasPrefix(line, "id: "):
			e.ID = line[4:]
		case strings.HasPrefix(line, "event: "):
			e.Type = line[7:]
		case strings.HasPrefix(line, "data: "):
			e.Data = line[6:]
		case strings.HasPrefix(line, "retry: "):
		default:
			s.t.Fatalf("unexpected line %q", line)
		}
	}
}

// nextEvent skips comments.
func (s *sseStream) nextEvent() sseEvent {
	s.t.Helper()
	for {
		if e := s.next(); e.Comment == "" {
			return e
		}
	}
}

func newHubServer(t *testing.T, o HubOptions) (*Hub, *httptest.Server) {
	t.Helper()
	h := NewHub(o)
	s := New(Options{})
	h.Register(s)
	srv := httptest.NewServer(s)
	t.Cleanup(func() {
		h.Close()
		srv.Close()
	})
	return h, srv
}

func TestEventsStreamAndReplay(t *testing.T) {
	h, srv := newHubServer(t, HubOptions{History: 4})
	url := srv.URL + "/api/events"
	h.Publish("before", map[string]int{"n": 0}) // not for a client that connects later

	s := openStream(t, url, nil)
	var ids []string
	for i := 1; i <= 3; i++ {
		h.Publish(EventMissedCreated, map[string]int{"n": i})
		e := s.nextEvent()
		if e.Type != EventMissedCreated || e.Data != fmt.Sprintf(`{"n":%d}`, i) {
			t.Fatalf("event %d = %+v", i, e)
		}
		if _, err := strconv.ParseUint(e.ID, 10, 64); err != nil {
			t.Fatalf("id %q: %v", e.ID, err)
		}
		if len(ids) > 0 && e.ID <= ids[len(ids)-1] {
			t.Fatalf("ids not increasing: %v then %s", ids, e.ID)
		}
		ids = append(ids, e.ID)
	}
	s.resp.Body.Close()

	// Published while the client is away: the reconnect gets exactly these.
	h.Publish(EventMissedProcessed, map[string]int{"n": 4})
	h.Publish(EventMissedProcessed, map[string]int{"n": 5})
	s2 := openStream(t, url, http.Header{"Last-Event-ID": {ids[2]}})
	for i := 4; i <= 5; i++ {
		if e := s2.nextEvent(); e.Type != EventMissedProcessed || e.Data != fmt.Sprintf(`{"n":%d}`, i) {
			t.Fatalf("replayed event %d = %+v", i, e)
		}
	}
	h.Publish("live", map[string]int{"n": 6})
	if e := s2.nextEvent(); e.Data != `{"n":6}` {
		t.Fatalf("live event after the replay = %+v", e)
	}

	// An id older than the history (4 events): reset, then what is left.
	s3 := openStream(t, url, http.Header{"Last-Event-ID": {ids[0]}})
	if e := s3.nextEvent(); e.Type != EventReset {
		t.Fatalf("want reset first, got %+v", e)
	}
	want := []string{`{"n":3}`, `{"n":4}`, `{"n":5}`, `{"n":6}`}
	for _, w := range want {
		if e := s3.nextEvent(); e.Data != w {
			t.Fatalf("after reset got %+v, want data %s", e, w)
		}
	}

	// An id from another run (larger than any) or garbage: reset.
	for _, id := range []string{"99999999999999999", "bogus"} {
		s4 := openStream(t, url, http.Header{"Last-Event-ID": {id}})
		if e := s4.nextEvent(); e.Type != EventReset {
			t.Fatalf("Last-Event-ID %s: want reset, got %+v", id, e)
		}
	}

	// last_event_id=0 in the query: the whole history, no reset.
	s5 := openStream(t, url+"?last_event_id=0", nil)
	if e := s5.nextEvent(); e.Type == EventReset || e.Data != `{"n":3}` {
		t.Fatalf("from the start: got %+v, want the oldest kept event", e)
	}
}

func TestEventsHeartbeat(t *testing.T) {
	_, srv := newHubServer(t, HubOptions{Heartbeat: 20 * time.Millisecond})
	s := openStream(t, srv.URL+"/api/events", nil)
	if e := s.next(); e.Comment != "ping" {
		t.Fatalf("want a heartbeat comment, got %+v", e)
	}
}

// A client that stops reading must not hold up the publisher: it is
// dropped when its buffer is full, and events keep flowing to the others.
func TestEventsSlowClientDoesNotBlock(t *testing.T) {
	h, srv := newHubServer(t, HubOptions{ClientBuffer: 8, WriteTimeout: 200 * time.Millisecond})

	// The slow client: a raw connection that sends the request and never
	// reads a byte, so the server's writes fill the socket buffers.
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /api/events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
	// Its response starts (it is subscribed) once the first bytes arrive.
	br := bufio.NewReader(conn)
	if _, err := br.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	fast := openStream(t, srv.URL+"/api/events", nil)

	big := strings.Repeat("x", 4096)
	const total = 5000
	progress := make(chan int, total)
	done := make(chan struct{})
	go func() {
		defer close(done)
		seen := 0
		// Far more than socket buffers hold: a blocking publisher would
		// hang here on the slow client.
		for i := range total {
			h.Publish("call.ringing", map[string]any{"n": i, "pad": big})
			if i%4 == 3 {
				// Let the fast client keep up, so that only the slow one
				// falls behind.
				for seen < i+1 {
					seen = <-progress
				}
			}
		}
	}()
	for got := 0; got < total; {
		if e := fast.nextEvent(); e.Type == "call.ringing" {
			got++
			progress <- got
		}
	}
	<-done
	st := h.Stats()
	if st.Dropped != 1 || st.Clients != 1 {
		t.Fatalf("stats %+v: want the slow client dropped and the fast one kept", st)
	}
}

// The tracker's observer is called on the SIP path: even with enrichment
// stuck (a database that does not answer) it must return at once.
func TestEventsObserveNeverBlocks(t *testing.T) {
	release := make(chan struct{})
	var calls atomic.Int64
	h := NewHub(HubOptions{Inbox: 16, Enricher: EnricherFunc(func(ctx context.Context, e callctl.Event) Extras {
		calls.Add(1)
		<-release
		return Extras{}
	})})
	defer h.Close()
	defer close(release)
	tr := callctl.NewTracker(nopSink{}, h.Observe)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 2000 {
			a := tr.Start(&callctl.Call{CallID: fmt.Sprintf("c%d", i), Direction: callctl.Inbound})
			a.Forwarded()
			a.Ringing()
			a.Answered(200, "", "")
			a.Hangup("")
		}
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("tracker blocked by the event hub")
	}
	if st := h.Stats(); st.Overflow == 0 {
		t.Fatalf("stats %+v: want events dropped at the full inbox", st)
	}
}

type nopSink struct{}

func (nopSink) Save(cdr.Record) {}
func (nopSink) ByCallID(context.Context, string) (cdr.Record, error) {
	return cdr.Record{}, fmt.Errorf("none")
}

func TestEventsCallEnrichment(t *testing.T) {
	var calls atomic.Int64
	h, srv := newHubServer(t, HubOptions{Enricher: EnricherFunc(func(ctx context.Context, e callctl.Event) Extras {
		calls.Add(1)
		if _, ok := ctx.Deadline(); !ok {
			t.Error("enrichment without a deadline")
		}
		return Extras{
			Hotline: &EventHotline{Name: "acme", Company: "ACME GmbH", Greeting: "Good morning, ACME", Display: "ACME: Jane"},
			Contact: &EventContact{ID: 7, Name: "Jane Doe", Company: "Doe Ltd", Tags: []string{}, CallsCount: 3},
		}
	})})
	s := openStream(t, srv.URL+"/api/events", nil)
	tr := callctl.NewTracker(nopSink{}, h.Observe)
	a := tr.Start(&callctl.Call{CallID: "abc", Direction: callctl.Inbound, Hotline: "acme",
		Caller: callctl.Party{E164: "+4930111222", National: "030 111222", Raw: "+4930111222"},
		Called: callctl.Party{E164: "+49301234560"}})
	a.Forwarded()
	a.Ringing()
	a.Answered(200, "", "")
	a.Hangup("")
	for _, want := range []string{"call.ringing", "call.answered", "call.ended"} {
		e := s.nextEvent()
		if e.Type != want {
			t.Fatalf("got %s, want %s", e.Type, want)
		}
		var ev CallEvent
		if err := json.Unmarshal([]byte(e.Data), &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Call.CallID != "abc" || ev.Call.Hotline != "acme" || ev.CallerNational != "030 111222" {
			t.Errorf("%s: call %+v", want, ev)
		}
		if ev.Hotline == nil || ev.Hotline.Company != "ACME GmbH" || ev.Hotline.Greeting != "Good morning, ACME" {
			t.Errorf("%s: hotline %+v", want, ev.Hotline)
		}
		if ev.Contact == nil || ev.Contact.Name != "Jane Doe" || ev.Contact.CallsCount != 3 {
			t.Errorf("%s: contact %+v", want, ev.Contact)
		}
		if want == "call.ended" && ev.Call.EndedAt == nil {
			t.Errorf("ended without ended_at: %s", e.Data)
		}
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("enricher called %d times for one call, want once", n)
	}
}

func TestEventsCloseEndsStreams(t *testing.T) {
	h, srv := newHubServer(t, HubOptions{})
	s := openStream(t, srv.URL+"/api/events", nil)
	h.Close()
	if _, err := io.ReadAll(s.r); err != nil {
		t.Fatalf("stream did not end cleanly: %v", err)
	}
	resp, err := http.Get(srv.URL + "/api/events")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("after Close: %s, want 503", resp.Status)
	}
}

// TestEventsReplayOfUnwatchedCalls: call events published while nobody
// watched are kept unencoded, yet a client that reconnects gets them from
// the history exactly as a watching client would have; the oldest fall out
// of a full history and the client is told to reset.
func TestEventsReplayOfUnwatchedCalls(t *testing.T) {
	h, srv := newHubServer(t, HubOptions{History: 4})
	evs := benchCall()
	h.Publish(EventMissedCreated, map[string]int{"n": 1})
	for _, e := range evs {
		h.publishCall(e)
	}
	s := openStream(t, srv.URL+"/api/events?last_event_id=0", nil)
	if e := s.nextEvent(); e.Type != EventMissedCreated {
		t.Fatalf("first replayed event %+v, want %s", e, EventMissedCreated)
	}
	var last string
	for _, want := range evs {
		e := s.nextEvent()
		if e.Type != string(want.Type) {
			t.Fatalf("replayed %s, want %s", e.Type, want.Type)
		}
		var ev CallEvent
		if err := json.Unmarshal([]byte(e.Data), &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Call.CallID != "abc@host" || ev.CallerNational != "030 111222" || ev.Hotline == nil || ev.Hotline.Greeting != "Good morning, ACME" {
			t.Errorf("%s: %s", want.Type, e.Data)
		}
		if want.Type == callctl.EventEnded && (ev.Call.EndedAt == nil || ev.Call.TalkMS != 60000) {
			t.Errorf("ended event without its end: %s", e.Data)
		}
		last = e.ID
	}
	s.resp.Body.Close()
	h.publishCall(evs[0]) // pushes the missed event out of the history
	s2 := openStream(t, srv.URL+"/api/events", http.Header{"Last-Event-ID": {last}})
	if e := s2.nextEvent(); e.Type != string(callctl.EventRinging) {
		t.Fatalf("after reconnect got %+v, want the one new call.ringing", e)
	}
	s3 := openStream(t, srv.URL+"/api/events", http.Header{"Last-Event-ID": {"1"}})
	if e := s3.nextEvent(); e.Type != EventReset {
		t.Fatalf("an id older than the history: got %+v, want reset", e)
	}
}
