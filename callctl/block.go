package callctl

import (
	"github.com/switchboard-sip/switchboard/cdr"

	"context"
	"fmt"
	"strings"

	"github.com/switchboard-sip/switchboard/blocking"
	"github.com/switchboard-sip/switchboard/configs"
)

// Blocklist answers block lookups from memory; *blocking.Store and
// *blocking.Index implement it.
type Blocklist interface {
	Lookup(number string, dir blocking.Direction) blocking.Match
	// LookupAddress decides for a SIP address, user@host (SPEC §1).
	LookupAddress(user, host string, dir blocking.Direction) blocking.Match
}

// BlockStage applies device blocking (SPEC §7 blocking) to the remote
// party: the caller of an inbound call, the callee of an outbound one. It
// reads only the in-memory list, so it cannot fail on a database outage:
// the list last loaded stays in force.
type BlockStage struct {
	list           Blocklist
	blockAnonymous bool
	response       int
	announcement   string
}

// NewBlockStage builds the stage from the blocking config section and the
// list (config and stored entries merged, see blocking.Store). A reload
// builds a new stage over the same list.
func NewBlockStage(cfg configs.Blocking, list Blocklist) (*BlockStage, error) {
	if list == nil {
		return nil, fmt.Errorf("callctl: block stage: no block list")
	}
	s := &BlockStage{list: list, response: cfg.Response, announcement: cfg.Announcement}
	switch cfg.Anonymous {
	case "", "allow":
	case "block":
		s.blockAnonymous = true
	default:
		return nil, fmt.Errorf("callctl: block stage: blocking.anonymous %q: want allow or block", cfg.Anonymous)
	}
	if s.response == 0 {
		s.response = StatusDecline
	}
	if s.response < 400 || s.response > 699 {
		return nil, fmt.Errorf("callctl: block stage: blocking.response %d is not a SIP error code", s.response)
	}
	return s, nil
}

// Name implements Stage.
func (s *BlockStage) Name() string { return "block" }

// BlockResult is the outcome of the block check for one call, for the
// stage and for `switchboard explain`.
type BlockResult struct {
	Blocked   bool
	Anonymous bool            // blocked (or let through) as an anonymous caller
	Number    string          // the number looked up
	Entry     *blocking.Entry // the deciding entry, nil when none matched
}

// Check looks the call's remote party up without changing the call.
func (s *BlockStage) Check(c *Call) BlockResult {
	remote := c.Remote()
	dir := blocking.In
	if c.Direction == Outbound {
		dir = blocking.Out
	}
	// Only a caller can hide its number; an anonymous callee of an
	// outbound call is a dialling error the trunk will answer.
	if remote.Anonymous && dir == blocking.In {
		if s.blockAnonymous || remote.Key() == "" {
			return BlockResult{Blocked: s.blockAnonymous, Anonymous: true}
		}
		// A caller that withholds its number from the callee (Privacy: id)
		// may still be known to us through a trusted P-Asserted-Identity:
		// its block entries apply.
	}
	// Internal parties are our own extensions: device blocking is about
	// the outside world, and an outbound call between extensions never
	// reaches a trunk.
	if remote.Internal {
		return BlockResult{}
	}
	n := remote.Key()
	m := s.list.Lookup(n, dir)
	if am, addr := s.checkAddresses(c, remote, dir); am.Entry != nil {
		if m = blocking.Either(m, am); m.Entry == am.Entry {
			n = addr
		}
	}
	return BlockResult{Blocked: m.Blocked, Anonymous: remote.Anonymous, Number: n, Entry: m.Entry}
}

// checkAddresses looks up the remote party's SIP addresses (SPEC §1):
// the URI its number was read from (P-Asserted-Identity or From inbound,
// the Request-URI outbound) and, inbound, From as well, since a caller's
// own domain shows there even when the network asserts a number. It
// returns the deciding match and the address it was for.
func (s *BlockStage) checkAddresses(c *Call, remote *Party, dir blocking.Direction) (blocking.Match, string) {
	var ms [2]blocking.Match
	var from *Address
	if remote.Host != "" && remote.Raw != "" {
		ms[0] = s.list.LookupAddress(remote.Raw, remote.Host, dir)
	}
	if f := &c.Signalling.From; dir == blocking.In && f.Host != "" && f.User != "" &&
		(f.User != remote.Raw || !strings.EqualFold(f.Host, remote.Host)) &&
		(f.Scheme == "sip" || f.Scheme == "sips") {
		from = f
		ms[1] = s.list.LookupAddress(f.User, f.Host, dir)
	}
	m := blocking.Either(ms[0], ms[1])
	switch {
	case m.Entry == nil:
		return m, ""
	case m.Entry == ms[0].Entry:
		return m, remote.Raw + "@" + strings.ToLower(remote.Host)
	}
	return m, from.User + "@" + strings.ToLower(from.Host)
}

// Handle implements Stage: a blocked call is rejected with
// blocking.response and the blocking announcement.
func (s *BlockStage) Handle(_ context.Context, c *Call) Decision {
	if c.Emergency || c.CallbackOf != "" {
		// SPEC §1: no block entry (a "+49*" written too broadly) and no
		// blocking.anonymous refuses an emergency call or the emergency
		// services' call back; the emergency stage routes both before
		// this one, and this guard keeps it so in any order.
		return Decision{Verdict: Continue}
	}
	r := s.Check(c)
	c.Trace.note(r)
	if !r.Blocked {
		return Decision{Verdict: Continue}
	}
	reason := "anonymous"
	if r.Entry != nil {
		reason = r.Entry.Reason
		if reason == "" {
			reason = "blocked " + r.Entry.Number
		}
	}
	return Decision{
		Verdict:      Reject,
		Code:         s.response,
		Reason:       reason,
		Disposition:  cdr.Blocked,
		Announcement: s.announcement,
	}
}
