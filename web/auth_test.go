package web

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is a settable clock for session expiry and the rate limit.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// authServer is a Server with one read and one write API route, behind
// Auth, on real HTTP.
func authServer(t *testing.T, token string, tlsOn bool) (*Auth, *httptest.Server, *fakeClock) {
	t.Helper()
	s := New(Options{Token: token})
	s.HandleFunc("GET /api/ping", func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, http.StatusOK, map[string]string{"pong": "yes"})
	})
	s.HandleFunc("POST /api/things", func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, http.StatusCreated, map[string]string{"made": "yes"})
	})
	clock := &fakeClock{t: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	a := NewAuth(s, AuthOptions{Now: clock.now, MaxFailures: 3, FailureWindow: time.Minute})
	var srv *httptest.Server
	if tlsOn {
		srv = httptest.NewTLSServer(a.Wrap(s))
	} else {
		srv = httptest.NewServer(a.Wrap(s))
	}
	t.Cleanup(srv.Close)
	return a, srv, clock
}

type authCall struct {
	method, path, body string
	header             map[string]string
	cookie             *http.Cookie
}

func authDo(t *testing.T, client *http.Client, base string, c authCall) (*http.Response, map[string]any) {
	t.Helper()
	var body io.Reader
	if c.body != "" {
		body = strings.NewReader(c.body)
	}
	req, err := http.NewRequest(c.method, base+c.path, body)
	if err != nil {
		t.Fatal(err)
	}
	if c.body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range c.header {
		req.Header.Set(k, v)
	}
	if c.cookie != nil {
		req.AddCookie(c.cookie)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	b, _ := io.ReadAll(resp.Body)
	if len(b) > 0 && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatalf("%s %s: body %q: %v", c.method, c.path, b, err)
		}
	}
	return resp, out
}

func TestAuthNoTokenConfigured(t *testing.T) {
	a, srv, clock := authServer(t, "", false)
	c := srv.Client()
	if resp, _ := authDo(t, c, srv.URL, authCall{method: "GET", path: "/api/ping"}); resp.StatusCode != 200 {
		t.Fatalf("GET /api/ping without token configured: %s", resp.Status)
	}
	resp, body := authDo(t, c, srv.URL, authCall{method: "GET", path: "/api/session"})
	if resp.StatusCode != 200 || body["auth_required"] != false || body["signed_in"] != true {
		t.Fatalf("GET /api/session: %s %v", resp.Status, body)
	}
	// Opening a board that needs no token counts as a sign-in.
	if got := a.LastSignIn(); !got.Equal(clock.now()) {
		t.Fatalf("LastSignIn after the board opened = %v, want %v", got, clock.now())
	}
	// Even without a token, another site's page may not change things.
	resp, _ = authDo(t, c, srv.URL, authCall{method: "POST", path: "/api/things", header: map[string]string{"Origin": "https://evil.example"}})
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-origin POST: %s, want 403", resp.Status)
	}
}

func TestAuthBearer(t *testing.T) {
	_, srv, _ := authServer(t, "s3cret", false)
	c := srv.Client()
	tests := []struct {
		name string
		call authCall
		want int
	}{
		{"no token", authCall{method: "GET", path: "/api/ping"}, 401},
		{"wrong token", authCall{method: "GET", path: "/api/ping", header: map[string]string{"Authorization": "Bearer nope"}}, 401},
		{"right token", authCall{method: "GET", path: "/api/ping", header: map[string]string{"Authorization": "Bearer s3cret"}}, 200},
		{"bearer POST needs no CSRF token", authCall{method: "POST", path: "/api/things", header: map[string]string{"Authorization": "Bearer s3cret"}}, 201},
		{"healthz stays open", authCall{method: "GET", path: "/healthz"}, 200},
		{"session endpoint is open", authCall{method: "GET", path: "/api/session"}, 200},
		{"unknown API path still needs the token", authCall{method: "GET", path: "/api/nothing"}, 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := authDo(t, c, srv.URL, tt.call)
			if resp.StatusCode != tt.want {
				t.Fatalf("%s %s: %s %v, want %d", tt.call.method, tt.call.path, resp.Status, body, tt.want)
			}
			if tt.want == 401 && (body["error"] == nil || resp.Header.Get("WWW-Authenticate") == "") {
				t.Fatalf("401 without error body or WWW-Authenticate: %v %v", body, resp.Header)
			}
		})
	}
}

