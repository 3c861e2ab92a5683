package sip

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	gosip "github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/callctl"
	"github.com/switchboard-sip/switchboard/contacts"
)

// parseInvite parses raw SIP written line by line with \n endings.
func parseInvite(t testing.TB, lines ...string) *gosip.Request {
	t.Helper()
	msg := strings.Join(lines, "\r\n") + "\r\n\r\n"
	m, err := gosip.ParseMessage([]byte(msg))
	if err != nil {
		t.Fatalf("ParseMessage: %v\n%s", err, msg)
	}
	req, ok := m.(*gosip.Request)
	if !ok {
		t.Fatalf("not a request: %T", m)
	}
	return req
}

func inviteWith(t testing.TB, extra ...string) *gosip.Request {
	t.Helper()
	lines := []string{
		"INVITE sip:+49301234560@sb.example;user=phone SIP/2.0",
		"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-test",
		"Max-Forwards: 70",
		"From: \"Jane \\\"JD\\\" Doe\" <sip:+4915112345678@carrier.example;user=phone>;tag=a1",
		"To: <sip:+49301234560@carrier.example>",
		"Call-ID: id1@192.0.2.1",
		"CSeq: 1 INVITE",
	}
	lines = append(lines, extra...)
	lines = append(lines, "Content-Length: 0")
	return parseInvite(t, lines...)
}

func addr(scheme, user, host string) callctl.Address {
	return callctl.Address{Scheme: scheme, User: user, Host: host}
}

