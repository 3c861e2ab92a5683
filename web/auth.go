package web

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/switchboard-sip/switchboard/wire"
)

// Names the board's sign-in uses.
const (
	SessionCookie = "sb_session"
	CSRFHeader    = "X-CSRF-Token"
	SessionPath   = "/api/session"
)

// Defaults of AuthOptions.
const (
	DefaultSessionTTL    = 12 * time.Hour // a receptionist's shift
	DefaultMaxFailures   = 5
	DefaultFailureWindow = time.Minute
)

// AuthOptions tune Auth. Zero values take the defaults.
type AuthOptions struct {
	// SessionTTL is how long a board sign-in lasts.
	SessionTTL time.Duration
	// MaxFailures wrong tokens from one client address within
	// FailureWindow make it wait (429) until the window has passed.
	MaxFailures   int
	FailureWindow time.Duration
	// Secret is mixed into the session signing key besides the token, so
	// that a deployment can invalidate sessions without a new token. Every
	// node behind one load balancer must have the same.
	Secret []byte
	// OnSignIn is told of every board sign-in, e.g. to record it where other
	// nodes see it.
	OnSignIn func(time.Time)
	Log      *zap.Logger
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Auth puts board sign-in in front of a Server: a POST of the token to
// /api/session gives a session cookie that /api/* accepts in place of the
// Bearer header. Sessions are signed, not stored, so that any node sharing
// the token accepts them (no node-local state, SPEC §1). Requests with a
// cookie that change state need the CSRF token given at sign-in in the
// X-CSRF-Token header (double submit); Bearer requests need none, since a
// browser never adds that header on its own. Wrong tokens are answered 401
// and, repeated, 429 per client address.
type Auth struct {
	s     *Server
	o     AuthOptions
	key   []byte
	token string

	lastSignIn atomic.Int64 // unix nanoseconds; 0 = never

	mu       sync.Mutex
	failures map[string]*failure
}

type failure struct {
	n     int
	since time.Time // start of the window
}

// maxTracked bounds the failure table: an attack from many addresses must
// not grow it without end. Beyond it new addresses are not tracked (the
// token itself is the defence; the limit only slows guessing).
const maxTracked = 10000

// NewAuth builds the sign-in layer for s, using s's token.
func NewAuth(s *Server, o AuthOptions) *Auth {
	if o.SessionTTL <= 0 {
		o.SessionTTL = DefaultSessionTTL
	}
	if o.MaxFailures <= 0 {
		o.MaxFailures = DefaultMaxFailures
	}
	if o.FailureWindow <= 0 {
		o.FailureWindow = DefaultFailureWindow
	}
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	// The key derives from the token: a new token ends every session.
	m := hmac.New(sha256.New, []byte(s.opts.Token))
	m.Write([]byte("switchboard board session v1\x00"))
	m.Write(o.Secret)
	return &Auth{s: s, o: o, key: m.Sum(nil), token: s.opts.Token, failures: map[string]*failure{}}
}

// LastSignIn is the time of the last board sign-in on this node (a POST of
// the token, or a board opening with a valid session or without a token);
// zero when nobody signed in since start. The missed-call exceptions use it ("no
// receptionist has signed in since the last notification").
func (a *Auth) LastSignIn() time.Time {
	n := a.lastSignIn.Load()
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// Register adds /api/session to s as well, for a server that is not
// wrapped: without a token the board then needs nothing else. Wrapped, the
// sign-in layer answers these paths before the server sees them.
func (a *Auth) Register(s *Server) {
	s.HandleFunc("GET /api/session", a.session)
	s.HandleFunc("POST /api/session", a.session)
	s.HandleFunc("DELETE /api/session", a.session)
}

// Wrap returns next (normally the Server) behind the sign-in layer.
func (a *Auth) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.serve(next, w, r)
	})
}

func isUnsafe(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return true
}

