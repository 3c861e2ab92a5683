package main

import (
	"github.com/switchboard-sip/switchboard/web"
)

func init() {
	webHooks = append(webHooks, registerInsight)
}

// registerInsight adds the front-desk insight endpoints (SPEC §10): the
// wrap-up PATCH, whose call.updated goes on the board's event stream.
func registerInsight(a *app, s *web.Server) {
	var publish func(string, any)
	if b := boardOf(a); b != nil {
		publish = b.hub.Publish
	}
	web.RegisterWrapUp(s, web.WrapUpOptions{Store: a.calls, Publish: publish})
}
