package notify_test

import (
	"github.com/switchboard-sip/switchboard/cdr"

	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"github.com/switchboard-sip/switchboard/internal/mailtest"
	"io"
	"mime"
	"net"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/switchboard-sip/switchboard/callctl"
	"github.com/switchboard-sip/switchboard/configs"
	"github.com/switchboard-sip/switchboard/contacts"
	"github.com/switchboard-sip/switchboard/metrics"
	"github.com/switchboard-sip/switchboard/missed"
	"github.com/switchboard-sip/switchboard/notify"
	"github.com/switchboard-sip/switchboard/storage"
	"github.com/switchboard-sip/switchboard/storage/storagetest"
)

// ---------------------------------------------------------------- SMTP

// smtpServer is a real SMTP server on loopback (internal/mailtest) that
// hands every message it accepts to msgs.
type smtpServer struct {
	addr string
	msgs chan mailtest.Message
}

// startSMTP serves SMTP on addr ("127.0.0.1:0" for any port) until the
// test ends.
func startSMTP(t *testing.T, addr string) *smtpServer {
	t.Helper()
	s := &smtpServer{msgs: make(chan mailtest.Message, 100)}
	s.addr = mailtest.Serve(t, addr, s.msgs)
	return s
}

// ---------------------------------------------------------------- HTTP

// hit is one request a test HTTP receiver got.
type hit struct {
	method string
	url    string
	header http.Header
	body   []byte
}

// receiver is a real HTTP server on loopback answering each request with
// the next status of its script (the last one repeats).
type receiver struct {
	srv    *httptest.Server
	mu     sync.Mutex
	script []int
	hits   chan hit
}

func newReceiver(t *testing.T, script ...int) *receiver {
	t.Helper()
	if len(script) == 0 {
		script = []int{200}
	}
	r := &receiver{script: script, hits: make(chan hit, 100)}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		code := r.script[0]
		if len(r.script) > 1 {
			r.script = r.script[1:]
		}
		r.mu.Unlock()
		r.hits <- hit{method: req.Method, url: req.URL.String(), header: req.Header.Clone(), body: b}
		w.WriteHeader(code)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// ---------------------------------------------------------------- setup

const configYAML = `
timezone: Europe/Berlin
sip:
  listen: [udp://127.0.0.1:5060]
  pbx: sip:127.0.0.1:5080
  trunks:
    - {name: carrier, match: [127.0.0.1/32], outbound: "sip:127.0.0.1:5090", region: DE}
hotlines:
  - name: acme
    numbers: ["+49301234560"]
    company: ACME GmbH
    recipients: [desk@acme.example, "+4917012345"]
  - name: beta
    numbers: ["+49301234561"]
    company: Beta AG
missed:
  email: {smtp: "%s", from: switchboard@example.com, to: [reception@example.com],
          caller_as_sender: %t, vcard: %t, link_prefix: "%s"}
  sms: {url: "%s", method: %s, auth_header: "Bearer sms-key", to: ["+4917099999"], from_caller: true}
  webhook: {url: "%s", secret: "s3cret"}
`

type setup struct {
	smtp          string // smtp:// URL; "" for none
	sms, webhook  string
	callerSender  bool
	vcard         bool
	prefix        string
	smsMethod     string
	maxAttempts   int
	onlyChannel   string // keep one channel
	withoutOthers bool
}

type env struct {
	t        *testing.T
	cfg      *configs.Config
	db       *storage.DB
	met      *metrics.Metrics
	n        *notify.Notifier
	outcomes chan notify.Outcome
	opts     notify.Options
}

func newEnv(t *testing.T, s setup) *env {
	t.Helper()
	if s.prefix == "" {
		s.prefix = "tel:"
	}
	if s.smsMethod == "" {
		s.smsMethod = "POST"
	}
	cfg, err := configs.Parse([]byte(fmt.Sprintf(configYAML, s.smtp, s.callerSender, s.vcard, s.prefix, s.sms, s.smsMethod, s.webhook)))
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, cfg: cfg, met: metrics.New(), outcomes: make(chan notify.Outcome, 100)}
	e.db, err = storage.Open(storagetest.Target(t, "sb"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.db.Close() })
	e.opts = notify.Options{DB: e.db, Config: cfg, Metrics: e.met, MaxAttempts: s.maxAttempts,
		BaseDelay: 20 * time.Millisecond, MaxDelay: 200 * time.Millisecond, Poll: 50 * time.Millisecond,
		OnOutcome: func(o notify.Outcome) { e.outcomes <- o }}
	e.start()
	return e
}

