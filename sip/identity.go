package sip

import (
	"net/url"
	"strings"

	gosip "github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/callctl"
)

// Signalling extracts what an INVITE says about its parties, for the
// Identify stage: Request-URI, From and To (RFC 3261 §20.20, §20.39, compact
// forms f and t included), P-Asserted-Identity (RFC 3325 §9.1),
// Remote-Party-ID (draft-ietf-sip-privacy-04 §6), Privacy (RFC 3323 §4.2),
// P-Called-Party-ID (RFC 7315 §4.2), Diversion (RFC 5806) and History-Info
// (RFC 7044). Headers that may hold several comma-separated values are
// split; a value that does not parse is skipped, never guessed at, and
// nothing here panics on what a peer sends.
func Signalling(req *gosip.Request) callctl.Signalling {
	var s callctl.Signalling
	if req == nil {
		return s
	}
	s.RequestURI = idAddress("", &req.Recipient, nil)
	for _, h := range req.Headers() {
		switch h := h.(type) {
		case *gosip.FromHeader:
			s.From = idAddress(h.DisplayName, &h.Address, h.Params)
			continue
		case *gosip.ToHeader:
			s.To = idAddress(h.DisplayName, &h.Address, h.Params)
			continue
		}
		name := h.Name()
		switch {
		case strings.EqualFold(name, "P-Asserted-Identity"):
			s.PAI = idAppendValues(s.PAI, h.Value())
		case strings.EqualFold(name, "Remote-Party-ID"):
			s.RPID = idAppendValues(s.RPID, h.Value())
		case strings.EqualFold(name, "Privacy"):
			s.Privacy = idAppendPrivacy(s.Privacy, h.Value())
		case strings.EqualFold(name, "P-Called-Party-ID"):
			// RFC 7315 §4.2 allows one value; later ones are ignored.
			if s.PCalledPartyID == nil {
				if list := idAppendValues(nil, h.Value()); len(list) > 0 {
					s.PCalledPartyID = &list[0]
				}
			}
		case strings.EqualFold(name, "Diversion"):
			s.Diversion = idAppendValues(s.Diversion, h.Value())
		case strings.EqualFold(name, "History-Info"):
			n := len(s.HistoryInfo)
			s.HistoryInfo = idAppendValues(s.HistoryInfo, h.Value())
			for i := n; i < len(s.HistoryInfo); i++ {
				idHistoryCause(&s.HistoryInfo[i])
			}
		}
	}
	return s
}

// idAppendValues parses each comma-separated name-addr or addr-spec of a
// header value (RFC 3261 §7.3.1) and appends the ones that parse.
func idAppendValues(list []callctl.Address, v string) []callctl.Address {
	// One URI and one parameter list serve every value: idAddress copies
	// out what it keeps, and the parser's pointers would otherwise cost
	// two heap allocations per value.
	var uri gosip.Uri
	var params gosip.HeaderParams
	for v != "" {
		var part string
		part, v = idNextValue(v)
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		uri, params = gosip.Uri{}, params[:0]
		display, err := gosip.ParseAddressValue(part, &uri, &params)
		if err != nil || uri.Scheme == "" || uri.Wildcard {
			continue
		}
		list = append(list, idAddress(display, &uri, params))
	}
	return list
}

// idNextValue cuts v at the first comma outside a quoted string or an
// angle-bracketed URI.
func idNextValue(v string) (part, rest string) {
	quoted, escaped, angle := false, false, false
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case escaped:
			escaped = false
		case quoted:
			switch c {
			case '\\':
				escaped = true
			case '"':
				quoted = false
			}
		case c == '"':
			quoted = true
		case c == '<':
			angle = true
		case c == '>':
			angle = false
		case c == ',' && !angle:
			return v[:i], v[i+1:]
		}
	}
	return v, ""
}

// idAddress turns a sipgo URI and header parameters into a callctl.Address.
// For tel: URIs (RFC 3966) User is the number and Params its parameters.
// For sip: URIs a user part such as "+4930123;phone-context=…" (the
// telephone-subscriber form of RFC 3261 §19.1.6) is split the same way.
func idAddress(display string, uri *gosip.Uri, hp gosip.HeaderParams) callctl.Address {
	a := callctl.Address{Display: idDisplay(display), Scheme: uri.Scheme}
	switch uri.Scheme {
	case "sip", "sips":
		user := uri.User
		if i := strings.IndexByte(user, ';'); i >= 0 {
			a.Params = idParseParams(a.Params, user[i+1:])
			user = user[:i]
		}
		a.User = idUnescape(user)
		a.Host = uri.Host
		for _, kv := range uri.UriParams {
			a.Params = idPut(a.Params, kv.K, kv.V)
		}
		for _, kv := range uri.Headers {
			// URI headers (?Reason=…) ride along as parameters of the
			// address: History-Info carries its cause there (RFC 7044 §4.3).
			a.Header = idPut(a.Header, kv.K, idUnescape(kv.V))
		}
	case "tel":
		raw := uri.Raw()
		num, params, _ := strings.Cut(raw, ";")
		a.User = idUnescape(num)
		a.Params = idParseParams(a.Params, params)
	}
	for _, kv := range hp {
		a.Header = idPut(a.Header, kv.K, idUnquote(kv.V))
	}
	return a
}

