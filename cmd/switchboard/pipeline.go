package main

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"

	gosip "github.com/emiago/sipgo/sip"
	"go.uber.org/zap"

	"github.com/switchboard-sip/switchboard/callctl"
	"github.com/switchboard-sip/switchboard/configs"
	"github.com/switchboard-sip/switchboard/contacts"
	"github.com/switchboard-sip/switchboard/sip"
	"github.com/switchboard-sip/switchboard/storage"
)

// deps are the long-lived parts the pipeline stages use; they outlive a
// config reload.
type deps struct {
	log *zap.Logger
}

func newDeps(ctx context.Context, cfg *configs.Config, db *storage.DB, log *zap.Logger) (*deps, error) {
	return &deps{log: log}, nil
}

func (d *deps) close(ctx context.Context) error { return nil }

// policy is what a config load builds: the routing and the pipeline.
type policy struct {
	routing *sip.Routing
}

// buildPolicy compiles a config into a pipeline and routing. With d nil it
// only checks that everything compiles (switchboard check).
func buildPolicy(cfg *configs.Config, d *deps) (*policy, error) {
	numbers, err := contacts.NewNumbers(cfg.Numbers.Region, cfg.Numbers.Internal)
	if err != nil {
		return nil, fmt.Errorf("numbers: %w", err)
	}
	// The order matters: identify first (every stage needs the numbers),
	// then the cheap refusals (blocking) before the work done for calls that
	// go on (hotline templates, rules, contact).
	pipeline := callctl.Pipeline{
		callctl.NewIdentify(normalizer(numbers)),
	}
	routing, err := buildRouting(cfg)
	if err != nil {
		return nil, err
	}
	routing.Pipeline = pipeline
	return &policy{routing: routing}, nil
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
