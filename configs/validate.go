package configs

import (
	"fmt"
	"maps"
	"net"
	"net/mail"
	"net/netip"
	"net/url"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nyaruka/phonenumbers"
)

// Validate checks every key and reports every problem as Errors (nil when
// there is none). It also completes the defaults that depend on other keys
// (a trunk's region, the SQLite file, sip.advertise) and fills the parsed
// fields (listeners, URIs, trunk sources, time zones, opening hours), so a
// Config built in code must be validated before use, like a parsed one.
func (c *Config) Validate() error {
	v := &collector{lines: c.lines}
	c.complete()

	if strings.TrimSpace(c.Node) == "" {
		v.add("node", "must not be empty")
	}
	c.Location = time.UTC
	if loc, err := time.LoadLocation(c.Timezone); err != nil {
		v.add("timezone", "unknown time zone %q (use an IANA name such as Europe/Berlin)", c.Timezone)
	} else {
		c.Location = loc
	}
	c.validateSIP(v)
	c.validateMedia(v)
	if !validRegion(c.Numbers.Region, true) {
		v.add("numbers.region", "%q is not a two-letter ISO country code in upper case, such as DE", c.Numbers.Region)
	}
	for i, p := range c.Numbers.Internal {
		if !validInternal(p) {
			v.add(fmt.Sprintf("numbers.internal[%d]", i), "%q is not an extension pattern: use digits and x (any digit), e.g. 2xxx", p)
		}
	}
	c.validateStorage(v)
	c.validateBlocking(v)
	c.validateHotlines(v)
	c.validateRules(v)
	c.validateLookups(v)
	c.validateWrapUp(v)
	c.validateMissed(v)
	c.validateHTTP(v)
	c.validateEmergency(v)
	c.validateRecordings(v)
	if c.Messages.MaxContent <= 0 {
		v.add("messages.max_content", "must be positive")
	}
	if c.Runtime.MemoryLimit < 0 {
		v.add("runtime.memory_limit", "must not be negative")
	}
	oneOf(v, "log.level", c.Log.Level, "debug", "info", "warn", "error")
	oneOf(v, "log.format", c.Log.Format, "json", "console")

	if len(v.errs) == 0 {
		return nil
	}
	return v.errs
}

// complete fills the defaults that depend on other keys or on list
// entries, which builtin cannot know before the file is read.
func (c *Config) complete() {
	for i := range c.SIP.Trunks {
		if c.SIP.Trunks[i].Region == "" {
			c.SIP.Trunks[i].Region = c.Numbers.Region
		}
	}
	for i := range c.Blocking.Entries {
		e := &c.Blocking.Entries[i]
		if e.Action == "" {
			e.Action = "block"
		}
		if e.Direction == "" {
			e.Direction = "both"
		}
	}
	for i := range c.Hotlines {
		if c.Hotlines[i].Closed.Response == 0 {
			c.Hotlines[i].Closed.Response = 480
		}
	}
	if c.Storage.Driver == "sqlite" && c.Storage.DSN == "" {
		c.Storage.DSN = "switchboard.db"
	}
	c.Missed.SMS.Method = strings.ToUpper(c.Missed.SMS.Method)
}

