package sip

import (
	"strings"

	gosip "github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/callctl"
)

// answeredBy names the phone that took a call, from the PBX's 2xx (SPEC §2
// answered_by): the user part of P-Asserted-Identity (RFC 3325 §9.1, the
// extension the PBX vouches for) or its display name, else the Contact's
// user part (RFC 3261 §8.1.1.8), else the To display name. The value came
// from the network and is stored and shown: it is sanitised.
func answeredBy(res *gosip.Response) string {
	for _, h := range res.GetHeaders("P-Asserted-Identity") {
		for _, a := range idAppendValues(nil, h.Value()) {
			if v := firstClean(a.User, a.Display); v != "" {
				return v
			}
		}
	}
	if c := res.Contact(); c != nil {
		if v := firstClean(c.Address.User); v != "" {
			return v
		}
	}
	if to := res.To(); to != nil {
		return firstClean(idDisplay(to.DisplayName))
	}
	return ""
}

func firstClean(vs ...string) string {
	for _, v := range vs {
		if v = strings.TrimSpace(callctl.SanitizeHeaderValue(v)); v != "" {
			return v
		}
	}
	return ""
}
