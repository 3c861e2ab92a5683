// Package web is switchboard's HTTP side (SPEC §8): the JSON API, health,
// metrics, and the routes other packages add (contacts, blocks, missed
// calls, events, the board). Every error is JSON, every /api path is behind
// the token when one is set, /healthz never is.
package web

import (
	"github.com/switchboard-sip/switchboard/cdr"

	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/switchboard-sip/switchboard/storage/callstore"
)

// CallReader is what the call endpoints need from the call record store;
// *callstore.Store implements it.
type CallReader interface {
	List(ctx context.Context, q callstore.Query) ([]cdr.Record, string, error)
	Get(ctx context.Context, id string) (cdr.Record, error)
}

// Options configure a Server. All fields are optional: without Calls the call
// endpoints are absent, without Health /healthz always answers ok, without
// Metrics /metrics is absent.
type Options struct {
	Calls CallReader
	// Health is liveness (SPEC §8, §11): nil while the node serves SIP
	// normally; a *DegradedError while it serves SIP without something
	// (the database away or locked, the disk full): /healthz answers 200
	// "degraded" with the reasons, so that a liveness probe does not
	// restart a node that routes calls. Any other error answers 503.
	Health func() error
	// Ready is readiness (SPEC §8): non-nil while starting or draining,
	// when /readyz answers 503 with the error as its status, so that a
	// balancer or orchestrator sends new calls elsewhere.
	Ready func() error
	// SIPTargets, when set, lists the keep-alive state of the PBX and the
	// trunks (SPEC §1) in the body of /healthz.
	SIPTargets func() any
	// Metrics serves /metrics.
	Metrics http.Handler
	// Token, when set, must come as "Authorization: Bearer <token>" on
	// every /api request.
	Token string
	// ProtectMetrics puts /metrics behind the token too.
	ProtectMetrics bool
	Log            *zap.Logger
	// Location is the time zone of times in responses; UTC when nil.
	Location *time.Location
}

// Server is the HTTP handler of the API. Routes registered with Handle
// follow the same rules (token on /api, JSON 404 and 405).
type Server struct {
	opts  Options
	mux   *http.ServeMux
	log   *zap.Logger
	loc   *time.Location
	token [sha256.Size]byte
	now   func() time.Time
}

// New builds the server with its built-in routes.
func New(o Options) *Server {
	s := &Server{opts: o, mux: http.NewServeMux(), log: o.Log, loc: o.Location, now: time.Now}
	if s.log == nil {
		s.log = zap.NewNop()
	}
	if s.loc == nil {
		s.loc = time.UTC
	}
	s.token = sha256.Sum256([]byte(o.Token))
	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.HandleFunc("GET /readyz", s.readyz)
	if o.Metrics != nil {
		s.mux.Handle("GET /metrics", o.Metrics)
	}
	if o.Calls != nil {
		s.mux.HandleFunc("GET /api/calls", s.listCalls)
		s.mux.HandleFunc("GET /api/calls/{id}", s.getCall)
	}
	return s
}

// Handle adds a route (a Go ServeMux pattern such as "GET /api/contacts/{id}").
// Like http.ServeMux it panics when the pattern is invalid or conflicts
// with another: that is a programming error found at startup.
func (s *Server) Handle(pattern string, h http.Handler) {
	s.mux.Handle(pattern, h)
}

// HandleFunc is Handle for a function.
func (s *Server) HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request)) {
	s.mux.HandleFunc(pattern, h)
}

// Location is the time zone responses are written in.
func (s *Server) Location() *time.Location { return s.loc }

