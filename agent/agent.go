// Package agent builds a running switchboard from a config: storage, the
// stores, the call pipeline, the call tracker, missed-call notifications,
// the board, the SIP proxy and the HTTP API, in one explicit order (New).
// It owns the config reload (Reload) and the shutdown (Drain, Close);
// cmd/switchboard only parses flags and turns signals into those calls.
package agent

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/switchboard-sip/switchboard/blocking"
	"github.com/switchboard-sip/switchboard/callctl"
	"github.com/switchboard-sip/switchboard/configs"
	"github.com/switchboard-sip/switchboard/contacts"
	"github.com/switchboard-sip/switchboard/media"
	"github.com/switchboard-sip/switchboard/metrics"
	"github.com/switchboard-sip/switchboard/missed"
	"github.com/switchboard-sip/switchboard/notify"
	"github.com/switchboard-sip/switchboard/sip"
	"github.com/switchboard-sip/switchboard/storage"
	"github.com/switchboard-sip/switchboard/storage/callstore"
	"github.com/switchboard-sip/switchboard/web"
	"github.com/switchboard-sip/switchboard/wire"
)

// Agent is a running switchboard.
type Agent struct {
	// cfg is the config in force: Reload swaps it in one step, and the
	// housekeeping goroutine and the HTTP handlers read it concurrently.
	cfg atomic.Pointer[configs.Config]
	// numbers reads numbers the way numbers.region and numbers.internal
	// say; the API's contact and block routes read it on every request,
	// so a reload reaches them.
	numbers atomic.Pointer[contacts.Numbers]

	log      *zap.Logger
	met      *metrics.Metrics
	db       *storage.DB
	calls    *callstore.Store
	blocks   *blocking.Store
	contacts *contacts.Store
	cache    *contacts.Cache
	announce *media.Announcer // nil: announcements off
	hub      *web.Hub
	auth     atomic.Pointer[web.Auth] // set when the HTTP side is built
	notifier *notify.Notifier
	missed   *missed.Service
	tracker  *callctl.Tracker
	proxy    *sip.Proxy
	// emergency tells the front desk of emergency calls and keeps their
	// callback windows (SPEC §1, §4).
	emergency *emergencyDesk

	ctx     context.Context
	stop    context.CancelFunc
	errs    chan error
	closers []func(context.Context) error // run in reverse order by Close
	closed  atomic.Bool
	// serving and draining are the readiness of /readyz (board.go).
	serving, draining atomic.Bool
}

// New builds and starts an agent. The order of the parts is the order of
// their dependencies; each line says why it sits where it does. On error
// everything started so far is closed again.
func New(cfg *configs.Config, log *zap.Logger) (_ *Agent, err error) {
	a := &Agent{log: log, met: metrics.New(), errs: make(chan error, 8)}
	a.cfg.Store(cfg)
	a.ctx, a.stop = context.WithCancel(context.Background())
	defer func() {
		if err != nil {
			a.stop()
			a.closeParts()
		}
	}()
	// 1. The policy first: a config that does not compile fails before
	// anything is opened or bound.
	pol, err := compile(cfg)
	if err != nil {
		return nil, err
	}
	// 2. Storage, which every store below writes to.
	if err = a.openStorage(cfg); err != nil {
		return nil, err
	}
	// 3. The stores the pipeline reads from memory: blocks, contacts and
	// the contact cache with its batching writer.
	if err = a.openStores(cfg, pol); err != nil {
		return nil, err
	}
	// 4. The board's event hub: an observer of calls and of missed-call
	// entries, so it exists before both.
	a.startHub(cfg)
	// 5. Notifications, then the missed-call service that queues them;
	// the service reads the board's sign-ins for the "absent" exception.
	if err = a.startMissed(cfg); err != nil {
		return nil, err
	}
	// 6. The tracker, with every observer of call events in place: the
	// metrics and log line, the board, the missed-call service.
	a.tracker = callctl.NewTracker(a.calls, a.observers()...)
	// 7. The policy's pipeline, over the stores of step 3, and the SIP
	// proxy that runs it; its listeners are bound here, served in step 9.
	serveSIP, err := a.startProxy(cfg, pol)
	if err != nil {
		return nil, err
	}
	// 8. HTTP last among the parts: its routes read every part above.
	serveHTTP, err := web.Listen(cfg.HTTP.Listen, a.httpHandler(cfg))
	if err != nil {
		return nil, err
	}
	// 9. Serve, and start the housekeeping and the node heartbeats.
	for _, s := range serveSIP {
		go func() { a.errs <- s(a.ctx) }()
	}
	go func() { a.errs <- serveHTTP(a.ctx) }()
	a.serving.Store(true)
	go a.housekeeping(housekeepEvery)
	// Heartbeats, and the open calls of nodes that stopped beating closed
	// as "node lost" (SPEC §11).
	go a.calls.WatchNodes(a.ctx, cfg.Node, time.Duration(cfg.Storage.NodeTimeout))
	return a, nil
}

