package web

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// Shutdown timing. Requests in flight get requestGrace to finish on their
// own before their contexts are cancelled (which ends event streams, which
// never finish on their own); after shutdownTimeout connections are cut.
const (
	requestGrace    = time.Second
	shutdownTimeout = 5 * time.Second
)

// Listen binds listen (host:port) now, so that a port in use is reported
// before anything starts, and returns the function that serves h on it
// until ctx ends, then shuts down gracefully. The function returns nil after
// a clean shutdown.
func Listen(listen string, h http.Handler) (func(ctx context.Context) error, error) {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("http: cannot listen on %s: %w", listen, err)
	}
	return func(ctx context.Context) error { return ServeListener(ctx, ln, h) }, nil
}

// Serve is Listen and serve in one call.
func Serve(ctx context.Context, listen string, h http.Handler) error {
	serve, err := Listen(listen, h)
	if err != nil {
		return err
	}
	return serve(ctx)
}

// ServeListener serves h on ln until ctx ends, then shuts down gracefully.
// It closes ln.
func ServeListener(ctx context.Context, ln net.Listener, h http.Handler) error {
	base, cancelBase := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelBase()
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		BaseContext:       func(net.Listener) context.Context { return base },
	}
	srv.RegisterOnShutdown(func() { time.AfterFunc(requestGrace, cancelBase) })
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("http: serve on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if err != nil {
		srv.Close()
		err = fmt.Errorf("http: shutdown on %s: %w", ln.Addr(), err)
	}
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, fmt.Errorf("http: serve on %s: %w", ln.Addr(), serr))
	}
	return err
}