func (c *Config) validateSIP(v *collector) {
	s := &c.SIP
	s.Listeners = nil
	if len(s.Listen) == 0 {
		v.add("sip.listen", "required: at least one listen URL such as udp://127.0.0.1:5060")
	}
	seen := map[string]int{}
	needTLS := false
	for i, raw := range s.Listen {
		path := fmt.Sprintf("sip.listen[%d]", i)
		l, err := parseListener(raw)
		if err != nil {
			v.add(path, "%v", err)
			continue
		}
		if j, dup := seen[l.String()]; dup && l.Port != 0 {
			v.add(path, "%s is listed twice (also sip.listen[%d])", l, j)
			continue
		}
		seen[l.String()] = i
		needTLS = needTLS || l.Network == "tls"
		s.Listeners = append(s.Listeners, l)
	}
	if needTLS {
		if s.TLS.Cert == "" {
			v.add("sip.tls.cert", "required for a tls:// listener: a PEM certificate file")
		}
		if s.TLS.Key == "" {
			v.add("sip.tls.key", "required for a tls:// listener: a PEM private key file")
		}
	}
	if s.RecordRoute != "" {
		host, port, err := net.SplitHostPort(s.RecordRoute)
		if n, perr := strconv.Atoi(port); err != nil || perr != nil || n <= 0 || n > 65535 || !validHost(host) {
			v.add("sip.record_route", "%q is not host:port (the load balancer's SIP address)", s.RecordRoute)
		}
	}
	if s.Advertise != "" {
		if !validHost(s.Advertise) {
			v.add("sip.advertise", "%q is not an IP address or host name", s.Advertise)
		}
	} else {
		for _, l := range s.Listeners {
			if !l.Wildcard() {
				s.Advertise = l.Host
				break
			}
		}
	}

	s.PBXURI = URI{}
	if s.PBX == "" {
		v.add("sip.pbx", "required: the PBX's SIP URI, such as sip:127.0.0.1:5080")
	} else if u, err := ParseURI(s.PBX); err != nil {
		v.add("sip.pbx", "%v", err)
	} else {
		s.PBXURI = u
	}

	if len(s.Trunks) == 0 {
		v.add("sip.trunks", "required: at least one trunk")
	}
	names := map[string]int{}
	for i := range s.Trunks {
		t := &s.Trunks[i]
		path := fmt.Sprintf("sip.trunks[%d]", i)
		switch j, dup := names[t.Name]; {
		case t.Name == "":
			v.add(path+".name", "required")
		case dup:
			v.add(path+".name", "duplicate trunk name %q (also sip.trunks[%d])", t.Name, j)
		default:
			names[t.Name] = i
		}
		t.sources = Sources{}
		for j, m := range t.Match {
			if err := t.sources.add(m); err != nil {
				v.add(fmt.Sprintf("%s.match[%d]", path, j), "%v", err)
			}
		}
		t.OutboundURI = URI{}
		if t.Outbound != "" {
			if u, err := ParseURI(t.Outbound); err != nil {
				v.add(path+".outbound", "%v", err)
			} else {
				t.OutboundURI = u
			}
		}
		if len(t.Match) == 0 && t.Outbound == "" {
			v.add(path, "a trunk needs match (to accept calls from it) or outbound (to send calls to it)")
		}
		// An inherited numbers.region is reported there, not once per trunk.
		if t.Region != c.Numbers.Region && !validRegion(t.Region, true) {
			v.add(path+".region", "%q is not a two-letter ISO country code in upper case, such as DE", t.Region)
		}
	}

	nonNegative(v, "sip.max_call_duration", s.MaxCallDuration)
	nonNegative(v, "sip.drain_timeout", s.DrainTimeout)
	nonNegative(v, "sip.keepalive", s.Keepalive)
	if s.InviteTimeout <= 0 {
		v.add("sip.invite_timeout", "%s: must be positive", s.InviteTimeout)
	}
	if s.TimerC <= 0 {
		v.add("sip.timer_c", "%s: must be positive (RFC 3261 wants more than 3m)", s.TimerC)
	}
	if s.MaxCPS < 0 {
		v.add("sip.max_cps", "%d: must not be negative", s.MaxCPS)
	}
	for i := range s.Trunks {
		if s.Trunks[i].MaxCPS < 0 {
			v.add(fmt.Sprintf("sip.trunks[%d].max_cps", i), "%d: must not be negative", s.Trunks[i].MaxCPS)
		}
	}
	if s.ResponseTimeout <= 0 {
		v.add("sip.response_timeout", "%s: must be positive", s.ResponseTimeout)
	}
	s.BalancerSources = Sources{}
	for i, b := range s.Balancers {
		if err := s.BalancerSources.add(b); err != nil {
			v.add(fmt.Sprintf("sip.balancers[%d]", i), "%v", err)
		}
	}
	oneOf(v, "sip.strangers", s.Strangers, "drop", "reject")
	if s.StrangerReplies < 0 {
		v.add("sip.stranger_replies", "%d: must not be negative", s.StrangerReplies)
	}
	if s.FastPath && runtime.GOOS != "linux" {
		v.add("sip.fast_path", "needs Linux (recvmmsg, sendmmsg), not %s", runtime.GOOS)
	}
	if !validToken(s.RecordingHeader) {
		v.add("sip.recording_header", "%q is not a SIP header name", s.RecordingHeader)
	}
	if hasControl(s.UserAgent) {
		v.add("sip.user_agent", "must not contain control characters")
	}
}

