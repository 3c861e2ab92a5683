// Package sip is the only package that speaks SIP (media speaks RTP). It runs a
// stateful, record-routing proxy (RFC 3261 §16) on top of sipgo: INVITEs
// from a trunk go to the PBX, INVITEs from the PBX go to a trunk, and every
// request of the dialog passes through it because of its Record-Route.
package sip

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	gosip "github.com/emiago/sipgo/sip"
	"go.uber.org/zap"
	"go.uber.org/zap/exp/zapslog"

	"github.com/switchboard-sip/switchboard/callctl"
	"github.com/switchboard-sip/switchboard/metrics"
)

// Listen is one address switchboard receives SIP on.
type Listen struct {
	Network string // udp, tcp
	Host    string
	Port    int
}

// Trunk is a carrier connection as the proxy needs it.
type Trunk struct {
	Name     string
	Match    func(netip.AddrPort) bool
	Outbound *gosip.Uri // nil when calls cannot go out through this trunk
	Region   string
	Trust    bool
	// MaxCPS caps new INVITEs a second from this trunk; 0: no cap.
	MaxCPS int
}

// Routing is the part of the proxy's setup that a config reload replaces.
type Routing struct {
	PBX      netip.AddrPort
	PBXURI   gosip.Uri
	Trunks   []Trunk
	Pipeline callctl.Pipeline
	Node     string
	// Announce plays an announcement before a reject; nil disables them.
	Announce AnnounceFunc
	// Emergency tells whether a dialled number is an emergency number of
	// a region (SPEC §1); nil: none is.
	Emergency func(dialled, region string) bool
	// Callback tells whether an inbound call to called (the Request-URI's
	// user part, read in region) is the call back of an emergency call
	// within its window (SPEC §1); nil: none is.
	Callback func(called, region string) bool
	// EmergencyWait is how long an emergency call waits for any response
	// from one target before it goes to the next (sip.response_timeout).
	EmergencyWait time.Duration
	// Messages records the out-of-dialog MESSAGE requests routed between
	// trunk and PBX (SPEC §2); nil records none.
	Messages MessageRecorder
	// Balancers reports a load balancer in front of this node, whose
	// X-Switchboard-Source is trusted (SPEC §11); nil: none.
	Balancers func(netip.AddrPort) bool
	// RejectStrangers answers strangers 403 (sip.strangers: reject);
	// else they are dropped without an answer (SPEC §1).
	RejectStrangers bool
	// StrangerReplies caps those 403s a second per source, so that a
	// spoofed flood cannot make switchboard a reflector.
	StrangerReplies int
}

// AnnounceFunc starts an announcement for an INVITE's SDP offer. It returns
// the answer SDP and a channel closed when playback ends; an error means
// "reject without announcement".
type AnnounceFunc func(ctx context.Context, wav string, offer []byte) (answer []byte, done <-chan struct{}, err error)

// Options configure a Proxy.
type Options struct {
	Listen    []Listen
	Advertise string // host put in Via and Record-Route; default the listen host
	UserAgent string
	Log       *zap.Logger
	Tracker   *callctl.Tracker
	Metrics   *metrics.Metrics
	// RouteKey signs our Record-Route entries (see routeToken).
	RouteKey []byte
	// MaxCPS caps new INVITEs per second (503 beyond); 0: no cap.
	MaxCPS int
	// TLS serves tls:// listeners; nil when there are none.
	TLS *tls.Config
	// RecordingHeader names the header of the callee's 2xx that carries a
	// reference to the PBX's recording of the call.
	RecordingHeader string
	// TranscriptHeader names the header of the callee's 2xx or of a BYE
	// that carries a transcript or its URL (wrapup.transcript_header);
	// empty: none is read.
	TranscriptHeader string
	// FastPath serves UDP listeners through switchboard's own batched
	// reader and byte-editing forwarder (fast*.go); what it does
	// not take goes to sipgo unchanged. Linux only.
	FastPath bool
	// Keepalive is how often the PBX and each trunk's outbound target are
	// probed with OPTIONS (SPEC §1); 0 turns probing off.
	Keepalive time.Duration
	// InviteTimeout bounds the wait for the first response to a forwarded
	// INVITE; 0 leaves it to Timer B (32 s).
	InviteTimeout time.Duration
	// ResponseTimeout is how long a forwarded INVITE waits for a first
	// response (any provisional) before it fails over to the hotline's
	// fallback or ends with 503 (SPEC §1, sip.response_timeout, as
	// Kamailio's fr_timer); 0 leaves the wait to InviteTimeout.
	ResponseTimeout time.Duration
	// TimerC ends an INVITE that rings longer with a CANCEL (RFC 3261
	// §16.8); each provisional response restarts it. 0 means 3 minutes.
	TimerC time.Duration
	// RecordRoute, when set (host:port), is the address written into
	// Record-Route instead of this node's own: the load balancer in front
	// of several nodes (SPEC §11), so that in-dialog requests reach a node
	// that is alive. Route entries naming it are this node's own.
	RecordRoute string
}