// dialFrom makes a client whose connections come from local address ip,
// so that the per-address limit can be seen from two addresses.
func dialFrom(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, n, a string) (net.Conn, error) {
		return d.DialContext(ctx, n, a)
	}}}
}

func TestAuthRateLimit(t *testing.T) {
	_, srv, clock := authServer(t, "s3cret", false)
	c := srv.Client()
	wrong := authCall{method: "GET", path: "/api/ping", header: map[string]string{"Authorization": "Bearer guess"}}
	right := authCall{method: "GET", path: "/api/ping", header: map[string]string{"Authorization": "Bearer s3cret"}}
	for i := range 3 {
		if resp, _ := authDo(t, c, srv.URL, wrong); resp.StatusCode != 401 {
			t.Fatalf("wrong token #%d: %s, want 401", i+1, resp.Status)
		}
	}
	resp, _ := authDo(t, c, srv.URL, wrong)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("after 3 wrong tokens: %s (Retry-After %q), want 429 with Retry-After", resp.Status, resp.Header.Get("Retry-After"))
	}
	// While limited, even the right token waits: guessing must not be
	// able to tell a hit.
	if resp, _ := authDo(t, c, srv.URL, right); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("right token while limited: %s, want 429", resp.Status)
	}
	if resp, _ := authDo(t, c, srv.URL, authCall{method: "POST", path: "/api/session", body: `{"token":"s3cret"}`}); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("sign-in while limited: %s, want 429", resp.Status)
	}
	// Another address is not affected.
	other := dialFrom("127.0.0.2")
	if resp, _ := authDo(t, other, srv.URL, right); resp.StatusCode != 200 {
		t.Fatalf("right token from another address: %s, want 200", resp.Status)
	}
	clock.add(61 * time.Second)
	if resp, _ := authDo(t, c, srv.URL, right); resp.StatusCode != 200 {
		t.Fatalf("right token after the window: %s, want 200", resp.Status)
	}
}

func signIn(t *testing.T, c *http.Client, base, token string) (*http.Cookie, string, *http.Response) {
	t.Helper()
	resp, body := authDo(t, c, base, authCall{method: "POST", path: "/api/session", body: `{"token":"` + token + `"}`})
	var cookie *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == SessionCookie {
			cookie = ck
		}
	}
	csrf, _ := body["csrf"].(string)
	return cookie, csrf, resp
}

