package main

import (
	"net/http"
	"net/http/pprof"
	"os"

	"go.uber.org/zap"
)

// startPprof serves Go's profiler on SWITCHBOARD_PPROF (host:port) when
// set: how engineers profile a running agent under SIPp load. It is off by
// default and never on the API listener.
func startPprof(log *zap.Logger) {
	addr := os.Getenv("SWITCHBOARD_PPROF")
	if addr == "" {
		return
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	go func() {
		if err := http.ListenAndServe(addr, mux); err != nil {
			log.Warn("pprof listener", zap.Error(err))
		}
	}()
	log.Info("pprof listening", zap.String("addr", addr))
}