// Proxy is the SIP side of switchboard.
type Proxy struct {
	opts     Options
	log      *zap.Logger
	ua       *sipgo.UserAgent
	srv      *sipgo.Server
	cli      *sipgo.Client
	tracker  *callctl.Tracker
	met      *metrics.Metrics
	routing  atomic.Pointer[Routing]
	self     selfAddrs
	dialogs  dialogs
	pre      *prefilter
	limit    *rateLimit
	macs     sync.Pool // hmac hashes keyed with RouteKey, reused per request
	drain    atomic.Bool
	ready    sync.WaitGroup
	ports    map[string]int // network → listen port
	probes   probes
	peers    peers
	fast     []*fastPath // UDP sockets served by the fast path
	rrHost   string      // Options.RecordRoute, split; empty: our own address
	rrPort   int
	handed   handovers // INVITEs the fast path took and handed to sipgo, decided
	fellBack fallbacks // what the fast path passed to sipgo, by reason
	waiting  waiting   // INVITEs waiting for a first response, by target
	gaveUp   abandoned // branches of INVITEs failed over, for late answers

	// The source rules (strangers.go): the stranger gate, and each
	// trunk's max_cps bucket by trunk name.
	gate   strangerGate
	quotas sync.Map
}

// New builds a proxy; Serve starts it.
func New(opts Options, r *Routing) (*Proxy, error) {
	if len(opts.Listen) == 0 {
		return nil, fmt.Errorf("sip: no listen address")
	}
	if opts.Log == nil {
		opts.Log = zap.NewNop()
	}
	if opts.Advertise == "" {
		opts.Advertise = opts.Listen[0].Host
	}
	if len(opts.RouteKey) == 0 {
		// Without a shared key, dialogs survive no restart, but stay safe.
		opts.RouteKey = make([]byte, 32)
		if _, err := rand.Read(opts.RouteKey); err != nil {
			return nil, fmt.Errorf("sip: route key: %w", err)
		}
	}
	p := &Proxy{opts: opts, log: opts.Log, tracker: opts.Tracker, met: opts.Metrics, ports: map[string]int{},
		pre:   &prefilter{conns: map[string]net.PacketConn{}, parser: gosip.NewParser()},
		limit: newRateLimit(opts.MaxCPS)}
	p.pre.stranger = p.strangerDatagram
	if p.met != nil {
		p.gate.dropped = droppedCounter(p.met.Registry())
		p.gate.strangers = p.gate.dropped.WithLabelValues(dropStranger)
	}
	if opts.RecordRoute != "" {
		host, port, err := net.SplitHostPort(opts.RecordRoute)
		n, perr := strconv.Atoi(port)
		if err != nil || perr != nil || n <= 0 || n > 65535 {
			return nil, fmt.Errorf("sip: record_route %q is not host:port", opts.RecordRoute)
		}
		p.rrHost, p.rrPort = host, n
		p.self.add(host, n)
	}
	slogger := slog.New(zapslog.NewHandler(opts.Log.Named("sipgo").Core()))
	ua, err := sipgo.NewUA(
		sipgo.WithUserAgent(opts.UserAgent),
		sipgo.WithUserAgentHostname(opts.Advertise),
		sipgo.WithUserAgentTransactionLayerOptions(
			gosip.WithTransactionLayerLogger(slogger),
			gosip.WithTransactionLayerUnhandledResponseHandler(p.onStrayResponse),
		),
		sipgo.WithUserAgentTransportLayerOptions(gosip.WithTransportLayerLogger(slogger),
			gosip.WithTransportLayerReadFilter(p.pre.filter)),
	)
	if err != nil {
		return nil, fmt.Errorf("sip: %w", err)
	}
	p.ua = ua
	if p.srv, err = sipgo.NewServer(ua, sipgo.WithServerLogger(slogger)); err != nil {
		return nil, fmt.Errorf("sip: %w", err)
	}
	if p.cli, err = sipgo.NewClient(ua, sipgo.WithClientLogger(slogger), sipgo.WithClientHostname(opts.Advertise)); err != nil {
		return nil, fmt.Errorf("sip: %w", err)
	}
	if p.met != nil && opts.FastPath {
		p.fellBack.register(p.met.Registry())
	}
	p.probes.onFlip = p.targetFlipped
	p.SetRouting(r)
	p.srv.OnInvite(p.checked(p.onInvite))
	p.srv.OnAck(p.checked(p.onAck))
	p.srv.OnCancel(p.checked(p.onStrayCancel))
	p.srv.OnBye(p.checked(p.onInDialogOrOther))
	p.srv.OnOptions(p.checked(p.onOptions))
	p.srv.OnNoRoute(p.checked(p.onInDialogOrOther))
	return p, nil
}