func (a *Agent) openStorage(cfg *configs.Config) (err error) {
	if a.db, err = storage.Open(cfg.Storage.Driver, cfg.Storage.DSN); err != nil {
		return err
	}
	a.closers = append(a.closers, func(context.Context) error { return a.db.Close() })
	if a.calls, err = callstore.New(a.ctx, a.db, a.log.Named("calls")); err != nil {
		return err
	}
	// On SQLite calls in progress wait in a local journal and reach the
	// database once, ended; the calls a crash left in it are recovered here,
	// before any call arrives.
	if p := callstore.JournalPath(cfg.Storage.Driver, cfg.Storage.DSN); p != "" {
		if err := a.calls.OpenJournal(a.ctx, p); err != nil {
			a.log.Error("call journal not opened: calls in progress go to the database at every change", zap.Error(err))
		}
	}
	a.closers = append(a.closers, a.calls.Close)
	// The statistics' per-day rollups, kept by the record writer from its
	// first save on (rebuilt here when the timezone changed).
	if err = a.calls.EnableRollups(a.ctx, cfg.Location); err != nil {
		return err
	}
	if err := a.met.LocalQueue("records", a.calls.Pending, a.calls.Dropped); err != nil {
		return err
	}
	return a.met.LocalQueue("messages", a.calls.PendingMessages, a.calls.DroppedMessages)
}

func (a *Agent) openStores(cfg *configs.Config, pol *policy) (err error) {
	if a.announce, err = newAnnouncer(cfg, a.log); err != nil {
		return err
	}
	if a.blocks, err = blocking.Open(a.ctx, a.db, pol.blockEntries); err != nil {
		return err
	}
	// Blocks added by the CLI or another node take effect on the next call.
	go a.blocks.Watch(a.ctx, time.Second, func(err error) { a.log.Warn("block list refresh", zap.Error(err)) })
	if a.contacts, err = contacts.NewStore(a.ctx, a.db); err != nil {
		return err
	}
	// A contact's history, trace, export and deletion reach the calls and
	// the missed-call entries through their owners.
	a.contacts.UseCalls(a.calls)
	a.contacts.UseMessages(a.calls)
	missedLog, err := missed.NewContactLog(a.ctx, a.db)
	if err != nil {
		return err
	}
	a.contacts.UseMissed(missedLog)
	// A call-created contact that lost its number to an import or another
	// node: its calls go to the contact that kept the number.
	merged := func(from, into int64) {
		go func() {
			if err := a.calls.Relink(a.ctx, from, into); err != nil {
				a.log.Warn("relink calls of a merged contact", zap.Int64("contact", from), zap.Int64("into", into), zap.Error(err))
			}
		}()
	}
	if a.cache, err = contacts.NewCache(a.ctx, a.contacts, contacts.CacheOptions{Log: a.log.Named("contacts"), Merged: merged}); err != nil {
		return err
	}
	a.closers = append(a.closers, a.cache.Close)
	a.numbers.Store(pol.numbers)
	// Emergency calls and their callback windows, which the pipeline's
	// emergency stage reads from memory.
	return a.openEmergency()
}

