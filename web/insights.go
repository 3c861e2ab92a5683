package web

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/switchboard-sip/switchboard/statchart"
	"github.com/switchboard-sip/switchboard/stats"
	"github.com/switchboard-sip/switchboard/storage"
)

// ReportFunc computes the front-desk figures (SPEC §10) for a filter. A
// zero Since or Until in the filter asks for the default range (the last 30
// days); the source fills it in.
type ReportFunc func(ctx context.Context, f stats.Filter) (stats.Report, error)

// InsightsOptions configure the board's Insights charts.
type InsightsOptions struct {
	Report ReportFunc
}

// Insights is the body of GET /api/stats/charts: the figures and their
// charts, drawn from one query so that both agree.
type Insights struct {
	Report stats.Report      `json:"report"`
	Charts []statchart.Chart `json:"charts"`
}

// RegisterInsights adds the Insights view's data (SPEC §8, §10): GET
// /api/stats/charts answers the report and every chart as SVG; GET
// /api/stats/charts/{name}.svg one chart as an image. Both take the
// parameters of /api/stats and theme=light|dark.
func RegisterInsights(s *Server, o InsightsOptions) {
	s.HandleFunc("GET /api/stats/charts", func(w http.ResponseWriter, r *http.Request) {
		rep, theme, ok := s.insightsReport(w, r, o.Report)
		if !ok {
			return
		}
		charts, err := statchart.Render(rep, theme)
		if err != nil {
			s.internal(w, r, err)
			return
		}
		WriteJSON(w, http.StatusOK, Insights{Report: rep, Charts: charts})
	})
	s.HandleFunc("GET /api/stats/charts/{file}", func(w http.ResponseWriter, r *http.Request) {
		name, ok := strings.CutSuffix(r.PathValue("file"), ".svg")
		if !ok || !knownChart(name) {
			WriteError(w, http.StatusNotFound, fmt.Sprintf("no chart %q; charts are %s.svg", r.PathValue("file"), strings.Join(statchart.Names, ".svg, ")))
			return
		}
		rep, theme, ok := s.insightsReport(w, r, o.Report)
		if !ok {
			return
		}
		c, err := statchart.RenderOne(rep, name, theme)
		if err != nil {
			s.internal(w, r, err)
			return
		}
		if c.SVG == "" {
			WriteError(w, http.StatusNotFound, c.Empty)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "image/svg+xml")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cache-Control", "no-store")
		// The drawing is data, never a document that runs anything.
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
		w.Write([]byte(c.SVG))
	})
}

func knownChart(name string) bool {
	for _, n := range statchart.Names {
		if n == name {
			return true
		}
	}
	return false
}

// insightsReport reads the filter and theme and runs the query; on failure
// it has answered and ok is false.
func (s *Server) insightsReport(w http.ResponseWriter, r *http.Request, src ReportFunc) (stats.Report, statchart.Theme, bool) {
	v := r.URL.Query()
	f, err := ParseStatsFilter(v, s.now(), s.loc)
	if err != nil {
		WriteError(w, http.StatusBadRequest, err.Error())
		return stats.Report{}, "", false
	}
	theme := statchart.Theme(v.Get("theme"))
	switch theme {
	case "":
		theme = statchart.Light
	case statchart.Light, statchart.Dark:
	default:
		WriteError(w, http.StatusBadRequest, (&paramError{"theme", fmt.Sprintf("%q is not light or dark", theme)}).Error())
		return stats.Report{}, "", false
	}
	rep, err := src(r.Context(), f)
	if err != nil {
		s.internal(w, r, err)
		return stats.Report{}, "", false
	}
	return rep, theme, true
}

// ParseStatsFilter reads the parameters of GET /api/stats (SPEC §8): since
// and until are durations back from now (24h) or RFC 3339 times, hotline and
// campaign names; days are counted in loc.
func ParseStatsFilter(v url.Values, now time.Time, loc *time.Location) (stats.Filter, error) {
	f := stats.Filter{Hotline: strings.TrimSpace(v.Get("hotline")), Campaign: strings.TrimSpace(v.Get("campaign")), Location: loc}
	for _, p := range []struct {
		name string
		to   *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		raw := strings.TrimSpace(v.Get(p.name))
		if raw == "" {
			continue
		}
		t, err := storage.ParseSince(raw, now)
		if err != nil {
			return f, &paramError{p.name, err.Error()}
		}
		*p.to = t
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Until.After(f.Since) {
		return f, &paramError{"until", "must be after since"}
	}
	return f, nil
}
