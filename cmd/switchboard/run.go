package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/switchboard-sip/switchboard/callctl"
	"github.com/switchboard-sip/switchboard/configs"
	"github.com/switchboard-sip/switchboard/metrics"
	"github.com/switchboard-sip/switchboard/missed"
	"github.com/switchboard-sip/switchboard/notify"
	"github.com/switchboard-sip/switchboard/sip"
	"github.com/switchboard-sip/switchboard/storage"
	"github.com/switchboard-sip/switchboard/storage/callstore"
	"github.com/switchboard-sip/switchboard/web"
)

// runCommand runs the agent until SIGTERM or SIGINT, then drains.
func runCommand(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("c", "", "config file (default: the embedded default config)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	log, err := newLogger(cfg.Log, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "switchboard:", err)
		return 1
	}
	defer log.Sync()
	startPprof(log)
	tuneGC()
	a, err := start(cfg, *path, log)
	if err != nil {
		fmt.Fprintln(stderr, "switchboard:", err)
		return 1
	}
	return a.wait()
}

// tuneGC trades memory for CPU: a call allocates many short-lived SIP
// messages, and the default GOGC of 100 spends a tenth of the CPU on
// collection under load. GOGC in the environment still wins.
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(300)
	}
}

func newLogger(c configs.Log, w io.Writer) (*zap.Logger, error) {
	level, err := zapcore.ParseLevel(c.Level)
	if err != nil {
		return nil, fmt.Errorf("log.level: %w", err)
	}
	ec := zap.NewProductionEncoderConfig()
	ec.EncodeTime = zapcore.ISO8601TimeEncoder
	enc := zapcore.NewJSONEncoder(ec)
	if c.Format == "console" {
		ec.EncodeLevel = zapcore.CapitalLevelEncoder
		enc = zapcore.NewConsoleEncoder(ec)
	}
	return zap.New(zapcore.NewCore(enc, zapcore.Lock(zapcore.AddSync(w)), level)), nil
}

// app is a running switchboard.
type app struct {
	cfg     *configs.Config
	path    string
	log     *zap.Logger
	db      *storage.DB
	calls   *callstore.Store
	met     *metrics.Metrics
	tracker *callctl.Tracker
	proxy   *sip.Proxy
	deps    *deps
	ctx     context.Context
	stop    context.CancelFunc
	errs    chan error

	observers []func(callctl.Event)         // added by start hooks
	closers   []func(context.Context) error // run at shutdown, after SIP stops
	missed    *missed.Service
	board     *board
	notifier  *notify.Notifier
}

// Hook lists that the wire_*.go files fill from their init functions, so a
// feature is wired in one file of its own.
var (
	// startHooks run once storage is open and before SIP starts; they may
	// add observers (a.observers) and closers (a.closers).
	startHooks []func(a *app) error
	// webHooks add routes to the HTTP server.
	webHooks []func(a *app, s *web.Server)
	// reloadHooks hand a new, valid config to the features that follow it.
	reloadHooks []func(a *app, cfg *configs.Config)
)

