package notify

import (
	"bytes"
	"context"
	"fmt"
	htmltemplate "html/template"
	"net/url"
	"strconv"
	"strings"
	"text/template"

	"github.com/emersion/go-vcard"
	"github.com/wneessen/go-mail"

	"github.com/switchboard-sip/switchboard/configs"
)

// Email sends notifications over SMTP with go-mail: a text and an HTML
// part, the caller's contact as a vCard attachment, numbers as links.
type Email struct {
	cfg      configs.Email
	host     string
	port     int
	ssl      bool
	subject  *template.Template
	text     *template.Template
	html     *htmltemplate.Template
	dialOpts []mail.Option
}

// NewEmail checks the email config and compiles its templates.
func NewEmail(c configs.Email) (*Email, error) {
	u, err := url.Parse(c.SMTP)
	if err != nil || (u.Scheme != "smtp" && u.Scheme != "smtps") || u.Hostname() == "" {
		return nil, fmt.Errorf("notify: missed.email.smtp: %q: want smtp://host:port or smtps://host:port", c.SMTP)
	}
	e := &Email{cfg: c, host: u.Hostname(), ssl: u.Scheme == "smtps", port: 25}
	if e.ssl {
		e.port = 465
	}
	if p := u.Port(); p != "" {
		if e.port, err = strconv.Atoi(p); err != nil || e.port < 1 || e.port > 65535 {
			return nil, fmt.Errorf("notify: missed.email.smtp: %q: bad port", c.SMTP)
		}
	}
	if c.From == "" {
		return nil, fmt.Errorf("notify: missed.email.from: required when missed.email.smtp is set")
	}
	prefix := c.LinkPrefix
	if prefix == "" {
		prefix = "tel:"
	}
	subject := c.Subject
	if subject == "" {
		subject = defaultSubject
	}
	if e.subject, err = template.New("subject").Funcs(textFuncs(prefix)).Option("missingkey=zero").Parse(subject); err != nil {
		return nil, fmt.Errorf("notify: missed.email.subject: %w", err)
	}
	e.text = template.Must(template.New("text").Funcs(textFuncs(prefix)).Parse(defaultText))
	e.html = htmltemplate.Must(htmltemplate.New("html").Funcs(htmlFuncs(prefix)).Parse(defaultHTML))

	e.dialOpts = []mail.Option{mail.WithPort(e.port), mail.WithTimeout(defaultSendTimeout)}
	switch {
	case e.ssl:
		e.dialOpts = append(e.dialOpts, mail.WithSSL())
	case c.StartTLS:
		e.dialOpts = append(e.dialOpts, mail.WithTLSPolicy(mail.TLSMandatory))
	default:
		// STARTTLS when the server offers it; plain for a local relay that
		// does not.
		e.dialOpts = append(e.dialOpts, mail.WithTLSPolicy(mail.TLSOpportunistic))
	}
	if c.Username != "" {
		e.dialOpts = append(e.dialOpts, mail.WithSMTPAuth(mail.SMTPAuthAutoDiscover),
			mail.WithUsername(c.Username), mail.WithPassword(c.Password))
	}
	return e, nil
}