// start (re)starts the notifier on the same database.
func (e *env) start() {
	e.t.Helper()
	n, err := notify.New(context.Background(), e.opts)
	if err != nil {
		e.t.Fatal(err)
	}
	e.n = n
	e.t.Cleanup(func() { n.Close(context.Background()) })
}

func (e *env) stop() {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.n.Close(ctx); err != nil {
		e.t.Fatal(err)
	}
}

var started = time.Date(2030, 3, 4, 9, 15, 0, 0, time.UTC)

func (e *env) notice(id string, hotline int) missed.Notice {
	ringing, ended := started.Add(time.Second), started.Add(9*time.Second)
	return missed.Notice{
		Entry: missed.Entry{ID: id, CallID: "cid-" + id, RecordID: "r-" + id, Kind: missed.KindMissed, ContactID: 7,
			Caller: "+4930111222", CallerName: "Jane Doe", Hotline: e.cfg.Hotlines[hotline].Name, Status: missed.Open,
			Count: 1, CreatedAt: ended, Day: "2030-03-04"},
		Record: cdr.Record{ID: "r-" + id, CallID: "cid-" + id, Direction: callctl.Inbound, Caller: "+4930111222",
			CallerRaw: "030111222", CallerName: "Jane", Called: "+49301234560", Hotline: e.cfg.Hotlines[hotline].Name,
			ContactID: 7, StartedAt: started, RingingAt: &ringing, EndedAt: &ended, RingMS: 8000, SIPStatus: 487,
			Disposition: cdr.NoAnswer, MissedID: id},
		Contact: &contacts.Contact{ID: 7, Name: "Jane <b>Doe</b>", Company: "Doe & Co", Email: "jane@example.com",
			Tags: []string{"vip"}, Numbers: []contacts.Phone{{E164: "+4930111222", Raw: "030 111222"}}},
		Hotline: &e.cfg.Hotlines[hotline],
	}
}

// enqueue writes a notice's rows in a transaction of its own, as the
// missed-call service does, and returns how many were added.
func (e *env) enqueue(nt missed.Notice) int {
	e.t.Helper()
	ctx := context.Background()
	tx, err := e.db.BeginTx(ctx, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	defer tx.Rollback()
	k, err := e.n.Enqueue(ctx, tx, nt)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		e.t.Fatal(err)
	}
	e.n.Kick()
	return k
}

// await waits for outcomes until one with status on channel arrives.
func (e *env) await(channel, status string) notify.Outcome {
	e.t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case o := <-e.outcomes:
			if o.Channel == channel && o.Status == status {
				return o
			}
		case <-timeout:
			e.t.Fatalf("no %s outcome on %s within 10s", status, channel)
		}
	}
}

func (e *env) rows(missedID string) []notify.Row {
	e.t.Helper()
	rows, err := e.n.Rows(context.Background(), missedID)
	if err != nil {
		e.t.Fatal(err)
	}
	return rows
}

// ---------------------------------------------------------------- tests