// startHub starts the board's event hub. It adds the contact's history to
// events on its own goroutine, never on the SIP path; the hotline texts
// were rendered by the pipeline.
func (a *Agent) startHub(cfg *configs.Config) {
	contact := web.ContactEnricher(a.contacts, a.calls, cfg.Location)
	enrich := web.EnricherFunc(func(ctx context.Context, e callctl.Event) web.Extras {
		x := web.HotlineExtras(e.Call)
		x.Contact = contact(ctx, e)
		return x
	})
	// The relay shows every node's calls on every node's board (SPEC §11);
	// on SQLite it carries nothing.
	a.hub = web.NewHub(web.HubOptions{Enricher: enrich, Location: cfg.Location, Log: a.log.Named("events"),
		Relay: a.db.Bus()})
	a.closers = append(a.closers, func(context.Context) error { a.hub.Close(); return nil })
}

// startMissed builds the outbox notifier and the missed-call service.
// Close runs closers in reverse, so the service handles its last events
// before the notifier it hands them to stops.
func (a *Agent) startMissed(cfg *configs.Config) (err error) {
	if a.notifier, err = notify.New(a.ctx, notify.Options{DB: a.db, Config: cfg, Metrics: a.met, Log: a.log.Named("notify")}); err != nil {
		return fmt.Errorf("missed-call notifications: %w", err)
	}
	a.closers = append(a.closers, a.notifier.Close)
	a.missed, err = missed.New(a.ctx, missed.Options{
		DB: a.db, Config: cfg, Notifier: a.notifier, Contacts: a.contacts, Records: a.calls,
		SignIns: signIns{a}, Log: a.log.Named("missed"),
	})
	if err != nil {
		return fmt.Errorf("missed calls: %w", err)
	}
	a.closers = append(a.closers, a.missed.Close)
	if err := a.met.LocalQueue("missed_events", a.missed.Pending, a.missed.Dropped); err != nil {
		return err
	}
	// Missed-call entries go on the board's stream.
	loc := cfg.Location
	cancel := a.missed.Subscribe(func(e missed.Event) { a.hub.Publish(string(e.Type), wire.NewMissed(e.Entry, loc)) })
	a.closers = append(a.closers, func(context.Context) error { cancel(); return nil })
	return nil
}

// observers are told of every call state change, in this order: the
// metrics and the finished-call log line, the board, the missed-call
// service. Each only reads the event or queues it; none blocks the SIP path.
func (a *Agent) observers() []func(callctl.Event) {
	logCall := callctl.LogFinished(a.log)
	return []func(callctl.Event){
		func(e callctl.Event) {
			observeCall(a.met, a.tracker.ActiveCalls(), e)
			logCall(e)
		},
		// Emergency calls first among the observers that tell people.
		a.emergency.Observe,
		a.hub.Observe,
		a.missed.Observe,
	}
}

func (a *Agent) startProxy(cfg *configs.Config, pol *policy) ([]func(context.Context) error, error) {
	opts := proxyOptions(cfg, a.log, a.tracker, a.met)
	if cfg.SIP.TLS.Cert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.SIP.TLS.Cert, cfg.SIP.TLS.Key)
		if err != nil {
			return nil, fmt.Errorf("sip.tls: %w", err)
		}
		opts.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	var err error
	if opts.RouteKey, err = a.db.Secret(a.ctx, "record-route"); err != nil {
		return nil, err
	}
	routing, err := pol.routing(a.deps())
	if err != nil {
		return nil, err
	}
	if a.proxy, err = sip.New(opts, routing); err != nil {
		return nil, err
	}
	a.closers = append(a.closers, func(context.Context) error { a.proxy.Close(); return nil })
	return a.proxy.Listeners()
}

