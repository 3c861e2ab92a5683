package sip

import (
	"context"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	gosip "github.com/emiago/sipgo/sip"
	"go.uber.org/zap"
)

// missesDown is how many probes in a row a target may leave unanswered
// before it counts as down: one lost datagram is not an outage.
const missesDown = 2

// TargetState is what the OPTIONS prober knows about one target (SPEC §1,
// sip.keepalive); it is shown in /metrics and /healthz.
type TargetState struct {
	Name string    `json:"name"` // "pbx" or the trunk's name
	URI  string    `json:"uri"`
	Up   bool      `json:"up"`
	At   time.Time `json:"checked_at"` // last probe answered or missed; zero before the first
	// AnswersOptions says the target answered a probe at least once. Only
	// such a target can be marked down: a PBX or carrier that filters
	// OPTIONS but takes calls must not be cut off by the prober.
	AnswersOptions bool `json:"answers_options"`
}

// probes keeps the state of every probed target by host:port. A target
// never probed counts as up, so that calls flow from the first second.
type probes struct {
	mu     sync.RWMutex
	state  map[string]*probeState
	onFlip func(s TargetState, changed bool)
}

type probeState struct {
	TargetState
	misses int
}

// target is one place that calls may be sent to.
type target struct {
	name string
	uri  gosip.Uri
}

func targetKey(u gosip.Uri) string {
	port := u.Port
	if port == 0 {
		port = 5060
		if u.Scheme == "sips" {
			port = 5061
		}
	}
	return net.JoinHostPort(u.Host, strconv.Itoa(port))
}

// down reports whether the target at u stopped answering probes (SPEC §1:
// "a target that stopped answering"); one that never answered is not down.
func (ps *probes) down(u gosip.Uri) bool {
	ps.mu.RLock()
	defer ps.mu.RUnlock()
	s := ps.state[targetKey(u)]
	return s != nil && !s.Up
}

// note records the outcome of one probe; onFlip hears of the first
// outcome (changed false) and of every change.
func (ps *probes) note(t target, answered bool, at time.Time) {
	ps.mu.Lock()
	if ps.state == nil {
		ps.state = map[string]*probeState{}
	}
	key := targetKey(t.uri)
	s := ps.state[key]
	first := s == nil
	if first {
		s = &probeState{TargetState: TargetState{Name: t.name, URI: t.uri.String(), Up: true}}
		ps.state[key] = s
	}
	was := s.Up
	s.At, s.Name = at, t.name
	if answered {
		s.misses, s.Up, s.AnswersOptions = 0, true, true
	} else if s.misses++; s.misses >= missesDown && s.AnswersOptions {
		s.Up = false
	}
	flipped, now := was != s.Up, s.TargetState
	ps.mu.Unlock()
	if (first || flipped) && ps.onFlip != nil {
		ps.onFlip(now, flipped)
	}
}

// keep drops the state of targets that are no longer configured.
func (ps *probes) keep(ts []target) {
	live := map[string]bool{}
	for _, t := range ts {
		live[targetKey(t.uri)] = true
	}
	ps.mu.Lock()
	for k := range ps.state {
		if !live[k] {
			delete(ps.state, k)
		}
	}
	ps.mu.Unlock()
}

func (ps *probes) list() []TargetState {
	ps.mu.RLock()
	out := make([]TargetState, 0, len(ps.state))
	for _, s := range ps.state {
		out = append(out, s.TargetState)
	}
	ps.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Targets returns the probe state of the PBX and every trunk's outbound
// target, for /healthz.
func (p *Proxy) Targets() []TargetState { return p.probes.list() }

// targets are what the current routing sends calls to.
func (r *Routing) targets() []target {
	ts := []target{{name: "pbx", uri: r.PBXURI}}
	for _, t := range r.Trunks {
		if t.Outbound != nil {
			ts = append(ts, target{name: t.Name, uri: *t.Outbound})
		}
	}
	return ts
}

// probeLoop sends OPTIONS to every target each Keepalive until ctx ends
// (SPEC §1). A probe waits at most one interval (and at most 5 s) for any
// response: any status at all proves the target is alive.
func (p *Proxy) probeLoop(ctx context.Context) error {
	every := p.opts.Keepalive
	wait := min(every, 5*time.Second)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		ts := p.routing.Load().targets()
		p.probes.keep(ts)
		var wg sync.WaitGroup
		for _, t := range ts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				p.probes.note(t, p.probe(ctx, t.uri, wait), time.Now())
			}()
		}
		wg.Wait()
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// probe sends one OPTIONS to u and says whether anything answered.
func (p *Proxy) probe(ctx context.Context, u gosip.Uri, wait time.Duration) bool {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	req := gosip.NewRequest(gosip.OPTIONS, *u.Clone())
	req.SetTransport(transportOf(req))
	p.addProbeVia(req)
	from := &gosip.FromHeader{Address: gosip.Uri{Scheme: "sip", User: "switchboard", Host: p.opts.Advertise}, Params: gosip.NewParams()}
	from.Params.Add("tag", gosip.GenerateTagN(12))
	req.AppendHeader(from)
	req.AppendHeader(&gosip.ToHeader{Address: *u.Clone(), Params: gosip.NewParams()})
	callID := gosip.CallIDHeader(gosip.GenerateTagN(24))
	req.AppendHeader(&callID)
	req.AppendHeader(&gosip.CSeqHeader{SeqNo: 1, MethodName: gosip.OPTIONS})
	mf := gosip.MaxForwardsHeader(70)
	req.AppendHeader(&mf)
	req.SetBody(nil)
	p.setLocal(req)
	res, err := p.cli.Do(ctx, req, noBuild)
	if err != nil {
		p.log.Debug("keep-alive probe", zap.String("target", u.String()), zap.Error(err))
		return false
	}
	return res != nil
}

func (p *Proxy) addProbeVia(req *gosip.Request) {
	via := &gosip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: req.Transport(),
		Host: p.opts.Advertise, Port: p.ports[strings.ToLower(req.Transport())], Params: gosip.NewParams()}
	via.Params.Add("branch", branchPrefix+"probe-"+gosip.GenerateTagN(16))
	req.PrependHeader(via)
}

// retryAfter is the Retry-After for a call to a target that is down: the
// next probe may find it back.
func (p *Proxy) retryAfter() string {
	s := int((p.opts.Keepalive + time.Second - 1) / time.Second)
	return strconv.Itoa(max(s, 1))
}
