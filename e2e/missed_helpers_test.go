package e2e

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-sip/switchboard/internal/mailtest"

	"github.com/switchboard-sip/switchboard/contacts"
	"github.com/switchboard-sip/switchboard/storage"
)

// Helpers of the missed-call tests: the receivers switchboard notifies (a
// real SMTP server, real HTTP servers for SMS and webhook), a node whose
// config has a hotline and the missed section, and SIPp scenarios for other
// callers, made from ../sipp/uac_cancel.xml.

const (
	hookSecret    = "e2e-secret"
	missedTimeout = 15 * time.Second
)

// httpHit is one request an HTTP receiver got, with its arrival time.
type httpHit struct {
	at     time.Time
	header http.Header
	body   []byte
}

// receivers are the three notification channels' far ends. hooks and sms
// get the requests answered 2xx; a webhook refused while hookDown is set
// goes to hookRefused instead.
type receivers struct {
	smtpAddr    string
	mails       chan mailtest.Message
	sms         chan httpHit
	hooks       chan httpHit
	hookRefused chan httpHit
	hookDown    atomic.Bool
	smsURL      string
	hookURL     string
}

// startReceivers starts the receivers; with smtpLater the SMTP address is
// reserved but nothing listens on it until startSMTP.
func startReceivers(t testing.TB, smtpLater bool) *receivers {
	t.Helper()
	r := &receivers{mails: make(chan mailtest.Message, 1000), sms: make(chan httpHit, 1000), hooks: make(chan httpHit, 1000),
		hookRefused: make(chan httpHit, 1000)}
	if smtpLater {
		r.smtpAddr = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	} else {
		r.startSMTP(t)
	}
	sms := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.sms <- httpHit{at: time.Now(), header: req.Header.Clone(), body: b}
	}))
	t.Cleanup(sms.Close)
	hooks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		h := httpHit{at: time.Now(), header: req.Header.Clone(), body: b}
		if r.hookDown.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			r.hookRefused <- h
			return
		}
		r.hooks <- h
	}))
	t.Cleanup(hooks.Close)
	r.smsURL = sms.URL + "/sms"
	r.hookURL = hooks.URL + "/hook"
	return r
}

// startSMTP serves SMTP on the receivers' address (a fresh one when none
// is set yet).
func (r *receivers) startSMTP(t testing.TB) {
	t.Helper()
	addr := r.smtpAddr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	r.smtpAddr = mailtest.Serve(t, addr, r.mails)
}

// missedConfig is the part of the config the missed-call tests add; extra
// goes into the missed section (indented by two spaces). min_ring is left
// at its default, 2s.
func (r *receivers) missedConfig(extra string) string {
	return fmt.Sprintf(`hotlines:
  - name: acme
    numbers: ["%s"]
    company: ACME GmbH
missed:
%s  email: {smtp: "smtp://%s", from: switchboard@example.com, to: [desk@example.com],
          caller_as_sender: true, vcard: true, link_prefix: "tel:"}
  sms: {url: "%s", to: ["+4917012345"], from_caller: true, auth_header: "Bearer e2e"}
  webhook: {url: "%s", secret: %q}
`, hotlineNumber, extra, r.smtpAddr, r.smsURL, r.hookURL, hookSecret)
}

// verifySignature checks X-Switchboard-Signature against the body.
func verifySignature(h httpHit) error {
	mac := hmac.New(sha256.New, []byte(hookSecret))
	mac.Write(h.body)
	want := "sha256=" + hex.EncodeToString(mac.Sum(nil))
	if got := h.header.Get("X-Switchboard-Signature"); !hmac.Equal([]byte(got), []byte(want)) {
		return fmt.Errorf("signature %q, want %q", got, want)
	}
	return nil
}

// newMissedNode is newNode with a hotline, the missed section and internal
// extensions in the config, and contacts stored before the start.
func newMissedNode(t *testing.T, r *receivers, missedExtra string, people ...contacts.Contact) *node {
	t.Helper()
	n := prepareNode(t, nodeOptions{})
	cfg := strings.Replace(n.config(), "numbers:\n  region: DE\n", "numbers:\n  region: DE\n  internal: [\"1xx\"]\n", 1)
	cfg += r.missedConfig(missedExtra)
	n.launch(cfg, people)
	return n
}

