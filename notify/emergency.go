package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/wneessen/go-mail"

	"github.com/switchboard-sip/switchboard/callctl"
	"github.com/switchboard-sip/switchboard/wire"
)

// EventEmergency is the payload event of an emergency notification.
const EventEmergency = "call.emergency"

// emergencyKey is the outbox key of an emergency call's notifications: it
// shares the (key, channel, recipient) uniqueness of missed calls, so an
// emergency call is notified once per recipient, whichever node sends it.
func emergencyKey(id string) string { return "emergency-" + id }

// Emergency tells emergency.notify of an emergency call at once (SPEC §4):
// one outbox row per recipient, written and handed to the dispatcher right
// away. No missed-call exception applies and nothing waits for the call
// to end, yet delivery is as durable as a missed call's: retried with
// back-off, resumed after a restart. It returns how many rows it added.
//
// Email goes through missed.email's SMTP server and sender, SMS through
// missed.sms's provider, the webhook to emergency.notify.webhook signed
// with missed.webhook's secret.
func (n *Notifier) Emergency(ctx context.Context, e wire.Emergency, call wire.Call) (int, error) {
	cfg := n.cfg.Load()
	body, err := json.Marshal(Payload{Event: EventEmergency, Call: call, Emergency: &e})
	if err != nil {
		return 0, fmt.Errorf("notify: emergency payload of %s: %w", e.ID, err)
	}
	to := map[string][]string{}
	to[ChannelEmail] = dedupe(cfg.Emergency.Notify.Email)
	to[ChannelSMS] = dedupe(cfg.Emergency.Notify.SMS)
	if w := cfg.Emergency.Notify.Webhook; w != "" {
		to[ChannelWebhook] = []string{w}
	}
	now := n.now().UTC()
	added := 0
	for _, ch := range []string{ChannelWebhook, ChannelSMS, ChannelEmail} {
		for _, r := range to[ch] {
			res, err := n.db.ExecContext(ctx, n.db.Rebind(`INSERT INTO outbox
				(id, missed_id, channel, recipient, payload, status, attempts, next_attempt_at, created_at)
				VALUES (?, ?, ?, ?, ?, 'pending', 0, ?, ?)
				ON CONFLICT (missed_id, channel, recipient) DO NOTHING`),
				callctl.NewID(now), emergencyKey(e.ID), ch, r, string(body), now.UnixMilli(), now.UnixMilli())
			if err != nil {
				return added, fmt.Errorf("notify: queue emergency %s to %s: %w", ch, r, err)
			}
			if k, err := res.RowsAffected(); err == nil {
				added += int(k)
			}
		}
	}
	n.Kick()
	return added, nil
}

// EmergencyText is the one-line text of an emergency notification, for
// SMS and the email's subject.
func EmergencyText(e *wire.Emergency) string {
	who := e.Extension
	if e.Name != "" {
		who += " (" + e.Name + ")"
	}
	where := ""
	if e.Location != "" {
		where = ", " + e.Location
	}
	return cleanLine(fmt.Sprintf("EMERGENCY CALL to %s from extension %s%s at %s", e.Dialled, who, where, emergencyTime(e.At)))
}

func emergencyTime(at string) string {
	if t, err := time.Parse(time.RFC3339Nano, at); err == nil {
		return t.Format("Mon 2 Jan 2006 15:04:05 MST")
	}
	return at
}

// emergencyMessage is the email of an emergency notification: plain
// text, everything the front desk needs in the subject already.
func (e *Email) emergencyMessage(d Delivery) (*mail.Msg, error) {
	em := d.Payload.Emergency
	m := mail.NewMsg()
	if err := m.EnvelopeFrom(e.cfg.From); err != nil {
		return nil, Permanent(fmt.Errorf("email envelope from %q: %w", e.cfg.From, err))
	}
	if err := m.From(e.cfg.From); err != nil {
		return nil, Permanent(fmt.Errorf("email from %q: %w", e.cfg.From, err))
	}
	if err := m.To(d.Recipient); err != nil {
		return nil, Permanent(fmt.Errorf("email recipient %q: %w", d.Recipient, err))
	}
	m.Subject(EmergencyText(em))
	m.SetMessageIDWithValue(d.ID + "." + d.MissedID + "@switchboard")
	m.SetImportance(mail.ImportanceUrgent)
	m.SetDate()
	var b strings.Builder
	line := func(k, v string) {
		if v != "" {
			fmt.Fprintf(&b, "%-12s %s\n", k+":", cleanLine(v))
		}
	}
	b.WriteString("An emergency call was made.\n\n")
	line("Extension", em.Extension)
	line("Name", em.Name)
	line("Location", em.Location)
	line("Dialled", em.Dialled)
	line("Time", emergencyTime(em.At))
	line("Caller ID", em.Presented)
	line("Node", em.Node)
	b.WriteString("\nCalls back to the caller ID go straight to the extension until " + emergencyTime(em.CallbackUntil) + ".\n")
	m.SetBodyString(mail.TypeTextPlain, b.String())
	return m, nil
}
