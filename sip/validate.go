package sip

import (
	"strings"

	gosip "github.com/emiago/sipgo/sip"
)

func init() {
	// sipgo refuses to send UDP datagrams over 1300 bytes (RFC 3261 §18.1.1
	// wants TCP then). PBXs and carriers behind a trunk seldom accept TCP,
	// and every proxy in practice relays large INVITEs (long SDP, ISUP
	// bodies) over UDP with IP fragmentation, so we do too.
	gosip.UDPMTUSize = 65507
}

// singleValued are the headers RFC 3261 §7.3.1 allows once per message;
// two of them make the request ambiguous (RFC 4475 §3.3.8).
var singleValued = []string{"From", "To", "Call-ID", "CSeq", "Max-Forwards", "Content-Length"}

// repeatedSingle names a single-valued header the request carries twice,
// in one pass over the headers (this runs for every request).
func repeatedSingle(req *gosip.Request) string {
	var seen [6]bool
	for _, h := range req.Headers() {
		name := h.Name()
		for i, s := range singleValued {
			if strings.EqualFold(name, s) {
				if seen[i] {
					return s
				}
				seen[i] = true
				break
			}
		}
	}
	return ""
}

// validate checks a parsed request the way RFC 3261 §16.3 and §8.2 ask
// before a proxy acts on it. A non-zero code is the response to send.
func validate(req *gosip.Request) (int, string, []gosip.Header) {
	if req.SipVersion != "SIP/2.0" {
		return 505, "Version Not Supported", nil
	}
	if req.CallID() == nil || req.From() == nil || req.To() == nil || req.CSeq() == nil || req.Via() == nil {
		return 400, "Missing Required Header", nil
	}
	if name := repeatedSingle(req); name != "" {
		return 400, "Multiple " + name + " Values", nil
	}
	if cs := req.CSeq(); !strings.EqualFold(string(cs.MethodName), string(req.Method)) && !(req.IsAck() && cs.MethodName == gosip.INVITE) {
		return 400, "CSeq Method Does Not Match", nil
	}
	switch strings.ToLower(req.Recipient.Scheme) {
	case "sip", "sips", "tel":
	default:
		return 416, "Unsupported URI Scheme", nil
	}
	// RFC 3261 §16.3 item 6: we support no extensions a proxy must
	// understand, so every Proxy-Require tag is unsupported.
	var tags []string
	for _, h := range req.GetHeaders("Proxy-Require") {
		for _, t := range strings.Split(h.Value(), ",") {
			if t = strings.TrimSpace(t); t != "" {
				tags = append(tags, t)
			}
		}
	}
	if len(tags) > 0 {
		return 420, "Bad Extension", []gosip.Header{gosip.NewHeader("Unsupported", strings.Join(tags, ", "))}
	}
	return 0, "", nil
}

// checked wraps a handler with validate, answering bad requests itself. An
// ACK gets no response (RFC 3261 §17), it is only dropped.
func (p *Proxy) checked(h func(*gosip.Request, gosip.ServerTransaction)) func(*gosip.Request, gosip.ServerTransaction) {
	return func(req *gosip.Request, tx gosip.ServerTransaction) {
		if !p.welcome(req, tx) { // strangers.go
			return
		}
		if code, reason, hdrs := validate(req); code != 0 {
			p.count(req, code)
			if !req.IsAck() {
				respond(tx, req, code, reason, hdrs...)
			}
			return
		}
		h(req, tx)
	}
}
