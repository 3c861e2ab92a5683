package main

import (
	"fmt"

	"github.com/switchboard-sip/switchboard/configs"
	"github.com/switchboard-sip/switchboard/missed"
	"github.com/switchboard-sip/switchboard/notify"
	"github.com/switchboard-sip/switchboard/web"
)

func init() {
	startHooks = append(startHooks, startMissed)
	webHooks = append(webHooks, func(a *app, s *web.Server) {
		if a.missed != nil {
			s.HandleMissed(a.missed)
		}
	})
	reloadHooks = append(reloadHooks, func(a *app, cfg *configs.Config) {
		if a.missed != nil {
			a.missed.SetConfig(cfg)
			a.notifier.SetConfig(cfg)
		}
	})
}

// startMissed builds the outbox notifier and the missed-call service. The
// service observes calls (it only queues events, off the SIP path) and is
// closed after SIP stops: closers run in reverse order, so the service
// handles its last events before the notifier it hands them to stops.
// It runs after the board's start hook (file order), whose sign-ins the
// "absent" exception reads.
func startMissed(a *app) error {
	n, err := notify.New(a.ctx, notify.Options{
		DB: a.db, Config: a.cfg, Metrics: a.met, Log: a.log.Named("notify"),
	})
	if err != nil {
		return fmt.Errorf("missed-call notifications: %w", err)
	}
	a.closers = append(a.closers, n.Close)
	svc, err := missed.New(a.ctx, missed.Options{
		DB: a.db, Config: a.cfg, Notifier: n, Contacts: a.deps.contacts, Records: a.calls,
		SignIns: boardSignIns(a), Log: a.log.Named("missed"),
	})
	if err != nil {
		return fmt.Errorf("missed calls: %w", err)
	}
	a.closers = append(a.closers, svc.Close)
	a.observers = append(a.observers, svc.Observe)
	a.missed, a.notifier = svc, n
	return nil
}
