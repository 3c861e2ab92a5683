package configs

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"
)

// base is the smallest valid config; cases append to it from line 6.
const base = `sip:
  listen: [udp://127.0.0.1:5060]
  pbx: sip:127.0.0.1:5080
  trunks:
    - {name: carrier, match: [127.0.0.1/32]}
`

func TestExampleAndDefaultLoad(t *testing.T) {
	t.Run("example.yaml", func(t *testing.T) {
		c, err := Load("example.yaml")
		if err != nil {
			t.Fatalf("Load(example.yaml):\n%v", err)
		}
		if c.Node != "sb-1" || c.Location.String() != "Europe/Berlin" {
			t.Errorf("node %q, location %v", c.Node, c.Location)
		}
		if len(c.Hotlines) != 1 || !c.Hotlines[0].Open(time.Date(2025, 3, 3, 9, 0, 0, 0, c.Location)) {
			t.Errorf("acme hotline should be open Monday 09:00: %+v", c.Hotlines)
		}
		if r := c.Rules[1].Then.Reject; r == nil || r.Code != 486 {
			t.Errorf("rules[1].then.reject = %+v, want code 486", r)
		}
		if got := c.Rules[2].Then.Tag; !reflect.DeepEqual(got, Strings{"new", "overflow"}) {
			t.Errorf("rules[2].then.tag = %v", got)
		}
		if got := c.Rules[0].Then.Tag; !reflect.DeepEqual(got, Strings{"vip"}) {
			t.Errorf("rules[0].then.tag = %v", got)
		}
		if c.Rules[2].Then.RouteURI.User != "overflow" {
			t.Errorf("rules[2] route parsed as %+v", c.Rules[2].Then.RouteURI)
		}
	})
	t.Run("embedded default", func(t *testing.T) {
		c := Default()
		want := []Listener{{"udp", "127.0.0.1", 5060}, {"tcp", "127.0.0.1", 5060}}
		if !reflect.DeepEqual(c.SIP.Listeners, want) {
			t.Errorf("listeners = %v, want %v", c.SIP.Listeners, want)
		}
		if a, ok := c.PBXAddr(); !ok || a != netip.MustParseAddrPort("127.0.0.1:5080") {
			t.Errorf("PBXAddr = %v %v", a, ok)
		}
		tr := c.Trunk("carrier")
		if tr == nil || !tr.Matches(netip.MustParseAddrPort("127.0.0.1:40000")) || tr.Region != "DE" ||
			tr.OutboundURI.HostPort() != "127.0.0.1:5090" {
			t.Errorf("trunk carrier = %+v", tr)
		}
		if c.Storage.Driver != "sqlite" || c.Storage.DSN != "switchboard.db" || c.HTTP.Listen != "127.0.0.1:8080" {
			t.Errorf("storage %+v http %+v", c.Storage, c.HTTP)
		}
		if c.SIP.Advertise != "127.0.0.1" {
			t.Errorf("advertise = %q", c.SIP.Advertise)
		}
		// Each call must be independent: callers modify their copy.
		c.SIP.Trunks[0].Name = "changed"
		if Default().SIP.Trunks[0].Name != "carrier" {
			t.Error("Default shares state between calls")
		}
	})
}

