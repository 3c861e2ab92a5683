package main

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"

	gosip "github.com/emiago/sipgo/sip"
	"go.uber.org/zap"

	"github.com/switchboard-sip/switchboard/blocking"
	"github.com/switchboard-sip/switchboard/callctl"
	"github.com/switchboard-sip/switchboard/configs"
	"github.com/switchboard-sip/switchboard/contacts"
	"github.com/switchboard-sip/switchboard/sip"
	"github.com/switchboard-sip/switchboard/storage"
	"github.com/switchboard-sip/switchboard/templates"
)

// deps are the long-lived parts the pipeline stages use; they outlive a
// config reload.
type deps struct {
	log      *zap.Logger
	announce *sip.Announcer // nil: announcements off
	blocks   *blocking.Store
	contacts *contacts.Store
	cache    *contacts.Cache
}

func newDeps(ctx context.Context, cfg *configs.Config, db *storage.DB, log *zap.Logger) (*deps, error) {
	d := &deps{log: log}
	var err error
	if d.announce, err = newAnnouncer(cfg, log); err != nil {
		return nil, err
	}
	entries, err := blocking.FromConfig(blockConfigEntries(cfg.Blocking.Entries))
	if err != nil {
		return nil, err
	}
	if d.blocks, err = blocking.Open(ctx, db, entries); err != nil {
		return nil, err
	}
	// Blocks added by the CLI or another node take effect on the next call.
	go d.blocks.Watch(ctx, time.Second, func(err error) { log.Warn("block list refresh", zap.Error(err)) })
	if d.contacts, err = contacts.NewStore(ctx, db); err != nil {
		return nil, err
	}
	if d.cache, err = contacts.NewCache(ctx, d.contacts, contacts.CacheOptions{Log: log.Named("contacts")}); err != nil {
		return nil, err
	}
	return d, nil
}

func (d *deps) close(ctx context.Context) error {
	if d.cache != nil {
		return d.cache.Close(ctx)
	}
	return nil
}

// policy is what a config load builds: the routing and the pipeline.
type policy struct {
	routing *sip.Routing
}

// buildPolicy compiles a config into a pipeline and routing. With d nil it
// only checks that everything compiles (switchboard check).
func buildPolicy(cfg *configs.Config, d *deps) (*policy, error) {
	if err := templates.Check(cfg); err != nil {
		return nil, err
	}
	numbers, err := contacts.NewNumbers(cfg.Numbers.Region, cfg.Numbers.Internal)
	if err != nil {
		return nil, fmt.Errorf("numbers: %w", err)
	}
	entries, err := blocking.FromConfig(blockConfigEntries(cfg.Blocking.Entries))
	if err != nil {
		return nil, err
	}
	routing, err := buildRouting(cfg)
	if err != nil {
		return nil, err
	}
	audios, err := loadAnnouncements(cfg)
	if err != nil {
		return nil, err
	}
	if d == nil {
		return &policy{routing: routing}, nil
	}
	routing.Announce = announceFunc(d.announce, audios)
	d.blocks.SetConfig(entries)
	st, err := buildStages(cfg, d, numbers)
	if err != nil {
		return nil, err
	}
	routing.Pipeline = st.pipeline()
	return &policy{routing: routing}, nil
}

// stages are the pipeline's stages, kept apart so that explain can ask
// each for its verdict without side effects.
type stages struct {
	identify *callctl.Identify
	block    *callctl.BlockStage
	contact  *callctl.ContactStage
	hotline  *callctl.HotlineStage
	rules    *callctl.RulesStage
	closed   *callctl.ClosedStage
}

func buildStages(cfg *configs.Config, d *deps, numbers *contacts.Numbers) (*stages, error) {
	st := &stages{identify: callctl.NewIdentify(normalizer(numbers))}
	var err error
	if st.block, err = callctl.NewBlockStage(cfg.Blocking, d.blocks); err != nil {
		return nil, err
	}
	if st.contact, err = callctl.NewContactStage(d.cache); err != nil {
		return nil, err
	}
	opts := callctl.PolicyOptions{Contacts: callctl.IndexContacts(d.cache), Location: cfg.Location,
		LinkPrefix: cfg.Missed.Email.LinkPrefix, Log: d.log.Named("policy")}
	if st.hotline, err = callctl.NewHotlineStage(cfg.Hotlines, opts); err != nil {
		return nil, err
	}
	opts.Hotlines = st.hotline.Hotlines()
	if st.rules, err = callctl.NewRulesStage(cfg.Rules, opts); err != nil {
		return nil, err
	}
	st.closed = callctl.NewClosedStage(st.hotline)
	return st, nil
}

// pipeline puts the stages in order, each for a reason: identify first,
// since every stage needs the numbers; blocking next, the cheapest refusal
// and one that must not create contacts for spam; then the contact, so
// that the hotline's display and the rules see it; the hotline before the
// rules, which read hotline.open; the closed check last, so a rule's route
// can send out-of-hours calls elsewhere.
func (st *stages) pipeline() callctl.Pipeline {
	return callctl.Pipeline{st.identify, st.block, st.contact, st.hotline, st.rules, st.closed}
}

func buildRouting(cfg *configs.Config) (*sip.Routing, error) {
	pbx, err := parseURI("sip.pbx", cfg.SIP.PBX)
	if err != nil {
		return nil, err
	}
	pbxAddr, err := resolve(pbx)
	if err != nil {
		return nil, fmt.Errorf("sip.pbx: %w", err)
	}
	r := &sip.Routing{PBX: pbxAddr, PBXURI: pbx, Node: cfg.Node}
	for i := range cfg.SIP.Trunks {
		t := &cfg.SIP.Trunks[i]
		st := sip.Trunk{Name: t.Name, Match: t.Matches, Region: t.Region, Trust: t.TrustIdentity}
		if t.Outbound != "" {
			u, err := parseURI(fmt.Sprintf("sip.trunks[%d].outbound", i), t.Outbound)
			if err != nil {
				return nil, err
			}
			st.Outbound = &u
		}
		r.Trunks = append(r.Trunks, st)
	}
	return r, nil
}

func parseURI(key, s string) (gosip.Uri, error) {
	var u gosip.Uri
	if err := gosip.ParseUri(s, &u); err != nil {
		return u, fmt.Errorf("%s: %q: %w", key, s, err)
	}
	return u, nil
}

// resolve turns a SIP URI into the address requests from it come from; a
// host name is looked up once, at load.
func resolve(u gosip.Uri) (netip.AddrPort, error) {
	port := u.Port
	if port == 0 {
		port = 5060
	}
	if ip, err := netip.ParseAddr(u.Host); err == nil {
		return netip.AddrPortFrom(ip.Unmap(), uint16(port)), nil
	}
	ips, err := net.LookupHost(u.Host)
	if err != nil || len(ips) == 0 {
		return netip.AddrPort{}, fmt.Errorf("resolve %s: %w", u.Host, err)
	}
	return netip.ParseAddrPort(net.JoinHostPort(ips[0], strconv.Itoa(port)))
}

// normalizer adapts the contacts normaliser to the Identify stage.
func normalizer(n *contacts.Numbers) callctl.NormalizeFunc {
	return func(raw, region string) (callctl.Party, error) {
		num, err := n.Normalize(raw, region)
		return callctl.Party{Raw: num.Raw, E164: num.E164, National: num.National,
			International: num.International, Ext: num.Ext, Internal: num.Internal}, err
	}
}