// add reads one entry: a CIDR prefix, a bare IP (one host) or an exact
// IP:port.
func (s *Sources) add(m string) error {
	if p, err := netip.ParsePrefix(m); err == nil {
		s.prefixes = append(s.prefixes, netip.PrefixFrom(p.Addr().Unmap(), p.Bits()).Masked())
		return nil
	}
	if ap, err := netip.ParseAddrPort(m); err == nil {
		if ap.Port() == 0 {
			return fmt.Errorf("%q: port 0 never sends requests", m)
		}
		s.addrs = append(s.addrs, netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()))
		return nil
	}
	if ip, err := netip.ParseAddr(m); err == nil {
		ip = ip.Unmap()
		s.prefixes = append(s.prefixes, netip.PrefixFrom(ip, ip.BitLen()))
		return nil
	}
	return fmt.Errorf("%q is neither a CIDR prefix (192.0.2.0/24), an IP address nor an IP:port (192.0.2.7:5060)", m)
}

func (c *Config) validateMedia(v *collector) {
	m := &c.Media
	lo, hi, ok := strings.Cut(m.RTPPorts, "-")
	low, err1 := strconv.Atoi(strings.TrimSpace(lo))
	high, err2 := strconv.Atoi(strings.TrimSpace(hi))
	switch {
	case !ok || err1 != nil || err2 != nil:
		v.add("media.rtp_ports", "%q: want LOW-HIGH, e.g. 20000-20999", m.RTPPorts)
	case low < 1024 || high > 65535:
		v.add("media.rtp_ports", "%q: ports must lie in 1024-65535", m.RTPPorts)
	case low >= high:
		v.add("media.rtp_ports", "%q: LOW must be below HIGH", m.RTPPorts)
	case low%2 != 0 || (high-low+1)%2 != 0:
		v.add("media.rtp_ports", "%q: RTP takes even ports and RTCP the odd one above, so LOW must be even and HIGH odd", m.RTPPorts)
	default:
		m.RTPLow, m.RTPHigh = low, high
	}
}

func (c *Config) validateStorage(v *collector) {
	s := c.Storage
	oneOf(v, "storage.driver", s.Driver, "sqlite", "postgres")
	if s.Driver == "postgres" && s.DSN == "" {
		v.add("storage.dsn", "required for postgres, e.g. postgres://user:pass@host/db")
	}
	nonNegative(v, "storage.retention", s.Retention)
	if s.NodeTimeout < Duration(time.Second) {
		v.add("storage.node_timeout", "%s: must be at least 1s", time.Duration(s.NodeTimeout))
	}
}

func (c *Config) validateBlocking(v *collector) {
	b := c.Blocking
	oneOf(v, "blocking.anonymous", b.Anonymous, "allow", "block")
	responseCode(v, "blocking.response", b.Response)
	type key struct{ number, direction string }
	seen := map[key]int{}
	for i, e := range b.Entries {
		path := fmt.Sprintf("blocking.entries[%d]", i)
		if !validNumberPattern(e.Number) && !validAddressPattern(e.Number) {
			v.add(path+".number", "%q: want +digits (E.164), optionally ending in * for a prefix, the digits of an internal number, a SIP address user@host or a domain *@host", e.Number)
		}
		oneOf(v, path+".action", e.Action, "block", "allow")
		oneOf(v, path+".direction", e.Direction, "in", "out", "both")
		k := key{e.Number, e.Direction}
		if j, dup := seen[k]; dup {
			v.add(path+".number", "%q with direction %s is listed twice (also blocking.entries[%d])", e.Number, e.Direction, j)
		} else {
			seen[k] = i
		}
	}
}