func proxyOptions(cfg *configs.Config, log *zap.Logger, t *callctl.Tracker, m *metrics.Metrics) sip.Options {
	o := sip.Options{Advertise: cfg.SIP.Advertise, UserAgent: cfg.SIP.UserAgent, Log: log.Named("sip"), Tracker: t, Metrics: m,
		RecordingHeader: cfg.SIP.RecordingHeader, TranscriptHeader: cfg.WrapUp.TranscriptHeader, MaxCPS: cfg.SIP.MaxCPS, FastPath: cfg.SIP.FastPath,
		Keepalive: time.Duration(cfg.SIP.Keepalive), InviteTimeout: time.Duration(cfg.SIP.InviteTimeout), TimerC: time.Duration(cfg.SIP.TimerC),
		RecordRoute: cfg.SIP.RecordRoute, ResponseTimeout: time.Duration(cfg.SIP.ResponseTimeout)}
	for _, l := range cfg.SIP.Listeners {
		o.Listen = append(o.Listen, sip.Listen{Network: l.Network, Host: l.Host, Port: l.Port})
	}
	return o
}

// Config is the config in force.
func (a *Agent) Config() *configs.Config { return a.cfg.Load() }

// Contacts is the contact store (the demo seeds its contacts through it).
func (a *Agent) Contacts() *contacts.Store { return a.contacts }

// Metrics are the agent's Prometheus metrics.
func (a *Agent) Metrics() *metrics.Metrics { return a.met }

// Errors reports a listener that stopped serving.
func (a *Agent) Errors() <-chan error { return a.errs }

// Done is closed when the agent stops.
func (a *Agent) Done() <-chan struct{} { return a.ctx.Done() }

// Drain refuses new INVITEs with 503 and waits until the calls in progress
// end or timeout passes (SPEC §1 SIGTERM); it reports the calls left.
func (a *Agent) Drain(timeout time.Duration) int {
	a.proxy.Drain()
	a.draining.Store(true)
	calls := a.tracker.Pending()
	a.log.Info("draining", zap.Int("calls", calls), zap.Duration("timeout", timeout))
	deadline := time.Now().Add(timeout)
	// Calls whose BYE passed another node count as ended (SPEC §11).
	left := a.tracker.DrainWait(deadline)
	if calls > 0 && left == 0 {
		// A call counts as ended when its BYE passes, before the BYE's 200
		// has come back through us: stay up a moment for that answer, so
		// the side that hung up is not left retransmitting its BYE.
		time.Sleep(min(byeLinger, time.Until(deadline)))
	}
	return left
}

// byeLinger is how long a drain stays up after the last call ended, for
// the 200 of its BYE to pass.
const byeLinger = 300 * time.Millisecond

// Close stops serving, flushes the records and notifications and closes
// storage, parts in the reverse order of New. It is safe to call twice.
func (a *Agent) Close() error {
	if a.closed.Swap(true) {
		return nil
	}
	a.stop()
	err := a.closeParts()
	a.log.Info("stopped", zap.Int("calls_left", a.tracker.Pending()))
	return err
}

func (a *Agent) closeParts() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var err error
	for i := len(a.closers) - 1; i >= 0; i-- {
		err = errors.Join(err, a.closers[i](ctx))
	}
	a.closers = nil
	return err
}

// signIns is what the missed-call exceptions ask about sign-ins: when a
// receptionist last signed in to the board; zero when nobody has (or no
// token is set, so nobody needs to).
type signIns struct{ a *Agent }

func (s signIns) LastSignIn() time.Time {
	if au := s.a.auth.Load(); au != nil {
		return au.LastSignIn()
	}
	return time.Time{}
}

// housekeepEvery is the housekeeping period; tests shorten it.
var housekeepEvery = 10 * time.Second

// housekeeping closes dialogs whose BYE never came and applies the
// retention of call records (SPEC §2).
func (a *Agent) housekeeping(every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	var lastPrune time.Time
	for {
		select {
		case <-a.ctx.Done():
			return
		case now := <-t.C:
			cfg := a.cfg.Load()
			if max := cfg.SIP.MaxCallDuration.D(); max > 0 {
				if n := a.tracker.Expire(max); n > 0 {
					a.log.Info("closed calls past the maximum call length", zap.Int("calls", n))
				}
				a.proxy.ExpireDialogs(max)
			}
			if now.Sub(lastPrune) >= time.Hour {
				lastPrune = now
				a.calls.Retain(a.ctx, now, cfg.Storage.Retention.D(), a.contacts)
			}
		}
	}
}