func TestSignalling(t *testing.T) {
	tests := []struct {
		name  string
		extra []string
		check func(t *testing.T, s callctl.Signalling)
	}{
		{
			name: "request-uri, from, to",
			check: func(t *testing.T, s callctl.Signalling) {
				want := addr("sip", "+49301234560", "sb.example")
				want.Params = map[string]string{"user": "phone"}
				if !reflect.DeepEqual(s.RequestURI, want) {
					t.Errorf("RequestURI = %+v, want %+v", s.RequestURI, want)
				}
				if s.From.Display != `Jane "JD" Doe` || s.From.User != "+4915112345678" || s.From.Header["tag"] != "a1" {
					t.Errorf("From = %+v", s.From)
				}
				if s.To.User != "+49301234560" || s.To.Host != "carrier.example" {
					t.Errorf("To = %+v", s.To)
				}
			},
		},
		{
			name: "P-Asserted-Identity sip and tel in one header (RFC 3325 §9.1)",
			extra: []string{
				`P-Asserted-Identity: "Jane, Doe" <sip:+4915112345678@carrier.example;user=phone>, <tel:015112345678;phone-context=+49>`,
				`P-Asserted-Identity: <sip:second@carrier.example>`,
			},
			check: func(t *testing.T, s callctl.Signalling) {
				if len(s.PAI) != 3 {
					t.Fatalf("PAI = %+v, want 3 values", s.PAI)
				}
				if s.PAI[0].Display != "Jane, Doe" || s.PAI[0].User != "+4915112345678" {
					t.Errorf("PAI[0] = %+v", s.PAI[0])
				}
				tel := callctl.Address{Scheme: "tel", User: "015112345678", Params: map[string]string{"phone-context": "+49"}}
				if !reflect.DeepEqual(s.PAI[1], tel) {
					t.Errorf("PAI[1] = %+v, want %+v", s.PAI[1], tel)
				}
				if s.PAI[2].User != "second" {
					t.Errorf("PAI[2] = %+v", s.PAI[2])
				}
			},
		},
		{
			name:  "Remote-Party-ID with privacy, screen, party",
			extra: []string{`Remote-Party-ID: "Bob" <sip:+12125550100@gw.example>;party=calling;screen=yes;privacy=full`},
			check: func(t *testing.T, s callctl.Signalling) {
				if len(s.RPID) != 1 {
					t.Fatalf("RPID = %+v", s.RPID)
				}
				want := map[string]string{"party": "calling", "screen": "yes", "privacy": "full"}
				if !reflect.DeepEqual(s.RPID[0].Header, want) || s.RPID[0].Display != "Bob" {
					t.Errorf("RPID = %+v", s.RPID[0])
				}
			},
		},
		{
			name:  "Privacy split on ; and , and lower-cased (RFC 3323 §4.2)",
			extra: []string{"Privacy: ID; Header", "Privacy: user,critical"},
			check: func(t *testing.T, s callctl.Signalling) {
				want := []string{"id", "header", "user", "critical"}
				if !reflect.DeepEqual(s.Privacy, want) {
					t.Errorf("Privacy = %q, want %q", s.Privacy, want)
				}
			},
		},
		{
			name:  "P-Called-Party-ID",
			extra: []string{"P-Called-Party-ID: <sip:+49301234561@carrier.example;user=phone>"},
			check: func(t *testing.T, s callctl.Signalling) {
				if s.PCalledPartyID == nil || s.PCalledPartyID.User != "+49301234561" {
					t.Errorf("PCalledPartyID = %+v", s.PCalledPartyID)
				}
			},
		},
		{
			name: "Diversion, all in order (RFC 5806)",
			extra: []string{
				`Diversion: <sip:+49301234562@carrier.example>;reason=unconditional;counter=1, <sip:+49301234563@carrier.example>;reason="no-answer"`,
				`Diversion: <tel:+49301234564>;reason=user-busy`,
			},
			check: func(t *testing.T, s callctl.Signalling) {
				var got []string
				for _, d := range s.Diversion {
					got = append(got, d.User+"/"+d.Header["reason"])
				}
				want := []string{"+49301234562/unconditional", "+49301234563/no-answer", "+49301234564/user-busy"}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("Diversion = %q, want %q", got, want)
				}
			},
		},
		{
			name: "History-Info index and cause (RFC 7044 §4.3, RFC 4458)",
			extra: []string{
				`History-Info: <sip:+49301234560@carrier.example>;index=1, <sip:+49301234565@pbx.example?Reason=SIP%3Bcause%3D480%3Btext%3D%22Temporarily%20Unavailable%22>;index=1.1`,
				`History-Info: <sip:+49301234566@pbx.example;cause=486>;index=1.1.1`,
			},
			check: func(t *testing.T, s callctl.Signalling) {
				var got []string
				for _, h := range s.HistoryInfo {
					got = append(got, h.User+"/"+h.Header["index"]+"/"+h.Header["cause"])
				}
				want := []string{"+49301234560/1/", "+49301234565/1.1/480", "+49301234566/1.1.1/486"}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("History-Info = %q, want %q", got, want)
				}
				if r := s.HistoryInfo[1].Header["reason"]; !strings.HasPrefix(r, "SIP;cause=480") {
					t.Errorf("reason = %q, want it unescaped", r)
				}
			},
		},
		{
			name:  "user part with telephone-subscriber parameters and escapes",
			extra: []string{`P-Asserted-Identity: <sip:%2B4188888888;cpc=ordinary@10.0.0.1;user=phone>`},
			check: func(t *testing.T, s callctl.Signalling) {
				if len(s.PAI) != 1 {
					t.Fatalf("PAI = %+v", s.PAI)
				}
				a := s.PAI[0]
				if a.User != "+4188888888" || a.Params["cpc"] != "ordinary" || a.Params["user"] != "phone" {
					t.Errorf("PAI = %+v", a)
				}
			},
		},
		{
			name: "garbage values are skipped",
			extra: []string{
				"P-Asserted-Identity: <<<>>>, \"unterminated, <sip:+4930123@x>",
				"Remote-Party-ID: ",
				"Diversion: ;;;, <sip:+49301234567@x>",
				"History-Info: <nonsense",
				"P-Called-Party-ID: *",
			},
			check: func(t *testing.T, s callctl.Signalling) {
				if len(s.PAI) != 0 || len(s.RPID) != 0 || len(s.HistoryInfo) != 0 || s.PCalledPartyID != nil {
					t.Errorf("garbage parsed: PAI %+v RPID %+v HI %+v PCPID %+v", s.PAI, s.RPID, s.HistoryInfo, s.PCalledPartyID)
				}
				if len(s.Diversion) != 1 || s.Diversion[0].User != "+49301234567" {
					t.Errorf("Diversion = %+v, want the one good value", s.Diversion)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.check(t, Signalling(inviteWith(t, tc.extra...)))
		})
	}
}

