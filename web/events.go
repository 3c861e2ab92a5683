package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/switchboard-sip/switchboard/callctl"
	"github.com/switchboard-sip/switchboard/wire"
)

// Event types of GET /api/events besides the call events (SPEC §8). Reset
// is switchboard's own: it tells a reconnecting client that the history no
// longer covers what it missed, so it must reload its lists.
const (
	EventMissedCreated   = "missed.created"
	EventMissedProcessed = "missed.processed"
	EventReset           = "reset"
)

// Defaults of HubOptions.
const (
	DefaultHistory      = 1024
	DefaultClientBuffer = 256
	DefaultInbox        = 4096
	DefaultHeartbeat    = 15 * time.Second
	DefaultWriteTimeout = 10 * time.Second
	// enrichTimeout bounds the store reads made for one event: the board
	// must show a ringing call within half a second, with or without its
	// contact's history.
	enrichTimeout = 250 * time.Millisecond
)

// EventHotline and EventContact are the hotline and contact parts of a
// call event; wire owns their JSON shape.
type (
	EventHotline = wire.EventHotline
	EventContact = wire.EventContact
)

// Extras is what an Enricher adds to a call event.
type Extras struct {
	Hotline *EventHotline
	Contact *EventContact
}

// Enricher adds hotline and contact data to a call event. The hub calls it
// from its own goroutine, never on the SIP path, with a context that ends
// after a fraction of a second; whatever it cannot find in time it leaves
// out.
type Enricher interface {
	Enrich(ctx context.Context, e callctl.Event) Extras
}

// EnricherFunc adapts a function to Enricher.
type EnricherFunc func(ctx context.Context, e callctl.Event) Extras

// Enrich implements Enricher.
func (f EnricherFunc) Enrich(ctx context.Context, e callctl.Event) Extras { return f(ctx, e) }

// CallEvent is the data of call.ringing, call.answered and call.ended;
// wire owns its JSON shape.
type CallEvent = wire.CallEvent

// HubOptions tune a Hub. Zero values take the defaults.
type HubOptions struct {
	// History is how many events are kept for clients that reconnect with
	// Last-Event-ID.
	History int
	// ClientBuffer is how many events may wait for one client; a client
	// that falls further behind is disconnected (and reconnects with
	// Last-Event-ID), so that it never holds up anyone else.
	ClientBuffer int
	// Inbox is how many call events may wait for enrichment; beyond it
	// events are dropped rather than the SIP path blocked.
	Inbox int
	// Heartbeat is the interval of comment lines that keep proxies from
	// closing an idle stream.
	Heartbeat time.Duration
	// WriteTimeout bounds one write to a client whose connection stalls.
	WriteTimeout time.Duration
	Enricher     Enricher
	Location     *time.Location
	Log          *zap.Logger
	// Relay, when set, carries this node's events to the other nodes'
	// hubs and theirs to this hub's clients, so that every node's board
	// shows every node's calls (SPEC §11). *storage.Bus implements it.
	Relay Relay
}

// Relay passes events between the hubs of the nodes sharing a database.
// Publish must not block; Subscribe's fn gets nil when events may have been
// missed (the connection was lost).
type Relay interface {
	Publish(topic string, data []byte) bool
	Subscribe(topic string, fn func(data []byte)) func()
}

// relayTopic is the topic of board events on the relay.
const relayTopic = "events"

