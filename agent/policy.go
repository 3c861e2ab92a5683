package agent

import (
	"fmt"
	"net"
	"net/netip"

	"go.uber.org/zap"

	"github.com/switchboard-sip/switchboard/blocking"
	"github.com/switchboard-sip/switchboard/callctl"
	"github.com/switchboard-sip/switchboard/configs"
	"github.com/switchboard-sip/switchboard/contacts"
	"github.com/switchboard-sip/switchboard/emergency"
	"github.com/switchboard-sip/switchboard/lookups"
	"github.com/switchboard-sip/switchboard/media"
	"github.com/switchboard-sip/switchboard/sip"
	"github.com/switchboard-sip/switchboard/templates"
)

// policy is what a config compiles into before anything uses it: the
// number reader, the block list's config entries, the routing without its
// pipeline, and the announcements read from disk.
type policy struct {
	cfg          *configs.Config
	numbers      *contacts.Numbers
	blockEntries []blocking.Entry
	base         sip.Routing
	audios       map[string]*media.Audio
	// compiled is the hotline templates and rules, compiled once here and
	// run by the stages of every routing built from this policy.
	compiled *templates.Compiled
}

// deps are the long-lived parts the pipeline's stages read; they outlive a
// config reload.
type deps struct {
	log      *zap.Logger
	announce *media.Announcer // nil: announcements off
	blocks   callctl.Blocklist
	contacts callctl.Contacts   // the cache live, a read-only lookup in a dry run
	lookups  lookups.Counter    // counts lookup outcomes; nil in a dry run
	messages callctl.MessageLog // keeps message records; nil in a dry run
	// callbacks are the emergency calls' callback windows; nil in a dry run.
	callbacks callctl.Callbacks
}

func (a *Agent) deps() deps {
	count := func(name, result string) { a.met.Lookups.WithLabelValues(name, result).Inc() }
	return deps{log: a.log, announce: a.announce, blocks: a.blocks, contacts: a.cache, lookups: count,
		callbacks: callbacks{a.emergency.store}, messages: messageLog{a}}
}

// Check compiles cfg as a reload would, without opening anything:
// `switchboard check`.
func Check(cfg *configs.Config) error {
	_, err := compile(cfg)
	return err
}

// compile checks and compiles everything of cfg that needs no store.
func compile(cfg *configs.Config) (*policy, error) {
	compiled, err := templates.Compile(cfg)
	if err != nil {
		return nil, err
	}
	p := &policy{cfg: cfg, compiled: compiled}
	if p.numbers, err = contacts.NewNumbers(cfg.Numbers.Region, cfg.Numbers.Internal); err != nil {
		return nil, fmt.Errorf("numbers: %w", err)
	}
	if p.blockEntries, err = BlockEntries(cfg); err != nil {
		return nil, err
	}
	if p.base, err = buildRouting(cfg); err != nil {
		return nil, err
	}
	if p.audios, err = loadAnnouncements(cfg); err != nil {
		return nil, err
	}
	return p, nil
}

// routing builds the pipeline's stages over d and returns the routing the
// proxy runs.
func (p *policy) routing(d deps) (*sip.Routing, error) {
	st, err := buildStages(p.cfg, d, p.numbers, p.compiled)
	if err != nil {
		return nil, err
	}
	r := p.base
	r.Announce = announceFunc(d.announce, p.audios)
	r.Pipeline = st.pipeline()
	r.Emergency = st.emergency.Dials
	r.EmergencyWait = p.cfg.SIP.ResponseTimeout.D()
	if cb, ok := d.callbacks.(callbacks); ok {
		r.Callback = callbackCheck(p.numbers, cb.s)
	}
	if d.messages != nil {
		// Routed MESSAGEs are recorded with the numbers read as for calls
		// and linked to contacts through the same cache (SPEC §2).
		r.Messages = callctl.NewTextRecorder(normalizer(p.numbers), d.contacts, d.messages, int(p.cfg.Messages.MaxContent))
	}
	return &r, nil
}

// Reload applies a new config without dropping calls (SPEC §1). The whole
// new policy is built first; only when every part compiled is it swapped
// in, so a refused config changes nothing, blocking included.
func (a *Agent) Reload(cfg *configs.Config) error {
	pol, err := compile(cfg)
	if err != nil {
		return err
	}
	routing, err := pol.routing(a.deps())
	if err != nil {
		return err
	}
	a.blocks.SetConfig(pol.blockEntries)
	a.proxy.SetRouting(routing)
	a.numbers.Store(pol.numbers)
	a.missed.SetConfig(cfg)
	a.notifier.SetConfig(cfg)
	a.cfg.Store(cfg)
	return nil
}

// stages are the pipeline's stages.
type stages struct {
	identify *callctl.Identify
	block    *callctl.BlockStage
	contact  *callctl.ContactStage
	lookup   *callctl.LookupStage
	hotline  *callctl.HotlineStage
	rules    *callctl.RulesStage
	closed   *callctl.ClosedStage
	// emergency recognises emergency calls and their call backs.
	emergency *callctl.EmergencyStage
}

