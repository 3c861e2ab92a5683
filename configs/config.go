// Package configs reads, completes and validates switchboard's YAML
// configuration (SPEC §7). One Config struct carries every key; Parse fills
// the defaults, and Validate reports every error at once with its key path
// and line, so that `switchboard check` can list them all. Validate also
// keeps the parsed forms of addresses, URIs and opening hours so that no
// other package reparses configuration strings on the call path.
package configs

import (
	_ "embed"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"time"
	_ "time/tzdata" // one static binary: time zones must load on hosts without /usr/share/zoneinfo
)

// Config is the whole configuration file. Fields tagged yaml:"-" are filled
// by Validate from the keys next to them.
type Config struct {
	Node     string    `yaml:"node"`
	Timezone string    `yaml:"timezone"`
	SIP      SIP       `yaml:"sip"`
	Media    Media     `yaml:"media"`
	Numbers  Numbers   `yaml:"numbers"`
	Storage  Storage   `yaml:"storage"`
	Blocking Blocking  `yaml:"blocking"`
	Hotlines []Hotline `yaml:"hotlines"`
	Rules    []Rule    `yaml:"rules"`
	Lookups  []Lookup  `yaml:"lookups"`
	Missed   Missed    `yaml:"missed"`
	HTTP     HTTP      `yaml:"http"`
	Log      Log       `yaml:"log"`
	WrapUp   WrapUp    `yaml:"wrapup"`
	// Emergency configures emergency calls (SPEC §1, §4).
	Emergency Emergency `yaml:"emergency"`
	// Messages configures the records of SIP MESSAGE requests (SPEC §2).
	Messages Messages `yaml:"messages"`
	// Recordings configures Listen and Delete of recording references.
	Recordings Recordings `yaml:"recordings"`
	// Runtime tunes the Go runtime for operators.
	Runtime Runtime `yaml:"runtime"`

	// Location is Timezone loaded; "same day" and dates are computed in it.
	Location *time.Location `yaml:"-"`

	// lines maps key paths to the line they were read from, so that
	// Validate can point at the offending line of the file.
	lines map[string]int
}

// SIP configures the proxy side: where it listens, where the PBX is and
// which trunks may send calls in.
type SIP struct {
	Listen []string `yaml:"listen"`
	PBX    string   `yaml:"pbx"`
	Trunks []Trunk  `yaml:"trunks"`
	// Advertise is the host written into Via and Record-Route; it matters
	// when listening on a wildcard address. Empty when every listener is a
	// wildcard: the sip package then uses the address of the sending
	// interface.
	Advertise string `yaml:"advertise"`
	// RecordRoute (host:port) is written into Record-Route instead of this
	// node's own address: the SIP load balancer in front of several nodes
	// (SPEC §11), so that a dialog's in-dialog requests reach a live node.
	RecordRoute string `yaml:"record_route"`
	// MaxCallDuration closes dialogs whose BYE never comes; 0 keeps them
	// until the BYE.
	MaxCallDuration Duration `yaml:"max_call_duration"`
	// DrainTimeout bounds how long SIGTERM waits for established calls.
	DrainTimeout Duration `yaml:"drain_timeout"`
	// RecordingHeader names the header in which the PBX passes the
	// recording reference stored with the call record.
	RecordingHeader string `yaml:"recording_header"`
	// UserAgent is sent in User-Agent and Server headers.
	UserAgent string `yaml:"user_agent"`
	// MaxCPS caps new INVITEs per second; beyond it they get 503 with
	// Retry-After, so that an overload is shed predictably instead of
	// collapsing into retransmissions. 0: no cap.
	MaxCPS int `yaml:"max_cps"`
	// FastPath serves UDP through switchboard's own batched reader and
	// byte-editing forwarder; what it does not handle goes the
	// sipgo way. On by default on Linux (every e2e test passes through
	// it); false serves UDP with sipgo alone. Linux only.
	FastPath bool `yaml:"fast_path"`
	// TLS holds the certificate for tls:// listeners.
	TLS TLS `yaml:"tls"`
	// Keepalive is how often the PBX and each trunk's outbound target get
	// an OPTIONS probe; a target that stops answering gets no more calls
	// (503 at once, or the hotline's fallback) until it answers again. 0
	// turns probing off (SPEC §1).
	Keepalive Duration `yaml:"keepalive"`
	// InviteTimeout bounds the wait for the first response to a forwarded
	// INVITE (RFC 3261 Timer B is 32 s).
	InviteTimeout Duration `yaml:"invite_timeout"`
	// TimerC ends with a CANCEL an INVITE that rings longer than this
	// without a final response; each provisional restarts it (RFC 3261
	// §16.6 item 11 wants more than 3 minutes).
	TimerC Duration `yaml:"timer_c"`
	// ResponseTimeout is how long a forwarded INVITE waits for any
	// response of the next hop before it fails over to the hotline's
	// fallback or ends with 503 (as Kamailio's fr_timer); InviteTimeout
	// bounds the wait once a provisional came.
	ResponseTimeout Duration `yaml:"response_timeout"`
	// Balancers are the SIP load balancers in front of this node
	// (SPEC §11): IP, IP:port or CIDR. Only from them is
	// X-Switchboard-Source trusted as a request's original source.
	Balancers []string `yaml:"balancers"`
	// Strangers says what a request from neither a trunk nor the PBX
	// gets: "drop" (no answer) or "reject" (403, rate-limited).
	Strangers string `yaml:"strangers"`
	// StrangerReplies caps the 403s per second and source with
	// strangers: reject.
	StrangerReplies int `yaml:"stranger_replies"`

	// Listeners are Listen parsed, in order.
	Listeners []Listener `yaml:"-"`
	// PBXURI is PBX parsed.
	PBXURI URI `yaml:"-"`
	// BalancerSources is Balancers parsed.
	BalancerSources Sources `yaml:"-"`
}

