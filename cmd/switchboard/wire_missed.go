package main

import (
	"context"
	"fmt"
	"sync"

	"github.com/switchboard-sip/switchboard/contacts"
	"github.com/switchboard-sip/switchboard/missed"
	"github.com/switchboard-sip/switchboard/notify"
	"github.com/switchboard-sip/switchboard/web"
)

// missedWiring holds the missed-call service between the start hook and the
// web hook.
type missedWiring struct {
	service  *missed.Service
	notifier *notify.Notifier
}

// wiredMissed maps a running app to its service; tests start several apps
// in one process.
var (
	wiredMu     sync.Mutex
	wiredMissed = map[*app]*missedWiring{}
)

func init() {
	startHooks = append(startHooks, startMissed)
	webHooks = append(webHooks, func(a *app, s *web.Server) {
		wiredMu.Lock()
		w := wiredMissed[a]
		wiredMu.Unlock()
		if w != nil {
			s.HandleMissed(w.service)
		}
	})
}

// startMissed builds the outbox notifier and the missed-call service. The
// service observes calls (it only queues events, off the SIP path) and is
// closed after SIP stops: closers run in reverse order, so the service
// handles its last events before the notifier it hands them to stops.
func startMissed(a *app) error {
	n, err := notify.New(a.ctx, notify.Options{
		DB: a.db, Config: a.cfg, Metrics: a.met, Log: a.log.Named("notify"),
	})
	if err != nil {
		return fmt.Errorf("missed-call notifications: %w", err)
	}
	a.closers = append(a.closers, n.Close)
	// A store of its own reads contacts for the entries and the vCards;
	// contacts created by calls reach the database through the contact
	// cache's writer, which the service waits for briefly.
	cs, err := contacts.NewStore(a.ctx, a.db)
	if err != nil {
		return fmt.Errorf("missed calls: contacts: %w", err)
	}
	svc, err := missed.New(a.ctx, missed.Options{
		DB: a.db, Config: a.cfg, Notifier: n, Contacts: cs, Records: a.calls, Log: a.log.Named("missed"),
	})
	if err != nil {
		return fmt.Errorf("missed calls: %w", err)
	}
	a.closers = append(a.closers, svc.Close)
	a.observers = append(a.observers, svc.Observe)
	w := &missedWiring{service: svc, notifier: n}
	wiredMu.Lock()
	wiredMissed[a] = w
	wiredMu.Unlock()
	a.closers = append(a.closers, func(context.Context) error {
		wiredMu.Lock()
		delete(wiredMissed, a)
		wiredMu.Unlock()
		return nil
	})
	return nil
}