func TestSignallingCompactAndTel(t *testing.T) {
	req := parseInvite(t,
		"INVITE tel:+49-30-1234560;phone-context=+49 SIP/2.0",
		"v: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-c",
		"f: 'Single Quoted' <tel:0301234567;phone-context=+49>;tag=x",
		"t: sip:+49301234560@carrier.example",
		"i: c1@192.0.2.1",
		"CSeq: 1 INVITE",
		"l: 0",
	)
	s := Signalling(req)
	if s.RequestURI.Scheme != "tel" || s.RequestURI.User != "+49-30-1234560" || s.RequestURI.Params["phone-context"] != "+49" {
		t.Errorf("RequestURI = %+v", s.RequestURI)
	}
	if s.From.Display != "Single Quoted" || s.From.Scheme != "tel" || s.From.User != "0301234567" || s.From.Header["tag"] != "x" {
		t.Errorf("From = %+v", s.From)
	}
	if s.To.User != "+49301234560" {
		t.Errorf("To = %+v", s.To)
	}
	if got := Signalling(nil); !reflect.DeepEqual(got, callctl.Signalling{}) {
		t.Errorf("Signalling(nil) = %+v", got)
	}
}

// identifier runs the real Identify stage with the real normaliser.
func identifier(t testing.TB, internal ...string) *callctl.Identify {
	t.Helper()
	nums, err := contacts.NewNumbers("DE", internal)
	if err != nil {
		t.Fatal(err)
	}
	return callctl.NewIdentify(func(raw, region string) (callctl.Party, error) {
		n, err := nums.Normalize(raw, region)
		return callctl.Party{Raw: n.Raw, E164: n.E164, National: n.National,
			International: n.International, Ext: n.Ext, Internal: n.Internal}, err
	})
}

// corpusDir finds the shared SIP corpus: $SWITCHBOARD_SIP_CORPUS, else
// ../../shared/sip-corpus from this package.
func corpusDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("SWITCHBOARD_SIP_CORPUS")
	if dir == "" {
		dir = filepath.Join("..", "..", "shared", "sip-corpus")
	}
	if _, err := os.Stat(filepath.Join(dir, "carrier-invites")); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("SIP corpus not found at %s (set SWITCHBOARD_SIP_CORPUS): %v", dir, err)
		}
		t.Skipf("SIP corpus not found at %s (set SWITCHBOARD_SIP_CORPUS to run the carrier INVITE tests): %v", dir, err)
	}
	return dir
}

// readCorpusInvite parses one corpus file. Header-only samples and the two
// published messages whose Content-Length disagrees with the body do not
// parse as whole messages; their header block still does.
func readCorpusInvite(t *testing.T, path string, headersOnly bool) *gosip.Request {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m gosip.Message
	if headersOnly {
		m, _, err = gosip.NewParser().ParseHeaders(data, false)
	} else {
		m, err = gosip.ParseMessage(data)
	}
	if err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	req, ok := m.(*gosip.Request)
	if !ok {
		t.Fatalf("%s: not a request", path)
	}
	return req
}