func start(cfg *configs.Config, path string, log *zap.Logger) (*app, error) {
	a := &app{cfg: cfg, path: path, log: log, met: metrics.New(), errs: make(chan error, 8)}
	a.ctx, a.stop = context.WithCancel(context.Background())
	ok := false
	defer func() {
		if !ok {
			a.stop()
			a.closeStorage()
		}
	}()
	var err error
	if a.db, err = storage.Open(cfg.Storage.Driver, cfg.Storage.DSN); err != nil {
		return nil, err
	}
	if a.calls, err = callstore.New(a.ctx, a.db, log.Named("calls")); err != nil {
		return nil, err
	}
	if a.deps, err = newDeps(a.ctx, cfg, a.db, log); err != nil {
		return nil, err
	}
	for _, h := range startHooks {
		if err := h(a); err != nil {
			return nil, err
		}
	}
	a.tracker = callctl.NewTracker(a.calls, append(a.baseObservers(), a.observers...)...)
	pol, err := buildPolicy(cfg, a.deps)
	if err != nil {
		return nil, err
	}
	opts := proxyOptions(cfg, log, a.tracker, a.met)
	if cfg.SIP.TLS.Cert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.SIP.TLS.Cert, cfg.SIP.TLS.Key)
		if err != nil {
			return nil, fmt.Errorf("sip.tls: %w", err)
		}
		opts.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	if opts.RouteKey, err = a.db.Secret(a.ctx, "record-route"); err != nil {
		return nil, err
	}
	if a.proxy, err = sip.New(opts, pol.routing); err != nil {
		return nil, err
	}
	serveSIP, err := a.proxy.Listeners()
	if err != nil {
		return nil, err
	}
	handler := a.webHandler()
	serveHTTP, err := web.Listen(cfg.HTTP.Listen, handler)
	if err != nil {
		a.proxy.Close()
		return nil, err
	}
	for _, s := range serveSIP {
		go func() { a.errs <- s(a.ctx) }()
	}
	go func() { a.errs <- serveHTTP(a.ctx) }()
	go a.housekeeping()
	ok = true
	log.Info("switchboard started", zap.Strings("sip", cfg.SIP.Listen), zap.String("pbx", cfg.SIP.PBX),
		zap.String("http", cfg.HTTP.Listen), zap.String("node", cfg.Node), zap.String("config", configName(path)))
	return a, nil
}

func configName(path string) string {
	if path == "" {
		return "(embedded default)"
	}
	return path
}

func proxyOptions(cfg *configs.Config, log *zap.Logger, t *callctl.Tracker, m *metrics.Metrics) sip.Options {
	o := sip.Options{Advertise: cfg.SIP.Advertise, UserAgent: cfg.SIP.UserAgent, Log: log.Named("sip"), Tracker: t, Metrics: m,
		RecordingHeader: cfg.SIP.RecordingHeader, MaxCPS: cfg.SIP.MaxCPS,
		FastPath: cfg.SIP.FastPath,

		Keepalive: time.Duration(cfg.SIP.Keepalive), InviteTimeout: time.Duration(cfg.SIP.InviteTimeout), TimerC: time.Duration(cfg.SIP.TimerC)}
	for _, l := range cfg.SIP.Listeners {
		o.Listen = append(o.Listen, sip.Listen{Network: l.Network, Host: l.Host, Port: l.Port})
	}
	return o
}

// wait serves until a signal: SIGHUP reloads, SIGTERM and SIGINT drain.
func (a *app) wait() int {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sigs)
	changed := a.watchConfig()
	for {
		select {
		case s := <-sigs:
			if s == syscall.SIGHUP {
				a.reload("SIGHUP")
				continue
			}
			return a.shutdown(s.String())
		case <-changed:
			a.reload("config file changed")
		case err := <-a.errs:
			if err != nil && !errors.Is(err, context.Canceled) && a.ctx.Err() == nil {
				a.log.Error("listener failed", zap.Error(err))
				a.shutdown("listener failed")
				return 1
			}
		}
	}
}

// shutdown drains (SPEC §1): new INVITEs get 503, calls in progress go on
// until they end or the drain timeout passes, then records are flushed.
func (a *app) shutdown(why string) int {
	timeout := a.cfg.SIP.DrainTimeout.D()
	a.proxy.Drain()
	a.log.Info("draining", zap.String("signal", why), zap.Int("calls", a.tracker.Pending()), zap.Duration("timeout", timeout))
	deadline := time.Now().Add(timeout)
	for a.tracker.Pending() > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	a.stop()
	a.proxy.Close()
	code := 0
	if err := a.closeStorage(); err != nil {
		a.log.Error("flush records", zap.Error(err))
		code = 1
	}
	a.log.Info("stopped", zap.Int("calls_left", a.tracker.Pending()))
	return code
}

func (a *app) closeStorage() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var err error
	for i := len(a.closers) - 1; i >= 0; i-- {
		err = errors.Join(err, a.closers[i](ctx))
	}
	if a.deps != nil {
		err = errors.Join(err, a.deps.close(ctx))
	}
	if a.calls != nil {
		err = errors.Join(err, a.calls.Close(ctx))
	}
	if a.db != nil {
		err = errors.Join(err, a.db.Close())
	}
	return err
}