func (o HubOptions) withDefaults() HubOptions {
	if o.History <= 0 {
		o.History = DefaultHistory
	}
	if o.ClientBuffer <= 0 {
		o.ClientBuffer = DefaultClientBuffer
	}
	if o.Inbox <= 0 {
		o.Inbox = DefaultInbox
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = DefaultHeartbeat
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	if o.Location == nil {
		o.Location = time.UTC
	}
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	return o
}

// message is one published event, encoded once for every client.
type message struct {
	id   uint64
	wire []byte // "id: N\nevent: T\ndata: …\n\n"
}

type client struct {
	ch   chan *message
	gone chan struct{} // closed when the hub drops the client
}

// HubStats are counters for metrics and tests.
type HubStats struct {
	Clients   int    // connected event streams
	Published uint64 // events published
	Dropped   uint64 // clients disconnected for falling behind
	Overflow  uint64 // call events lost because the inbox was full
}

// Hub publishes events to the clients of GET /api/events. Publishing never
// blocks: each client has a bounded queue, and a client whose queue is full
// is disconnected. A bounded history lets a reconnecting client catch up.
type Hub struct {
	o     HubOptions
	inbox chan callctl.Event
	done  chan struct{}
	wg    sync.WaitGroup
	once  sync.Once

	mu      sync.Mutex
	seq     uint64
	ring    history // the last o.History events
	clients map[*client]struct{}

	// extras remembers the enrichment of calls in progress, so that the
	// answered and ended events of a call carry what its ringing event
	// had without asking the stores again. Used by the enrich goroutine
	// only.
	extras map[string]Extras

	published, dropped, overflow, unrelayed atomic.Uint64
	unrelay                                 func()
}

// maxRemembered bounds Hub.extras: calls that never end (a lost BYE) must
// not grow it forever.
const maxRemembered = 10000

// NewHub starts a hub; Close stops it.
func NewHub(o HubOptions) *Hub {
	o = o.withDefaults()
	h := &Hub{
		o:       o,
		inbox:   make(chan callctl.Event, o.Inbox),
		done:    make(chan struct{}),
		clients: map[*client]struct{}{},
		extras:  map[string]Extras{},
		ring:    newHistory(o.History),
		// Ids start at the boot time in microseconds, so that the ids of a
		// restarted switchboard are above those a client saw before: its
		// Last-Event-ID is then recognised as older than the history.
		seq: uint64(time.Now().UnixMicro()),
	}
	if o.Relay != nil {
		h.unrelay = o.Relay.Subscribe(relayTopic, h.fromRelay)
	}
	h.wg.Add(1)
	go h.enrichLoop()
	return h
}

// fromRelay publishes another node's event ("type\njson") to this hub's
// clients. After a gap (nil) the clients are told to reload their lists.
func (h *Hub) fromRelay(data []byte) {
	if data == nil {
		h.publish(EventReset, []byte("{}"), false)
		return
	}
	typ, b, ok := strings.Cut(string(data), "\n")
	if !ok || !json.Valid([]byte(b)) {
		h.o.Log.Warn("event hub: unreadable event from another node dropped")
		return
	}
	h.publish(typ, []byte(b), false)
}

// Close ends every event stream and stops the hub. Events observed after
// Close are ignored.
func (h *Hub) Close() {
	h.once.Do(func() {
		if h.unrelay != nil {
			h.unrelay()
		}
		close(h.done)
		h.wg.Wait()
	})
}

// Register adds GET /api/events to s.
func (h *Hub) Register(s *Server) { s.Handle("GET /api/events", h) }

// Observe is a callctl.Tracker observer. It runs on the SIP path, so it only
// queues the event: enrichment and delivery happen on the hub's goroutine.
// When the queue is full the event is lost and counted, never waited for.
func (h *Hub) Observe(e callctl.Event) {
	select {
	case <-h.done:
		return
	default:
	}
	select {
	case h.inbox <- e:
	default:
		if n := h.overflow.Add(1); n&(n-1) == 0 {
			// Logged at powers of two: a flood must not flood the log too.
			h.o.Log.Warn("event hub: inbox full, call event dropped", zap.Uint64("dropped", n))
		}
	}
}

func (h *Hub) enrichLoop() {
	defer h.wg.Done()
	for {
		select {
		case <-h.done:
			return
		case e := <-h.inbox:
			h.publishCall(e)
		}
	}
}

func (h *Hub) publishCall(e callctl.Event) {
	id := e.Record.ID
	x, known := h.extras[id]
	p := pendingCall{rec: e.Record}
	switch {
	case known:
	case h.o.Enricher != nil && h.watched():
		ctx, cancel := context.WithTimeout(context.Background(), enrichTimeout)
		x = h.o.Enricher.Enrich(ctx, e)
		cancel()
		if e.Type != callctl.EventEnded && len(h.extras) < maxRemembered {
			h.extras[id] = x
		}
	default:
		// Nobody watches: the contact's history costs database reads per
		// call, which only a board on screen is worth (under load they
		// were most of the agent's CPU). The hotline comes with the call.
		if c := e.Call; c != nil && c.Hotline != "" {
			p.hotline = EventHotline{Name: c.Hotline, Company: c.Company, Greeting: c.Greeting, Display: c.Display}
			p.hasHotline = true
		}
	}
	if e.Type == callctl.EventEnded {
		delete(h.extras, id)
	}
	if x.Hotline != nil {
		p.hotline, p.hasHotline = *x.Hotline, true
	}
	p.contact = x.Contact
	if c := e.Call; c != nil {
		p.callerNational, p.calledNational = c.Caller.National, c.Called.National
	}
	typ := string(e.Type)
	if h.o.Relay == nil {
		h.mu.Lock()
		if len(h.clients) == 0 {
			// Nobody to send it to: keep its parts, encoded only if a
			// reconnecting client asks the history for it.
			h.seq++
			sl := h.ring.push()
			sl.id, sl.typ, sl.call = h.seq, typ, p
			h.published.Add(1)
			h.mu.Unlock()
			return
		}
		h.mu.Unlock()
	}
	h.Publish(typ, p.event(h))
}

// Publish sends an event to every client and keeps it in the history. data
// is encoded as JSON; Publish does not block.
func (h *Hub) Publish(typ string, data any) {
	b, err := json.Marshal(data)
	if err != nil {
		h.o.Log.Error("event hub: event not encodable", zap.String("type", typ), zap.Error(err))
		return
	}
	h.publish(typ, b, h.o.Relay != nil)
}

// publish sends an encoded event to this hub's clients, and to the other
// nodes when relay is set (events from them are not sent back).
func (h *Hub) publish(typ string, b []byte, relay bool) {
	if relay && !h.o.Relay.Publish(relayTopic, append([]byte(typ+"\n"), b...)) {
		if n := h.unrelayed.Add(1); n&(n-1) == 0 {
			h.o.Log.Warn("event hub: event not relayed to the other nodes", zap.String("type", typ), zap.Uint64("dropped", n))
		}
	}
	// The type becomes a line of the stream: a line break in it would
	// forge fields.
	typ = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, typ)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seq++
	m := encode(h.seq, typ, b)
	sl := h.ring.push()
	sl.id, sl.typ, sl.msg = m.id, typ, m
	h.published.Add(1)
	for c := range h.clients {
		select {
		case c.ch <- m:
		default:
			h.dropLocked(c)
		}
	}
}

