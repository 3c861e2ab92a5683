package agent

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/switchboard-sip/switchboard/callctl"
	"github.com/switchboard-sip/switchboard/cdr"
	"github.com/switchboard-sip/switchboard/configs"
	"github.com/switchboard-sip/switchboard/contacts"
	"github.com/switchboard-sip/switchboard/emergency"
	"github.com/switchboard-sip/switchboard/web"
	"github.com/switchboard-sip/switchboard/wire"
)

// emergencyDesk tells the front desk of emergency calls (SPEC §1, §4, §8):
// it sees every call event, and on the first one of an emergency call
// publishes call.emergency, queues the notifications to emergency.notify,
// records the call with its callback window, and counts it. All of it
// runs off the SIP path.
type emergencyDesk struct {
	a     *Agent
	store *emergency.Store
	count prometheus.Counter

	mu   sync.Mutex
	seen map[string]bool // record ids already alerted
}

// maxSeen bounds the remembered alerted ids; only calls in progress need
// to be in it.
const maxSeen = 10000

func (a *Agent) openEmergency() error {
	st, err := emergency.Open(a.ctx, a.db)
	if err != nil {
		return err
	}
	c := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "switchboard_emergency_calls_total",
		Help: "Calls to an emergency number (SPEC §1), each told to the front desk at once.",
	})
	if err := a.met.Registry().Register(c); err != nil {
		return err
	}
	a.emergency = &emergencyDesk{a: a, store: st, count: c, seen: map[string]bool{}}
	// Callbacks of emergency calls another node took reach this node's
	// routing at once (SPEC §11).
	go st.Watch(a.ctx, 10*time.Second, func(err error) { a.log.Warn("emergency calls refresh", zap.Error(err)) })
	return nil
}

// callbacks adapts the store to the pipeline's emergency stage.
type callbacks struct{ s *emergency.Store }

func (c callbacks) Callback(number string, now time.Time) (string, string, bool) {
	al, ok := c.s.Callback(number, now)
	return al.Extension, al.ID, ok
}

// Observe is a tracker observer: it only looks at the event and, for the
// first event of an emergency call, hands the work to a goroutine.
func (d *emergencyDesk) Observe(e callctl.Event) {
	if e.Call == nil || !e.Call.Emergency {
		return
	}
	d.mu.Lock()
	if d.seen[e.Record.ID] {
		d.mu.Unlock()
		return
	}
	if len(d.seen) >= maxSeen {
		d.seen = map[string]bool{}
	}
	d.seen[e.Record.ID] = true
	d.mu.Unlock()
	d.count.Inc()
	al := d.alert(e.Call, e.Record)
	go d.tell(al, e.Record)
}

// alert is what the front desk is told of an emergency call.
func (d *emergencyDesk) alert(c *callctl.Call, r cdr.Record) emergency.Alert {
	cfg := d.a.Config()
	ext := c.Extension
	if ext == "" {
		ext = c.Caller.Raw
	}
	at := r.StartedAt
	if at.IsZero() {
		at = time.Now()
	}
	return emergency.Alert{
		ID: r.ID, CallID: r.CallID, Extension: ext, Name: callctl.CleanDisplayName(c.ExtensionName),
		Location: cfg.Emergency.Locations[ext], Presented: c.Caller.Key(), Dialled: c.Called.Raw,
		Node: r.Node, At: at, CallbackUntil: at.Add(cfg.Emergency.CallbackWindow.D()),
	}
}

// tell opens the callback window, publishes, notifies and records one
// emergency call, in the order that reaches people first. The database
// steps are retried while it is away (SPEC §11: SIP never waits for it;
// the call back works on this node meanwhile).
func (d *emergencyDesk) tell(al emergency.Alert, r cdr.Record) {
	d.store.Remember(al)
	if al.Location == "" {
		ctx, cancel := context.WithTimeout(d.a.ctx, locationWait)
		al.Location = d.contactLocation(ctx, al)
		cancel()
	}
	cfg := d.a.Config()
	ev := web.EmergencyWire(al, r, cfg.Location)
	d.a.hub.Publish(web.EventEmergency, ev)
	d.a.log.Warn("emergency call", zap.String("id", al.ID), zap.String("call_id", al.CallID),
		zap.String("extension", al.Extension), zap.String("location", al.Location), zap.String("dialled", al.Dialled))
	call := wire.NewCall(r, cfg.Location)
	d.retry("queue the emergency notifications", al.ID, func(ctx context.Context) error {
		_, err := d.a.notifier.Emergency(ctx, ev, call)
		return err
	})
	d.retry("record the emergency call", al.ID, func(ctx context.Context) error { return d.store.Add(ctx, al) })
}

// locationWait bounds the contact lookup of a location: the banner must
// not wait for a slow database.
const locationWait = 300 * time.Millisecond

// retryFor bounds how long a database step of an emergency call is
// retried: longer than a database restart, shorter than the callback
// window's use.
const retryFor = 10 * time.Minute

// retry runs f until it succeeds, with back-off, for at most retryFor or
// until the agent stops.
func (d *emergencyDesk) retry(what, id string, f func(ctx context.Context) error) {
	deadline := time.Now().Add(retryFor)
	wait := 100 * time.Millisecond
	for {
		ctx, cancel := context.WithTimeout(d.a.ctx, 5*time.Second)
		err := f(ctx)
		cancel()
		if err == nil {
			return
		}
		if d.a.ctx.Err() != nil || time.Now().After(deadline) {
			d.a.log.Error("emergency call: gave up trying to "+what, zap.String("id", id), zap.Error(err))
			return
		}
		d.a.log.Warn("emergency call: could not "+what+", trying again", zap.String("id", id), zap.Error(err))
		select {
		case <-d.a.ctx.Done():
		case <-time.After(wait):
		}
		wait = min(2*wait, 30*time.Second)
	}
}

// contactLocation is the location of a contact of the extension (or of
// the caller identity it presented): its "location" field, else its
// company; empty when none is known.
func (d *emergencyDesk) contactLocation(ctx context.Context, al emergency.Alert) string {
	for _, n := range []string{al.Extension, al.Presented} {
		if n == "" {
			continue
		}
		c, err := d.a.contacts.FindByNumber(ctx, n)
		if err != nil {
			continue
		}
		if loc := c.Fields["location"]; loc != "" {
			return loc
		}
		if c.Company != "" {
			return c.Company
		}
	}
	return ""
}

// register adds the emergency endpoints of the HTTP API.
func (d *emergencyDesk) register(s *web.Server) {
	web.RegisterEmergencies(s, web.EmergencyOptions{Store: d.store, Records: d.a.calls, Publish: d.a.hub.Publish,
		Location: func() *time.Location { return d.a.Config().Location }})
}

// callbackCheck tells the proxy, before any stage runs, whether an inbound
// call to called is an emergency call's call back (so that the drain and
// the CPS limits let it pass as they let emergency calls pass).
func callbackCheck(numbers *contacts.Numbers, s *emergency.Store) func(called, region string) bool {
	return func(called, region string) bool {
		if !s.Waiting() {
			return false
		}
		n, err := numbers.Normalize(called, region)
		if err != nil || n.E164 == "" {
			return false
		}
		_, ok := s.Callback(n.E164, time.Now())
		return ok
	}
}

// emergencyTarget is the SIP URI of an extension at the PBX: where the
// emergency services' call back goes.
func emergencyTarget(pbx configs.URI) func(ext string) string {
	return func(ext string) string {
		u := sipURI(pbx)
		u.User = ext
		return u.String()
	}
}