// TLS names the PEM files of the certificate served on tls:// listeners.
type TLS struct {
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
}

// Trunk is a carrier connection: the sources it may send calls from and
// where outbound calls to it go.
type Trunk struct {
	Name string `yaml:"name"`
	// Match lists the sources accepted from this trunk: CIDR prefixes,
	// bare IP addresses or exact IP:port pairs.
	Match    []string `yaml:"match"`
	Outbound string   `yaml:"outbound"`
	// Region is the country for numbers without a country code; it
	// defaults to numbers.region.
	Region        string `yaml:"region"`
	TrustIdentity bool   `yaml:"trust_identity"`
	// MaxCPS caps new INVITEs per second from this trunk (0: no cap);
	// beyond it they get 503 with Retry-After.
	MaxCPS int `yaml:"max_cps"`

	// OutboundURI is Outbound parsed; zero when Outbound is empty.
	OutboundURI URI `yaml:"-"`

	sources Sources
}

// Matches reports whether a request from addr belongs to this trunk.
func (t *Trunk) Matches(addr netip.AddrPort) bool { return t.sources.Matches(addr) }

// Sources is a parsed list of source addresses: CIDR prefixes, bare IPs
// and exact IP:port pairs.
type Sources struct {
	prefixes []netip.Prefix
	addrs    []netip.AddrPort
}

// Empty reports whether the list names no source.
func (s Sources) Empty() bool { return len(s.prefixes) == 0 && len(s.addrs) == 0 }

// Matches reports whether addr lies in one of the prefixes or equals one
// of the exact IP:port entries. IPv4-mapped IPv6 sources count as their
// IPv4 address, since dual-stack sockets report them that way.
func (s Sources) Matches(addr netip.AddrPort) bool {
	ip := addr.Addr().Unmap()
	for _, p := range s.prefixes {
		if p.Contains(ip) {
			return true
		}
	}
	for _, ap := range s.addrs {
		if ap.Addr() == ip && ap.Port() == addr.Port() {
			return true
		}
	}
	return false
}

// Media configures RTP for the announcements switchboard plays itself.
type Media struct {
	RTPPorts string `yaml:"rtp_ports"`

	// RTPLow and RTPHigh are RTPPorts parsed (inclusive).
	RTPLow  int `yaml:"-"`
	RTPHigh int `yaml:"-"`
}

// Numbers configures number normalisation.
type Numbers struct {
	// Region is the default country; empty means only numbers with a
	// country code can be read.
	Region string `yaml:"region"`
	// Internal lists extension patterns; x stands for any digit.
	Internal []string `yaml:"internal"`
	// OutsidePrefix is the digit(s) the PBX's phones dial for an outside
	// line (often "0" or "9"); a dialled number that starts with it is
	// read without it, so that 0112 is known as 112.
	OutsidePrefix string `yaml:"outside_prefix"`
}