func (h *Hub) dropLocked(c *client) {
	delete(h.clients, c)
	close(c.gone)
	h.dropped.Add(1)
}

// Stats returns the hub's counters.
func (h *Hub) Stats() HubStats {
	h.mu.Lock()
	n := len(h.clients)
	h.mu.Unlock()
	return HubStats{Clients: n, Published: h.published.Load(), Dropped: h.dropped.Load(), Overflow: h.overflow.Load()}
}

// subscribe registers a client and returns what it missed since last (the
// value of Last-Event-ID; ok false when it sent none). reset tells that the
// history does not reach back to last.
func (h *Hub) subscribe(last uint64, resume bool) (c *client, replay []*message, reset bool) {
	c = &client{ch: make(chan *message, h.o.ClientBuffer), gone: make(chan struct{})}
	h.mu.Lock()
	defer h.mu.Unlock()
	if resume {
		switch {
		case last == 0:
			// "From the start": the client takes whatever the history
			// holds, knowing it may not reach back to the start.
		case last > h.seq:
			reset = true // an id from another run of switchboard
		case h.ring.n > 0 && last+1 < h.ring.at(0).id:
			reset = true // the history lost some of what it missed
		case h.ring.n == 0 && last < h.seq:
			reset = true
		}
		for i := range h.ring.n {
			sl := h.ring.at(i)
			if sl.id <= last {
				continue
			}
			if m, ok := sl.message(h); ok {
				replay = append(replay, m)
			}
		}
	}
	h.clients[c] = struct{}{}
	return c, replay, reset
}

