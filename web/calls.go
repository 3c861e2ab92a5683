package web

import (
	"github.com/switchboard-sip/switchboard/cdr"

	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/switchboard-sip/switchboard/storage"
	"github.com/switchboard-sip/switchboard/storage/callstore"
)

// TimeFormat is how the API writes times: RFC 3339 with milliseconds.
const TimeFormat = "2006-01-02T15:04:05.000Z07:00"

// Call is the JSON form of a call record (SPEC §8 field names). Absent times
// and a missing contact are null rather than left out, so that clients see
// every field on every record.
type Call struct {
	ID          string  `json:"id"`
	CallID      string  `json:"call_id"`
	Direction   string  `json:"direction"`
	Trunk       string  `json:"trunk,omitempty"`
	Caller      string  `json:"caller"`
	CallerRaw   string  `json:"caller_raw"`
	CallerName  string  `json:"caller_name"`
	Called      string  `json:"called"`
	CalledRaw   string  `json:"called_raw"`
	Hotline     string  `json:"hotline"`
	Campaign    string  `json:"campaign"`
	ContactID   *int64  `json:"contact_id"`
	Node        string  `json:"node"`
	StartedAt   string  `json:"started_at"`
	RingingAt   *string `json:"ringing_at"`
	AnsweredAt  *string `json:"answered_at"`
	EndedAt     *string `json:"ended_at"`
	RingMS      int64   `json:"ring_ms"`
	TalkMS      int64   `json:"talk_ms"`
	SIPStatus   int     `json:"sip_status"`
	Disposition string  `json:"disposition"`
	AnsweredBy  string  `json:"answered_by"`
	EndReason   string  `json:"end_reason,omitempty"`
	MissedID    string  `json:"missed_id"`
	Recording   string  `json:"recording,omitempty"`
	// The front desk's wrap-up (SPEC §10); satisfaction is null until
	// scored.
	Reason       string  `json:"reason"`
	Satisfaction *int    `json:"satisfaction"`
	Notes        string  `json:"notes"`
	WrappedUpAt  *string `json:"wrapped_up_at"`
}

// NewCall is the JSON form of r with times in loc (UTC when nil). Event
// streams and the command line use it so that a record looks the same
// everywhere.
func NewCall(r cdr.Record, loc *time.Location) Call {
	if loc == nil {
		loc = time.UTC
	}
	c := Call{
		ID: r.ID, CallID: r.CallID, Direction: string(r.Direction), Trunk: r.Trunk,
		Caller: r.Caller, CallerRaw: r.CallerRaw, CallerName: r.CallerName,
		Called: r.Called, CalledRaw: r.CalledRaw, Hotline: r.Hotline, Campaign: r.Campaign, Node: r.Node,
		StartedAt:  FormatTime(r.StartedAt, loc),
		RingingAt:  formatPtr(r.RingingAt, loc),
		AnsweredAt: formatPtr(r.AnsweredAt, loc),
		EndedAt:    formatPtr(r.EndedAt, loc),
		RingMS:     r.RingMS, TalkMS: r.TalkMS, SIPStatus: r.SIPStatus,
		Disposition: string(r.Disposition), AnsweredBy: r.AnsweredBy, EndReason: r.EndReason,
		MissedID: r.MissedID, Recording: r.Recording,
		Reason: r.WrapUp.Reason, Notes: r.Notes, WrappedUpAt: formatPtr(r.WrapUp.At, loc),
	}
	if r.Satisfaction != 0 {
		n := r.Satisfaction
		c.Satisfaction = &n
	}
	if r.ContactID != 0 {
		id := r.ContactID
		c.ContactID = &id
	}
	return c
}

// FormatTime writes t the API's way in loc; the zero time is "".
func FormatTime(t time.Time, loc *time.Location) string {
	if t.IsZero() {
		return ""
	}
	return t.In(loc).Format(TimeFormat)
}

func formatPtr(t *time.Time, loc *time.Location) *string {
	if t == nil || t.IsZero() {
		return nil
	}
	s := FormatTime(*t, loc)
	return &s
}

// CallList is the body of GET /api/calls.
type CallList struct {
	Items []Call `json:"items"`
	Next  string `json:"next"`
}

