package web

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/switchboard-sip/switchboard/statchart"
	"github.com/switchboard-sip/switchboard/stats"
)

// Insights is the body of GET /api/stats/charts: the figures and their
// charts, drawn from one query so that both agree.
type Insights struct {
	Report stats.Report      `json:"report"`
	Charts []statchart.Chart `json:"charts"`
}

// RegisterInsights adds the Insights view's data (SPEC §8, §10): GET
// /api/stats/charts answers the report and every chart as SVG; GET
// /api/stats/charts/{name}.svg one chart as an image. Both take the
// parameters of /api/stats and theme=light|dark, and their figures come
// from the same source.
func RegisterInsights(s *Server, o StatsOptions) {
	registerContactCharts(s, o)
	s.HandleFunc("GET /api/stats/charts", func(w http.ResponseWriter, r *http.Request) {
		rep, theme, ok := s.insightsReport(w, r, o)
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
		if !ok || !slices.Contains(statchart.Names, name) {
			WriteError(w, http.StatusNotFound, fmt.Sprintf("no chart %q; charts are %s.svg", r.PathValue("file"), strings.Join(statchart.Names, ".svg, ")))
			return
		}
		rep, theme, ok := s.insightsReport(w, r, o)
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

// insightsReport reads the filter and theme and runs the query; on failure
// it has answered and ok is false.
func (s *Server) insightsReport(w http.ResponseWriter, r *http.Request, o StatsOptions) (stats.Report, statchart.Theme, bool) {
	v := r.URL.Query()
	f, err := stats.ParseFilter(v.Get, s.now(), s.loc)
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
	rep, err := o.report(r.Context(), f)
	if err != nil {
		s.internal(w, r, err)
		return stats.Report{}, "", false
	}
	return rep, theme, true
}