func TestEmail(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name         string
		callerSender bool
		vcard        bool
		prefix       string
		wantFrom     string
	}{
		{name: "caller as sender, vcard", callerSender: true, vcard: true, prefix: "tel:", wantFrom: "jane@example.com"},
		{name: "own sender, no vcard", prefix: "tel:", wantFrom: "switchboard@example.com"},
		{name: "callto links", callerSender: true, vcard: true, prefix: "callto:", wantFrom: "jane@example.com"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			srv := startSMTP(t, "127.0.0.1:0")
			e := newEnv(t, setup{smtp: "smtp://" + srv.addr, callerSender: c.callerSender, vcard: c.vcard, prefix: c.prefix})
			if k := e.enqueue(e.notice("m1", 0)); k != 1 {
				t.Fatalf("%d rows queued, want 1 (email only)", k)
			}
			e.await(notify.ChannelEmail, notify.StatusSent)
			var got mailtest.Message
			select {
			case got = <-srv.msgs:
			case <-time.After(10 * time.Second):
				t.Fatal("no email")
			}
			if got.From != "switchboard@example.com" || len(got.To) != 1 || got.To[0] != "desk@acme.example" {
				t.Errorf("envelope from %q to %v, want switchboard@example.com to the hotline's desk@acme.example", got.From, got.To)
			}
			m, leaves := mailtest.Parse(t, got.Data)
			from, err := mail.ParseAddress(m.Header.Get("From"))
			if err != nil || from.Address != c.wantFrom {
				t.Errorf("From %q (%v), want %s", m.Header.Get("From"), err, c.wantFrom)
			}
			sender := m.Header.Get("Sender")
			if c.wantFrom != "switchboard@example.com" && !strings.Contains(sender, "switchboard@example.com") {
				t.Errorf("Sender %q, want switchboard@example.com", sender)
			}
			if subj, _ := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject")); !strings.Contains(subj, "+4930111222") || !strings.Contains(subj, "ACME GmbH") {
				t.Errorf("Subject %q: want the caller's number and the company", subj)
			}
			link := c.prefix + "+4930111222"
			text, html := mailtest.Find(leaves, "text/plain"), mailtest.Find(leaves, "text/html")
			if text == nil || !strings.Contains(text.Body, link) {
				t.Errorf("text part without %s: %+v", link, text)
			}
			if html == nil || !strings.Contains(html.Body, `href="`+link+`"`) {
				t.Errorf("html part without a link to %s: %+v", link, html)
			} else if strings.Contains(html.Body, "<b>Doe</b>") || !strings.Contains(html.Body, "&lt;b&gt;") {
				t.Errorf("html part does not escape the contact's name:\n%s", html.Body)
			}
			card := mailtest.Find(leaves, "text/vcard")
			if !c.vcard {
				if card != nil {
					t.Errorf("vcard attached although switched off")
				}
				return
			}
			if card == nil {
				t.Fatalf("no vcard attachment among %+v", leaves)
			}
			for _, want := range []string{"BEGIN:VCARD", "VERSION:3.0", "FN:Jane <b>Doe</b>", "ORG:Doe & Co", "EMAIL:jane@example.com", "+4930111222", "CATEGORIES:vip"} {
				if !strings.Contains(card.Body, want) {
					t.Errorf("vcard without %q:\n%s", want, card.Body)
				}
			}
			if !strings.HasSuffix(card.Filename, ".vcf") {
				t.Errorf("vcard file name %q", card.Filename)
			}
		})
	}
}

func TestSMS(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		method  string
		hotline int
		wantTo  string
	}{
		{name: "post to the hotline's number", method: "POST", hotline: 0, wantTo: "+4917012345"},
		{name: "get to the global number", method: "GET", hotline: 1, wantTo: "+4917099999"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			rcv := newReceiver(t, 200)
			e := newEnv(t, setup{sms: rcv.srv.URL + "/send", smsMethod: c.method})
			e.enqueue(e.notice("m1", c.hotline))
			e.await(notify.ChannelSMS, notify.StatusSent)
			h := <-rcv.hits
			if h.method != c.method || h.header.Get("Authorization") != "Bearer sms-key" {
				t.Errorf("%s with Authorization %q, want %s with the configured header", h.method, h.header.Get("Authorization"), c.method)
			}
			var got struct{ To, From, Text string }
			if c.method == "GET" {
				q, _ := http.NewRequest("GET", h.url, nil)
				v := q.URL.Query()
				got.To, got.From, got.Text = v.Get("to"), v.Get("from"), v.Get("text")
			} else if err := json.Unmarshal(h.body, &got); err != nil {
				t.Fatalf("body %s: %v", h.body, err)
			}
			if got.To != c.wantTo || got.From != "+4930111222" || !strings.Contains(got.Text, "+4930111222") {
				t.Errorf("sms %+v: want to %s from the caller +4930111222", got, c.wantTo)
			}
		})
	}
}

func TestWebhookSigned(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t, 204)
	e := newEnv(t, setup{webhook: rcv.srv.URL + "/hook"})
	e.enqueue(e.notice("m1", 0))
	e.await(notify.ChannelWebhook, notify.StatusSent)
	h := <-rcv.hits
	mac := hmac.New(sha256.New, []byte("s3cret"))
	mac.Write(h.body)
	if want := "sha256=" + hex.EncodeToString(mac.Sum(nil)); h.header.Get("X-Switchboard-Signature") != want {
		t.Errorf("signature %q, want %q", h.header.Get("X-Switchboard-Signature"), want)
	}
	var p map[string]json.RawMessage
	if err := json.Unmarshal(h.body, &p); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"event", "missed", "call", "contact", "hotline"} {
		if _, ok := p[k]; !ok {
			t.Errorf("payload without %q: %s", k, h.body)
		}
	}
	var body notify.Payload
	if err := json.Unmarshal(h.body, &body); err != nil {
		t.Fatal(err)
	}
	if body.Event != "missed.created" || body.Missed.ID != "m1" || body.Call.Caller != "+4930111222" ||
		body.Contact == nil || body.Contact.Email != "jane@example.com" || body.Hotline == nil || body.Hotline.Company != "ACME GmbH" {
		t.Errorf("payload %s", h.body)
	}
	// Times are in the configured zone (Europe/Berlin, UTC+1 in March).
	if !strings.HasSuffix(body.Call.StartedAt, "+01:00") {
		t.Errorf("started_at %q, want Berlin time", body.Call.StartedAt)
	}
}

