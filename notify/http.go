package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/template"

	"github.com/switchboard-sip/switchboard/configs"
)

// maxResponse bounds how much of a provider's answer is read (for the
// error text); the rest is discarded.
const maxResponse = 4 << 10

// client is shared by the HTTP channels; timeouts come from the send
// context.
var client = &http.Client{}

// do sends req and turns the answer into a channel error: 2xx succeeds,
// 408, 425, 429 and 5xx are worth a retry, other codes are permanent.
func do(req *http.Request, what string) error {
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	err = fmt.Errorf("%s: %s: %s", what, resp.Status, strings.TrimSpace(string(body)))
	switch c := resp.StatusCode; {
	case c == 408 || c == 425 || c == 429 || c >= 500:
		return err
	default:
		return Permanent(err)
	}
}

// Webhook posts the payload as JSON, signed with HMAC-SHA256 of the body in
// X-Switchboard-Signature ("sha256=<hex>"). X-Switchboard-Delivery carries
// the outbox row id, the same on every retry, so a receiver can drop a
// duplicate.
type Webhook struct {
	url    string
	secret []byte
}

// NewWebhook returns the webhook channel.
func NewWebhook(c configs.Webhook) *Webhook {
	return &Webhook{url: c.URL, secret: []byte(c.Secret)}
}

// Sign is the X-Switchboard-Signature value of a body.
func Sign(secret, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// Send implements Channel.
func (w *Webhook) Send(ctx context.Context, d Delivery) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.Recipient, bytes.NewReader(d.Body))
	if err != nil {
		return Permanent(fmt.Errorf("webhook %s: %w", d.Recipient, err))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "switchboard")
	req.Header.Set("X-Switchboard-Event", d.Payload.Event)
	req.Header.Set("X-Switchboard-Delivery", d.ID)
	req.Header.Set("X-Switchboard-Signature", Sign(w.secret, d.Body))
	return do(req, "webhook "+d.Recipient)
}

// SMS sends a text through an HTTP SMS provider: the body template gets the
// recipient, the sender and the text; GET puts the rendered body in the
// query string instead.
type SMS struct {
	cfg  configs.SMS
	text *template.Template
	body *template.Template
}

// NewSMS checks the SMS config and compiles its templates.
func NewSMS(c configs.SMS) (*SMS, error) {
	if c.Method == "" {
		c.Method = http.MethodPost
	}
	c.Method = strings.ToUpper(c.Method)
	body := c.Body
	if body == "" {
		body = defaultSMSJSON
		if c.Method == http.MethodGet {
			body = defaultSMSForm
		}
	}
	s := &SMS{cfg: c}
	var err error
	if s.body, err = template.New("sms").Funcs(textFuncs("tel:")).Parse(body); err != nil {
		return nil, fmt.Errorf("notify: missed.sms.body: %w", err)
	}
	s.text = template.Must(template.New("smstext").Funcs(textFuncs("tel:")).Parse(defaultSMSText))
	return s, nil
}

// Request builds the provider request for one delivery without sending it.
func (s *SMS) Request(ctx context.Context, d Delivery) (*http.Request, error) {
	v := newView(d.Payload)
	v.To = d.Recipient
	if s.cfg.FromCaller && strings.HasPrefix(v.Caller, "+") {
		v.From = v.Caller
	}
	var err error
	if v.Text, err = render(s.text, v); err != nil {
		return nil, Permanent(fmt.Errorf("sms text: %w", err))
	}
	if d.Payload.Emergency != nil {
		v.Text = EmergencyText(d.Payload.Emergency)
	}
	body, err := render(s.body, v)
	if err != nil {
		return nil, Permanent(fmt.Errorf("sms body: %w", err))
	}
	target := s.cfg.URL
	var rd io.Reader
	if s.cfg.Method == http.MethodGet {
		sep := "?"
		if strings.Contains(target, "?") {
			sep = "&"
		}
		target += sep + body
	} else {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, s.cfg.Method, target, rd)
	if err != nil {
		return nil, Permanent(fmt.Errorf("sms %s: %w", s.cfg.URL, err))
	}
	if rd != nil {
		ct := "text/plain; charset=utf-8"
		if json.Valid([]byte(body)) {
			ct = "application/json"
		} else if !strings.ContainsAny(body, " \n") && strings.Contains(body, "=") {
			ct = "application/x-www-form-urlencoded"
		}
		req.Header.Set("Content-Type", ct)
	}
	req.Header.Set("User-Agent", "switchboard")
	if s.cfg.AuthHeader != "" {
		req.Header.Set("Authorization", s.cfg.AuthHeader)
	}
	return req, nil
}

// Send implements Channel.
func (s *SMS) Send(ctx context.Context, d Delivery) error {
	req, err := s.Request(ctx, d)
	if err != nil {
		return err
	}
	return do(req, "sms to "+d.Recipient)
}
