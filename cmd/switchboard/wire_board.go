package main

import (
	"context"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/switchboard-sip/switchboard/callctl"
	"github.com/switchboard-sip/switchboard/missed"
	"github.com/switchboard-sip/switchboard/web"
)

// webWrappers wrap the finished HTTP handler, first in the list innermost:
// the board's sign-in must see every request before the server's token
// check does. webHandler applies them after the webHooks.
var webWrappers []func(a *app, s *web.Server, h http.Handler) http.Handler

func init() {
	startHooks = append(startHooks, startBoard)
	webHooks = append(webHooks, registerBoard)
	webWrappers = append(webWrappers, wrapBoardAuth)
}

// board is the board's part of a running switchboard: the event hub and
// the sign-in layer (made when the HTTP server is).
type board struct {
	hub  *web.Hub
	auth atomic.Pointer[web.Auth]
}

func boardOf(a *app) *board { return a.board }

// LastSignIn is when a receptionist last signed in to the board, for the
// missed-call exceptions; zero when nobody has (or no token is set, so
// nobody needs to).
func (b *board) LastSignIn() time.Time {
	if au := b.auth.Load(); au != nil {
		return au.LastSignIn()
	}
	return time.Time{}
}

// startBoard starts the event hub and makes it a call observer. The hub
// adds the contact's history to events on its own goroutine, never on the
// SIP path; the hotline texts were rendered by the pipeline.
func startBoard(a *app) error {
	contact := web.ContactEnricher(a.deps.contacts, a.calls, a.cfg.Location)
	enrich := web.EnricherFunc(func(ctx context.Context, e callctl.Event) web.Extras {
		x := web.HotlineExtras(e.Call)
		x.Contact = contact(ctx, e)
		return x
	})
	b := &board{hub: web.NewHub(web.HubOptions{Enricher: enrich, Location: a.cfg.Location, Log: a.log.Named("events")})}
	a.board = b
	a.observers = append(a.observers, b.hub.Observe)
	a.closers = append(a.closers, func(context.Context) error {
		b.hub.Close()
		return nil
	})
	return nil
}

func registerBoard(a *app, s *web.Server) {
	b := boardOf(a)
	if b == nil {
		return
	}
	b.hub.Register(s)
	web.RegisterBoard(s, web.BoardOptions{LinkPrefix: a.cfg.Missed.Email.LinkPrefix})
	au := web.NewAuth(s, web.AuthOptions{Log: a.log.Named("auth")})
	au.Register(s)
	b.auth.Store(au)
	// Missed-call entries go on the same stream. The service exists by
	// now: web hooks run after every start hook.
	if a.missed != nil {
		loc := a.cfg.Location
		cancel := a.missed.Subscribe(func(e missed.Event) {
			b.hub.Publish(string(e.Type), web.NewMissed(e.Entry, loc))
		})
		a.closers = append(a.closers, func(context.Context) error { cancel(); return nil })
	}
}

// boardSignIns is what the missed-call exceptions ask about sign-ins: the
// board of a, or nil (every receptionist counted present) without one.
func boardSignIns(a *app) missed.SignIns {
	if b := boardOf(a); b != nil {
		return b
	}
	return nil
}

func wrapBoardAuth(a *app, s *web.Server, h http.Handler) http.Handler {
	b := boardOf(a)
	if b == nil {
		return h
	}
	au := b.auth.Load()
	if au == nil {
		return h
	}
	return au.Wrap(h)
}
