package callctl

import (
	"context"
	"strings"
	"unicode"
)

// NormalizeFunc reads one phone number with a region (empty: the
// normaliser's default) and returns it as a Party with Raw, E164, National,
// International, Ext and Internal filled. It is how Identify uses
// contacts.Numbers without callctl importing contacts (the contact store
// sits above callctl in the import graph).
type NormalizeFunc func(raw, region string) (Party, error)

// Identify is the first pipeline stage: it decides who is calling and which
// number was called, from the Signalling the sip package extracted, and
// normalises both numbers. It never rejects a call and fails open: a number
// that cannot be read keeps its raw form only, and a nil normaliser leaves
// every party raw.
type Identify struct {
	normalize NormalizeFunc
}

// NewIdentify returns the Identify stage using normalize for numbers.
func NewIdentify(normalize NormalizeFunc) *Identify {
	return &Identify{normalize: normalize}
}

// Name implements Stage.
func (*Identify) Name() string { return "identify" }

// Sources of a party, recorded in Party.Source so that explain and the
// call log can say which header a number came from.
const (
	SourcePAI            = "p-asserted-identity"
	SourceRPID           = "remote-party-id"
	SourceFrom           = "from"
	SourceRequestURI     = "request-uri"
	SourcePCalledPartyID = "p-called-party-id"
	SourceTo             = "to"
	SourceDiversion      = "diversion"
	SourceHistoryInfo    = "history-info"
)

// Handle implements Stage. Inbound (from a trunk):
//
//   - caller: when the trunk is trusted (RFC 3325 §5: a network asserted
//     identity is only believed inside a trust domain), the first
//     P-Asserted-Identity, preferring a tel: or E.164 one when there are
//     several (RFC 3325 §9.1 allows one sip: and one tel:), then
//     Remote-Party-ID with party=calling; otherwise, and as the fallback,
//     From.
//   - called: P-Called-Party-ID (RFC 7315 §4.2), else the Request-URI user
//     (carriers put the DID there), else To.
//   - original called: the diverting number of the oldest Diversion (RFC
//     5806 §3: each diversion is added on top, so the original dialled
//     number is the bottom-most), else the first History-Info entry (RFC
//     7044 §9: index 1 is the original target), when it differs from the
//     called number.
//
// Outbound (from the PBX): caller is the PBX's P-Asserted-Identity when it
// sends one, else From (usually an internal extension); called is the
// Request-URI user, else To.
//
// Anonymity: a Privacy header of id, user or header (RFC 3323 §4.2, RFC
// 3325 §9.3), a Remote-Party-ID privacy of full or uri, and the usual
// placeholders (anonymous@anonymous.invalid from RFC 3323 §4.1.1.3,
// unavailable, restricted, withheld, no user part...) mark the caller
// Anonymous. When a trusted identity is present under Privacy: id, the
// caller is Anonymous but keeps Raw and E164 from that identity: the
// network knows the number and blocking must still be able to act on it.
// Consumers that show the caller (board, templates, notifications) must
// check Anonymous before showing the number. The display name of an
// anonymous caller is dropped: it is a placeholder, or withheld on purpose.
func (s *Identify) Handle(_ context.Context, c *Call) Decision {
	sig := &c.Signalling
	if c.Direction == Outbound {
		src, from := SourcePAI, firstUser(sig.PAI)
		if from == nil {
			src, from = SourceFrom, &sig.From
		}
		c.Caller = s.party(from, src, c.Region)
		c.Caller.Anonymous = privacyRequested(sig) || isAnonymous(from)
		c.Called = s.called(sig, false, c.Region)
	} else {
		c.Caller = s.inboundCaller(sig, c.Trusted, c.Region)
		c.Called = s.called(sig, true, c.Region)
		c.OriginalCalled = s.originalCalled(sig, &c.Called, c.Region)
	}
	if c.Caller.Anonymous {
		c.Caller.Name = ""
	}
	return Decision{Verdict: Continue}
}

func (s *Identify) inboundCaller(sig *Signalling, trusted bool, region string) Party {
	var a *Address
	var src string
	if trusted {
		if a = preferredPAI(sig.PAI); a != nil {
			src = SourcePAI
		} else if a = callingRPID(sig.RPID); a != nil {
			src = SourceRPID
		}
	}
	if a == nil {
		a, src = &sig.From, SourceFrom
	}
	p := s.party(a, src, region)
	if p.Name == "" && a != &sig.From && hasLetter(sig.From.Display) {
		// Carriers often assert the number alone; the caller's name then
		// only travels in From. A From display that is only digits is some
		// other number (a diverting party's), not a name.
		p.Name = sig.From.Display
	}
	// A From anonymised by the user (RFC 3323 §4.1.1.3) is a privacy
	// request even when no Privacy header came along with it.
	p.Anonymous = privacyRequested(sig) || isAnonymous(a) ||
		(a != &sig.From && isAnonymous(&sig.From))
	return p
}