// TestIdentifyCarrierInvites runs Signalling and Identify over the real
// INVITEs of the shared corpus. Expectations were written by reading each
// message (see carrier-invites/SOURCES.md); region is the trunk's country
// where the source says which carrier it is.
func TestIdentifyCarrierInvites(t *testing.T) {
	dir := filepath.Join(corpusDir(t), "carrier-invites")
	type party struct {
		raw, e164, name, source string
		anonymous, internal     bool
	}
	tests := []struct {
		file        string
		headersOnly bool
		dir         callctl.Direction
		trusted     bool
		region      string
		caller      party
		called      party
		original    string // OriginalCalled.Key(), empty when none
	}{
		{file: "pcap-arcor-cpe-reinvite-unavailable-user-phone.sip", dir: callctl.Inbound, trusted: true, region: "IT",
			caller: party{raw: "061963177", e164: "+39061963177", source: callctl.SourceFrom},
			called: party{raw: "unavailable", source: callctl.SourceRequestURI}},
		{file: "pcap-audiocodes-ipp-tcp-user-phone.sip", dir: callctl.Outbound, region: "DE",
			caller: party{raw: "101", internal: true, source: callctl.SourceFrom},
			called: party{raw: "201", internal: true, source: callctl.SourceRequestURI}},
		{file: "pcap-cybercity-dk-proxy-auth.sip", dir: callctl.Outbound, region: "DK",
			caller: party{raw: "voi18062", name: "arik", source: callctl.SourceFrom},
			called: party{raw: "0097239287044", e164: "+97239287044", source: callctl.SourceRequestURI}},
		{file: "pcap-fs-sbc-pai-privacy-none-utf8-tcp.sip", dir: callctl.Inbound, trusted: true, region: "RU",
			caller: party{raw: "540454", name: "Псков-5", source: callctl.SourcePAI},
			called: party{raw: "699818", source: callctl.SourceRequestURI}},
		{file: "pcap-ims-ipv6-pai-p-served-user-sipp.sip", dir: callctl.Inbound, trusted: true, region: "JP",
			caller: party{raw: "08019200026", e164: "+818019200026", name: "uas", source: callctl.SourcePAI},
			called: party{raw: "08019200028", e164: "+818019200028", source: callctl.SourceRequestURI}},
		{file: "pcap-ims-tdm-anonymous-unavailable-t38-initial.sip", dir: callctl.Inbound, trusted: true, region: "IT",
			caller: party{raw: "unavailable", anonymous: true, source: callctl.SourceFrom},
			called: party{raw: "061963177-ikhuuep5bi123", source: callctl.SourceRequestURI}},
		{file: "pcap-ipip-tcp-opus.sip", dir: callctl.Inbound, trusted: true, region: "DE",
			caller: party{raw: "1bdaa608131517540000", source: callctl.SourceFrom},
			called: party{raw: "1bdaa608131517540001", source: callctl.SourceRequestURI}},
		{file: "pcap-megafon-sipi-sctp-multipart-isup.sip", dir: callctl.Inbound, trusted: true, region: "RU",
			// Two PAIs, sip and tel: the tel one is preferred and its
			// phone-context gives the country.
			caller: party{raw: "9171969136", e164: "+79171969136", source: callctl.SourcePAI},
			called: party{raw: "9275890000", e164: "+79275890000", source: callctl.SourceRequestURI}},
		{file: "pcap-sbc-anonymous-unavailable-forwarded.sip", dir: callctl.Inbound, trusted: true, region: "IT",
			caller: party{raw: "unavailable", anonymous: true, source: callctl.SourceFrom},
			called: party{raw: "061963177", e164: "+39061963177", source: callctl.SourceRequestURI}},
		{file: "pcap-scanner-sonicsip-sqli-sdp-e164.sip", dir: callctl.Inbound, trusted: false, region: "US",
			caller: party{raw: "18121862248", e164: "+18121862248", source: callctl.SourceFrom},
			called: party{raw: "+3908351673002", e164: "+3908351673002", source: callctl.SourceRequestURI}},
		{file: "pcap-textnow-freeswitch-rpid-e164.sip", dir: callctl.Inbound, trusted: true, region: "US",
			caller: party{raw: "+12675941249", e164: "+12675941249", name: "+12675941249", source: callctl.SourceRPID},
			called: party{raw: "9998112263382742", source: callctl.SourceRequestURI}},
		{file: "pcap-textnow-webrtc-wss-e164.sip", dir: callctl.Inbound, trusted: true, region: "US",
			caller: party{raw: "12675941249_Uclx8s21Ck82KTJtkFC1ltbEbcHGKjXLrsz2bdJVWGX", source: callctl.SourceFrom},
			called: party{raw: "+12263382742", e164: "+12263382742", source: callctl.SourceRequestURI}},
		{file: "text-blueface-avaya-pai-single-quoted-strict-route.sip", headersOnly: true, dir: callctl.Inbound, trusted: true, region: "IE",
			// Strict routing: the Request-URI is a hop with no user, so
			// the called number comes from To.
			caller: party{raw: "9", name: "Joe Bloggs", source: callctl.SourcePAI},
			called: party{raw: "8219000", e164: "+3538219000", name: "UNKNOWN", source: callctl.SourceTo}},
		{file: "text-ims-volte-tel-uri-phone-context.sip", dir: callctl.Inbound, trusted: true, region: "CN",
			caller: party{raw: "12345678901", e164: "+8612345678901", source: callctl.SourcePAI},
			// libphonenumber's CN metadata strips the carrier selection
			// prefix 1230 when reading a national number.
			called: party{raw: "123012345678901", e164: "+862345678901", source: callctl.SourceRequestURI}},
		{file: "text-localphone-nextone-anonymous-nouser-pai-unknown.sip", dir: callctl.Inbound, trusted: true, region: "GB",
			// PAI sip:unknown@…, From "Anonymous" with no user part.
			caller: party{raw: "unknown", anonymous: true, source: callctl.SourcePAI},
			called: party{raw: "shebeen", source: callctl.SourceRequestURI}},
		{file: "text-mango-voximplant-compact-headers.sip", dir: callctl.Inbound, trusted: true, region: "RU",
			caller: party{raw: "user1693", source: callctl.SourceFrom},
			called: party{raw: "79104502003", e164: "+79104502003", source: callctl.SourceRequestURI}},
		{file: "text-oracle-sbc-anonymous-privacy-id-ppi.sip", dir: callctl.Inbound, trusted: true, region: "US",
			// P-Preferred-Identity is the UA's wish, never an assertion.
			caller: party{raw: "anonymous", anonymous: true, source: callctl.SourceFrom},
			called: party{raw: "780", source: callctl.SourceRequestURI}},
		{file: "text-swiss-carrier-diversion-privacy-full.sip", dir: callctl.Inbound, trusted: true, region: "CH",
			// Masked numbers are too short for CH: raw only.
			caller:   party{raw: "+4199999999", source: callctl.SourcePAI},
			called:   party{raw: "+4199999999", source: callctl.SourceRequestURI},
			original: "+4188888888"},
		{file: "text-swiss-carrier-multi-pai-history-info-cause480.sip", dir: callctl.Inbound, trusted: true, region: "CH",
			// History-Info index 1 is the called number itself: not a diversion.
			caller: party{raw: "+4199999999", source: callctl.SourcePAI},
			called: party{raw: "+4199999999", source: callctl.SourceRequestURI}},
		{file: "text-twilio-docs-diversion-pai-e164.sip", dir: callctl.Inbound, trusted: true, region: "US",
			caller:   party{raw: "+14155551111", e164: "+14155551111", name: "Alice", source: callctl.SourcePAI},
			called:   party{raw: "+14155552222", e164: "+14155552222", source: callctl.SourceRequestURI},
			original: "+14155550000"},
		{file: "text-voipgrid-kamailio-rpid-tls-masked-ip.sip", dir: callctl.Inbound, trusted: true, region: "NL",
			caller: party{raw: "247", name: "user", internal: true, source: callctl.SourceRPID},
			called: party{raw: "169710067", e164: "+31169710067", source: callctl.SourceRequestURI}},
		{file: "headers-only/telekom-siptrunk-pai-p-called-party-id.hdr", headersOnly: true, dir: callctl.Inbound, trusted: true, region: "DE",
			// The DID dialled is in P-Called-Party-ID, not the Request-URI.
			caller: party{raw: "+4917634695554", e164: "+4917634695554", source: callctl.SourcePAI},
			called: party{raw: "+49892870183", e164: "+49892870183", source: callctl.SourcePCalledPartyID}},
	}
	id := identifier(t, "1xx", "2xx")
	seen := map[string]bool{}
	for _, tc := range tests {
		seen[tc.file] = true
		t.Run(tc.file, func(t *testing.T) {
			req := readCorpusInvite(t, filepath.Join(dir, filepath.FromSlash(tc.file)), tc.headersOnly)
			c := &callctl.Call{Direction: tc.dir, Trusted: tc.trusted, Region: tc.region, Signalling: Signalling(req)}
			if d := id.Handle(context.Background(), c); d.Verdict != callctl.Continue {
				t.Fatalf("Handle = %+v, want Continue", d)
			}
			for _, p := range []struct {
				role string
				got  callctl.Party
				want party
			}{{"caller", c.Caller, tc.caller}, {"called", c.Called, tc.called}} {
				got := party{raw: p.got.Raw, e164: p.got.E164, name: p.got.Name, source: p.got.Source,
					anonymous: p.got.Anonymous, internal: p.got.Internal}
				if got != p.want {
					t.Errorf("%s = %+v, want %+v", p.role, got, p.want)
				}
			}
			var orig string
			if c.OriginalCalled != nil {
				orig = c.OriginalCalled.Key()
			}
			if orig != tc.original {
				t.Errorf("original called = %q, want %q", orig, tc.original)
			}
		})
	}
	// Every INVITE in the corpus has an expectation.
	files, _ := filepath.Glob(filepath.Join(dir, "*.sip"))
	more, _ := filepath.Glob(filepath.Join(dir, "headers-only", "*"))
	for _, f := range append(files, more...) {
		rel, _ := filepath.Rel(dir, f)
		if !seen[filepath.ToSlash(rel)] {
			t.Errorf("corpus file %s has no expectation", rel)
		}
	}
}