// Message builds the email for one delivery without sending it.
func (e *Email) Message(d Delivery) (*mail.Msg, error) {
	if d.Payload.Emergency != nil {
		return e.emergencyMessage(d)
	}
	v := newView(d.Payload)
	subject, err := render(e.subject, v)
	if err != nil {
		return nil, Permanent(fmt.Errorf("email subject: %w", err))
	}
	text, err := render(e.text, v)
	if err != nil {
		return nil, Permanent(fmt.Errorf("email text: %w", err))
	}
	var html bytes.Buffer
	if err := e.html.Execute(&html, v); err != nil {
		return nil, Permanent(fmt.Errorf("email html: %w", err))
	}

	m := mail.NewMsg()
	// Bounces come back to switchboard's own address whatever the From.
	if err := m.EnvelopeFrom(e.cfg.From); err != nil {
		return nil, Permanent(fmt.Errorf("email envelope from %q: %w", e.cfg.From, err))
	}
	from := ""
	if e.cfg.CallerAsSender && d.Payload.Contact != nil {
		from = d.Payload.Contact.Email
	}
	if from != "" && m.FromFormat(v.Name, from) == nil {
		// RFC 5322 §3.6.2: the author is the caller, the system that sent it
		// on their behalf goes in Sender; a reply reaches the caller.
		m.SetGenHeader(mail.Header("Sender"), e.cfg.From)
	} else if err := m.From(e.cfg.From); err != nil {
		return nil, Permanent(fmt.Errorf("email from %q: %w", e.cfg.From, err))
	}
	if err := m.To(d.Recipient); err != nil {
		return nil, Permanent(fmt.Errorf("email recipient %q: %w", d.Recipient, err))
	}
	m.Subject(cleanLine(subject))
	m.SetMessageIDWithValue(d.ID + "." + d.MissedID + "@switchboard")
	m.SetDate()
	m.SetBodyString(mail.TypeTextPlain, text)
	m.AddAlternativeString(mail.TypeTextHTML, html.String())
	if e.cfg.VCard && d.Payload.Contact != nil {
		card, err := VCard(d.Payload.Contact)
		if err != nil {
			return nil, Permanent(err)
		}
		if err := m.AttachReader(vcardName(d.Payload.Contact), bytes.NewReader(card),
			mail.WithFileContentType(mail.ContentType("text/vcard"))); err != nil {
			return nil, Permanent(fmt.Errorf("email vcard: %w", err))
		}
	}
	return m, nil
}

// Send implements Channel.
func (e *Email) Send(ctx context.Context, d Delivery) error {
	m, err := e.Message(d)
	if err != nil {
		return err
	}
	c, err := mail.NewClient(e.host, e.dialOpts...)
	if err != nil {
		return Permanent(fmt.Errorf("email client for %s: %w", e.host, err))
	}
	if err := c.DialAndSendWithContext(ctx, m); err != nil {
		return fmt.Errorf("email to %s via %s:%d: %w", d.Recipient, e.host, e.port, err)
	}
	return nil
}

func vcardName(c *Contact) string {
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		if r == ' ' {
			return '_'
		}
		return -1
	}, c.Name)
	if name == "" {
		name = "contact"
	}
	return name + ".vcf"
}

// VCard writes a contact as a vCard 3.0, the version every address book
// imports.
func VCard(c *Contact) ([]byte, error) {
	card := vcard.Card{}
	card.SetValue(vcard.FieldVersion, "3.0")
	name := cleanLine(c.Name)
	if name == "" {
		name = cleanLine(c.Company)
	}
	card.SetValue(vcard.FieldFormattedName, name)
	given, family := "", name
	if i := strings.LastIndexByte(name, ' '); i > 0 {
		given, family = name[:i], name[i+1:]
	}
	card.SetName(&vcard.Name{FamilyName: family, GivenName: given})
	if c.Company != "" {
		card.SetValue(vcard.FieldOrganization, cleanLine(c.Company))
	}
	if c.Email != "" {
		card.SetValue(vcard.FieldEmail, cleanLine(c.Email))
	}
	for _, p := range c.Numbers {
		n := p.E164
		if n == "" {
			n = p.Raw
		}
		if n == "" {
			continue
		}
		f := &vcard.Field{Value: cleanLine(n), Params: vcard.Params{}}
		f.Params.Add(vcard.ParamType, vcard.TypeVoice)
		card.Add(vcard.FieldTelephone, f)
	}
	if len(c.Tags) > 0 {
		card.SetCategories(c.Tags)
	}
	var b bytes.Buffer
	if err := vcard.NewEncoder(&b).Encode(card); err != nil {
		return nil, fmt.Errorf("vcard of contact %d: %w", c.ID, err)
	}
	return b.Bytes(), nil
}
