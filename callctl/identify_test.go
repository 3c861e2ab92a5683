package callctl_test

import (
	"context"
	"testing"

	"github.com/switchboard-sip/switchboard/callctl"
	"github.com/switchboard-sip/switchboard/contacts"
)

// normalizer adapts the real contacts.Numbers (default region DE,
// extensions 1xx and 2xxx) the way the wiring does.
func normalizer(t testing.TB) callctl.NormalizeFunc {
	t.Helper()
	nums, err := contacts.NewNumbers("DE", []string{"1xx", "2xxx"})
	if err != nil {
		t.Fatal(err)
	}
	return func(raw, region string) (callctl.Party, error) {
		n, err := nums.Normalize(raw, region)
		return callctl.Party{Raw: n.Raw, E164: n.E164, National: n.National,
			International: n.International, Ext: n.Ext, Internal: n.Internal}, err
	}
}

func sipAddr(display, user, host string) callctl.Address {
	return callctl.Address{Display: display, Scheme: "sip", User: user, Host: host}
}

func withHeader(a callctl.Address, kv ...string) callctl.Address {
	a.Header = map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		a.Header[kv[i]] = kv[i+1]
	}
	return a
}

func withParams(a callctl.Address, kv ...string) callctl.Address {
	a.Params = map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		a.Params[kv[i]] = kv[i+1]
	}
	return a
}

// base is an inbound INVITE from a carrier: caller +4915112345678 in PAI,
// something else in From, DID +49301234560 in the Request-URI.
func base() callctl.Signalling {
	return callctl.Signalling{
		RequestURI: sipAddr("", "+49301234560", "sb.example"),
		From:       sipAddr("Jane Doe", "015199999999", "carrier.example"),
		To:         sipAddr("", "+49301234569", "carrier.example"),
		PAI:        []callctl.Address{sipAddr("Jane (asserted)", "+4915112345678", "carrier.example")},
	}
}

