package sip

// Per-hop rules of a proxy that do not depend on sipgo's transaction
// layer, so that every forwarding path (sipgo's and a stateless fast path)
// applies the same ones: where responses go (RFC 3261 §18.2.1, RFC 3581),
// and the caller-name change that the caller's side must never see (SPEC
// §1, §5).

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/netip"
	"strconv"
	"strings"

	gosip "github.com/emiago/sipgo/sip"
)

// stampVia records on a received request's top Via where it really came
// from: received when the sent-by host is not the source address (RFC 3261
// §18.2.1), and received plus rport when the sender asked for rport (RFC
// 3581 §4). Responses then go to that address and port, relayed or not.
func stampVia(v *gosip.ViaHeader, src netip.AddrPort) {
	if v == nil || !src.IsValid() {
		return
	}
	if v.Params == nil {
		v.Params = gosip.NewParams()
	}
	ip := src.Addr().Unmap().String()
	rport, hasRport := v.Params.Get("rport")
	a, err := netip.ParseAddr(v.Host)
	fill, received := stampRule(hasRport && rport == "", err == nil && a.Unmap() == src.Addr().Unmap())
	if fill {
		v.Params.Add("rport", strconv.Itoa(int(src.Port())))
	}
	if received {
		v.Params.Add("received", ip)
	}
}

// responseAddr is where a response to a request whose top Via is v goes:
// received (else the sent-by host) and rport (else the sent-by port, else
// 5060), RFC 3261 §18.2.2 and RFC 3581 §4.
func responseAddr(v *gosip.ViaHeader) string {
	received, _ := v.Params.Get("received")
	rport := 0
	if r, ok := v.Params.Get("rport"); ok && r != "" {
		rport, _ = strconv.Atoi(r)
	}
	host, port := hopRule(v.Host, received, v.Port, rport)
	return joinHostPort(host, port)
}

func joinHostPort(host string, port int) string {
	if strings.Contains(host, ":") && !strings.HasPrefix(host, "[") {
		host = "[" + host + "]"
	}
	return host + ":" + strconv.Itoa(port)
}

// nameSwap is the caller-name change of one dialog: the caller (known by
// its From tag) sent Original, the PBX was shown Shown. It travels in our
// Record-Route (the sbn parameter, signed), so that in-dialog requests
// after a restart are still restored, as Kamailio's uac module does.
type nameSwap struct {
	tag, original, shown string
}

const swapParam = "sbn"

// swapOf compares the From of the request as received with the forwarded
// copy; ok is false when the display name was not changed.
func swapOf(in, out *gosip.Request) (nameSwap, bool) {
	f, g := in.From(), out.From()
	if f == nil || g == nil || f.DisplayName == g.DisplayName {
		return nameSwap{}, false
	}
	tag, _ := f.Params.Get("tag")
	return nameSwap{tag: tag, original: f.DisplayName, shown: g.DisplayName}, true
}

// encode writes the swap as a URI parameter value, signed with key over
// the Call-ID so that no one can make us write a name of their choice.
func (s nameSwap) encode(key []byte, callID string) string {
	payload := base64.RawURLEncoding.EncodeToString([]byte(s.tag + "\x00" + s.original + "\x00" + s.shown))
	return payload + "." + swapMAC(key, callID, payload)
}

func swapMAC(key []byte, callID, payload string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(callID))
	m.Write([]byte{0})
	m.Write([]byte(payload))
	return hex.EncodeToString(m.Sum(nil)[:8])
}

// decodeSwap reads a swap written by encode; ok is false for anything
// else, including a value whose signature does not hold.
func decodeSwap(key []byte, callID, v string) (nameSwap, bool) {
	payload, mac, ok := strings.Cut(v, ".")
	if !ok || !hmac.Equal([]byte(mac), []byte(swapMAC(key, callID, payload))) {
		return nameSwap{}, false
	}
	b, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return nameSwap{}, false
	}
	f := strings.Split(string(b), "\x00")
	if len(f) != 3 {
		return nameSwap{}, false
	}
	return nameSwap{tag: f[0], original: f[1], shown: f[2]}, true
}

// apply rewrites an in-dialog request: the caller's own requests
// show the PBX the changed name in From, the other side's requests give
// the caller back its own name in To.
func (s nameSwap) apply(req *gosip.Request) {
	if f := req.From(); f != nil {
		if tag, _ := f.Params.Get("tag"); tag == s.tag {
			f.DisplayName = s.shown
		}
	}
	if t := req.To(); t != nil {
		if tag, _ := t.Params.Get("tag"); tag == s.tag {
			t.DisplayName = s.original
		}
	}
}

// restoreResponse gives a response that goes to the caller its own name
// back in From (used where the request it answers is not at hand).
func (s nameSwap) restoreResponse(res *gosip.Response) {
	if f := res.From(); f != nil {
		if tag, _ := f.Params.Get("tag"); tag == s.tag {
			f.DisplayName = s.original
		}
	}
}

// sameParties makes a response carry the display names of the From and To
// of the request it answers: whoever sent a request sees its own From and
// To again, whatever the far side saw.
func sameParties(res *gosip.Response, req *gosip.Request) {
	if f, g := req.From(), res.From(); f != nil && g != nil {
		g.DisplayName = f.DisplayName
	}
	if f, g := req.To(), res.To(); f != nil && g != nil {
		g.DisplayName = f.DisplayName
	}
}

// markSwap adds the swap to our own Record-Route entries of a forwarded
// initial request.
func (p *Proxy) markSwap(fwd *gosip.Request, s nameSwap) {
	id := fwd.CallID()
	if id == nil {
		return
	}
	v := s.encode(p.opts.RouteKey, id.Value())
	for _, h := range fwd.GetHeaders("Record-Route") {
		rr, ok := h.(*gosip.RecordRouteHeader)
		if !ok || !p.self.is(rr.Address.Host, rr.Address.Port) {
			continue
		}
		rr.Address.UriParams.Add(swapParam, v)
	}
}

// markViaSwap adds the swap to our top Via of a forwarded request.
func (p *Proxy) markViaSwap(fwd *gosip.Request, s nameSwap) {
	if id, v := fwd.CallID(), fwd.Via(); id != nil && v != nil {
		v.Params.Add(swapParam, s.encode(p.opts.RouteKey, id.Value()))
	}
}

// swapOfVia finds the swap on our top Via of a response.
func (p *Proxy) swapOfVia(res *gosip.Response) (nameSwap, bool) {
	id, v := res.CallID(), res.Via()
	if id == nil || v == nil {
		return nameSwap{}, false
	}
	if raw, ok := v.Params.Get(swapParam); ok {
		return decodeSwap(p.opts.RouteKey, id.Value(), raw)
	}
	return nameSwap{}, false
}

// swapOfHeaders finds the swap in our entries of a Route (requests) or
// Record-Route (responses) set.
func (p *Proxy) swapOfHeaders(callID *gosip.CallIDHeader, hs []gosip.Header) (nameSwap, bool) {
	if callID == nil {
		return nameSwap{}, false
	}
	for _, h := range hs {
		var u gosip.Uri
		switch r := h.(type) {
		case *gosip.RouteHeader:
			u = r.Address
		case *gosip.RecordRouteHeader:
			u = r.Address
		default:
			continue
		}
		if !p.self.is(u.Host, u.Port) {
			continue
		}
		if v, ok := u.UriParams.Get(swapParam); ok {
			return decodeSwap(p.opts.RouteKey, callID.Value(), v)
		}
	}
	return nameSwap{}, false
}