// Storage selects the database.
type Storage struct {
	Driver string `yaml:"driver"`
	DSN    string `yaml:"dsn"`
	// Retention is how long call records are kept; 0 keeps them forever.
	Retention Duration `yaml:"retention"`
	// NodeTimeout is how long a node sharing the database may miss its
	// heartbeats before the others close its open calls as failed, reason
	// "node lost" (SPEC §11).
	NodeTimeout Duration `yaml:"node_timeout"`
}

// Blocking configures device blocking.
type Blocking struct {
	// Anonymous is allow or block.
	Anonymous    string       `yaml:"anonymous"`
	Response     int          `yaml:"response"`
	Announcement string       `yaml:"announcement"`
	Entries      []BlockEntry `yaml:"entries"`
}

// BlockEntry blocks or allows one number or prefix (ending in *), one SIP
// address (user@host) or a whole SIP domain (*@host).
type BlockEntry struct {
	Number string `yaml:"number"`
	// Action is block or allow; allow wins over block.
	Action string `yaml:"action"`
	// Direction is in, out or both.
	Direction string `yaml:"direction"`
	Reason    string `yaml:"reason"`
}

// Hotline is a template chosen by the called number: which company was
// called, what to say, when it is open and where the call goes.
type Hotline struct {
	Name             string   `yaml:"name"`
	Numbers          []string `yaml:"numbers"`
	Company          string   `yaml:"company"`
	Greeting         string   `yaml:"greeting"`
	Display          string   `yaml:"display"`
	CallerNamePrefix string   `yaml:"caller_name_prefix"`
	Route            string   `yaml:"route"`
	// Fallback is where the hotline's calls go while their target (route
	// or the PBX) does not answer the keep-alive probes.
	Fallback   string   `yaml:"fallback"`
	Hours      []string `yaml:"hours"`
	Timezone   string   `yaml:"timezone"`
	Closed     Closed   `yaml:"closed"`
	Recipients []string `yaml:"recipients"`
	// Campaign is the advert or channel this hotline's numbers were
	// published in; it is written on each record (SPEC §10 attribution).
	Campaign string `yaml:"campaign"`

	// RouteURI is Route parsed; zero when Route is empty.
	RouteURI URI `yaml:"-"`
	// FallbackURI is Fallback parsed; zero when Fallback is empty.
	FallbackURI URI `yaml:"-"`
	// Location is Timezone loaded, or the top-level time zone.
	Location *time.Location `yaml:"-"`
	// OpeningHours is Hours parsed, evaluated in Location.
	OpeningHours Hours `yaml:"-"`
}

// Open reports whether the hotline is open at t.
func (h *Hotline) Open(t time.Time) bool { return h.OpeningHours.Open(t) }

// Closed says how a call outside opening hours is answered.
type Closed struct {
	Response     int    `yaml:"response"`
	Announcement string `yaml:"announcement"`
}

// Rule is one call-control rule: a CEL condition and its actions.
type Rule struct {
	Name string `yaml:"name"`
	When string `yaml:"when"`
	Then Action `yaml:"then"`
}

// Action is what a rule does when its condition holds.
type Action struct {
	// Reject is written `reject: 486` or `reject: {code: 486, announcement: x.wav}`.
	Reject     *Reject           `yaml:"reject"`
	Route      string            `yaml:"route"`
	Header     map[string]string `yaml:"header"`
	Tag        Strings           `yaml:"tag"`
	Notify     []string          `yaml:"notify"`
	SkipNotify bool              `yaml:"skip_notify"`

	// RouteURI is Route parsed; zero when Route is empty.
	RouteURI URI `yaml:"-"`
}

// Reject ends a call with a SIP error response.
type Reject struct {
	Code         int    `yaml:"code"`
	Announcement string `yaml:"announcement"`
}

// Missed configures missed and short call detection and notifications.
type Missed struct {
	MinRing     Duration   `yaml:"min_ring"`
	ShortCall   Duration   `yaml:"short_call"`
	NotifyShort bool       `yaml:"notify_short"`
	Exceptions  Exceptions `yaml:"exceptions"`
	AutoResolve bool       `yaml:"auto_resolve"`
	Email       Email      `yaml:"email"`
	SMS         SMS        `yaml:"sms"`
	Webhook     Webhook    `yaml:"webhook"`
}

