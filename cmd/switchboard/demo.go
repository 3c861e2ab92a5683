package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/switchboard-sip/switchboard/agent"
	"github.com/switchboard-sip/switchboard/configs"
	"github.com/switchboard-sip/switchboard/internal/demo"
)

const demoUsage = `usage: switchboard demo [--http ADDR] [--duration D] [--pace D] [--token T]

Starts switchboard on loopback with a demo config, a simulated PBX and a
simulated carrier trunk placing a varied stream of calls (answered, missed,
busy, blocked, to two hotlines, from known and new callers). Open the board
URL it prints; Ctrl-C stops it.
`

// demoCommand is `switchboard demo` (SPEC §6).
func demoCommand(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, demoUsage); fs.PrintDefaults() }
	httpAddr := fs.String("http", "127.0.0.1:8080", "address of the board (a free port is taken when it is in use)")
	duration := fs.Duration("duration", 0, "stop after this long (0: run until Ctrl-C)")
	pace := fs.Duration("pace", 4*time.Second, "time between two new calls")
	speed := fs.Float64("speed", 1, "ring and talk times are divided by this")
	token := fs.String("token", "", "API token: the board then asks for it")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *pace <= 0 || *speed <= 0 {
		fmt.Fprintln(stderr, "switchboard demo: --pace and --speed must be positive")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	// sipgo logs through the default slog logger in places; the simulated
	// phones' chatter would drown the summary.
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer slog.SetDefault(old)
	start := func(cfg *configs.Config, path string) (*agent.Agent, func(), error) {
		log, err := newLogger(cfg.Log, stderr)
		if err != nil {
			return nil, nil, err
		}
		a, err := start(cfg, path, log)
		if err != nil {
			log.Sync()
			return nil, nil, err
		}
		return a, func() { shutdown(a, log, "demo stopped"); log.Sync() }, nil
	}
	o := demo.Options{Out: stdout, HTTPAddr: *httpAddr, Token: *token, Pace: *pace, Speed: *speed, Start: start}
	if err := demo.Run(ctx, o); err != nil {
		fmt.Fprintln(stderr, "switchboard demo:", err)
		return 1
	}
	return 0
}