// reload applies a new config without dropping calls; an invalid one is
// refused and the old one stays in force (SPEC §1).
func (a *app) reload(why string) {
	if a.path == "" {
		return
	}
	cfg, err := configs.Load(a.path)
	if err == nil {
		var pol *policy
		if pol, err = buildPolicy(cfg, a.deps); err == nil {
			a.proxy.SetRouting(pol.routing)
			for _, h := range reloadHooks {
				h(a, cfg)
			}
			a.cfg = cfg
			a.log.Info("config reloaded", zap.String("why", why))
			return
		}
	}
	a.log.Error("config reload refused, the old config stays in force", zap.String("why", why), zap.Error(err))
}

// watchConfig polls the config file's modification time; polling needs no
// extra dependency and a second is fast enough for an administrator.
func (a *app) watchConfig() <-chan struct{} {
	ch := make(chan struct{}, 1)
	if a.path == "" {
		return ch
	}
	stamp := func() time.Time {
		if st, err := os.Stat(a.path); err == nil {
			return st.ModTime()
		}
		return time.Time{}
	}
	last := stamp()
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-a.ctx.Done():
				return
			case <-t.C:
				if s := stamp(); !s.Equal(last) {
					last = s
					select {
					case ch <- struct{}{}:
					default:
					}
				}
			}
		}
	}()
	return ch
}

// housekeeping closes dialogs whose BYE never came and applies the
// retention of call records (SPEC §2).
func (a *app) housekeeping() {
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	var lastPrune time.Time
	for {
		select {
		case <-a.ctx.Done():
			return
		case now := <-t.C:
			if max := a.cfg.SIP.MaxCallDuration.D(); max > 0 {
				if n := a.tracker.Expire(max); n > 0 {
					a.log.Info("closed calls past the maximum call length", zap.Int("calls", n))
				}
				a.proxy.ExpireDialogs(max)
			}
			if now.Sub(lastPrune) >= time.Hour {
				lastPrune = now
				a.prune(now)
			}
		}
	}
}

// prune deletes call records older than storage.retention, then the
// contacts that only those calls had created.
func (a *app) prune(now time.Time) {
	keep := a.cfg.Storage.Retention.D()
	if keep <= 0 {
		return
	}
	before := now.Add(-keep)
	calls, err := a.calls.Prune(a.ctx, before)
	if err != nil {
		a.log.Warn("retention: calls", zap.Error(err))
		return
	}
	gone, err := a.deps.contacts.PurgeCallContacts(a.ctx, before)
	if err != nil {
		a.log.Warn("retention: contacts", zap.Error(err))
	}
	if calls > 0 || gone > 0 {
		a.log.Info("retention", zap.Int64("calls_deleted", calls), zap.Int64("contacts_deleted", gone), zap.Time("before", before))
	}
}

// baseObservers are told of every call state change: one log line per
// finished call, and the call metrics.
func (a *app) baseObservers() []func(callctl.Event) {
	return []func(callctl.Event){
		func(e callctl.Event) {
			a.met.ActiveCalls.Set(float64(a.tracker.ActiveCalls()))
			if e.Type != callctl.EventEnded {
				return
			}
			r := e.Record
			a.met.Calls.WithLabelValues(string(r.Direction), string(r.Disposition), r.Hotline).Inc()
			a.log.Info("call",
				zap.String("id", r.ID), zap.String("call_id", r.CallID), zap.String("direction", string(r.Direction)),
				zap.String("caller", r.Caller), zap.String("called", r.Called), zap.String("hotline", r.Hotline),
				zap.Int64("contact", r.ContactID), zap.String("disposition", string(r.Disposition)),
				zap.Int("sip_status", r.SIPStatus), zap.Int64("ring_ms", r.RingMS), zap.Int64("talk_ms", r.TalkMS))
		},
	}
}