// idParseParams reads ;-separated key=value pairs (tel: parameters, user
// part parameters).
func idParseParams(m map[string]string, s string) map[string]string {
	for s != "" {
		var p string
		p, s, _ = strings.Cut(s, ";")
		k, v, _ := strings.Cut(p, "=")
		m = idPut(m, k, idUnescape(v))
	}
	return m
}

// idPut stores a parameter under its lower-case name: parameter names are
// case-insensitive (RFC 3261 §7.3.1, §19.1.4). The first value wins, as a
// repeated parameter is malformed and the first is what a peer meant.
func idPut(m map[string]string, k, v string) map[string]string {
	k = strings.TrimSpace(k)
	if k == "" {
		return m
	}
	if !idIsLower(k) {
		k = strings.ToLower(k)
	}
	if m == nil {
		m = make(map[string]string, 2)
	}
	if _, ok := m[k]; !ok {
		m[k] = strings.TrimSpace(v)
	}
	return m
}

func idIsLower(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			return false
		}
	}
	return true
}

// idHistoryCause fills Header["cause"] of a History-Info entry from the
// Reason URI header (RFC 7044 §4.3, e.g. ?Reason=SIP%3Bcause%3D480) or the
// RFC 4458 cause URI parameter.
func idHistoryCause(a *callctl.Address) {
	if _, ok := a.Header["cause"]; ok {
		return
	}
	if r, ok := a.Header["reason"]; ok {
		if c := idReasonCause(r); c != "" {
			a.Header["cause"] = c
			return
		}
	}
	if c, ok := a.Params["cause"]; ok && c != "" {
		a.Header = idPut(a.Header, "cause", c)
	}
}

// idReasonCause returns the cause of a Reason header value (RFC 3326 §2):
// SIP;cause=480;text="…".
func idReasonCause(r string) string {
	for r != "" {
		var p string
		p, r, _ = strings.Cut(r, ";")
		k, v, _ := strings.Cut(p, "=")
		if strings.EqualFold(strings.TrimSpace(k), "cause") {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// idAppendPrivacy splits a Privacy header (RFC 3323 §4.2: priv-values
// separated by ';'; some peers use ',') into lower-case values.
func idAppendPrivacy(list []string, v string) []string {
	for v != "" {
		i := strings.IndexAny(v, ";,")
		p := v
		if i >= 0 {
			p, v = v[:i], v[i+1:]
		} else {
			v = ""
		}
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if !idIsLower(p) {
			p = strings.ToLower(p)
		}
		list = append(list, p)
	}
	return list
}

// idDisplay unquotes a display name: sipgo hands back the inside of a
// quoted-string with its quoted-pairs (RFC 3261 §25.1) still escaped. Some
// PBXs (Avaya) send 'single quoted' names; those quotes are dropped too.
func idDisplay(d string) string {
	d = strings.TrimSpace(d)
	if len(d) >= 2 && (d[0] == '"' && d[len(d)-1] == '"' || d[0] == '\'' && d[len(d)-1] == '\'') {
		d = d[1 : len(d)-1]
	}
	if strings.IndexByte(d, '\\') < 0 {
		return d
	}
	var b strings.Builder
	b.Grow(len(d))
	for i := 0; i < len(d); i++ {
		if d[i] == '\\' && i+1 < len(d) {
			i++
		}
		b.WriteByte(d[i])
	}
	return b.String()
}

// idUnquote drops the quotes of a quoted-string parameter value.
func idUnquote(v string) string {
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		return idDisplay(v)
	}
	return v
}

// idUnescape decodes %HH escapes (RFC 3261 §19.1.2); a malformed escape
// leaves the value as received.
func idUnescape(s string) string {
	if strings.IndexByte(s, '%') < 0 {
		return s
	}
	u, err := url.PathUnescape(s)
	if err != nil {
		return s
	}
	return u
}
