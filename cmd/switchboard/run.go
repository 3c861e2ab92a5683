package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/switchboard-sip/switchboard/agent"
	"github.com/switchboard-sip/switchboard/configs"
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
	applyRuntime(cfg.Runtime, log)
	// Signals are caught before the agent exists: once /healthz answers, a
	// supervisor may send SIGHUP at any moment, and Go's default action for
	// it would kill the process.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sigs)
	a, err := start(cfg, *path, log)
	if err != nil {
		fmt.Fprintln(stderr, "switchboard:", err)
		return 1
	}
	return serve(a, *path, sigs, log)
}

// start builds the agent and logs what it serves.
func start(cfg *configs.Config, path string, log *zap.Logger) (*agent.Agent, error) {
	a, err := agent.New(cfg, log)
	if err != nil {
		return nil, err
	}
	name := path
	if name == "" {
		name = "(embedded default)"
	}
	log.Info("switchboard started", zap.Strings("sip", cfg.SIP.Listen), zap.String("pbx", cfg.SIP.PBX),
		zap.String("http", cfg.HTTP.Listen), zap.String("node", cfg.Node), zap.String("config", name))
	return a, nil
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

// serve runs until a signal (SPEC §1): SIGHUP and a change of the config
// file reload, SIGTERM and SIGINT drain and stop.
func serve(a *agent.Agent, path string, sigs <-chan os.Signal, log *zap.Logger) int {
	changed := watchConfig(a.Done(), path)
	for {
		select {
		case s := <-sigs:
			if s == syscall.SIGHUP {
				reload(a, path, log, "SIGHUP")
				continue
			}
			return shutdown(a, log, s.String())
		case <-changed:
			reload(a, path, log, "config file changed")
		case err := <-a.Errors():
			if err != nil && !errors.Is(err, context.Canceled) {
				log.Error("listener failed", zap.Error(err))
				shutdown(a, log, "listener failed")
				return 1
			}
		}
	}
}

// shutdown drains (SPEC §1): new INVITEs get 503, calls in progress go on
// until they end or the drain timeout passes, then records are flushed.
func shutdown(a *agent.Agent, log *zap.Logger, why string) int {
	log.Info("stopping", zap.String("signal", why))
	a.Drain(a.Config().SIP.DrainTimeout.D())
	if err := a.Close(); err != nil {
		log.Error("flush records", zap.Error(err))
		return 1
	}
	return 0
}

// reload reads the config file again and hands it to the agent; an
// invalid one is refused and the old one stays in force (SPEC §1).
func reload(a *agent.Agent, path string, log *zap.Logger, why string) {
	if path == "" {
		return
	}
	cfg, err := configs.Load(path)
	if err == nil {
		err = a.Reload(cfg)
	}
	if err != nil {
		log.Error("config reload refused, the old config stays in force", zap.String("why", why), zap.Error(err))
		return
	}
	applyRuntime(cfg.Runtime, log)
	log.Info("config reloaded", zap.String("why", why))
}

// watchConfig polls the config file's modification time until done;
// polling needs no extra dependency and a second is fast enough for an
// administrator.
func watchConfig(done <-chan struct{}, path string) <-chan struct{} {
	ch := make(chan struct{}, 1)
	if path == "" {
		return ch
	}
	stamp := func() time.Time {
		if st, err := os.Stat(path); err == nil {
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
			case <-done:
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