func (s *Identify) called(sig *Signalling, inbound bool, region string) Party {
	if inbound && sig.PCalledPartyID != nil && sig.PCalledPartyID.User != "" {
		return s.party(sig.PCalledPartyID, SourcePCalledPartyID, region)
	}
	if sig.RequestURI.User != "" {
		return s.party(&sig.RequestURI, SourceRequestURI, region)
	}
	return s.party(&sig.To, SourceTo, region)
}

func (s *Identify) originalCalled(sig *Signalling, called *Party, region string) *Party {
	var p Party
	switch {
	case len(sig.Diversion) > 0:
		a := &sig.Diversion[len(sig.Diversion)-1]
		if a.User == "" {
			return nil
		}
		p = s.party(a, SourceDiversion, region)
	case len(sig.HistoryInfo) > 0:
		a := &sig.HistoryInfo[0]
		for i := range sig.HistoryInfo {
			if sig.HistoryInfo[i].Header["index"] == "1" {
				a = &sig.HistoryInfo[i]
				break
			}
		}
		if a.User == "" {
			return nil
		}
		p = s.party(a, SourceHistoryInfo, region)
	default:
		return nil
	}
	if p.Key() == called.Key() {
		// Carriers that support histinfo send an entry for every call;
		// only a different number means the call was forwarded.
		return nil
	}
	return &p
}

// party reads one address into a Party.
func (s *Identify) party(a *Address, src, region string) Party {
	p := Party{Raw: a.User, Name: a.Display, Source: src}
	if a.Scheme == "sip" || a.Scheme == "sips" {
		p.Host = a.Host
	}
	if a.User == "" || s.normalize == nil || isPlaceholderUser(a.User) {
		return p
	}
	in := a.User
	if ctx := a.Params["phone-context"]; len(ctx) > 1 && ctx[0] == '+' && in[0] != '+' {
		// RFC 3966 §5.1.5 local number: the context gives the country.
		in = "tel:" + in + ";phone-context=" + ctx
	}
	n, err := s.normalize(in, region)
	if err != nil {
		return p
	}
	p.E164, p.National, p.International = n.E164, n.National, n.International
	p.Ext, p.Internal = n.Ext, n.Internal
	return p
}

// firstUser is the first address with a user part.
func firstUser(list []Address) *Address {
	for i := range list {
		if list[i].User != "" {
			return &list[i]
		}
	}
	return nil
}

// preferredPAI picks the tel: or E.164 identity when a network sends both
// forms (RFC 3325 §9.1), else the first with a user part.
func preferredPAI(list []Address) *Address {
	if len(list) > 1 {
		for i := range list {
			if a := &list[i]; a.User != "" && (a.Scheme == "tel" || a.User[0] == '+') {
				return a
			}
		}
	}
	return firstUser(list)
}

// callingRPID is the first Remote-Party-ID for the calling party
// (draft-ietf-sip-privacy-04 §6: party defaults to calling).
func callingRPID(list []Address) *Address {
	for i := range list {
		a := &list[i]
		if party, ok := a.Header["party"]; ok && !strings.EqualFold(party, "calling") {
			continue
		}
		if a.User != "" {
			return a
		}
	}
	return nil
}

// privacyRequested reports whether the caller asked to hide their identity
// with a Privacy header (RFC 3323 §4.2, RFC 3325 §9.3) or a calling
// Remote-Party-ID privacy parameter. The request is honoured from any
// source: hiding more than asked is safe, showing more is not.
func privacyRequested(sig *Signalling) bool {
	for _, v := range sig.Privacy {
		switch v {
		case "id", "user", "header":
			return true
		}
	}
	for i := range sig.RPID {
		a := &sig.RPID[i]
		if party, ok := a.Header["party"]; ok && !strings.EqualFold(party, "calling") {
			continue
		}
		switch strings.ToLower(a.Header["privacy"]) {
		case "full", "uri":
			return true
		}
	}
	return false
}

// isAnonymous reports the placeholders carriers and PBXs put in place of a
// withheld identity.
func isAnonymous(a *Address) bool {
	if a.User == "" {
		return true
	}
	if strings.EqualFold(a.Host, "anonymous.invalid") || isPlaceholderUser(a.User) {
		return true
	}
	return isPlaceholderName(a.Display)
}

var placeholderUsers = [...]string{
	"anonymous", "unavailable", "restricted", "unknown", "private",
	"withheld", "anonym", "blocked", "unavailable-caller", "no-caller-id",
}

func isPlaceholderUser(u string) bool {
	for _, p := range placeholderUsers {
		if strings.EqualFold(u, p) {
			return true
		}
	}
	return false
}

var placeholderNames = [...]string{
	"anonymous", "restricted", "unavailable", "unknown", "private",
	"withheld", "private number", "withheld number", "unknown caller",
	"no caller id", "anonym", "unbekannt", "nicht übermittelt",
}

func isPlaceholderName(d string) bool {
	if d == "" || len(d) > 20 {
		return false
	}
	d = strings.TrimSpace(d)
	for _, p := range placeholderNames {
		if strings.EqualFold(d, p) {
			return true
		}
	}
	return false
}

func hasLetter(s string) bool {
	for _, r := range s {
		if unicode.IsLetter(r) {
			return true
		}
	}
	return false
}