func (c *Config) validateHotlines(v *collector) {
	names := map[string]int{}
	claimed := map[string]string{}
	for i := range c.Hotlines {
		h := &c.Hotlines[i]
		path := fmt.Sprintf("hotlines[%d]", i)
		switch j, dup := names[h.Name]; {
		case h.Name == "":
			v.add(path+".name", "required")
		case dup:
			v.add(path+".name", "duplicate hotline name %q (also hotlines[%d])", h.Name, j)
		default:
			names[h.Name] = i
		}
		if len(h.Numbers) == 0 {
			v.add(path+".numbers", "required: at least one called number, such as \"+49301234560\"")
		}
		for j, n := range h.Numbers {
			np := fmt.Sprintf("%s.numbers[%d]", path, j)
			if !validE164Pattern(n) {
				v.add(np, "%q: want +digits (E.164), optionally ending in * for a prefix", n)
				continue
			}
			if other, dup := claimed[n]; dup {
				v.add(np, "%q is already claimed by %s", n, other)
				continue
			}
			claimed[n] = np
		}
		if hasControl(h.CallerNamePrefix) {
			v.add(path+".caller_name_prefix", "must not contain control characters")
		}
		h.RouteURI = URI{}
		if h.Route != "" {
			if u, err := ParseURI(h.Route); err != nil {
				v.add(path+".route", "%v", err)
			} else {
				h.RouteURI = u
			}
		}
		h.FallbackURI = URI{}
		if h.Fallback != "" {
			if u, err := ParseURI(h.Fallback); err != nil {
				v.add(path+".fallback", "%v", err)
			} else {
				h.FallbackURI = u
			}
		}
		h.Location = c.Location
		if h.Timezone != "" {
			if loc, err := time.LoadLocation(h.Timezone); err != nil {
				v.add(path+".timezone", "unknown time zone %q (use an IANA name such as Europe/Berlin)", h.Timezone)
			} else {
				h.Location = loc
			}
		}
		h.OpeningHours = Hours{loc: h.Location}
		for j, e := range h.Hours {
			spans, err := parseHoursEntry(e)
			if err != nil {
				v.add(fmt.Sprintf("%s.hours[%d]", path, j), "%v", err)
				continue
			}
			h.OpeningHours.spans = append(h.OpeningHours.spans, spans...)
		}
		responseCode(v, path+".closed.response", h.Closed.Response)
		for j, r := range h.Recipients {
			if !validRecipient(r) {
				v.add(fmt.Sprintf("%s.recipients[%d]", path, j), "%q is neither an email address nor a +E.164 number", r)
			}
		}
	}
}

// proxyHeaders are maintained by the proxy itself (RFC 3261 §16.6); a rule
// that set them would break routing of the dialog.
var proxyHeaders = map[string]bool{
	"via": true, "v": true, "call-id": true, "i": true, "cseq": true, "from": true, "f": true,
	"to": true, "t": true, "max-forwards": true, "route": true, "record-route": true,
	"contact": true, "m": true, "content-length": true, "l": true, "content-type": true, "c": true,
}

func (c *Config) validateRules(v *collector) {
	names := map[string]int{}
	for i := range c.Rules {
		r := &c.Rules[i]
		path := fmt.Sprintf("rules[%d]", i)
		switch j, dup := names[r.Name]; {
		case r.Name == "":
			v.add(path+".name", "required")
		case dup:
			v.add(path+".name", "duplicate rule name %q (also rules[%d])", r.Name, j)
		default:
			names[r.Name] = i
		}
		if strings.TrimSpace(r.When) == "" {
			v.add(path+".when", "required: a CEL condition, such as 'true'")
		}
		a := &r.Then
		tp := path + ".then"
		if a.Reject == nil && a.Route == "" && len(a.Header) == 0 && len(a.Tag) == 0 && len(a.Notify) == 0 && !a.SkipNotify {
			v.add(tp, "no action: set reject, route, header, tag, notify or skip_notify")
		}
		if a.Reject != nil {
			responseCode(v, tp+".reject.code", a.Reject.Code)
			if a.Route != "" {
				v.add(tp, "reject and route cannot both be set")
			}
		}
		a.RouteURI = URI{}
		if a.Route != "" {
			if u, err := ParseURI(a.Route); err != nil {
				v.add(tp+".route", "%v", err)
			} else {
				a.RouteURI = u
			}
		}
		for _, name := range slices.Sorted(maps.Keys(a.Header)) {
			val := a.Header[name]
			hp := tp + ".header." + name
			switch {
			case !validToken(name):
				v.add(hp, "%q is not a SIP header name", name)
			case proxyHeaders[strings.ToLower(name)]:
				v.add(hp, "%s is maintained by the proxy and cannot be set by a rule", name)
			case hasControl(val):
				v.add(hp, "value must not contain control characters")
			}
		}
		for j, t := range a.Tag {
			if strings.TrimSpace(t) == "" {
				v.add(fmt.Sprintf("%s.tag[%d]", tp, j), "must not be empty")
			}
		}
		for j, n := range a.Notify {
			if !validRecipient(n) {
				v.add(fmt.Sprintf("%s.notify[%d]", tp, j), "%q is neither an email address nor a +E.164 number", n)
			}
		}
	}
}

