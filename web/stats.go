package web

import (
	"context"
	"net/http"
	"strings"

	"github.com/switchboard-sip/switchboard/stats"
)

// StatsSource computes the §10 figures; *callstore.Store implements it.
type StatsSource interface {
	Stats(ctx context.Context, f stats.Filter) (stats.Report, error)
}

// StatsOptions configure GET /api/stats.
type StatsOptions struct {
	Source StatsSource
	// Companies maps hotline names to their company (from the config).
	Companies func() map[string]string
	// Caller describes a top caller's contact; nil leaves names empty.
	Caller func(ctx context.Context) stats.Caller
}

// RegisterStats adds GET /api/stats (SPEC §8, §10): JSON, or CSV when the
// client accepts text/csv. contact=ID narrows every figure to one contact. since and until take a duration back from now
// (30m, 168h) or an RFC 3339 time; the default is the last 30 days in the
// server's time zone.
func RegisterStats(s *Server, o StatsOptions) {
	s.HandleFunc("GET /api/stats", func(w http.ResponseWriter, r *http.Request) {
		f, err := stats.ParseFilter(r.URL.Query().Get, s.now(), s.loc)
		if err != nil {
			WriteError(w, http.StatusBadRequest, err.Error())
			return
		}
		rep, err := o.report(r.Context(), f)
		if err != nil {
			s.internal(w, r, err)
			return
		}
		if wantsCSV(r) {
			w.Header().Set("Content-Type", "text/csv; charset=utf-8")
			w.Header().Set("Content-Disposition", `attachment; filename="switchboard-stats.csv"`)
			_ = stats.WriteCSV(w, rep)
			return
		}
		WriteJSON(w, http.StatusOK, rep)
	})
}

// report computes the figures for f and completes them with what the call
// store does not know (companies, the top callers' names). GET /api/stats
// and the board's charts share it, so that both show the same figures.
func (o StatsOptions) report(ctx context.Context, f stats.Filter) (stats.Report, error) {
	rep, err := o.Source.Stats(ctx, f)
	if err != nil {
		return stats.Report{}, err
	}
	var companies map[string]string
	if o.Companies != nil {
		companies = o.Companies()
	}
	var caller stats.Caller
	if o.Caller != nil {
		caller = o.Caller(ctx)
	}
	rep.Complete(companies, caller)
	return rep, nil
}

// wantsCSV reports whether the client asked for CSV rather than JSON.
func wantsCSV(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, _, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(mt), "text/csv") {
			return true
		}
	}
	return false
}
