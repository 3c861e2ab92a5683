package web

import (
	"github.com/switchboard-sip/switchboard/cdr"

	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"go.uber.org/zap"

	"github.com/switchboard-sip/switchboard/storage"
	"github.com/switchboard-sip/switchboard/storage/callstore"
	"github.com/switchboard-sip/switchboard/wire"
)

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
	out := wire.CallList{Items: make([]wire.Call, len(items)), Next: next}
	for i, rec := range items {
		out.Items[i] = wire.NewCall(rec, s.loc)
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
	WriteJSON(w, http.StatusOK, wire.NewCall(rec, s.loc))
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