func (c *Config) validateMissed(v *collector) {
	m := c.Missed
	nonNegative(v, "missed.min_ring", m.MinRing)
	nonNegative(v, "missed.short_call", m.ShortCall)
	for i, n := range m.Exceptions.Exclude {
		if !validNumberPattern(n) {
			v.add(fmt.Sprintf("missed.exceptions.exclude[%d]", i), "%q: want +digits (E.164), optionally ending in * for a prefix, or the digits of an internal number", n)
		}
	}

	e := m.Email
	if e.SMTP != "" {
		u, err := url.Parse(e.SMTP)
		switch {
		case err != nil || (u.Scheme != "smtp" && u.Scheme != "smtps") || u.Hostname() == "":
			v.add("missed.email.smtp", "%q: want smtp://host:port or smtps://host:port", e.SMTP)
		case u.Port() != "":
			if p, err := strconv.Atoi(u.Port()); err != nil || p < 1 || p > 65535 {
				v.add("missed.email.smtp", "%q: port must be a number from 1 to 65535", e.SMTP)
			}
		}
		if e.From == "" {
			v.add("missed.email.from", "required when missed.email.smtp is set")
		}
	}
	if e.From != "" && !validEmail(e.From) {
		v.add("missed.email.from", "%q is not an email address", e.From)
	}
	for i, to := range e.To {
		if !validEmail(to) {
			v.add(fmt.Sprintf("missed.email.to[%d]", i), "%q is not an email address", to)
		}
	}
	if !validLinkPrefix(e.LinkPrefix) {
		v.add("missed.email.link_prefix", "%q: use tel:, phone:, callto: or at most 9 characters (letters, digits, + - .) ending in a colon", e.LinkPrefix)
	}
	if hasControl(e.Subject) {
		v.add("missed.email.subject", "must not contain control characters")
	}

	s := m.SMS
	if s.URL != "" && !validHTTPURL(s.URL) {
		v.add("missed.sms.url", "%q is not an http:// or https:// URL", s.URL)
	}
	oneOf(v, "missed.sms.method", s.Method, "GET", "POST", "PUT")
	if hasControl(s.AuthHeader) {
		v.add("missed.sms.auth_header", "must not contain control characters")
	}
	for i, to := range s.To {
		if !validE164(to) {
			v.add(fmt.Sprintf("missed.sms.to[%d]", i), "%q is not a +E.164 number", to)
		}
	}

	if m.Webhook.URL != "" && !validHTTPURL(m.Webhook.URL) {
		v.add("missed.webhook.url", "%q is not an http:// or https:// URL", m.Webhook.URL)
	}
}

func (c *Config) validateHTTP(v *collector) {
	h := c.HTTP
	host, port, err := net.SplitHostPort(h.Listen)
	if err != nil || !allDigits(port) {
		v.add("http.listen", "%q: want host:port, e.g. 127.0.0.1:8080", h.Listen)
	} else if p, _ := strconv.Atoi(port); p > 65535 {
		v.add("http.listen", "%q: port must be a number from 0 to 65535", h.Listen)
	} else if host != "" && !validHost(host) {
		v.add("http.listen", "%q: %q is not an IP address or host name", h.Listen, host)
	}
	if h.ProtectMetrics && h.Token == "" {
		v.add("http.protect_metrics", "needs http.token to be set")
	}
	if hasControl(h.Token) || strings.ContainsRune(h.Token, ' ') {
		v.add("http.token", "must not contain spaces or control characters")
	}
}