func TestDefaults(t *testing.T) {
	c, err := Parse([]byte(base + "blocking:\n  entries: [{number: \"+49900*\"}]\nhotlines:\n  - {name: a, numbers: [\"+49301\"]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	tests := []struct {
		name      string
		got, want any
	}{
		{"node", c.Node, host},
		{"timezone", c.Timezone, "UTC"},
		{"location", c.Location, time.UTC},
		{"sip.max_call_duration", c.SIP.MaxCallDuration, Duration(4 * time.Hour)},
		{"sip.drain_timeout", c.SIP.DrainTimeout, Duration(30 * time.Second)},
		{"sip.keepalive", c.SIP.Keepalive, Duration(10 * time.Second)},
		{"sip.invite_timeout", c.SIP.InviteTimeout, Duration(32 * time.Second)},
		{"sip.timer_c", c.SIP.TimerC, Duration(3*time.Minute + 10*time.Second)},
		{"sip.advertise", c.SIP.Advertise, "127.0.0.1"},
		{"sip.recording_header", c.SIP.RecordingHeader, "X-Recording-Id"},
		{"sip.user_agent", c.SIP.UserAgent, "switchboard"},
		{"sip.trunks[0].region", c.SIP.Trunks[0].Region, ""},
		{"sip.trunks[0].trust_identity", c.SIP.Trunks[0].TrustIdentity, false},
		{"media.rtp_ports", [2]int{c.Media.RTPLow, c.Media.RTPHigh}, [2]int{20000, 20999}},
		{"numbers.region", c.Numbers.Region, ""},
		{"storage.driver", c.Storage.Driver, "sqlite"},
		{"storage.dsn", c.Storage.DSN, "switchboard.db"},
		{"storage.retention", c.Storage.Retention.D(), 9360 * time.Hour},
		{"blocking.anonymous", c.Blocking.Anonymous, "allow"},
		{"blocking.response", c.Blocking.Response, 603},
		{"blocking.entries[0].action", c.Blocking.Entries[0].Action, "block"},
		{"blocking.entries[0].direction", c.Blocking.Entries[0].Direction, "both"},
		{"hotlines[0].closed.response", c.Hotlines[0].Closed.Response, 480},
		{"hotlines[0].location", c.Hotlines[0].Location, time.UTC},
		{"hotlines[0] always open", c.Hotlines[0].OpeningHours.Always(), true},
		{"missed.min_ring", c.Missed.MinRing.D(), 2 * time.Second},
		{"missed.short_call", c.Missed.ShortCall.D(), 5 * time.Second},
		{"missed.notify_short", c.Missed.NotifyShort, false},
		{"missed.exceptions", c.Missed.Exceptions, Exceptions{Internal: true, Anonymous: true, SameDayRepeat: true, Absent: true}},
		{"missed.auto_resolve", c.Missed.AutoResolve, true},
		{"missed.email.link_prefix", c.Missed.Email.LinkPrefix, "tel:"},
		{"missed.email.smtp", c.Missed.Email.SMTP, ""},
		{"missed.sms.method", c.Missed.SMS.Method, "POST"},
		{"missed.webhook", c.Missed.Webhook, Webhook{}},
		{"http.listen", c.HTTP.Listen, "127.0.0.1:8080"},
		{"log", c.Log, Log{Level: "info", Format: "json"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !reflect.DeepEqual(tt.got, tt.want) {
				t.Errorf("got %v, want %v", tt.got, tt.want)
			}
		})
	}

	t.Run("explicit false overrides a true default", func(t *testing.T) {
		c, err := Parse([]byte(base + "missed:\n  auto_resolve: false\n  exceptions: {internal: false}\n"))
		if err != nil {
			t.Fatal(err)
		}
		if c.Missed.AutoResolve || c.Missed.Exceptions.Internal || !c.Missed.Exceptions.Anonymous {
			t.Errorf("missed = %+v", c.Missed)
		}
	})
	t.Run("trunk region from numbers.region", func(t *testing.T) {
		c, err := Parse([]byte(base + "numbers: {region: AT}\n"))
		if err != nil {
			t.Fatal(err)
		}
		if c.SIP.Trunks[0].Region != "AT" {
			t.Errorf("region = %q", c.SIP.Trunks[0].Region)
		}
	})
	t.Run("hotline timezone falls back to top level", func(t *testing.T) {
		c, err := Parse([]byte("timezone: Asia/Tokyo\n" + base + "hotlines:\n  - {name: a, numbers: [\"+49301\"]}\n"))
		if err != nil {
			t.Fatal(err)
		}
		if c.Hotlines[0].Location.String() != "Asia/Tokyo" {
			t.Errorf("location = %v", c.Hotlines[0].Location)
		}
	})
}

// TestBadConfigs checks the exact key paths (and lines) reported. Each
// case lists every error expected, in order.
func TestBadConfigs(t *testing.T) {
	type want struct {
		line int
		path string
		msg  string // substring
	}
	tests := []struct {
		name string
		yaml string
		want []want
	}{
		{"unknown top-level key", base + "hotline: []\n", []want{{6, "hotline", "unknown key"}}},
		{"unknown nested key", base + "missed:\n  email: {smtp_host: x}\n", []want{{7, "missed.email.smtp_host", "unknown key"}}},
		{"unknown key in list entry", base + "hotlines:\n  - name: a\n    numbers: [\"+491\"]\n    greting: hi\n", []want{{9, "hotlines[0].greting", "unknown key"}}},
		{"wrong type: string for int", base + "blocking: {response: busy}\n", []want{{6, "blocking.response", "expected a whole number, got a string"}}},
		{"wrong type: mapping for list", base + "numbers:\n  internal: {a: 1}\n", []want{{7, "numbers.internal", "expected a list, got a mapping"}}},
		{"wrong type: bool", base + "missed: {notify_short: yes}\n", []want{{6, "missed.notify_short", "expected true or false"}}},
		{"bad duration", base + "missed: {min_ring: 2 seconds}\n", []want{{6, "missed.min_ring", "not a duration"}}},
		{"negative duration", base + "sip2: 1\n", []want{{6, "sip2", "unknown key"}}},
		{"bad wrap-up reasons", base + "wrapup:\n  reasons: [order, \"\", order]\n", []want{
			{7, "wrapup.reasons[1]", "must not be empty"},
			{7, "wrapup.reasons[2]", "listed twice"},
		}},
		{"bad lookups", base + "lookups:\n  - {name: crm, url: \"http://crm/{{.Caller.E164\"}\n  - {name: crm, url: \"ftp://x\", timeout: 1m}\n  - {name: Bad-Name, url: \"http://x\", cache: -1s}\n", []want{
			{7, "lookups[0].url", "unclosed action"},
			{8, "lookups[1].name", "used by another lookup"},
			{8, "lookups[1].url", "not an http"},
			{8, "lookups[1].timeout", "not between"},
			{9, "lookups[2].name", "not a lookup name"},
			{9, "lookups[2].cache", "negative"},
		}},
		{"required keys missing", "log: {level: info}\n", []want{
			{0, "sip.listen", "required"}, {0, "sip.pbx", "required"}, {0, "sip.trunks", "required"},
		}},
		{"bad listen and URIs", `sip:
  listen: [udp://127.0.0.1:5060, sctp://127.0.0.1:5060, "udp://[::1:5060"]
  pbx: pbx.example:5080
  trunks:
    - name: carrier
      match: [10.0.0.0/33, 192.0.2.7:5060, 198.51.100.1, "host.example"]
      outbound: "sip:gw.example:70000"
      region: de
`, []want{
			{2, "sip.listen[1]", "not a listen URL"},
			{2, "sip.listen[2]", "missing ]"},
			{3, "sip.pbx", "not a SIP URI"},
			{6, "sip.trunks[0].match[0]", "neither a CIDR"},
			{6, "sip.trunks[0].match[3]", "neither a CIDR"},
			{7, "sip.trunks[0].outbound", "port"},
			{8, "sip.trunks[0].region", "ISO country code"},
		}},
		{"duplicate trunks", `sip:
  listen: [udp://127.0.0.1:5060]
  pbx: sip:127.0.0.1:5080
  trunks:
    - {name: a, match: [127.0.0.1]}
    - {name: a, outbound: "sip:127.0.0.1"}
    - {match: [127.0.0.2]}
    - {name: c}
`, []want{
			{6, "sip.trunks[1].name", "duplicate trunk name"},
			{7, "sip.trunks[2].name", "required"},
			{8, "sip.trunks[3]", "needs match"},
		}},
		{"bad hours", base + "hotlines:\n  - name: a\n    numbers: [\"+491\"]\n    hours: [\"mon-fri 08:00-18:00\", \"mon-fry 08:00-18:00\", \"sat 25:00-26:00\", \"sun 9-12\", \"daily 10:00-10:00\"]\n", []want{
			{9, "hotlines[0].hours[1]", `unknown day "fry"`},
			{9, "hotlines[0].hours[2]", `time "25:00"`},
			{9, "hotlines[0].hours[3]", `time "9"`},
			{9, "hotlines[0].hours[4]", "empty"},
		}},
		{"duplicate hotline number", base + `hotlines:
  - {name: a, numbers: ["+49301", "+49302*"]}
  - {name: b, numbers: ["+49303", "+49302*"]}
  - {name: a, numbers: ["49304", "+49301"], timezone: Mars/Olympus}
`, []want{
			{8, "hotlines[1].numbers[1]", "already claimed by hotlines[0].numbers[1]"},
			{9, "hotlines[2].name", "duplicate hotline name"},
			{9, "hotlines[2].numbers[0]", "want +digits"},
			{9, "hotlines[2].numbers[1]", "already claimed by hotlines[0].numbers[0]"},
			{9, "hotlines[2].timezone", "unknown time zone"},
		}},
		{"bad link_prefix", base + "missed:\n  email: {link_prefix: \"sip-phone:\"}\n", []want{{7, "missed.email.link_prefix", "at most 9"}}},
		{"link_prefix without colon", base + "missed:\n  email: {link_prefix: \"tel\"}\n", []want{{7, "missed.email.link_prefix", "colon"}}},
		{"blocking entries", base + `blocking:
  anonymous: maybe
  response: 200
  entries:
    - {number: "0049151*", action: deny, direction: up}
    - {number: "+49 151", action: block}
    - {number: "+4915*"}
    - {number: "+4915*", direction: both}
`, []want{
			{7, "blocking.anonymous", "allow, block"},
			{8, "blocking.response", "400-699"},
			{10, "blocking.entries[0].action", "block, allow"},
			{10, "blocking.entries[0].direction", "in, out, both"},
			{11, "blocking.entries[1].number", "want +digits"},
			{13, "blocking.entries[3].number", "listed twice"},
		}},
		{"rules", base + `rules:
  - {name: r, when: "true", then: {reject: 200}}
  - {name: r, when: " ", then: {}}
  - name: h
    when: "true"
    then:
      header: {"Bad Name": x, Via: y}
      reject: {code: 486}
      route: sip:x.example
  - {name: t, when: "true", then: {tag: [""], notify: [nobody]}}
`, []want{
			{7, "rules[0].then.reject.code", "400-699"},
			{8, "rules[1].name", "duplicate rule name"},
			{8, "rules[1].when", "required"},
			{8, "rules[1].then", "no action"},
			{11, "rules[2].then", "reject and route"},
			{12, "rules[2].then.header.Bad Name", "not a SIP header name"},
			{12, "rules[2].then.header.Via", "maintained by the proxy"},
			{15, "rules[3].then.tag[0]", "empty"},
			{15, "rules[3].then.notify[0]", "neither an email"},
		}},
		{"several nodes", base + "  record_route: 127.0.0.1\nstorage: {node_timeout: 10ms}\n", []want{
			{6, "sip.record_route", "not host:port"},
			{7, "storage.node_timeout", "at least 1s"},
		}},
		{"rule reject of wrong shape", base + "rules:\n  - {name: r, when: x, then: {reject: [486]}}\n", []want{{7, "rules[0].then.reject", "expected a SIP status code"}}},
		{"multiple errors at once", "timezone: Nowhere/City\n" + base + `media: {rtp_ports: 20001-20999}
numbers: {region: XX, internal: ["1xx", "2#"]}
storage: {driver: mysql}
missed:
  email: {smtp: "http://mail", to: [not-an-email]}
  sms: {url: "ftp://x", method: PATCH, to: ["+49 1"]}
  webhook: {url: "hook"}
http: {listen: "localhost", protect_metrics: true}
log: {level: loud, format: xml}
`, []want{
			{1, "timezone", "unknown time zone"},
			{7, "media.rtp_ports", "even"},
			{8, "numbers.region", "ISO"},
			{8, "numbers.internal[1]", "extension pattern"},
			{9, "storage.driver", "sqlite, postgres"},
			{11, "missed.email.smtp", "smtp://"},
			{11, "missed.email.from", "required"},
			{11, "missed.email.to[0]", "not an email"},
			{12, "missed.sms.url", "http"},
			{12, "missed.sms.method", "GET, POST, PUT"},
			{12, "missed.sms.to[0]", "E.164"},
			{13, "missed.webhook.url", "http"},
			{14, "http.listen", "host:port"},
			{14, "http.protect_metrics", "http.token"},
			{15, "log.level", "debug"},
			{15, "log.format", "json"},
		}},
		{"decode and validation errors together", base + "hotlines:\n  - {name: a, numbers: [{n: 1}, \"491\"], route: \"tel:1\"}\nlog: {level: x}\n", []want{
			{7, "hotlines[0].numbers[0]", "expected a string, got a mapping"},
			{7, "hotlines[0].numbers[1]", "want +digits"},
			{7, "hotlines[0].route", "not a SIP URI"},
			{8, "log.level", "one of"},
		}},
		{"keep-alive and timers", `sip:
  listen: [udp://127.0.0.1:5060]
  pbx: sip:127.0.0.1:5080
  trunks: [{name: a, match: [127.0.0.1]}]
  keepalive: -1s
  invite_timeout: 0s
  timer_c: -3m
hotlines:
  - {name: h, numbers: ["+491"], fallback: "tel:1"}
`, []want{
			{5, "sip.keepalive", "negative"},
			{6, "sip.invite_timeout", "positive"},
			{7, "sip.timer_c", "positive"},
			{9, "hotlines[0].fallback", "not a SIP URI"},
		}},
		{"tls without certificate", `sip:
  listen: [tls://0.0.0.0]
  pbx: sip:127.0.0.1:5080
  trunks: [{name: a, match: [127.0.0.1]}]
  tls: {}
`, []want{{5, "sip.tls.cert", "required"}, {5, "sip.tls.key", "required"}}},
		{"syntax error", "sip:\n  listen: [udp://x\n", []want{{0, "", "syntax error"}}},
		{"duplicate key", base + "log: {}\nlog: {}\n", []want{{7, "", "already defined"}}},
		{"undefined alias", base + "log: *nothing\n", []want{{6, "log", "alias"}}},
		{"two documents", base + "---\nlog: {}\n", []want{{7, "", "one YAML document"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml))
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("Parse error = %v (%T), want Errors", err, err)
			}
			var got []want
			for _, e := range errs {
				got = append(got, want{e.Line, e.Path, e.Msg})
			}
			ok := len(got) == len(tt.want)
			for i := 0; ok && i < len(got); i++ {
				w := tt.want[i]
				ok = got[i].path == w.path && strings.Contains(got[i].msg, w.msg) &&
					(got[i].line == w.line || w.line == 0 && w.path == "" && got[i].line > 0)
			}
			if !ok {
				t.Errorf("errors:\n%v\nwant (line, path, substring):\n%v", err, tt.want)
			}
		})
	}
}