func TestIdentify(t *testing.T) {
	type want struct {
		callerKey, callerName, callerSource string
		callerAnon, callerInternal          bool
		calledKey, calledSource             string
		original                            string // OriginalCalled key
	}
	tests := []struct {
		name    string
		dir     callctl.Direction
		trusted bool
		region  string
		sig     func(s *callctl.Signalling)
		want    want
	}{
		{name: "trusted trunk: caller from PAI", dir: callctl.Inbound, trusted: true,
			want: want{callerKey: "+4915112345678", callerName: "Jane (asserted)", callerSource: callctl.SourcePAI,
				calledKey: "+49301234560", calledSource: callctl.SourceRequestURI}},
		{name: "untrusted trunk ignores PAI (RFC 3325 §5)", dir: callctl.Inbound, trusted: false,
			want: want{callerKey: "+4915199999999", callerName: "Jane Doe", callerSource: callctl.SourceFrom,
				calledKey: "+49301234560", calledSource: callctl.SourceRequestURI}},
		{name: "several PAI: tel preferred", dir: callctl.Inbound, trusted: true,
			sig: func(s *callctl.Signalling) {
				s.PAI = []callctl.Address{
					sipAddr("", "jane", "carrier.example"),
					withParams(callctl.Address{Scheme: "tel", User: "015112345678"}, "phone-context", "+49"),
				}
			},
			want: want{callerKey: "+4915112345678", callerName: "Jane Doe", callerSource: callctl.SourcePAI,
				calledKey: "+49301234560", calledSource: callctl.SourceRequestURI}},
		{name: "tel: with phone-context from another country", dir: callctl.Inbound, trusted: true,
			sig: func(s *callctl.Signalling) {
				s.PAI = []callctl.Address{withParams(callctl.Address{Scheme: "tel", User: "446681800"}, "phone-context", "+41")}
			},
			want: want{callerKey: "+41446681800", callerName: "Jane Doe", callerSource: callctl.SourcePAI,
				calledKey: "+49301234560", calledSource: callctl.SourceRequestURI}},
		{name: "RPID party=calling when no PAI", dir: callctl.Inbound, trusted: true,
			sig: func(s *callctl.Signalling) {
				s.PAI = nil
				s.RPID = []callctl.Address{
					withHeader(sipAddr("", "+49301111111", "x"), "party", "called"),
					withHeader(sipAddr("Bob", "+49302222222", "x"), "party", "calling", "privacy", "off", "screen", "yes"),
				}
			},
			want: want{callerKey: "+49302222222", callerName: "Bob", callerSource: callctl.SourceRPID,
				calledKey: "+49301234560", calledSource: callctl.SourceRequestURI}},
		{name: "untrusted trunk ignores RPID", dir: callctl.Inbound, trusted: false,
			sig: func(s *callctl.Signalling) {
				s.PAI = nil
				s.RPID = []callctl.Address{sipAddr("Bob", "+49302222222", "x")}
			},
			want: want{callerKey: "+4915199999999", callerName: "Jane Doe", callerSource: callctl.SourceFrom,
				calledKey: "+49301234560", calledSource: callctl.SourceRequestURI}},
		{name: "Privacy: id with trusted PAI keeps the number, hides the name", dir: callctl.Inbound, trusted: true,
			sig: func(s *callctl.Signalling) {
				s.From = sipAddr("Anonymous", "anonymous", "anonymous.invalid")
				s.Privacy = []string{"id"}
			},
			want: want{callerKey: "+4915112345678", callerSource: callctl.SourcePAI, callerAnon: true,
				calledKey: "+49301234560", calledSource: callctl.SourceRequestURI}},
		{name: "Privacy: id on an untrusted trunk", dir: callctl.Inbound, trusted: false,
			sig: func(s *callctl.Signalling) {
				s.From = sipAddr("Anonymous", "anonymous", "anonymous.invalid")
				s.Privacy = []string{"id"}
			},
			want: want{callerKey: "anonymous", callerSource: callctl.SourceFrom, callerAnon: true,
				calledKey: "+49301234560", calledSource: callctl.SourceRequestURI}},
		{name: "Privacy: user", dir: callctl.Inbound, trusted: false,
			sig: func(s *callctl.Signalling) { s.Privacy = []string{"user"} },
			want: want{callerKey: "+4915199999999", callerSource: callctl.SourceFrom, callerAnon: true,
				calledKey: "+49301234560", calledSource: callctl.SourceRequestURI}},
		{name: "Privacy: none is not anonymous", dir: callctl.Inbound, trusted: true,
			sig: func(s *callctl.Signalling) { s.Privacy = []string{"none"} },
			want: want{callerKey: "+4915112345678", callerName: "Jane (asserted)", callerSource: callctl.SourcePAI,
				calledKey: "+49301234560", calledSource: callctl.SourceRequestURI}},
		{name: "anonymous From behind a trusted PAI", dir: callctl.Inbound, trusted: true,
			sig: func(s *callctl.Signalling) { s.From = sipAddr("", "anonymous", "carrier.example") },
			want: want{callerKey: "+4915112345678", callerSource: callctl.SourcePAI, callerAnon: true,
				calledKey: "+49301234560", calledSource: callctl.SourceRequestURI}},
		{name: "RPID privacy=full", dir: callctl.Inbound, trusted: true,
			sig: func(s *callctl.Signalling) {
				s.PAI = nil
				s.RPID = []callctl.Address{withHeader(sipAddr("", "+49302222222", "x"), "privacy", "full")}
			},
			want: want{callerKey: "+49302222222", callerSource: callctl.SourceRPID, callerAnon: true,
				calledKey: "+49301234560", calledSource: callctl.SourceRequestURI}},
	}
	for _, tc := range []struct{ name, user, host, display string }{
		{"anonymous.invalid host", "x", "anonymous.invalid", ""},
		{"unavailable", "unavailable", "hostportion", ""},
		{"restricted", "Restricted", "carrier.example", ""},
		{"withheld", "withheld", "carrier.example", ""},
		{"private", "private", "carrier.example", ""},
		{"no user part", "", "213.166.9.4", "Anonymous"},
		{"display name Restricted", "0", "carrier.example", "Restricted"},
	} {
		tests = append(tests, struct {
			name    string
			dir     callctl.Direction
			trusted bool
			region  string
			sig     func(s *callctl.Signalling)
			want    want
		}{name: "anonymous: " + tc.name, dir: callctl.Inbound, trusted: false,
			sig: func(s *callctl.Signalling) { s.From = sipAddr(tc.display, tc.user, tc.host) },
			want: want{callerKey: tc.user, callerSource: callctl.SourceFrom, callerAnon: true,
				calledKey: "+49301234560", calledSource: callctl.SourceRequestURI}})
	}
	tests = append(tests, []struct {
		name    string
		dir     callctl.Direction
		trusted bool
		region  string
		sig     func(s *callctl.Signalling)
		want    want
	}{
		{name: "called from P-Called-Party-ID", dir: callctl.Inbound, trusted: true,
			sig: func(s *callctl.Signalling) {
				a := sipAddr("", "+49301234561", "carrier.example")
				s.PCalledPartyID = &a
			},
			want: want{callerKey: "+4915112345678", callerName: "Jane (asserted)", callerSource: callctl.SourcePAI,
				calledKey: "+49301234561", calledSource: callctl.SourcePCalledPartyID}},
		{name: "called from To when the Request-URI has no user", dir: callctl.Inbound, trusted: true,
			sig: func(s *callctl.Signalling) { s.RequestURI = sipAddr("", "", "192.0.2.10") },
			want: want{callerKey: "+4915112345678", callerName: "Jane (asserted)", callerSource: callctl.SourcePAI,
				calledKey: "+49301234569", calledSource: callctl.SourceTo}},
		{name: "trunk region reads national numbers", dir: callctl.Inbound, trusted: true, region: "CH",
			sig: func(s *callctl.Signalling) {
				s.PAI = []callctl.Address{sipAddr("", "044 668 18 00", "ch.example")}
				s.RequestURI = sipAddr("", "0446681801", "sb.example")
			},
			want: want{callerKey: "+41446681800", callerName: "Jane Doe", callerSource: callctl.SourcePAI,
				calledKey: "+41446681801", calledSource: callctl.SourceRequestURI}},
		{name: "Diversion: original dialled number is the oldest (RFC 5806)", dir: callctl.Inbound, trusted: true,
			sig: func(s *callctl.Signalling) {
				s.Diversion = []callctl.Address{
					withHeader(sipAddr("", "+49301234562", "x"), "reason", "no-answer", "counter", "2"),
					withHeader(sipAddr("", "+49301234563", "x"), "reason", "unconditional", "counter", "1"),
				}
			},
			want: want{callerKey: "+4915112345678", callerName: "Jane (asserted)", callerSource: callctl.SourcePAI,
				calledKey: "+49301234560", calledSource: callctl.SourceRequestURI, original: "+49301234563"}},
		{name: "History-Info: index 1 is the original target (RFC 7044)", dir: callctl.Inbound, trusted: true,
			sig: func(s *callctl.Signalling) {
				s.HistoryInfo = []callctl.Address{
					withHeader(sipAddr("", "+49301234564", "x"), "index", "1"),
					withHeader(sipAddr("", "+49301234560", "x"), "index", "1.1", "cause", "302"),
				}
			},
			want: want{callerKey: "+4915112345678", callerName: "Jane (asserted)", callerSource: callctl.SourcePAI,
				calledKey: "+49301234560", calledSource: callctl.SourceRequestURI, original: "+49301234564"}},
		{name: "History-Info naming the called number is no diversion", dir: callctl.Inbound, trusted: true,
			sig: func(s *callctl.Signalling) {
				s.HistoryInfo = []callctl.Address{withHeader(sipAddr("", "030 1234560", "x"), "index", "1")}
			},
			want: want{callerKey: "+4915112345678", callerName: "Jane (asserted)", callerSource: callctl.SourcePAI,
				calledKey: "+49301234560", calledSource: callctl.SourceRequestURI}},
		{name: "outbound: internal extension calls a national number", dir: callctl.Outbound,
			sig: func(s *callctl.Signalling) {
				*s = callctl.Signalling{
					RequestURI: sipAddr("", "0301234567", "trunk.example"),
					From:       sipAddr("Reception", "2001", "pbx.example"),
					To:         sipAddr("", "0301234567", "trunk.example"),
				}
			},
			want: want{callerKey: "2001", callerName: "Reception", callerSource: callctl.SourceFrom, callerInternal: true,
				calledKey: "+49301234567", calledSource: callctl.SourceRequestURI}},
		{name: "outbound: PAI from the PBX wins over From", dir: callctl.Outbound,
			sig: func(s *callctl.Signalling) {
				*s = callctl.Signalling{
					RequestURI: sipAddr("", "+41446681800", "trunk.example"),
					From:       sipAddr("", "2001", "pbx.example"),
					PAI:        []callctl.Address{sipAddr("ACME", "+49301234560", "pbx.example")},
				}
			},
			want: want{callerKey: "+49301234560", callerName: "ACME", callerSource: callctl.SourcePAI,
				calledKey: "+41446681800", calledSource: callctl.SourceRequestURI}},
		{name: "unreadable numbers keep their raw form", dir: callctl.Inbound, trusted: false, region: "US",
			sig: func(s *callctl.Signalling) {
				s.From = sipAddr("", "1-800-FLOWERS", "x")
				s.RequestURI = sipAddr("", "437-555-1234567", "x")
			},
			want: want{callerKey: "1-800-FLOWERS", callerSource: callctl.SourceFrom,
				calledKey: "437-555-1234567", calledSource: callctl.SourceRequestURI}},
	}...)

	id := callctl.NewIdentify(normalizer(t))
	if id.Name() != "identify" {
		t.Errorf("Name = %q", id.Name())
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sig := base()
			if tc.sig != nil {
				tc.sig(&sig)
			}
			c := &callctl.Call{Direction: tc.dir, Trusted: tc.trusted, Region: tc.region, Signalling: sig}
			if d := id.Handle(context.Background(), c); d.Verdict != callctl.Continue {
				t.Fatalf("Handle = %+v, want Continue", d)
			}
			got := want{
				callerKey: c.Caller.Key(), callerName: c.Caller.Name, callerSource: c.Caller.Source,
				callerAnon: c.Caller.Anonymous, callerInternal: c.Caller.Internal,
				calledKey: c.Called.Key(), calledSource: c.Called.Source,
			}
			if c.OriginalCalled != nil {
				got.original = c.OriginalCalled.Key()
			}
			if got != tc.want {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
			if c.Caller.Internal && c.Caller.E164 != "" {
				t.Errorf("internal caller has E164 %q", c.Caller.E164)
			}
		})
	}
}

