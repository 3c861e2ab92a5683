package web

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/switchboard-sip/switchboard/callctl"
	"github.com/switchboard-sip/switchboard/cdr"
	"github.com/switchboard-sip/switchboard/emergency"
	"github.com/switchboard-sip/switchboard/wire"
)

// Events of emergency calls on GET /api/events (SPEC §8): the call, at
// once, and its acknowledgement, so that every board takes the banner
// down.
const (
	EventEmergency             = "call.emergency"
	EventEmergencyAcknowledged = "call.emergency.acknowledged"
)

// maxAckName bounds the name given with an acknowledgement.
const maxAckName = 100

// EmergencyStore is what the emergency endpoints need;
// *emergency.Store implements it.
type EmergencyStore interface {
	Open(ctx context.Context) ([]emergency.Alert, error)
	Get(ctx context.Context, id string) (emergency.Alert, error)
	Acknowledge(ctx context.Context, id, by string, at time.Time) (emergency.Alert, error)
}

// EmergencyOptions configure the emergency endpoints.
type EmergencyOptions struct {
	Store EmergencyStore
	// Records gives a call's record, for whether it was answered; a record
	// not found leaves that blank.
	Records interface {
		Get(ctx context.Context, id string) (cdr.Record, error)
	}
	// Publish sends the acknowledgement to the boards; nil sends nothing.
	Publish func(typ string, data any)
	// Location is the time zone of times in responses; the server's when nil.
	Location func() *time.Location
}

// RegisterEmergencies adds the emergency endpoints (SPEC §8): GET
// /api/emergencies lists the calls nobody acknowledged yet (what the board
// shows again after a reload), GET /api/emergencies/{id} one call, POST
// /api/calls/{id}/acknowledge records who ({"by": "name"}, else how the
// request signed in) and when.
func RegisterEmergencies(s *Server, o EmergencyOptions) {
	e := &emergencies{s: s, o: o}
	s.HandleFunc("GET /api/emergencies", e.list)
	s.HandleFunc("GET /api/emergencies/{id}", e.get)
	s.HandleFunc("POST /api/calls/{id}/acknowledge", e.acknowledge)
}

type emergencies struct {
	s *Server
	o EmergencyOptions
}

func (e *emergencies) loc() *time.Location {
	if e.o.Location != nil {
		if l := e.o.Location(); l != nil {
			return l
		}
	}
	return e.s.loc
}

// Wire is an alert in the API's shape, with the call's state from its
// record.
func (e *emergencies) wire(ctx context.Context, al emergency.Alert) wire.Emergency {
	var rec cdr.Record
	if e.o.Records != nil {
		rec, _ = e.o.Records.Get(ctx, al.ID) // not found: no state yet
	}
	return EmergencyWire(al, rec, e.loc())
}

// EmergencyWire is the API's shape of an alert and its call's record.
func EmergencyWire(al emergency.Alert, r cdr.Record, loc *time.Location) wire.Emergency {
	if loc == nil {
		loc = time.UTC
	}
	return wire.Emergency{
		ID: al.ID, CallID: al.CallID, Extension: al.Extension, Name: al.Name, Location: al.Location,
		Dialled: al.Dialled, Presented: al.Presented, Node: al.Node,
		At:             wire.FormatTime(al.At, loc),
		CallbackUntil:  wire.FormatTime(al.CallbackUntil, loc),
		Answered:       r.AnsweredAt != nil,
		Disposition:    string(r.Disposition),
		AcknowledgedBy: al.AckedBy, AcknowledgedAt: wire.FormatTimePtr(al.AckedAt, loc),
	}
}

func (e *emergencies) list(w http.ResponseWriter, r *http.Request) {
	open, err := e.o.Store.Open(r.Context())
	if err != nil {
		e.s.internal(w, r, err)
		return
	}
	out := wire.EmergencyList{Items: []wire.Emergency{}}
	for _, al := range open {
		out.Items = append(out.Items, e.wire(r.Context(), al))
	}
	WriteJSON(w, http.StatusOK, out)
}

func (e *emergencies) get(w http.ResponseWriter, r *http.Request) {
	al, err := e.o.Store.Get(r.Context(), r.PathValue("id"))
	switch {
	case errors.Is(err, emergency.ErrNotFound):
		WriteError(w, http.StatusNotFound, "no emergency call "+r.PathValue("id"))
	case err != nil:
		e.s.internal(w, r, err)
	default:
		WriteJSON(w, http.StatusOK, e.wire(r.Context(), al))
	}
}

func (e *emergencies) acknowledge(w http.ResponseWriter, r *http.Request) {
	var body struct {
		By string `json:"by"`
	}
	if r.ContentLength != 0 {
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&body); err != nil {
			WriteError(w, http.StatusBadRequest, `body: want {"by": "name"}`)
			return
		}
	}
	by := strings.TrimSpace(callctl.CleanDisplayName(body.By))
	if len(by) > maxAckName {
		by = strings.ToValidUTF8(by[:maxAckName], "")
	}
	if by == "" {
		by = acknowledger(r)
	}
	al, err := e.o.Store.Acknowledge(r.Context(), r.PathValue("id"), by, e.s.now())
	switch {
	case errors.Is(err, emergency.ErrNotFound):
		WriteError(w, http.StatusNotFound, "no emergency call "+r.PathValue("id"))
		return
	case err != nil:
		e.s.internal(w, r, err)
		return
	}
	ev := e.wire(r.Context(), al)
	e.s.log.Info("emergency call acknowledged", zap.String("id", al.ID), zap.String("by", al.AckedBy))
	if e.o.Publish != nil {
		e.o.Publish(EventEmergencyAcknowledged, ev)
	}
	WriteJSON(w, http.StatusOK, ev)
}

// acknowledger names who acknowledged when the request names nobody: the
// board's signed-in session, else the API token, else the open board.
func acknowledger(r *http.Request) string {
	if _, err := r.Cookie(SessionCookie); err == nil {
		return "board"
	}
	if r.Header.Get("Authorization") != "" {
		return "api token"
	}
	return "board"
}
