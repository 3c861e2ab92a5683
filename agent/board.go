package agent

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/switchboard-sip/switchboard/configs"
	"github.com/switchboard-sip/switchboard/contacts"
	"github.com/switchboard-sip/switchboard/stats"
	"github.com/switchboard-sip/switchboard/web"
)

// httpHandler builds the HTTP API and the board. The order of the layers:
// the server's own routes (calls, health, metrics), then the routes of the
// parts (events, board, contacts, blocks, missed calls), and outermost the
// board's sign-in, which must see every request before the server's token
// check does.
func (a *Agent) httpHandler(cfg *configs.Config) http.Handler {
	s := web.New(web.Options{
		Calls:          a.calls,
		Health:         a.health,
		Ready:          a.ready,
		SIPTargets:     func() any { return a.proxy.Targets() },
		Metrics:        a.met.Handler(),
		Token:          cfg.HTTP.Token,
		ProtectMetrics: cfg.HTTP.ProtectMetrics,
		Log:            a.log.Named("http"),
		Location:       cfg.Location,
	})
	a.hub.Register(s)
	a.emergency.register(s)
	web.RegisterBoard(s, web.BoardOptions{LinkPrefix: cfg.Missed.Email.LinkPrefix, WrapUpReasons: func() []string { return a.Config().WrapUp.Reasons },
		Recordings: func() (string, bool) { r := a.Config().Recordings; return r.BaseURL, r.DeleteURL != "" }})
	au := web.NewAuth(s, web.AuthOptions{Log: a.log.Named("auth")})
	au.Register(s)
	a.auth.Store(au)
	numbers := func() *contacts.Numbers { return a.numbers.Load() }
	web.RegisterContacts(s, web.ContactOptions{Store: a.contacts, Numbers: numbers})
	web.RegisterBlocks(s, web.BlockOptions{Store: a.blocks, Numbers: numbers})
	s.HandleMissed(a.missed)
	// The wrap-up (SPEC §10): its call.updated goes on the board's stream.
	web.RegisterWrapUp(s, web.WrapUpOptions{Store: a.calls, Publish: a.hub.Publish})
	// Recordings (SPEC §2): Delete clears the reference and asks the PBX.
	web.RegisterRecordings(s, web.RecordingOptions{Store: a.calls, Publish: a.hub.Publish, Log: a.log.Named("recordings"),
		Config: func() configs.Recordings { return a.Config().Recordings }})
	// The §10 figures: companies from the config in force, top callers'
	// names from the contact store.
	figures := web.StatsOptions{
		Source:    a.calls,
		Companies: func() map[string]string { return companies(a.Config().Hotlines) },
		Caller:    func(ctx context.Context) stats.Caller { return contactCaller(ctx, a.contacts) },
	}
	web.RegisterStats(s, figures)
	// The board's Insights charts draw the same figures.
	web.RegisterInsights(s, figures)
	return au.Wrap(s)
}

// health is liveness: nil when the database answers and the record writer
// keeps up; otherwise the node still routes calls and is degraded, with
// each reason (SPEC §11): the database away or locked, the disk full.
func (a *Agent) health() error {
	ctx, cancel := context.WithTimeout(a.ctx, 2*time.Second)
	defer cancel()
	var reasons []string
	if err := a.db.PingContext(ctx); err != nil {
		reasons = append(reasons, fmt.Sprintf("storage: %v", err))
	}
	if err := a.calls.Degraded(); err != nil {
		reasons = append(reasons, fmt.Sprintf("call records waiting for the database (%d): %v", a.calls.Pending(), err))
	} else if d := a.calls.Stalled(); d > stalledAfter {
		reasons = append(reasons, fmt.Sprintf("call records waiting for the database (%d): a write has been held for %v (locked?)",
			a.calls.Pending(), d.Round(100*time.Millisecond)))
	}
	if len(reasons) == 0 {
		return nil
	}
	return &web.DegradedError{Reasons: reasons}
}

// stalledAfter is how long a write of call records may take before the
// node says it is degraded.
const stalledAfter = time.Second

// ready is readiness (SPEC §8): new calls are welcome once every listener
// serves, and no more once draining began.
func (a *Agent) ready() error {
	switch {
	case a.draining.Load():
		return errors.New("draining")
	case !a.serving.Load():
		return errors.New("starting")
	}
	return nil
}
