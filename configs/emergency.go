package configs

import (
	"fmt"
	"net/url"
	"strings"
	"text/template"
)

// Emergency configures emergency calls (SPEC §1, §4): the numbers besides
// the region's short-number data, where they go, who is told, and how long
// a call back reaches the extension that called.
type Emergency struct {
	// Numbers are more emergency numbers besides the region's (a site's
	// own security desk, say), as dialled.
	Numbers []string `yaml:"numbers"`
	// Route is a SIP URI for emergency calls instead of the trunk.
	Route string `yaml:"route"`
	// CallbackWindow is how long after an emergency call a call to the
	// number it presented goes straight to the extension that called.
	CallbackWindow Duration `yaml:"callback_window"`
	// Locations names where each extension is ("2001": "Reception").
	Locations map[string]string `yaml:"locations"`
	// Notify lists who is told at once, with no exceptions.
	Notify EmergencyNotify `yaml:"notify"`

	// RouteURI is Route parsed; zero when Route is empty.
	RouteURI URI `yaml:"-"`
}

// EmergencyNotify lists the recipients of an emergency notification.
type EmergencyNotify struct {
	Email   []string `yaml:"email"`
	SMS     []string `yaml:"sms"`
	Webhook string   `yaml:"webhook"`
}

func (c *Config) validateEmergency(v *collector) {
	e := &c.Emergency
	for i, n := range e.Numbers {
		if strings.Trim(n, "+0123456789") != "" || strings.Trim(n, "+") == "" {
			v.add(fmt.Sprintf("emergency.numbers[%d]", i), "%q is not a number (digits, optionally with a leading +)", n)
		}
	}
	e.RouteURI = URI{}
	if e.Route != "" {
		if u, err := ParseURI(e.Route); err != nil {
			v.add("emergency.route", "%v", err)
		} else {
			e.RouteURI = u
		}
	}
	if e.CallbackWindow < 0 {
		v.add("emergency.callback_window", "%s: must not be negative", e.CallbackWindow)
	}
	for ext, loc := range e.Locations {
		if hasControl(loc) {
			v.add("emergency.locations."+ext, "must not contain control characters")
		}
	}
	for i, a := range e.Notify.Email {
		if !validEmail(a) {
			v.add(fmt.Sprintf("emergency.notify.email[%d]", i), "%q is not an email address", a)
		}
	}
	if w := e.Notify.Webhook; w != "" && !httpURL(w) {
		v.add("emergency.notify.webhook", "%q is not an http(s) URL", w)
	}
	if p := c.Numbers.OutsidePrefix; strings.Trim(p, "0123456789") != "" {
		v.add("numbers.outside_prefix", "%q: only digits", p)
	}
}

func (c *Config) validateRecordings(v *collector) {
	r := &c.Recordings
	if r.BaseURL != "" && !httpURL(r.BaseURL) {
		v.add("recordings.base_url", "%q is not an http(s) URL", r.BaseURL)
	}
	if r.DeleteURL != "" {
		if _, err := template.New("delete_url").Parse(r.DeleteURL); err != nil {
			v.add("recordings.delete_url", "%v", err)
		} else if !httpURL(strings.SplitN(r.DeleteURL, "{{", 2)[0] + "x") {
			v.add("recordings.delete_url", "%q is not an http(s) URL", r.DeleteURL)
		}
	}
	if hasControl(r.DeleteToken) {
		v.add("recordings.delete_token", "must not contain control characters")
	}
}

// httpURL reports whether s is an absolute http or https URL with a host.
func httpURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}
