package web

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/switchboard-sip/switchboard/statchart"
	"github.com/switchboard-sip/switchboard/stats"
)

// contactChartMonths is the range of a contact page's charts: this month
// and the eleven before it.
const contactChartMonths = 12

// registerContactCharts adds GET /api/contacts/{id}/charts: the report of
// one contact over the last twelve months (stats.Filter.ContactID) and the
// contact page's charts drawn from it, by the same code as Insights
// (SPEC §8). theme=light|dark as for /api/stats/charts.
func registerContactCharts(s *Server, o StatsOptions) {
	s.HandleFunc("GET /api/contacts/{id}/charts", func(w http.ResponseWriter, r *http.Request) {
		raw := r.PathValue("id")
		id, err := strconv.ParseInt(raw, 10, 64)
		if err != nil || id <= 0 {
			WriteError(w, http.StatusBadRequest, fmt.Sprintf("id: %q is not a contact id", raw))
			return
		}
		theme := statchart.Theme(r.URL.Query().Get("theme"))
		switch theme {
		case "":
			theme = statchart.Light
		case statchart.Light, statchart.Dark:
		default:
			WriteError(w, http.StatusBadRequest, (&paramError{"theme", fmt.Sprintf("%q is not light or dark", theme)}).Error())
			return
		}
		now := s.now().In(s.loc)
		f := stats.Filter{Location: s.loc, ContactID: id, Until: now,
			Since: time.Date(now.Year(), now.Month()-(contactChartMonths-1), 1, 0, 0, 0, 0, s.loc)}
		rep, err := o.report(r.Context(), f)
		if err != nil {
			s.internal(w, r, err)
			return
		}
		charts, err := statchart.RenderContact(rep, theme)
		if err != nil {
			s.internal(w, r, err)
			return
		}
		WriteJSON(w, http.StatusOK, Insights{Report: rep, Charts: charts})
	})
}