// Exceptions switch off notification for kinds of missed calls (SPEC §4).
type Exceptions struct {
	Internal       bool     `yaml:"internal"`
	Anonymous      bool     `yaml:"anonymous"`
	UnknownContact bool     `yaml:"unknown_contact"`
	SameDayRepeat  bool     `yaml:"same_day_repeat"`
	Absent         bool     `yaml:"absent"`
	Exclude        []string `yaml:"exclude"`
}

// Email is the SMTP notification channel; it is off while SMTP is empty.
type Email struct {
	// SMTP is smtp://host:port or smtps://host:port (implicit TLS).
	SMTP           string   `yaml:"smtp"`
	From           string   `yaml:"from"`
	To             []string `yaml:"to"`
	CallerAsSender bool     `yaml:"caller_as_sender"`
	VCard          bool     `yaml:"vcard"`
	LinkPrefix     string   `yaml:"link_prefix"`
	// Subject is a template; empty uses the notifier's built-in one.
	Subject  string `yaml:"subject"`
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	StartTLS bool   `yaml:"starttls"`
}

// SMS is the HTTP SMS provider channel; it is off while URL is empty.
type SMS struct {
	URL    string `yaml:"url"`
	Method string `yaml:"method"`
	// Body is a template; empty uses the notifier's built-in one.
	Body string `yaml:"body"`
	// AuthHeader is sent as the value of the Authorization header.
	AuthHeader string   `yaml:"auth_header"`
	To         []string `yaml:"to"`
	FromCaller bool     `yaml:"from_caller"`
}

// Webhook is the JSON POST channel; it is off while URL is empty.
type Webhook struct {
	URL string `yaml:"url"`
	// Secret keys the HMAC-SHA256 in X-Switchboard-Signature.
	Secret string `yaml:"secret"`
}

// HTTP configures the API and the board.
type HTTP struct {
	Listen string `yaml:"listen"`
	// Token, when set, is required as a Bearer token on /api/*.
	Token string `yaml:"token"`
	// ProtectMetrics puts /metrics behind the token too.
	ProtectMetrics bool `yaml:"protect_metrics"`
}

// Lookup is a data source for rules and templates (SPEC §5, §7): an HTTP
// GET of URL, a text/template over the call, answered with a JSON object.
type Lookup struct {
	// Name is how rules (lookup.<name>) and templates (.Lookup.<name>)
	// refer to the answer.
	Name string `yaml:"name"`
	URL  string `yaml:"url"`
	// Timeout bounds the wait of a call for the answer (default 300ms);
	// past it the call goes on without the data (fail open).
	Timeout Duration `yaml:"timeout"`
	// Cache keeps an answer for the same URL this long (default 1m; 0s
	// turns the cache off).
	Cache *Duration `yaml:"cache"`
}

// WrapUp configures the front desk's wrap-up of a call (SPEC §10).
type WrapUp struct {
	// Reasons are offered on the board; free text is allowed too.
	Reasons []string `yaml:"reasons"`
	// TranscriptHeader names a header of the PBX's 200 or BYE that
	// carries a transcript (or its URL), stored with the wrap-up.
	TranscriptHeader string `yaml:"transcript_header"`
}

// Messages configures the records of out-of-dialog MESSAGE requests.
type Messages struct {
	// MaxContent is the most text of one message kept in its record;
	// longer content is cut and marked.
	MaxContent ByteSize `yaml:"max_content"`
}

// Recordings configures how the board plays and deletes the recording a
// PBX referenced on a call.
type Recordings struct {
	// BaseURL is joined to relative recording references for Listen.
	BaseURL string `yaml:"base_url"`
	// DeleteURL is a template over .Recording; Delete sends an HTTP
	// DELETE there. Empty: Delete only clears the reference.
	DeleteURL string `yaml:"delete_url"`
	// DeleteToken is sent as "Authorization: Bearer <token>".
	DeleteToken string `yaml:"delete_token"`
}

// Runtime tunes the Go runtime.
type Runtime struct {
	// MemoryLimit is Go's soft memory limit (GOMEMLIMIT); 0: none.
	MemoryLimit ByteSize `yaml:"memory_limit"`
}

