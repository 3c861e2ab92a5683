package main

import (
	"net/http"

	"github.com/switchboard-sip/switchboard/web"
)

// webHandler builds the HTTP API and board.
func (a *app) webHandler() http.Handler {
	s := web.New(web.Options{
		Calls:          a.calls,
		Health:         a.health,
		SIPTargets:     func() any { return a.proxy.Targets() },
		Metrics:        a.met.Handler(),
		Token:          a.cfg.HTTP.Token,
		ProtectMetrics: a.cfg.HTTP.ProtectMetrics,
		Log:            a.log.Named("http"),
		Location:       a.cfg.Location,
	})
	for _, h := range webHooks {
		h(a, s)
	}
	var h http.Handler = s
	for _, w := range webWrappers {
		h = w(a, s, h)
	}
	return h
}

func (a *app) health() error {
	return a.db.PingContext(a.ctx)
}