func TestWebhookRetriesThenDeliversOnce(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t, 500, 500, 200)
	e := newEnv(t, setup{webhook: rcv.srv.URL})
	e.enqueue(e.notice("m1", 0))
	e.await(notify.ChannelWebhook, notify.StatusSent)
	rows := e.rows("m1")
	if len(rows) != 1 || rows[0].Status != notify.StatusSent || rows[0].Attempts != 3 || rows[0].SentAt == nil {
		t.Errorf("rows %+v, want one sent after 3 attempts", rows)
	}
	ids := map[string]bool{}
	for range 3 {
		ids[(<-rcv.hits).header.Get("X-Switchboard-Delivery")] = true
	}
	if len(ids) != 1 {
		t.Errorf("delivery ids %v: want one id for all tries", ids)
	}
	if got := value(e.met.Notifications.WithLabelValues("webhook", "sent")); got != 1 {
		t.Errorf("sent metric %v, want 1", got)
	}
	if got := value(e.met.Notifications.WithLabelValues("webhook", "retry")); got != 2 {
		t.Errorf("retry metric %v, want 2", got)
	}
	if len(rcv.hits) != 0 {
		t.Errorf("%d more requests after the 200", len(rcv.hits))
	}
}

func TestGivesUp(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		code     int
		attempts int
	}{
		{"server errors up to the limit", 503, 3},
		{"a permanent refusal at once", 400, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			rcv := newReceiver(t, c.code)
			e := newEnv(t, setup{webhook: rcv.srv.URL, maxAttempts: 3})
			e.enqueue(e.notice("m1", 0))
			o := e.await(notify.ChannelWebhook, notify.StatusFailed)
			if o.Attempt != c.attempts {
				t.Errorf("failed at attempt %d, want %d", o.Attempt, c.attempts)
			}
			rows := e.rows("m1")
			if len(rows) != 1 || rows[0].Status != notify.StatusFailed || !strings.Contains(rows[0].LastError, fmt.Sprint(c.code)) {
				t.Errorf("rows %+v, want failed with the status in last_error", rows)
			}
			if got := value(e.met.Notifications.WithLabelValues("webhook", "failed")); got != 1 {
				t.Errorf("failed metric %v, want 1", got)
			}
		})
	}
}

func TestOnceOnly(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t, 200)
	e := newEnv(t, setup{webhook: rcv.srv.URL})
	if k := e.enqueue(e.notice("m1", 0)); k != 1 {
		t.Fatalf("first enqueue added %d rows, want 1", k)
	}
	e.await(notify.ChannelWebhook, notify.StatusSent)
	if k := e.enqueue(e.notice("m1", 0)); k != 0 {
		t.Errorf("second enqueue of the same entry added %d rows, want 0", k)
	}
	e.stop()
	e.start()
	e.enqueue(e.notice("m2", 0))
	e.await(notify.ChannelWebhook, notify.StatusSent)
	seen := map[string]int{}
	for len(rcv.hits) > 0 {
		var p notify.Payload
		json.Unmarshal((<-rcv.hits).body, &p)
		seen[p.Missed.ID]++
	}
	if seen["m1"] != 1 || seen["m2"] != 1 {
		t.Errorf("deliveries %v, want m1 and m2 once each", seen)
	}
}

// TestNodesShareOutbox runs two notifiers on one database, as two nodes
// do: every row is sent once, whichever node claims it (SPEC §11).
func TestNodesShareOutbox(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t, 200)
	rcv.hits = make(chan hit, 200)
	a := newEnv(t, setup{webhook: rcv.srv.URL})
	b := &env{t: t, cfg: a.cfg, met: metrics.New(), outcomes: make(chan notify.Outcome, 100)}
	b.db = storagetest.Open(t, "sb")
	b.opts = a.opts
	b.opts.DB, b.opts.Metrics = b.db, b.met
	b.opts.OnOutcome = func(o notify.Outcome) { a.outcomes <- o }
	b.start()
	const n = 40
	for i := range n {
		e := a
		if i%2 == 1 {
			e = b
		}
		e.enqueue(e.notice(fmt.Sprint("m", i), 0))
	}
	for range n {
		a.await(notify.ChannelWebhook, notify.StatusSent)
	}
	a.stop()
	b.stop()
	seen := map[string]int{}
	for len(rcv.hits) > 0 {
		var p notify.Payload
		json.Unmarshal((<-rcv.hits).body, &p)
		seen[p.Missed.ID]++
	}
	for i := range n {
		if id := fmt.Sprint("m", i); seen[id] != 1 {
			t.Errorf("%s delivered %d times, want once", id, seen[id])
		}
	}
}