func TestAuthSessionAndCSRF(t *testing.T) {
	a, srv, clock := authServer(t, "s3cret", false)
	c := srv.Client()
	if !a.LastSignIn().IsZero() {
		t.Fatal("LastSignIn before any sign-in is not zero")
	}
	if cookie, _, resp := signIn(t, c, srv.URL, "wrong"); resp.StatusCode != 401 || cookie != nil {
		t.Fatalf("sign-in with a wrong token: %s, cookie %v", resp.Status, cookie)
	}
	cookie, csrf, resp := signIn(t, c, srv.URL, "s3cret")
	if resp.StatusCode != 200 || cookie == nil || csrf == "" {
		t.Fatalf("sign-in: %s, cookie %v, csrf %q", resp.Status, cookie, csrf)
	}
	if !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode || cookie.Secure {
		t.Fatalf("cookie %+v: want HttpOnly, SameSite=Strict, not Secure over plain HTTP", cookie)
	}
	if got := a.LastSignIn(); !got.Equal(clock.now()) {
		t.Fatalf("LastSignIn = %v, want %v", got, clock.now())
	}
	if strings.Contains(cookie.Value, "s3cret") {
		t.Fatal("the cookie carries the token")
	}

	_, body := authDo(t, c, srv.URL, authCall{method: "GET", path: "/api/session", cookie: cookie})
	if body["signed_in"] != true || body["csrf"] != csrf {
		t.Fatalf("GET /api/session with the cookie: %v", body)
	}

	tests := []struct {
		name string
		call authCall
		want int
	}{
		{"read with the cookie", authCall{method: "GET", path: "/api/ping", cookie: cookie}, 200},
		{"write without CSRF token", authCall{method: "POST", path: "/api/things", cookie: cookie}, 403},
		{"write with a wrong CSRF token", authCall{method: "POST", path: "/api/things", cookie: cookie, header: map[string]string{CSRFHeader: "forged"}}, 403},
		{"write with the CSRF token", authCall{method: "POST", path: "/api/things", cookie: cookie, header: map[string]string{CSRFHeader: csrf}}, 201},
		{"write from another origin", authCall{method: "POST", path: "/api/things", cookie: cookie,
			header: map[string]string{CSRFHeader: csrf, "Origin": "http://evil.example"}}, 403},
		{"write from the same origin", authCall{method: "POST", path: "/api/things", cookie: cookie,
			header: map[string]string{CSRFHeader: csrf, "Origin": srv.URL}}, 201},
		{"tampered cookie", authCall{method: "GET", path: "/api/ping", cookie: &http.Cookie{Name: SessionCookie, Value: tamper(cookie.Value)}}, 401},
		{"garbage cookie", authCall{method: "GET", path: "/api/ping", cookie: &http.Cookie{Name: SessionCookie, Value: "x.y"}}, 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if resp, body := authDo(t, c, srv.URL, tt.call); resp.StatusCode != tt.want {
				t.Fatalf("%s %s: %s %v, want %d", tt.call.method, tt.call.path, resp.Status, body, tt.want)
			}
		})
	}

	// Another session's CSRF token does not fit this one.
	_, csrf2, _ := signIn(t, c, srv.URL, "s3cret")
	if resp, _ := authDo(t, c, srv.URL, authCall{method: "POST", path: "/api/things", cookie: cookie, header: map[string]string{CSRFHeader: csrf2}}); resp.StatusCode != 403 {
		t.Fatalf("CSRF token of another session: %s, want 403", resp.Status)
	}

	// A session from another token (a changed config) is not accepted.
	_, other, _ := authServer(t, "other", false)
	if resp, _ := authDo(t, other.Client(), other.URL, authCall{method: "GET", path: "/api/ping", cookie: cookie}); resp.StatusCode != 401 {
		t.Fatalf("cookie of another token: %s, want 401", resp.Status)
	}

	// Sign-out clears the cookie.
	resp, _ = authDo(t, c, srv.URL, authCall{method: "DELETE", path: "/api/session", cookie: cookie})
	if cs := resp.Cookies(); len(cs) != 1 || cs[0].MaxAge >= 0 {
		t.Fatalf("sign-out cookies %v, want the session cookie removed", cs)
	}

	clock.add(DefaultSessionTTL + time.Second)
	if resp, _ := authDo(t, c, srv.URL, authCall{method: "GET", path: "/api/ping", cookie: cookie}); resp.StatusCode != 401 {
		t.Fatalf("expired session: %s, want 401", resp.Status)
	}
}

func TestAuthSecureCookieOverTLS(t *testing.T) {
	_, srv, _ := authServer(t, "s3cret", true)
	c := srv.Client()
	c.Transport.(*http.Transport).TLSClientConfig = &tls.Config{InsecureSkipVerify: true}
	cookie, _, resp := signIn(t, c, srv.URL, "s3cret")
	if resp.StatusCode != 200 || cookie == nil || !cookie.Secure {
		t.Fatalf("sign-in over TLS: %s, cookie %+v, want Secure", resp.Status, cookie)
	}
}

func TestAuthSignInForm(t *testing.T) {
	_, srv, _ := authServer(t, "s3cret", false)
	resp, err := srv.Client().Post(srv.URL+"/api/session", "application/x-www-form-urlencoded", strings.NewReader("token=s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("form sign-in: %s", resp.Status)
	}
	resp, _ = authDo(t, srv.Client(), srv.URL, authCall{method: "POST", path: "/api/session", body: `not json`})
	if resp.StatusCode != 400 {
		t.Fatalf("bad body: %s, want 400", resp.Status)
	}
	resp, _ = authDo(t, srv.Client(), srv.URL, authCall{method: "PUT", path: "/api/session"})
	if resp.StatusCode != 405 {
		t.Fatalf("PUT /api/session: %s, want 405", resp.Status)
	}
}

// tamper changes one character of the signed part of a cookie value.
func tamper(v string) string {
	b := []byte(v)
	if b[12] == 'B' {
		b[12] = 'C'
	} else {
		b[12] = 'B'
	}
	return string(b)
}