func (h *Hub) unsubscribe(c *client) {
	h.mu.Lock()
	if _, ok := h.clients[c]; ok {
		delete(h.clients, c)
	}
	h.mu.Unlock()
}

// lastEventID reads the resume point: the Last-Event-ID header a browser
// sends on reconnect, or last_event_id in the query for a first connection
// that already has some state.
func lastEventID(r *http.Request) (uint64, bool) {
	v := r.Header.Get("Last-Event-ID")
	if v == "" {
		v = r.URL.Query().Get("last_event_id")
	}
	if v == "" {
		return 0, false
	}
	n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
	if err != nil {
		// A malformed id cannot be placed in the history: the client
		// gets a reset and reloads, which is always safe.
		return math.MaxUint64, true
	}
	return n, true
}

// ServeHTTP streams events (text/event-stream) until the client goes, the
// hub drops it for falling behind, or the hub closes.
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	select {
	case <-h.done:
		WriteError(w, http.StatusServiceUnavailable, "event stream closed")
		return
	default:
	}
	rc := http.NewResponseController(w)
	last, resume := lastEventID(r)
	c, replay, reset := h.subscribe(last, resume)
	defer h.unsubscribe(c)

	hd := w.Header()
	hd.Set("Content-Type", "text/event-stream; charset=utf-8")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	hd.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)

	buf := make([]byte, 0, 4096)
	// retry tells the browser to reconnect after 2 s; the first comment
	// makes the response start at once, so the client knows it is live.
	buf = append(buf, "retry: 2000\n: switchboard events\n\n"...)
	if reset {
		h.mu.Lock()
		cur := h.seq
		h.mu.Unlock()
		buf = fmt.Appendf(buf, "event: %s\ndata: {\"last_id\":%d}\n\n", EventReset, cur)
	}
	for _, m := range replay {
		buf = append(buf, m.wire...)
	}
	if !h.write(w, rc, buf) {
		return
	}
	beat := time.NewTicker(h.o.Heartbeat)
	defer beat.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-h.done:
			return
		case <-c.gone:
			h.o.Log.Info("event hub: client too slow, disconnected", zap.String("remote", r.RemoteAddr))
			return
		case <-beat.C:
			if !h.write(w, rc, []byte(": ping\n\n")) {
				return
			}
		case m := <-c.ch:
			// Everything already queued goes out in one write and flush.
			buf = append(buf[:0], m.wire...)
		drain:
			for len(buf) < 64<<10 {
				select {
				case m := <-c.ch:
					buf = append(buf, m.wire...)
				default:
					break drain
				}
			}
			if !h.write(w, rc, buf) {
				return
			}
		}
	}
}

// write sends b and flushes it, bounded in time so that a stalled
// connection does not keep its handler forever.
func (h *Hub) write(w http.ResponseWriter, rc *http.ResponseController, b []byte) bool {
	if err := rc.SetWriteDeadline(time.Now().Add(h.o.WriteTimeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return false
	}
	if _, err := w.Write(b); err != nil {
		return false
	}
	return rc.Flush() == nil
}

// watched reports whether any client follows the stream.
func (h *Hub) watched() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.clients) > 0
}

// HotlineExtras are the extras of a call's events that cost nothing: the
// hotline texts as the pipeline rendered them.
func HotlineExtras(c *callctl.Call) Extras {
	if c == nil || c.Hotline == "" {
		return Extras{}
	}
	return Extras{Hotline: &EventHotline{Name: c.Hotline, Company: c.Company, Greeting: c.Greeting, Display: c.Display}}
}