func TestSMTPDownThenBack(t *testing.T) {
	t.Parallel()
	// A port that nothing listens on yet.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	e := newEnv(t, setup{smtp: "smtp://" + addr, vcard: true})
	e.enqueue(e.notice("m1", 0))
	if o := e.await(notify.ChannelEmail, "retry"); o.Err == nil {
		t.Fatal("retry without an error")
	}
	srv := startSMTP(t, addr)
	e.await(notify.ChannelEmail, notify.StatusSent)
	select {
	case <-srv.msgs:
	case <-time.After(5 * time.Second):
		t.Fatal("no email after the server came back")
	}
	e.stop() // nothing in flight any more: a second email would be in msgs now
	if len(srv.msgs) != 0 {
		t.Errorf("%d more emails, want exactly one", len(srv.msgs))
	}
	if rows := e.rows("m1"); len(rows) != 1 || rows[0].Status != notify.StatusSent || rows[0].Attempts < 2 {
		t.Errorf("rows %+v, want one sent after at least 2 attempts", rows)
	}
}

func TestRestartWithPendingSends(t *testing.T) {
	t.Parallel()
	// The receiver takes m1 at once and refuses m2 until the restart.
	var mu sync.Mutex
	healthy := false
	got := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p notify.Payload
		b, _ := io.ReadAll(r.Body)
		json.Unmarshal(b, &p)
		mu.Lock()
		defer mu.Unlock()
		if p.Missed.ID == "m2" && !healthy {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		got[p.Missed.ID]++
	}))
	t.Cleanup(srv.Close)
	e := newEnv(t, setup{webhook: srv.URL})
	e.enqueue(e.notice("m1", 0))
	e.enqueue(e.notice("m2", 0))
	e.await(notify.ChannelWebhook, notify.StatusSent)
	e.await(notify.ChannelWebhook, "retry")
	e.stop()
	if rows := e.rows("m2"); len(rows) != 1 || rows[0].Status != notify.StatusPending {
		t.Fatalf("m2 rows %+v, want pending across the restart", rows)
	}
	mu.Lock()
	healthy = true
	mu.Unlock()
	e.start()
	e.await(notify.ChannelWebhook, notify.StatusSent)
	e.stop()
	mu.Lock()
	defer mu.Unlock()
	if got["m1"] != 1 || got["m2"] != 1 {
		t.Errorf("deliveries %v, want m1 and m2 exactly once", got)
	}
	if depth := value(e.met.OutboxDepth); depth != 0 {
		t.Errorf("outbox depth %v, want 0", depth)
	}
}

func TestRecipients(t *testing.T) {
	t.Parallel()
	srv := startSMTP(t, "127.0.0.1:0")
	rcv := newReceiver(t, 200)
	e := newEnv(t, setup{smtp: "smtp://" + srv.addr, sms: rcv.srv.URL, webhook: rcv.srv.URL})
	cases := []struct {
		hotline int
		want    []string
	}{
		// The hotline lists one address and one number: they replace the
		// global lists of their channel.
		{0, []string{"email desk@acme.example", "sms +4917012345", "webhook " + rcv.srv.URL}},
		{1, []string{"email reception@example.com", "sms +4917099999", "webhook " + rcv.srv.URL}},
	}
	for i, c := range cases {
		id := fmt.Sprintf("m%d", i)
		e.enqueue(e.notice(id, c.hotline))
		var have []string
		for _, r := range e.rows(id) {
			have = append(have, r.Channel+" "+r.Recipient)
		}
		sort.Strings(have)
		if fmt.Sprint(have) != fmt.Sprint(c.want) {
			t.Errorf("hotline %d: rows %v, want %v", c.hotline, have, c.want)
		}
	}
}

// value reads a counter or gauge.
func value(m prometheus.Metric) float64 {
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		return -1
	}
	if c := d.GetCounter(); c != nil {
		return c.GetValue()
	}
	return d.GetGauge().GetValue()
}