func (a *Auth) serve(next http.Handler, w http.ResponseWriter, r *http.Request) {
	p := cleanPath(r.URL.Path)
	if p == SessionPath {
		a.session(w, r)
		return
	}
	if isUnsafe(r.Method) && crossOrigin(r) {
		// A page of another site posting to the board's API with the
		// receptionist's browser: refused whatever the credentials.
		WriteError(w, http.StatusForbidden, "cross-origin request refused")
		return
	}
	if a.token == "" || !a.s.needsToken(r) {
		next.ServeHTTP(w, r)
		return
	}
	ip := clientIP(r)
	if wait := a.limited(ip); wait > 0 {
		tooMany(w, wait)
		return
	}
	if _, ok := bearer(r.Header.Get("Authorization")); ok || r.URL.Query().Has("access_token") {
		if a.s.authorized(r) {
			next.ServeHTTP(w, r)
			return
		}
		a.fail(ip)
		unauthorized(w, "missing or wrong token")
		return
	}
	c, err := r.Cookie(SessionCookie)
	if err != nil {
		unauthorized(w, "missing or wrong token")
		return
	}
	sess, ok := a.verify(c.Value)
	if !ok {
		unauthorized(w, "session expired or invalid, sign in again")
		return
	}
	if isUnsafe(r.Method) {
		given := r.Header.Get(CSRFHeader)
		if subtle.ConstantTimeCompare([]byte(given), []byte(a.csrf(sess.nonce))) != 1 {
			WriteError(w, http.StatusForbidden, "missing or wrong CSRF token")
			return
		}
	}
	// The server checks the Bearer header itself: the session stands in
	// for it on this request only.
	r2 := r.Clone(r.Context())
	r2.Header.Set("Authorization", "Bearer "+a.token)
	next.ServeHTTP(w, r2)
}

// SessionInfo is the body of GET and POST /api/session.
type SessionInfo struct {
	// AuthRequired is true when the API has a token.
	AuthRequired bool `json:"auth_required"`
	SignedIn     bool `json:"signed_in"`
	// CSRF goes in X-CSRF-Token on requests that change state.
	CSRF      string  `json:"csrf"`
	ExpiresAt *string `json:"expires_at"`
}

func (a *Auth) session(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		a.sessionInfo(w, r)
	case http.MethodPost:
		a.signIn(w, r)
	case http.MethodDelete:
		a.signOut(w, r)
	default:
		w.Header().Set("Allow", "GET, HEAD, POST, DELETE")
		WriteError(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed on "+SessionPath)
	}
}

func (a *Auth) sessionInfo(w http.ResponseWriter, r *http.Request) {
	info := SessionInfo{AuthRequired: a.token != ""}
	switch {
	case a.token == "":
		info.SignedIn = true
	default:
		if c, err := r.Cookie(SessionCookie); err == nil {
			if sess, ok := a.verify(c.Value); ok {
				info.SignedIn, info.CSRF = true, a.csrf(sess.nonce)
				exp := wire.FormatTime(sess.expires, a.s.loc)
				info.ExpiresAt = &exp
			}
		}
	}
	if info.SignedIn && r.Method == http.MethodGet {
		// The board asks this each time it opens: a receptionist coming
		// back with a session from yesterday, or opening a board that
		// needs no token, is present as much as one who types the token.
		a.noteSignIn(a.o.Now())
	}
	WriteJSON(w, http.StatusOK, info)
}

// signIn takes the token as JSON {"token": "…"} or as a form field and
// answers with a session cookie and the CSRF token.
func (a *Auth) signIn(w http.ResponseWriter, r *http.Request) {
	if crossOrigin(r) {
		WriteError(w, http.StatusForbidden, "cross-origin request refused")
		return
	}
	if a.token == "" {
		WriteJSON(w, http.StatusOK, SessionInfo{SignedIn: true})
		return
	}
	ip := clientIP(r)
	if wait := a.limited(ip); wait > 0 {
		tooMany(w, wait)
		return
	}
	given, err := readToken(r)
	if err != nil {
		WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	h1, h2 := sha256.Sum256([]byte(given)), sha256.Sum256([]byte(a.token))
	if subtle.ConstantTimeCompare(h1[:], h2[:]) != 1 {
		a.fail(ip)
		a.o.Log.Warn("board sign-in with a wrong token", zap.String("remote", ip))
		unauthorized(w, "wrong token")
		return
	}
	a.forgive(ip)
	now := a.o.Now()
	sess := session{expires: now.Add(a.o.SessionTTL)}
	if _, err := rand.Read(sess.nonce[:]); err != nil {
		a.s.internal(w, r, err)
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: SessionCookie, Value: a.sign(sess), Path: "/",
		Expires: sess.expires, MaxAge: int(a.o.SessionTTL / time.Second),
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
	})
	a.noteSignIn(now)
	a.o.Log.Info("board sign-in", zap.String("remote", ip))
	exp := wire.FormatTime(sess.expires, a.s.loc)
	WriteJSON(w, http.StatusOK, SessionInfo{AuthRequired: true, SignedIn: true, CSRF: a.csrf(sess.nonce), ExpiresAt: &exp})
}