// SetRouting swaps in a new routing setup; calls in progress keep theirs.
func (p *Proxy) SetRouting(r *Routing) { p.routing.Store(r) }

// Drain makes new INVITEs get 503 with Retry-After (SIGTERM).
func (p *Proxy) Drain() { p.drain.Store(true) }

// Listeners binds every listen address. It fails fast (port in use) before
// anything is served, so that the caller can report one clear error. With
// Keepalive set, one more function runs the OPTIONS prober.
func (p *Proxy) Listeners() ([]func(ctx context.Context) error, error) {
	var serve []func(ctx context.Context) error
	var closers []func()
	fail := func(err error) ([]func(ctx context.Context) error, error) {
		for _, c := range closers {
			c()
		}
		return nil, err
	}
	for _, l := range p.opts.Listen {
		addr := net.JoinHostPort(l.Host, strconv.Itoa(l.Port))
		switch l.Network {
		case "udp":
			conn, err := net.ListenPacket("udp", addr)
			if err != nil {
				return fail(fmt.Errorf("sip: %w", err))
			}
			closers = append(closers, func() { conn.Close() })
			p.noteListen("udp", conn.LocalAddr())
			p.pre.conns[conn.LocalAddr().String()] = conn
			pc, start := conn, func() {}
			if p.opts.FastPath { // fast path integration point
				if pc, start, err = p.fastListen(conn); err != nil {
					return fail(err)
				}
			}
			pc = oneViaACK{pc}
			serve = append(serve, func(ctx context.Context) error {
				go func() { <-ctx.Done(); pc.Close() }()
				start()
				return p.srv.ServeUDP(pc)
			})
		case "tcp":
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return fail(fmt.Errorf("sip: %w", err))
			}
			closers = append(closers, func() { ln.Close() })
			p.noteListen("tcp", ln.Addr())
			serve = append(serve, func(ctx context.Context) error {
				go func() { <-ctx.Done(); ln.Close() }()
				return p.srv.ServeTCP(ln)
			})
		case "tls":
			if p.opts.TLS == nil {
				return fail(fmt.Errorf("sip: listen tls %s: no certificate", addr))
			}
			ln, err := tls.Listen("tcp", addr, p.opts.TLS)
			if err != nil {
				return fail(fmt.Errorf("sip: %w", err))
			}
			closers = append(closers, func() { ln.Close() })
			p.noteListen("tls", ln.Addr())
			serve = append(serve, func(ctx context.Context) error {
				go func() { <-ctx.Done(); ln.Close() }()
				return p.srv.ServeTLS(ln)
			})
		default:
			return fail(fmt.Errorf("sip: listen %s: transport %q is not supported", addr, l.Network))
		}
	}
	if p.opts.Keepalive > 0 {
		serve = append(serve, p.probeLoop)
	}
	return serve, nil
}

