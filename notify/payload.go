package notify

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/switchboard-sip/switchboard/configs"
	"github.com/switchboard-sip/switchboard/missed"
	"github.com/switchboard-sip/switchboard/wire"
)

// Channel names, as stored in the outbox and used as metric labels.
const (
	ChannelEmail   = "email"
	ChannelSMS     = "sms"
	ChannelWebhook = "webhook"
)

// Payload is what every channel shows about one missed call. It is stored
// as JSON in the outbox when the entry is created, so that a delivery after
// a restart shows the call as it was; the webhook body is exactly this JSON.
type Payload struct {
	Event   string      `json:"event"`
	Missed  wire.Missed `json:"missed"`
	Call    wire.Call   `json:"call"`
	Contact *Contact    `json:"contact"`
	Hotline *Hotline    `json:"hotline"`
	// Emergency is set on an emergency call's notification (SPEC §4),
	// whose Missed part is then empty.
	Emergency *wire.Emergency `json:"emergency,omitempty"`
}

// Contact is the caller's contact in a payload.
type Contact struct {
	ID      int64             `json:"id"`
	Name    string            `json:"name"`
	Company string            `json:"company"`
	Email   string            `json:"email"`
	Tags    []string          `json:"tags"`
	Fields  map[string]string `json:"fields,omitempty"`
	Numbers []wire.Phone      `json:"numbers"`
}

// Hotline is the called company in a payload.
type Hotline struct {
	Name    string `json:"name"`
	Company string `json:"company"`
}

// newPayload builds the payload of a notice, times in the hotline's zone.
func newPayload(n missed.Notice, loc *time.Location) Payload {
	if n.Hotline != nil && n.Hotline.Location != nil {
		loc = n.Hotline.Location
	}
	p := Payload{
		Event:  string(missed.EventCreated),
		Missed: wire.NewMissed(n.Entry, loc),
		Call:   wire.NewCall(n.Record, loc),
	}
	if c := n.Contact; c != nil {
		p.Contact = &Contact{ID: c.ID, Name: c.Name, Company: c.Company, Email: c.Email,
			Tags: c.Tags, Fields: c.Fields, Numbers: wire.Phones(c.Numbers)}
		if p.Contact.Tags == nil {
			p.Contact.Tags = []string{}
		}
	}
	if h := n.Hotline; h != nil {
		p.Hotline = &Hotline{Name: h.Name, Company: h.Company}
	}
	return p
}

// recipients lists, per channel, who gets a notice: the hotline's
// recipients of the channel's kind (addresses for email, +E.164 numbers for
// SMS), else the channel's global list, plus those a rule added (extra);
// the webhook's one URL.
func recipients(cfg *configs.Missed, h *configs.Hotline, extra []string) map[string][]string {
	out := map[string][]string{}
	var mails, phones []string
	if h != nil {
		for _, r := range h.Recipients {
			switch {
			case strings.HasPrefix(r, "+"):
				phones = append(phones, r)
			case strings.Contains(r, "@"):
				mails = append(mails, r)
			}
		}
	}
	if len(mails) == 0 {
		mails = cfg.Email.To
	}
	if len(phones) == 0 {
		phones = cfg.SMS.To
	}
	for _, r := range extra {
		switch {
		case strings.HasPrefix(r, "+"):
			phones = append(phones, r)
		case strings.Contains(r, "@"):
			mails = append(mails, r)
		}
	}
	if cfg.Email.SMTP != "" {
		out[ChannelEmail] = dedupe(mails)
	}
	if cfg.SMS.URL != "" {
		out[ChannelSMS] = dedupe(phones)
	}
	if cfg.Webhook.URL != "" {
		out[ChannelWebhook] = []string{cfg.Webhook.URL}
	}
	return out
}

func dedupe(list []string) []string {
	seen := make(map[string]bool, len(list))
	var out []string
	for _, s := range list {
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// decodePayload reads a stored payload.
func decodePayload(b []byte) (*Payload, error) {
	var p Payload
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("notify: stored payload: %w", err)
	}
	return &p, nil
}