// ServeHTTP checks the token, then routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.Error("http handler panic", zap.String("method", r.Method), zap.String("path", r.URL.Path), zap.Any("panic", v), zap.Stack("stack"))
			WriteError(w, http.StatusInternalServerError, "internal error")
		}
	}()
	if s.needsToken(r) && !s.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="switchboard"`)
		WriteError(w, http.StatusUnauthorized, "missing or wrong token")
		return
	}
	if _, pattern := s.mux.Handler(r); !s.routes(r, pattern) {
		s.unmatched(w, r)
		return
	}
	s.mux.ServeHTTP(w, r)
}

// routes tells whether pattern, the mux's match for r, really serves r: an
// /api path caught by a catch-all such as the board's "GET /" is an unknown
// API path, which gets a JSON 404 rather than a page.
func (s *Server) routes(r *http.Request, pattern string) bool {
	if pattern == "" {
		return false
	}
	return !isAPI(cleanPath(r.URL.Path)) || isAPI(patternPath(pattern))
}

// cleanPath is the path as the mux sees it, so that /x/../api cannot slip
// past the token check (the mux redirects such paths anyway, but the check
// must not depend on that).
func cleanPath(p string) string { return path.Clean("/" + p) }

func isAPI(p string) bool { return p == "/api" || strings.HasPrefix(p, "/api/") }

// patternPath is the path part of a ServeMux pattern "[METHOD ][HOST]/PATH".
func patternPath(p string) string {
	if _, rest, ok := strings.Cut(p, " "); ok {
		p = strings.TrimLeft(rest, " \t")
	}
	if i := strings.IndexByte(p, '/'); i > 0 {
		p = p[i:]
	}
	return p
}

func (s *Server) needsToken(r *http.Request) bool {
	if s.opts.Token == "" {
		return false
	}
	p := cleanPath(r.URL.Path)
	return isAPI(p) || (p == "/metrics" && s.opts.ProtectMetrics)
}

func (s *Server) authorized(r *http.Request) bool {
	given, ok := bearer(r.Header.Get("Authorization"))
	if !ok && strings.Contains(r.Header.Get("Accept"), "text/event-stream") {
		// A browser's EventSource cannot set headers; the board passes the
		// token in the query for the event stream only.
		given, ok = r.URL.Query().Get("access_token"), true
	}
	if !ok {
		return false
	}
	// Hashes have one length, so the comparison time says nothing about
	// the token's length either.
	h := sha256.Sum256([]byte(given))
	return subtle.ConstantTimeCompare(h[:], s.token[:]) == 1
}

func bearer(h string) (string, bool) {
	scheme, tok, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return strings.TrimSpace(tok), true
}

// unmatched answers a request no route took: 405 with Allow when the path
// exists for other methods, else 404.
func (s *Server) unmatched(w http.ResponseWriter, r *http.Request) {
	var allowed []string
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		if m == r.Method {
			continue
		}
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, p := s.mux.Handler(probe); s.routes(probe, p) {
			allowed = append(allowed, m)
		}
	}
	if len(allowed) > 0 {
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		WriteError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed on %s", r.Method, r.URL.Path))
		return
	}
	WriteError(w, http.StatusNotFound, fmt.Sprintf("no such path %s", r.URL.Path))
}

// DegradedError is a Health answer for a node that serves calls without
// its database or disk: SIP goes on and writes wait in local queues (SPEC
// §11), so /healthz answers 200 "degraded" with the reasons.
type DegradedError struct {
	Err error
	// Reasons are the causes, one sentence each; empty: Err says it.
	Reasons []string
}

// Error implements error.
func (e *DegradedError) Error() string {
	if e.Err == nil {
		return strings.Join(e.Reasons, "; ")
	}
	return e.Err.Error()
}

// Unwrap gives the cause.
func (e *DegradedError) Unwrap() error { return e.Err }

func (e *DegradedError) reasons() []string {
	if len(e.Reasons) > 0 {
		return e.Reasons
	}
	return []string{e.Error()}
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	body := map[string]any{"status": "ok", "reasons": []string{}}
	if s.opts.SIPTargets != nil {
		body["sip_targets"] = s.opts.SIPTargets()
	}
	if s.opts.Health != nil {
		if err := s.opts.Health(); err != nil {
			var d *DegradedError
			if !errors.As(err, &d) {
				body["status"], body["error"], body["reasons"] = "unavailable", err.Error(), []string{err.Error()}
				WriteJSON(w, http.StatusServiceUnavailable, body)
				return
			}
			body["status"], body["reasons"] = "degraded", d.reasons()
		}
	}
	WriteJSON(w, http.StatusOK, body)
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.opts.Ready != nil {
		if err := s.opts.Ready(); err != nil {
			WriteJSON(w, http.StatusServiceUnavailable, map[string]string{"status": err.Error()})
			return
		}
	}
	WriteJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// WriteJSON writes v as the JSON body with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":"internal error: response not encodable"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// WriteError writes the API's error shape, {"error": msg}, with status.
func WriteError(w http.ResponseWriter, status int, msg string) {
	WriteJSON(w, status, struct {
		Error string `json:"error"`
	}{msg})
}