// targetFlipped shows the state of a target in /metrics, and logs when it
// went down or came back.
func (p *Proxy) targetFlipped(s TargetState, changed bool) {
	switch {
	case !changed:
	case s.Up:
		p.log.Info("SIP target answers again", zap.String("target", s.Name), zap.String("uri", s.URI))
	default:
		p.log.Warn("SIP target stopped answering OPTIONS: calls to it get 503", zap.String("target", s.Name), zap.String("uri", s.URI))
	}
	if changed && !s.Up {
		p.targetDown(s.URI) // calls waiting for it fail over at once
	}
	if p.met != nil {
		v := 0.0
		if s.Up {
			v = 1
		}
		p.met.SIPTargetUp.WithLabelValues(s.Name, s.URI).Set(v)
	}
}

func (p *Proxy) noteListen(network string, a net.Addr) {
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return
	}
	p.ports[network] = int(ap.Port())
	p.self.add(p.opts.Advertise, int(ap.Port()))
	p.self.add(ap.Addr().String(), int(ap.Port()))
}

// ExpireDialogs forgets remembered dialogs older than max.
func (p *Proxy) ExpireDialogs(max time.Duration) { p.dialogs.expire(max) }

// Close stops the SIP stack.
func (p *Proxy) Close() error { return p.ua.Close() }

// selfAddrs are the host:port pairs that mean "switchboard itself" in a
// Route header or Request-URI.
type selfAddrs struct {
	mu    sync.RWMutex
	addrs map[string]bool
}

func (s *selfAddrs) add(host string, port int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.addrs == nil {
		s.addrs = map[string]bool{}
	}
	s.addrs[net.JoinHostPort(host, strconv.Itoa(port))] = true
	if ip, err := netip.ParseAddr(host); err == nil && ip.IsUnspecified() {
		s.addrs[net.JoinHostPort("127.0.0.1", strconv.Itoa(port))] = true
	}
}

func (s *selfAddrs) is(host string, port int) bool {
	if port == 0 {
		port = 5060
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.addrs[net.JoinHostPort(host, strconv.Itoa(port))]
}

// source returns where a request came from as an address and port.
func source(req *gosip.Request) (netip.AddrPort, bool) {
	ap, err := netip.ParseAddrPort(req.Source())
	if err != nil {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), true
}

// classifyRequest is classify for a received request. Over TCP and TLS the
// PBX connects from an ephemeral port, so a request from the PBX's address
// whose top Via names the PBX's port counts as from the PBX.
func (r *Routing) classifyRequest(req *gosip.Request) (callctl.Direction, *Trunk) {
	src, ok := r.origin(req)
	if !ok {
		return "", nil
	}
	return r.classifyFrom(req, src)
}

// classifyFrom is classifyRequest for a request whose origin is known.
func (r *Routing) classifyFrom(req *gosip.Request, src netip.AddrPort) (callctl.Direction, *Trunk) {
	if src.Addr() == r.PBX.Addr() && !strings.EqualFold(req.Transport(), "udp") {
		if v := req.Via(); v != nil && v.Port == int(r.PBX.Port()) {
			return callctl.Outbound, r.outboundTrunk()
		}
	}
	return r.Classify(src)
}

// Classify tells where a request came from: the PBX (by exact host:port,
// first, because it may share an address with a trunk) or a trunk.
func (r *Routing) Classify(src netip.AddrPort) (callctl.Direction, *Trunk) {
	if src == r.PBX {
		return callctl.Outbound, r.outboundTrunk()
	}
	for i := range r.Trunks {
		if r.Trunks[i].Match(src) {
			return callctl.Inbound, &r.Trunks[i]
		}
	}
	return "", nil
}

// outboundTrunk is the trunk that calls from the PBX leave through: the
// first one with an outbound address.
func (r *Routing) outboundTrunk() *Trunk {
	for i := range r.Trunks {
		if r.Trunks[i].Outbound != nil {
			return &r.Trunks[i]
		}
	}
	return nil
}

func (p *Proxy) observe(start time.Time) {
	if p.met != nil {
		p.met.InviteLatency.Observe(time.Since(start).Seconds())
	}
}