func buildStages(cfg *configs.Config, d deps, numbers *contacts.Numbers, compiled *templates.Compiled) (*stages, error) {
	st := &stages{identify: callctl.NewIdentify(normalizer(numbers))}
	st.emergency = callctl.NewEmergencyStage(callctl.EmergencyOptions{
		Numbers: emergency.NewNumbers(cfg.Numbers.OutsidePrefix, cfg.Emergency.Numbers), Region: cfg.Numbers.Region,
		Route: cfg.Emergency.Route, Callbacks: d.callbacks, Target: emergencyTarget(cfg.SIP.PBXURI)})
	var err error
	if st.block, err = callctl.NewBlockStage(cfg.Blocking, d.blocks); err != nil {
		return nil, err
	}
	if st.contact, err = callctl.NewContactStage(d.contacts); err != nil {
		return nil, err
	}
	f, err := lookups.New(cfg.Lookups, d.lookups, d.log.Named("lookups"))
	if err != nil {
		return nil, err
	}
	var fetcher callctl.Fetcher // nil: no lookups configured
	if f != nil {
		fetcher = f
	}
	st.lookup = callctl.NewLookupStage(fetcher)
	opts := callctl.PolicyOptions{Contacts: callctl.IndexContacts(d.contacts), Location: cfg.Location,
		LinkPrefix: cfg.Missed.Email.LinkPrefix, Log: d.log.Named("policy")}
	st.hotline = callctl.NewHotlineStageOf(compiled.Hotlines, opts)
	opts.Hotlines = st.hotline.Hotlines()
	st.rules = callctl.NewRulesStageOf(compiled.Rules, opts)
	st.closed = callctl.NewClosedStage(st.hotline)
	return st, nil
}

// pipeline puts the stages in order, each for a reason: identify first,
// since every stage needs the numbers; the emergency stage right after it,
// so that an emergency call (and the call back to it) is routed before any
// stage that could refuse or change it (SPEC §1); blocking next, the cheapest refusal
// and one that must not create contacts for spam; then the contact, so
// that the hotline's display and the rules see it; the hotline before the
// rules, which read hotline.open; the closed check last, so a rule's route
// can send out-of-hours calls elsewhere. The lookups go after blocking (a
// blocked call never reaches a data source) and before the hotline, whose
// templates and the rules read them.
func (st *stages) pipeline() callctl.Pipeline {
	return callctl.Pipeline{st.identify, st.emergency, st.block, st.contact, st.lookup, st.hotline, st.rules, st.closed}
}

// buildRouting turns the URIs configs parsed into the proxy's routing;
// nothing is parsed a second time (configs fills in the default port of
// the scheme: 5060 for sip, 5061 for sips).
func buildRouting(cfg *configs.Config) (sip.Routing, error) {
	pbxAddr, err := resolve(cfg.SIP.PBXURI)
	if err != nil {
		return sip.Routing{}, fmt.Errorf("sip.pbx: %w", err)
	}
	r := sip.Routing{PBX: pbxAddr, PBXURI: sipURI(cfg.SIP.PBXURI), Node: cfg.Node,
		RejectStrangers: cfg.SIP.Strangers == "reject", StrangerReplies: cfg.SIP.StrangerReplies}
	if !cfg.SIP.BalancerSources.Empty() {
		r.Balancers = cfg.SIP.BalancerSources.Matches
	}
	for i := range cfg.SIP.Trunks {
		t := &cfg.SIP.Trunks[i]
		st := sip.Trunk{Name: t.Name, Match: t.Matches, Region: t.Region, Trust: t.TrustIdentity, MaxCPS: t.MaxCPS}
		if !t.OutboundURI.IsZero() {
			u := sipURI(t.OutboundURI)
			st.Outbound = &u
		}
		r.Trunks = append(r.Trunks, st)
	}
	return r, nil
}

// sipURI is a config URI as the SIP layer writes it into requests.
func sipURI(u configs.URI) sip.URI {
	return sip.NewURI(u.Scheme, u.User, u.Host, u.Port, u.Transport)
}

// resolve is the address requests from the URI's target come from; a host
// name is looked up once, at load.
func resolve(u configs.URI) (netip.AddrPort, error) {
	if ap, ok := u.AddrPort(); ok {
		return ap, nil
	}
	host, port, err := net.SplitHostPort(u.HostPort())
	if err != nil {
		return netip.AddrPort{}, err
	}
	ips, err := net.LookupHost(host)
	if err != nil || len(ips) == 0 {
		return netip.AddrPort{}, fmt.Errorf("resolve %s: %w", host, err)
	}
	return netip.ParseAddrPort(net.JoinHostPort(ips[0], port))
}

// normalizer adapts the contacts normaliser to the Identify stage.
func normalizer(n *contacts.Numbers) callctl.NormalizeFunc {
	return func(raw, region string) (callctl.Party, error) {
		num, err := n.Normalize(raw, region)
		return callctl.Party{Raw: num.Raw, E164: num.E164, National: num.National,
			International: num.International, Ext: num.Ext, Internal: num.Internal}, err
	}
}

// BlockEntries are the config file's block entries (blocking.entries) for
// the blocking package, which does not depend on configs.
func BlockEntries(cfg *configs.Config) ([]blocking.Entry, error) {
	in := make([]blocking.ConfigEntry, len(cfg.Blocking.Entries))
	for i, e := range cfg.Blocking.Entries {
		in[i] = blocking.ConfigEntry(e)
	}
	return blocking.FromConfig(in)
}