func TestIdentifyFillsParty(t *testing.T) {
	sig := base()
	sig.PAI = []callctl.Address{sipAddr("Jane", "+49 30 1234567 x 12", "carrier.example")}
	c := &callctl.Call{Direction: callctl.Inbound, Trusted: true, Signalling: sig}
	callctl.NewIdentify(normalizer(t)).Handle(context.Background(), c)
	want := callctl.Party{Raw: "+49 30 1234567 x 12", E164: "+49301234567", National: "030 1234567",
		International: "+49 30 1234567", Ext: "12", Name: "Jane", Source: callctl.SourcePAI, Host: "carrier.example"}
	if c.Caller != want {
		t.Errorf("Caller = %+v\nwant     %+v", c.Caller, want)
	}
}

// Identification fails open: without a normaliser every party stays raw.
func TestIdentifyWithoutNormalizer(t *testing.T) {
	c := &callctl.Call{Direction: callctl.Inbound, Trusted: true, Signalling: base()}
	if d := callctl.NewIdentify(nil).Handle(context.Background(), c); d.Verdict != callctl.Continue {
		t.Fatalf("Handle = %+v", d)
	}
	if c.Caller.Raw != "+4915112345678" || c.Caller.E164 != "" || c.Called.Raw != "+49301234560" {
		t.Errorf("Caller %+v Called %+v", c.Caller, c.Called)
	}
}

func BenchmarkIdentifyHandle(b *testing.B) {
	id := callctl.NewIdentify(normalizer(b))
	sig := base()
	sig.Diversion = []callctl.Address{sipAddr("", "+49301234562", "x")}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		c := callctl.Call{Direction: callctl.Inbound, Trusted: true, Signalling: sig}
		id.Handle(ctx, &c)
	}
}