func (a *Auth) signOut(w http.ResponseWriter, r *http.Request) {
	if crossOrigin(r) {
		WriteError(w, http.StatusForbidden, "cross-origin request refused")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	WriteJSON(w, http.StatusOK, SessionInfo{AuthRequired: a.token != "", SignedIn: a.token == ""})
}

func (a *Auth) noteSignIn(now time.Time) {
	a.lastSignIn.Store(now.UnixNano())
	if a.o.OnSignIn != nil {
		a.o.OnSignIn(now)
	}
}

// readToken reads the token of a sign-in from a small body.
func readToken(r *http.Request) (string, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 4096))
	if err != nil {
		return "", errBadSignIn
	}
	ct := r.Header.Get("Content-Type")
	if strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
		v, err := url.ParseQuery(string(body))
		if err != nil {
			return "", errBadSignIn
		}
		return v.Get("token"), nil
	}
	var in struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return "", errBadSignIn
	}
	return in.Token, nil
}

type signInError string

func (e signInError) Error() string { return string(e) }

const errBadSignIn = signInError(`body: want {"token": "…"}`)

// session is the content of a session cookie.
type session struct {
	expires time.Time
	nonce   [16]byte
}

func (a *Auth) mac(kind string, b []byte) []byte {
	m := hmac.New(sha256.New, a.key)
	m.Write([]byte(kind))
	m.Write(b)
	return m.Sum(nil)
}

// sign encodes a session as base64(expiry, nonce) "." base64(HMAC).
func (a *Auth) sign(s session) string {
	b := make([]byte, 8, 24)
	binary.BigEndian.PutUint64(b, uint64(s.expires.Unix()))
	b = append(b, s.nonce[:]...)
	enc := base64.RawURLEncoding
	return enc.EncodeToString(b) + "." + enc.EncodeToString(a.mac("session\x00", b))
}

func (a *Auth) verify(v string) (session, bool) {
	enc := base64.RawURLEncoding
	p, m, ok := strings.Cut(v, ".")
	if !ok {
		return session{}, false
	}
	b, err1 := enc.DecodeString(p)
	sum, err2 := enc.DecodeString(m)
	if err1 != nil || err2 != nil || len(b) != 24 || !hmac.Equal(sum, a.mac("session\x00", b)) {
		return session{}, false
	}
	var s session
	s.expires = time.Unix(int64(binary.BigEndian.Uint64(b[:8])), 0)
	copy(s.nonce[:], b[8:])
	if !a.o.Now().Before(s.expires) {
		return session{}, false
	}
	return s, true
}

// csrf is the CSRF token of a session: derived from it, so that nothing
// needs storing and another session's token does not fit.
func (a *Auth) csrf(nonce [16]byte) string {
	return base64.RawURLEncoding.EncodeToString(a.mac("csrf\x00", nonce[:]))
}

// limited says how long ip must still wait after too many wrong tokens.
func (a *Auth) limited(ip string) time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	f := a.failures[ip]
	if f == nil {
		return 0
	}
	end := f.since.Add(a.o.FailureWindow)
	now := a.o.Now()
	if !now.Before(end) {
		delete(a.failures, ip)
		return 0
	}
	if f.n < a.o.MaxFailures {
		return 0
	}
	return end.Sub(now)
}

func (a *Auth) fail(ip string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.o.Now()
	f := a.failures[ip]
	if f != nil && !now.Before(f.since.Add(a.o.FailureWindow)) {
		f = nil
	}
	if f == nil {
		if len(a.failures) >= maxTracked {
			for k, v := range a.failures {
				if !now.Before(v.since.Add(a.o.FailureWindow)) {
					delete(a.failures, k)
				}
			}
			if len(a.failures) >= maxTracked {
				return
			}
		}
		f = &failure{since: now}
		a.failures[ip] = f
	}
	f.n++
}

func (a *Auth) forgive(ip string) {
	a.mu.Lock()
	delete(a.failures, ip)
	a.mu.Unlock()
}

// clientIP is the address the request came from. X-Forwarded-For is not
// read: anyone can send it, and the limit would be worthless.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// crossOrigin reports a browser request sent by a page of another origin.
// Requests without Origin (command-line clients, same-origin GETs) pass.
func crossOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return false
	}
	u, err := url.Parse(o)
	if err != nil || u.Host == "" {
		return true // "null" (sandboxed pages, file://) or garbage
	}
	return !strings.EqualFold(u.Host, r.Host)
}

func unauthorized(w http.ResponseWriter, msg string) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="switchboard"`)
	WriteError(w, http.StatusUnauthorized, msg)
}

func tooMany(w http.ResponseWriter, wait time.Duration) {
	secs := int((wait + time.Second - 1) / time.Second)
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	WriteError(w, http.StatusTooManyRequests, "too many wrong tokens, retry in "+strconv.Itoa(secs)+" s")
}
