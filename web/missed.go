package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"go.uber.org/zap"

	"github.com/switchboard-sip/switchboard/missed"
	"github.com/switchboard-sip/switchboard/storage"
	"github.com/switchboard-sip/switchboard/wire"
)

// MissedStore is what the missed-call endpoints need; *missed.Service
// implements it.
type MissedStore interface {
	List(ctx context.Context, status missed.Status, limit int, cursor string) ([]missed.Entry, string, error)
	Process(ctx context.Context, id, by string) (missed.Entry, error)
}

// maxProcessBody bounds the optional JSON body of a "mark processed".
const maxProcessBody = 4 << 10

// HandleMissed adds GET /api/missed and POST /api/missed/{id}/processed.
func (s *Server) HandleMissed(m MissedStore) {
	s.HandleFunc("GET /api/missed", func(w http.ResponseWriter, r *http.Request) { s.listMissed(w, r, m) })
	s.HandleFunc("POST /api/missed/{id}/processed", func(w http.ResponseWriter, r *http.Request) { s.processMissed(w, r, m) })
}

func (s *Server) listMissed(w http.ResponseWriter, r *http.Request, m MissedStore) {
	v := r.URL.Query()
	var status missed.Status
	switch st := v.Get("status"); st {
	case "", "all":
	case string(missed.Open), string(missed.Processed):
		status = missed.Status(st)
	default:
		WriteError(w, http.StatusBadRequest, fmt.Sprintf("status: %q is not open, processed or all", st))
		return
	}
	limit := 0
	if l := v.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 1000 {
			WriteError(w, http.StatusBadRequest, fmt.Sprintf("limit: %q is not a number from 1 to 1000", l))
			return
		}
		limit = n
	}
	items, next, err := m.List(r.Context(), status, limit, v.Get("cursor"))
	if err != nil {
		if errors.Is(err, storage.ErrInvalidCursor) {
			WriteError(w, http.StatusBadRequest, "cursor: not a cursor of this list")
			return
		}
		s.log.Error("list missed calls", zap.Error(err))
		WriteError(w, http.StatusInternalServerError, "missed calls could not be read")
		return
	}
	out := make([]wire.Missed, len(items))
	for i, e := range items {
		out[i] = wire.NewMissed(e, s.loc)
	}
	WriteJSON(w, http.StatusOK, struct {
		Items []wire.Missed `json:"items"`
		Next  string        `json:"next"`
	}{out, next})
}

// processMissed marks an entry processed. The body is optional:
// {"by": "name"} says who did it (default "manual").
func (s *Server) processMissed(w http.ResponseWriter, r *http.Request, m MissedStore) {
	id := r.PathValue("id")
	var body struct {
		By string `json:"by"`
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxProcessBody))
	if err != nil {
		WriteError(w, http.StatusRequestEntityTooLarge, "body too large")
		return
	}
	if len(strings.TrimSpace(string(b))) > 0 {
		if err := json.Unmarshal(b, &body); err != nil {
			WriteError(w, http.StatusBadRequest, "body: want {\"by\": \"name\"} or nothing")
			return
		}
	}
	by := sanitizeBy(body.By)
	e, err := m.Process(r.Context(), id, by)
	switch {
	case errors.Is(err, missed.ErrNotFound):
		WriteError(w, http.StatusNotFound, fmt.Sprintf("no missed call %q", id))
		return
	case errors.Is(err, missed.ErrProcessed):
		WriteError(w, http.StatusConflict, fmt.Sprintf("missed call %q is already processed", id))
		return
	case err != nil:
		s.log.Error("mark missed call processed", zap.String("id", id), zap.Error(err))
		WriteError(w, http.StatusInternalServerError, "missed call could not be updated")
		return
	}
	WriteJSON(w, http.StatusOK, wire.NewMissed(e, s.loc))
}

// sanitizeBy keeps a client-given name printable and short: it is shown on
// the board and in logs.
func sanitizeBy(s string) string {
	var b strings.Builder
	for _, r := range strings.TrimSpace(s) {
		if r < 0x20 || r == 0x7f {
			continue
		}
		b.WriteRune(r)
		if b.Len() >= 64 {
			break
		}
	}
	return b.String()
}
