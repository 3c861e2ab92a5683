package notify

import (
	"encoding/json"
	"html"
	htmltemplate "html/template"
	"strings"
	"text/template"
	"time"
	"unicode"
)

// Built-in templates. Users may replace the email subject
// (missed.email.subject) and the SMS request body (missed.sms.body); the
// email bodies and the SMS text are built in.
const (
	defaultSubject = `{{if eq .Missed.Kind "short"}}Short call{{else}}Missed call{{end}} from {{.Who}}` +
		`{{with .Hotline}} for {{or .Company .Name}}{{end}}{{if gt .Missed.Count 1}} ({{.Missed.Count}} calls){{end}}`

	defaultText = `{{.Who}} called{{with .Hotline}} {{or .Company .Name}}{{end}} on {{.When}}` +
		`{{if eq .Missed.Kind "short"}} and hung up after a short talk{{else}} and was not answered{{end}}.
{{with .Contact}}
Contact: {{.Name}}{{with .Company}}, {{.}}{{end}}{{with .Email}} <{{.}}>{{end}}
{{end}}
Call back: {{tel .Caller}}
`

	defaultHTML = `<!DOCTYPE html>
<html><body style="font-family: sans-serif">
<p><strong>{{.Who}}</strong> called{{with .Hotline}} <strong>{{or .Company .Name}}</strong>{{end}} on {{.When}}
{{- if eq .Missed.Kind "short"}} and hung up after a short talk{{else}} and was not answered{{end}}.</p>
{{with .Contact}}<p>Contact: {{.Name}}{{with .Company}}, {{.}}{{end}}{{with .Email}} &lt;<a href="mailto:{{.}}">{{.}}</a>&gt;{{end}}</p>
{{end}}<p>Call back: <a {{telHref .Caller}}>{{plain .Caller}}</a></p>
</body></html>
`

	defaultSMSText = `Missed call from {{.Who}}{{with .Hotline}} for {{or .Company .Name}}{{end}} on {{.When}}.`

	defaultSMSJSON = `{"to": {{json .To}}, "from": {{json .From}}, "text": {{json .Text}}}`
	defaultSMSForm = `to={{urlquery .To}}&from={{urlquery .From}}&text={{urlquery .Text}}`
)

// View is the data of the notification templates: the payload, plus the
// forms a message needs ready-made.
type View struct {
	*Payload
	Caller string    // the caller's number, E.164 when known
	Name   string    // the contact's name, else the display name received
	Who    string    // "Name (number)", or the number alone
	Time   time.Time // when the call started, in the hotline's zone
	When   string    // Time written for people
	// SMS only: the recipient, the sender (the caller's number when
	// missed.sms.from_caller is on, else empty) and the message text.
	To, From, Text string
}

func newView(p *Payload) View {
	v := View{Payload: p, Caller: p.Missed.Caller, Name: p.Missed.CallerName}
	if p.Contact != nil && p.Contact.Name != "" {
		v.Name = p.Contact.Name
	}
	v.Name = cleanLine(v.Name)
	v.Who = v.Caller
	switch {
	case v.Name != "" && v.Caller != "":
		v.Who = v.Name + " (" + v.Caller + ")"
	case v.Name != "":
		v.Who = v.Name
	case v.Who == "":
		v.Who = "an unknown caller"
	}
	if t, err := time.Parse(time.RFC3339Nano, p.Call.StartedAt); err == nil {
		v.Time = t
		v.When = t.Format("Mon 2 Jan 2006 15:04 MST")
	}
	return v
}

// cleanLine drops control characters: names come from the network and go
// into headers and one-line texts.
func cleanLine(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, s)
}

// telLink writes a number as a link with the configured prefix (tel: by
// default). Only digits and a leading + go into the link, so nothing from
// the network can make it another kind of URL.
func telLink(prefix, number string) string {
	var b strings.Builder
	for i, r := range number {
		if r >= '0' && r <= '9' || (r == '+' && i == 0) {
			b.WriteRune(r)
		}
	}
	if b.Len() == 0 {
		return ""
	}
	return prefix + b.String()
}

func textFuncs(prefix string) template.FuncMap {
	return template.FuncMap{
		"tel": func(n string) string { return telLink(prefix, n) },
		"json": func(v any) (string, error) {
			b, err := json.Marshal(v)
			return string(b), err
		},
	}
}

func htmlFuncs(prefix string) htmltemplate.FuncMap {
	return htmltemplate.FuncMap{
		// The prefix is checked by the config (a short scheme of letters,
		// digits, + - . ending in a colon) and the number holds digits and a
		// leading + only, so the link is safe as a URL even where
		// html/template would reject an unknown scheme.
		"tel": func(n string) htmltemplate.URL { return htmltemplate.URL(telLink(prefix, n)) },
		// telHref is the whole href attribute, so that the + stays a + in
		// the source rather than &#43; (equal to a browser, not to a grep).
		"telHref": func(n string) htmltemplate.HTMLAttr {
			return htmltemplate.HTMLAttr(`href="` + html.EscapeString(telLink(prefix, n)) + `"`)
		},
		// plain escapes what HTML needs escaped and leaves + alone.
		"plain": func(s string) htmltemplate.HTML { return htmltemplate.HTML(html.EscapeString(s)) },
	}
}

func render(t *template.Template, data any) (string, error) {
	var b strings.Builder
	if err := t.Execute(&b, data); err != nil {
		return "", err
	}
	return b.String(), nil
}