// FuzzSignalling feeds arbitrary identity header values through the real
// parser and Signalling: nothing may panic.
func FuzzSignalling(f *testing.F) {
	for _, s := range []string{
		`"A" <sip:+4930123@x;user=phone>;tag=1, <tel:0301;phone-context=+49>`,
		`<sip:+4188888888@10.0.0.2:5060;transport=udp;cause=480>;index=1.1`,
		`<sip:a@b?Reason=SIP%3Bcause%3D480>;index=1`,
		`"\"" <sip:x@y>`, `'x' <sips:@>`, `<tel:;;;=>`, `;;;,,,`, `<sip:%zz@h>`, `id;,header`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		if strings.ContainsAny(v, "\r\n") {
			return // one header line; folding is the parser's business
		}
		msg := "INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:b@c>\r\nCall-ID: 1\r\nCSeq: 1 INVITE\r\n" +
			"P-Asserted-Identity: " + v + "\r\nRemote-Party-ID: " + v + "\r\nPrivacy: " + v +
			"\r\nP-Called-Party-ID: " + v + "\r\nDiversion: " + v + "\r\nHistory-Info: " + v + "\r\nContent-Length: 0\r\n\r\n"
		m, err := gosip.ParseMessage([]byte(msg))
		if err != nil {
			return
		}
		req, ok := m.(*gosip.Request)
		if !ok {
			return
		}
		s := Signalling(req)
		c := &callctl.Call{Direction: callctl.Inbound, Trusted: true, Region: "DE", Signalling: s}
		fuzzIdentify.Handle(context.Background(), c)
	})
}

var fuzzIdentify = func() *callctl.Identify {
	nums, err := contacts.NewNumbers("DE", []string{"1xx"})
	if err != nil {
		panic(err)
	}
	return callctl.NewIdentify(func(raw, region string) (callctl.Party, error) {
		n, err := nums.Normalize(raw, region)
		return callctl.Party{Raw: n.Raw, E164: n.E164}, err
	})
}()

func BenchmarkSignalling(b *testing.B) {
	req := inviteWith(b,
		`P-Asserted-Identity: "Jane Doe" <sip:+4915112345678@carrier.example;user=phone>, <tel:+4915112345678>`,
		"Privacy: none",
		"P-Called-Party-ID: <sip:+49301234560@carrier.example;user=phone>",
		"Diversion: <sip:+49301234569@carrier.example>;reason=unconditional;counter=1",
	)
	b.ReportAllocs()
	for b.Loop() {
		_ = Signalling(req)
	}
}