func TestErrorFormat(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{FieldError{Path: "hotlines[2].numbers[0]", Line: 12, Msg: "bad"}, "line 12: hotlines[2].numbers[0]: bad"},
		{FieldError{Path: "sip.pbx", Msg: "required"}, "sip.pbx: required"},
		{FieldError{Line: 3, Msg: "syntax error: x"}, "line 3: syntax error: x"},
		{Errors{{Path: "a", Line: 1, Msg: "x"}, {Path: "b", Msg: "y"}}, "line 1: a: x\nb: y"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(good, []byte(base), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte(base+"x: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path, want string
	}{
		{"valid", good, ""},
		{"missing file names the path", filepath.Join(dir, "nope.yaml"), filepath.Join(dir, "nope.yaml") + " does not exist"},
		{"invalid file", bad, "line 6: x: unknown key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(tt.path)
			if tt.want == "" {
				if err != nil || c == nil {
					t.Fatalf("Load = %v, %v", c, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Load error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

// TestNumbersKeepTheirText guards against YAML's number reading: unquoted
// +4915… or 0301… must not lose the plus sign or the leading zero.
func TestNumbersKeepTheirText(t *testing.T) {
	c, err := Parse([]byte(base + "numbers: {internal: [0100]}\nblocking:\n  entries: [{number: +4915112345678}, {number: 0301}]\nhotlines: [{name: a, numbers: [+49301]}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	got := []string{c.Numbers.Internal[0], c.Blocking.Entries[0].Number, c.Blocking.Entries[1].Number, c.Hotlines[0].Numbers[0]}
	want := []string{"0100", "+4915112345678", "0301", "+49301"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestAnchorsAndMerge(t *testing.T) {
	c, err := Parse([]byte(base + `hotlines:
  - &acme {name: acme, numbers: ["+491"], company: ACME, hours: [daily 08:00-20:00]}
  - {<<: *acme, name: acme2, numbers: ["+492"]}
`))
	if err != nil {
		t.Fatal(err)
	}
	h := c.Hotlines[1]
	if h.Name != "acme2" || h.Company != "ACME" || h.Numbers[0] != "+492" || len(h.Hours) != 1 {
		t.Errorf("merged hotline = %+v", h)
	}
}

func TestTrunkMatches(t *testing.T) {
	c, err := Parse([]byte(`sip:
  listen: [udp://127.0.0.1:5060]
  pbx: sip:127.0.0.1:5080
  trunks:
    - {name: a, match: [10.1.0.0/16, 192.0.2.7:5060, 198.51.100.9, "2001:db8::/32", "[2001:db8:1::5]:5070"]}
`))
	if err != nil {
		t.Fatal(err)
	}
	tr := c.Trunk("a")
	tests := []struct {
		addr string
		want bool
	}{
		{"10.1.200.3:5060", true},
		{"10.2.0.1:5060", false},
		{"192.0.2.7:5060", true},
		{"192.0.2.7:5061", false},
		{"198.51.100.9:1234", true},
		{"[::ffff:10.1.0.1]:5060", true},
		{"[2001:db8:ffff::1]:5060", true},
		{"[2001:db8:1::5]:5070", true},
		{"[2001:db9::1]:5060", false},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			if got := tr.Matches(netip.MustParseAddrPort(tt.addr)); got != tt.want {
				t.Errorf("Matches(%s) = %v, want %v", tt.addr, got, tt.want)
			}
		})
	}
	if c.Trunk("missing") != nil {
		t.Error("Trunk(missing) should be nil")
	}
}

func TestParseURI(t *testing.T) {
	tests := []struct {
		in       string
		want     URI
		hostPort string
		wantErr  string
	}{
		{in: "sip:127.0.0.1:5080", want: URI{Scheme: "sip", Host: "127.0.0.1", Port: 5080}, hostPort: "127.0.0.1:5080"},
		{in: "sip:pbx@pbx.example;transport=TCP", want: URI{Scheme: "sip", User: "pbx", Host: "pbx.example", Transport: "tcp"}, hostPort: "pbx.example:5060"},
		{in: "sips:[2001:db8::1]", want: URI{Scheme: "sips", Host: "2001:db8::1"}, hostPort: "[2001:db8::1]:5061"},
		{in: "SIP:10.0.0.1", want: URI{Scheme: "sip", Host: "10.0.0.1"}, hostPort: "10.0.0.1:5060"},
		{in: "tel:+4930", wantErr: "not a SIP URI"},
		{in: "sip:", wantErr: "not a valid host"},
		{in: "sip:host:0", wantErr: "port 0"},
		{in: "sip:host:x", wantErr: "port"},
		{in: "sip:2001:db8::1", wantErr: "brackets"},
		{in: "sip:h?Subject=x", wantErr: "headers"},
		{in: "sip:h;transport=sctp", wantErr: "transport"},
		{in: "sip:300.1.1.1", wantErr: "not a valid host"},
		{in: "sip:@h", wantErr: "empty user"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			u, err := ParseURI(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseURI error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.want.Raw = tt.in
			if u != tt.want || u.HostPort() != tt.hostPort {
				t.Errorf("ParseURI = %+v (%s), want %+v (%s)", u, u.HostPort(), tt.want, tt.hostPort)
			}
		})
	}
}

func TestAdvertise(t *testing.T) {
	tests := []struct {
		listen, advertise, want string
	}{
		{"[udp://0.0.0.0:5060, tcp://10.0.0.2:5060]", "", "10.0.0.2"},
		{"[udp://0.0.0.0:5060]", "", ""},
		{"[udp://0.0.0.0:5060]", "sb.example", "sb.example"},
		{"[\"udp://[::]:5060\"]", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.listen+tt.advertise, func(t *testing.T) {
			src := "sip:\n  listen: " + tt.listen + "\n  advertise: \"" + tt.advertise + "\"\n  pbx: sip:127.0.0.1:5080\n  trunks: [{name: a, match: [127.0.0.1]}]\n"
			c, err := Parse([]byte(src))
			if err != nil {
				t.Fatal(err)
			}
			if c.SIP.Advertise != tt.want {
				t.Errorf("advertise = %q, want %q", c.SIP.Advertise, tt.want)
			}
		})
	}
}

func TestDurationYAML(t *testing.T) {
	tests := []struct {
		in   string
		want Duration
	}{
		{"2s", Duration(2 * time.Second)},
		{"10m", Duration(10 * time.Minute)},
		{"9360h", Duration(9360 * time.Hour)},
		{"1h30m", Duration(90 * time.Minute)},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var v struct {
				D Duration `yaml:"d"`
			}
			if err := yaml.Unmarshal([]byte("d: "+tt.in+"\n"), &v); err != nil {
				t.Fatal(err)
			}
			if v.D != tt.want {
				t.Fatalf("unmarshal %s = %v, want %v", tt.in, v.D, tt.want)
			}
			out, err := yaml.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			var back struct {
				D Duration `yaml:"d"`
			}
			if err := yaml.Unmarshal(out, &back); err != nil || back.D != tt.want {
				t.Errorf("round trip through %q = %v, %v", out, back.D, err)
			}
		})
	}
}

// TestValidateBuiltInCode covers a Config assembled by another package
// rather than parsed: errors have paths but no lines.
func TestValidateBuiltInCode(t *testing.T) {
	c := Default()
	c.Hotlines = []Hotline{{Name: "x", Numbers: []string{"+491"}, Hours: []string{"mon 8-9"}}}
	err := c.Validate()
	var errs Errors
	if !errors.As(err, &errs) || len(errs) != 1 || errs[0].Path != "hotlines[0].hours[0]" || errs[0].Line != 0 {
		t.Fatalf("Validate = %v", err)
	}
	c.Hotlines[0].Hours = []string{"mon 08:00-09:00"}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if !c.Hotlines[0].Open(time.Date(2025, 3, 3, 8, 30, 0, 0, time.UTC)) {
		t.Error("hotline should be open Monday 08:30 UTC")
	}
}

// FuzzParse makes sure no input makes Parse panic or hang.
func FuzzParse(f *testing.F) {
	example, err := os.ReadFile("example.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(example)
	f.Add(defaultYAML)
	f.Add([]byte("a: &a [*a, *a]\nb: *a\n"))
	f.Add([]byte("rules: [{then: {reject: {code: [1]}, tag: {a: b}}}]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if (c == nil) == (err == nil) {
			t.Fatalf("Parse returned config %v and error %v", c != nil, err)
		}
	})
}

// TestMarshalRoundTrip makes sure a loaded config written back as YAML
// (for `switchboard explain` or debugging) reads again the same way.
func TestMarshalRoundTrip(t *testing.T) {
	for _, name := range []string{"example.yaml", "default.yaml"} {
		t.Run(name, func(t *testing.T) {
			c, err := Load(name)
			if err != nil {
				t.Fatal(err)
			}
			out, err := yaml.Marshal(c)
			if err != nil {
				t.Fatal(err)
			}
			c2, err := Parse(out)
			if err != nil {
				t.Fatalf("re-parse:\n%v\n%s", err, out)
			}
			out2, err := yaml.Marshal(c2)
			if err != nil {
				t.Fatal(err)
			}
			if string(out) != string(out2) {
				t.Errorf("round trip changed the config:\n%s\n---\n%s", out, out2)
			}
		})
	}
}