// seedContacts stores contacts in the node's database before it starts, as
// an import would.
func seedContacts(t *testing.T, path string, people []contacts.Contact) {
	t.Helper()
	ctx := context.Background()
	db, err := storage.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	store, err := contacts.NewStore(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range people {
		if _, err := store.Create(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
}

// callerScenario writes a copy of uac_cancel.xml whose caller is from (a
// number or extension), or anonymous, and returns its path relative to
// ../sipp, the way startSIPp takes scenarios.
func callerScenario(t testing.TB, from string, anonymous bool) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(scenarioDir, "uac_cancel.xml"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	if anonymous {
		s = strings.ReplaceAll(s, `"Trunk Caller" <sip:+4930111222@[local_ip]:[local_port]>`, `"Anonymous" <sip:anonymous@anonymous.invalid>`)
		s = strings.ReplaceAll(s, "      P-Asserted-Identity: <sip:+4930111222@[local_ip]>\n", "      Privacy: id\n")
	} else {
		s = strings.ReplaceAll(s, trunkCaller, from)
	}
	path := filepath.Join(t.TempDir(), "uac_cancel_from.xml")
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	rel, err := filepath.Rel(scenarioDir, path)
	if err != nil {
		t.Fatal(err)
	}
	return rel
}

// missedEntry is an entry as GET /api/missed returns it (SPEC §8).
type missedEntry struct {
	ID          string  `json:"id"`
	CallID      string  `json:"call_id"`
	ContactID   *int64  `json:"contact_id"`
	Caller      string  `json:"caller"`
	Hotline     string  `json:"hotline"`
	Status      string  `json:"status"`
	Count       int     `json:"count"`
	Exception   string  `json:"exception"`
	NotifiedAt  *string `json:"notified_at"`
	ProcessedAt *string `json:"processed_at"`
	ResolvedBy  string  `json:"resolved_by"`
}

func (n *node) missedEntries() ([]missedEntry, error) {
	return getList[missedEntry](n, "/api/missed?limit=100")
}

// waitMissed polls /api/missed until the entry of callID satisfies cond.
func (n *node) waitMissed(callID, what string, cond func(missedEntry) bool) missedEntry {
	t := n.t
	t.Helper()
	deadline := time.Now().Add(missedTimeout)
	last := "nothing yet"
	for {
		list, err := n.missedEntries()
		if err != nil {
			last = err.Error()
		} else {
			last = fmt.Sprintf("no entry for call %s among %d", callID, len(list))
			for _, e := range list {
				if e.CallID == callID {
					if cond(e) {
						return e
					}
					b, _ := json.Marshal(e)
					last = string(b)
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("missed entry of %s: not %s within %v; last seen: %s", callID, what, missedTimeout, last)
		}
		time.Sleep(50 * time.Millisecond) // entries are written asynchronously: poll the API
	}
}

// next waits for the next item of a channel.
func next[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(missedTimeout):
		t.Fatalf("no %s within %v", what, missedTimeout)
	}
	var zero T
	return zero
}

// quietWindow is how long a test waits to be sure no notification comes:
// far longer than a queued notification takes to arrive on loopback.
const quietWindow = 1500 * time.Millisecond

// expectQuiet fails the test when any channel receives a notification
// within quietWindow: "no notification" must hold for a while, not only at
// the moment of asking.
func (r *receivers) expectQuiet(t testing.TB, what string) {
	t.Helper()
	timer := time.NewTimer(quietWindow)
	defer timer.Stop()
	select {
	case <-r.hooks:
		t.Errorf("%s: a webhook arrived", what)
	case <-r.mails:
		t.Errorf("%s: an email arrived", what)
	case <-r.sms:
		t.Errorf("%s: an SMS arrived", what)
	case <-timer.C:
	}
}