func oneOf(v *collector, path, got string, allowed ...string) {
	for _, a := range allowed {
		if got == a {
			return
		}
	}
	v.add(path, "%q: must be one of %s", got, strings.Join(allowed, ", "))
}

func nonNegative(v *collector, path string, d Duration) {
	if d < 0 {
		v.add(path, "%s: must not be negative", d)
	}
}

// responseCode accepts the final error responses (RFC 3261 §21.4-21.6).
func responseCode(v *collector, path string, code int) {
	if code < 400 || code > 699 {
		v.add(path, "%d is not a SIP error response code (400-699)", code)
	}
}

// validRegion accepts ISO 3166 alpha-2 codes that libphonenumber knows, so a
// region that would make every national number unreadable is caught here.
func validRegion(r string, emptyOK bool) bool {
	if r == "" {
		return emptyOK
	}
	if len(r) != 2 || r[0] < 'A' || r[0] > 'Z' || r[1] < 'A' || r[1] > 'Z' {
		return false
	}
	return phonenumbers.GetCountryCodeForRegion(r) != 0
}

func validInternal(p string) bool {
	if p == "" {
		return false
	}
	for _, r := range p {
		if (r < '0' || r > '9') && r != 'x' && r != 'X' {
			return false
		}
	}
	return true
}

// validE164Pattern accepts +digits (at most 15, ITU-T E.164), optionally
// ending in * to match every number with those leading digits.
func validE164Pattern(n string) bool {
	if !strings.HasPrefix(n, "+") {
		return false
	}
	d := strings.TrimSuffix(n[1:], "*")
	return len(d) <= 15 && allDigits(d)
}

func validE164(n string) bool {
	return !strings.HasSuffix(n, "*") && validE164Pattern(n)
}

// validNumberPattern accepts what blocking matches on: an E.164 pattern
// or the digits of an internal number, each optionally a * prefix.
func validNumberPattern(n string) bool {
	if strings.HasPrefix(n, "+") {
		return validE164Pattern(n)
	}
	d := strings.TrimSuffix(n, "*")
	return len(d) <= 15 && allDigits(d)
}

// validAddressPattern accepts the SIP address entries of blocking
// (SPEC §7): user@host or *@host, optionally as a sip: or sips: URI. The
// blocking package reads them into their matched form (and reports what
// this coarse check lets through) when the config is compiled.
func validAddressPattern(n string) bool {
	s := n
	for _, scheme := range []string{"sip:", "sips:"} {
		if len(s) > len(scheme) && strings.EqualFold(s[:len(scheme)], scheme) {
			s = s[len(scheme):]
		}
	}
	user, host, ok := strings.Cut(s, "@")
	return ok && user != "" && host != "" && !strings.ContainsAny(host, "@; \t") &&
		(host[0] == '[' || !strings.Contains(host, ":")) &&
		!strings.ContainsAny(user, " \t") && (user == "*" || !strings.Contains(user, "*"))
}

func validEmail(s string) bool {
	a, err := mail.ParseAddress(s)
	return err == nil && a.Name == "" && a.Address == s
}

func validRecipient(s string) bool { return validEmail(s) || validE164(s) }

func validHTTPURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// validLinkPrefix allows the well-known phone link schemes and custom ones
// of at most 9 characters ending in a colon (SPEC §4).
func validLinkPrefix(p string) bool {
	switch p {
	case "tel:", "phone:", "callto:":
		return true
	}
	if len(p) < 2 || len(p) > 9 || !strings.HasSuffix(p, ":") {
		return false
	}
	for _, r := range p[:len(p)-1] {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '+' || r == '-' || r == '.') {
			return false
		}
	}
	return true
}

// validToken checks a SIP header name (RFC 3261 §25.1 token).
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-.!%*_+`'~", r)) {
			return false
		}
	}
	return true
}

// hasControl catches CR and LF above all: a value copied into a SIP or
// mail header must not be able to start a new header.
func hasControl(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return true
		}
	}
	return false
}