// Log configures logging.
type Log struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"`
}

// PBXAddr is the PBX's host:port when its URI names an IP address; ok is
// false for a host name, which the caller must resolve itself.
func (c *Config) PBXAddr() (addr netip.AddrPort, ok bool) { return c.SIP.PBXURI.AddrPort() }

// Trunk returns the trunk with the given name, or nil.
func (c *Config) Trunk(name string) *Trunk {
	for i := range c.SIP.Trunks {
		if c.SIP.Trunks[i].Name == name {
			return &c.SIP.Trunks[i]
		}
	}
	return nil
}

//go:embed default.yaml
var defaultYAML []byte

// Default returns the embedded default configuration used by
// `switchboard run` without -c: SIP on 127.0.0.1:5060 (UDP and TCP), the
// PBX at 127.0.0.1:5080, one trunk from 127.0.0.1, SQLite and HTTP on
// 127.0.0.1:8080. Each call returns a fresh copy.
func Default() *Config {
	c, err := Parse(defaultYAML)
	if err != nil {
		// The file is compiled in and loaded by a test, so this is a
		// build defect, not bad input.
		panic("configs: embedded default.yaml is invalid: " + err.Error())
	}
	return c
}

// Load reads, parses, completes and validates the file at path. Config
// errors come back as Errors; a file that cannot be read gives one error
// naming the path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("configs: config file %s does not exist", path)
		}
		return nil, fmt.Errorf("configs: read %s: %w", path, err)
	}
	return Parse(data)
}

// Parse reads one YAML document, fills defaults for absent keys and
// validates the result. Every problem found (syntax, unknown key, wrong
// type, invalid value) is returned together as Errors.
func Parse(data []byte) (*Config, error) {
	c := builtin()
	lines, errs := decode(data, c)
	if lines == nil {
		return nil, errs // a syntax error: nothing was read
	}
	c.lines = lines
	if verr := c.Validate(); verr != nil {
		var ve Errors
		if errors.As(verr, &ve) {
			errs = append(errs, ve.without(errs)...)
		} else {
			return nil, verr
		}
	}
	if len(errs) > 0 {
		errs.sort()
		return nil, errs
	}
	return c, nil
}

// builtin is the configuration before any file is read: every optional key
// at its default. Keys whose default depends on other keys (trunk region,
// storage dsn, advertise) are completed by Validate.
func builtin() *Config {
	node, err := os.Hostname()
	if err != nil || node == "" {
		node = "switchboard"
	}
	return &Config{
		Node:     node,
		Timezone: "UTC",
		SIP: SIP{
			MaxCallDuration: Duration(4 * time.Hour),
			DrainTimeout:    Duration(30 * time.Second),
			Keepalive:       Duration(10 * time.Second),
			InviteTimeout:   Duration(32 * time.Second),
			TimerC:          Duration(3*time.Minute + 10*time.Second),
			ResponseTimeout: Duration(2 * time.Second),
			Strangers:       "drop",
			StrangerReplies: 5,
			RecordingHeader: "X-Recording-Id",
			UserAgent:       "switchboard",
			FastPath:        runtime.GOOS == "linux",
		},
		Media:    Media{RTPPorts: "20000-20999"},
		Storage:  Storage{Driver: "sqlite", Retention: Duration(9360 * time.Hour), NodeTimeout: Duration(5 * time.Minute)},
		Blocking: Blocking{Anonymous: "allow", Response: 603},
		Missed: Missed{
			MinRing:   Duration(2 * time.Second),
			ShortCall: Duration(5 * time.Second),
			Exceptions: Exceptions{
				Internal:      true,
				Anonymous:     true,
				SameDayRepeat: true,
				Absent:        true,
			},
			AutoResolve: true,
			Email:       Email{LinkPrefix: "tel:", VCard: true},
			SMS:         SMS{Method: "POST"},
		},
		HTTP:      HTTP{Listen: "127.0.0.1:8080"},
		Log:       Log{Level: "info", Format: "json"},
		WrapUp:    WrapUp{Reasons: []string{"order", "complaint", "support", "sales", "other"}},
		Emergency: Emergency{CallbackWindow: Duration(60 * time.Minute)},
		Messages:  Messages{MaxContent: 4 << 10},
	}
}