// Page sizes of list endpoints.
const (
	DefaultLimit = 50
	MaxLimit     = 1000
)

var dispositions = map[string]bool{
	string(cdr.Answered): true, string(cdr.NoAnswer): true, string(cdr.Busy): true,
	string(cdr.Rejected): true, string(cdr.Blocked): true, string(cdr.Closed): true,
	string(cdr.Failed): true, string(cdr.Elsewhere): true,
}

// paramError is a bad query parameter; its message names the parameter.
type paramError struct{ name, msg string }

func (e *paramError) Error() string { return e.name + ": " + e.msg }

// callQuery reads the query string of GET /api/calls.
func (s *Server) callQuery(r *http.Request) (callstore.Query, error) {
	v := r.URL.Query()
	q := callstore.Query{Limit: DefaultLimit, Cursor: v.Get("cursor")}
	var err error
	if q.Limit, err = ParseLimit(v.Get("limit")); err != nil {
		return q, err
	}
	if d := v.Get("disposition"); d != "" {
		if !dispositions[d] {
			return q, &paramError{"disposition", fmt.Sprintf("%q is not one of answered, no_answer, busy, rejected, blocked, closed, failed, elsewhere", d)}
		}
		q.Disposition = d
	}
	q.Number = QueryNumber(v.Get("number"))
	if since := v.Get("since"); since != "" {
		if q.Since, err = storage.ParseSince(since, s.now()); err != nil {
			return q, &paramError{"since", err.Error()}
		}
	}
	if m := v.Get("missed"); m != "" {
		if q.Missed, err = strconv.ParseBool(m); err != nil {
			return q, &paramError{"missed", fmt.Sprintf("%q is not true or false", m)}
		}
	}
	if c := v.Get("contact_id"); c != "" {
		if q.ContactID, err = strconv.ParseInt(c, 10, 64); err != nil || q.ContactID <= 0 {
			return q, &paramError{"contact_id", fmt.Sprintf("%q is not a contact id", c)}
		}
	}
	return q, nil
}

// ParseLimit reads a list endpoint's limit parameter: empty means
// DefaultLimit, larger than MaxLimit means MaxLimit.
func ParseLimit(s string) (int, error) {
	if s == "" {
		return DefaultLimit, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return 0, &paramError{"limit", fmt.Sprintf("%q is not a positive integer", s)}
	}
	return min(n, MaxLimit), nil
}

// QueryNumber cleans a number from a query string. An unescaped "+" in a
// URL query decodes as a space, which would turn "+4930…" into " 4930…":
// such a leading space before digits is read back as "+".
func QueryNumber(s string) string {
	if rest, ok := strings.CutPrefix(s, " "); ok && rest != "" && strings.Trim(rest, "0123456789") == "" {
		return "+" + rest
	}
	return strings.TrimSpace(s)
}

func (s *Server) listCalls(w http.ResponseWriter, r *http.Request) {
	q, err := s.callQuery(r)
	if err != nil {
		WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	items, next, err := s.opts.Calls.List(r.Context(), q)
	if errors.Is(err, storage.ErrInvalidCursor) {
		WriteError(w, http.StatusBadRequest, "cursor: not a cursor from a previous page")
		return
	}
	if err != nil {
		s.internal(w, r, err)
		return
	}
	out := CallList{Items: make([]Call, len(items)), Next: next}
	for i, rec := range items {
		out.Items[i] = NewCall(rec, s.loc)
	}
	WriteJSON(w, http.StatusOK, out)
}

func (s *Server) getCall(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	rec, err := s.opts.Calls.Get(r.Context(), id)
	if errors.Is(err, storage.ErrNotFound) {
		WriteError(w, http.StatusNotFound, fmt.Sprintf("call %q not found", id))
		return
	}
	if err != nil {
		s.internal(w, r, err)
		return
	}
	WriteJSON(w, http.StatusOK, NewCall(rec, s.loc))
}

// internal logs the cause and answers 500 without it: storage errors may
// name files and queries that are not the client's business.
func (s *Server) internal(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil {
		return // the client has gone
	}
	s.log.Error("http request failed", zap.String("method", r.Method), zap.String("path", r.URL.Path), zap.Error(err))
	WriteError(w, http.StatusInternalServerError, "internal error")
}
