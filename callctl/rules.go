package callctl

import (
	"github.com/switchboard-sip/switchboard/cdr"

	"context"
	"fmt"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/switchboard-sip/switchboard/configs"
	"github.com/switchboard-sip/switchboard/templates"
)

// RulesStage runs the administrator's call-control rules (SPEC §5) after
// the hotline stage, so rules see the hotline. A rule that fails to
// evaluate is logged and skipped: rules fail open.
type RulesStage struct {
	rules    *templates.Rules
	hotlines *templates.Hotlines
	contacts ContactFinder
	loc      *time.Location
	log      *zap.Logger
}

// NewRulesStage compiles the rules section; errors name the rule and the
// position in its condition. Set o.Hotlines so rules see the hotline.
func NewRulesStage(cfg []configs.Rule, o PolicyOptions) (*RulesStage, error) {
	o = o.withDefaults()
	rules, err := templates.CompileRules(cfg)
	if err != nil {
		return nil, fmt.Errorf("callctl: rules stage: %w", err)
	}
	return NewRulesStageOf(rules, o), nil
}

// NewRulesStageOf builds the stage over rules compiled already
// (templates.Compile), so that a config is compiled once when it loads.
func NewRulesStageOf(rules *templates.Rules, o PolicyOptions) *RulesStage {
	o = o.withDefaults()
	return &RulesStage{rules: rules, hotlines: o.Hotlines, contacts: o.Contacts, loc: o.Location, log: o.Log}
}

// Name implements Stage.
func (s *RulesStage) Name() string { return "rules" }

// RulesResult is what the rules decided for a call.
type RulesResult struct {
	Fired      []templates.Fired
	Errors     []error           // rules skipped because they failed
	Headers    map[string]string // sanitised, by header name
	Tags       []string
	Notify     []string // extra recipients of a missed-call notification
	SkipNotify bool
	Decision   Decision // Reject or Route from the last fired rule, else Continue
}

// Evaluate runs the rules for c without changing c.
func (s *RulesStage) Evaluate(c *Call) RulesResult {
	var r RulesResult
	r.Decision = Decision{Verdict: Continue}
	if s.rules.Len() == 0 {
		return r
	}
	// now is in the config's zone unless the hotline has its own, so that
	// now.getHours() is a local hour; now.getHours("Europe/Berlin") works
	// too but loads the zone at every evaluation.
	now := callTime(c).In(s.loc)
	d := TemplateData(c, s.hotlines.ByName(c.Hotline), findContact(s.contacts, c), now)
	r.Fired, r.Errors = s.rules.Eval(d)
	for _, f := range r.Fired {
		a := f.Then
		for name, v := range a.Header {
			if r.Headers == nil {
				r.Headers = map[string]string{}
			}
			r.Headers[name] = SanitizeHeaderValue(v)
		}
		for _, t := range a.Tag {
			if !slices.Contains(r.Tags, t) {
				r.Tags = append(r.Tags, t)
			}
		}
		for _, n := range a.Notify {
			if !slices.Contains(r.Notify, n) {
				r.Notify = append(r.Notify, n)
			}
		}
		r.SkipNotify = r.SkipNotify || a.SkipNotify
		switch {
		case a.Reject != nil:
			code := a.Reject.Code
			if code == 0 {
				code = StatusForbidden
			}
			// Refused by switchboard itself, like a block entry (SPEC §3).
			r.Decision = Decision{Verdict: Reject, Code: code, Reason: "rule " + f.Rule,
				Disposition: cdr.Blocked, Announcement: a.Reject.Announcement}
		case a.Route != "":
			r.Decision = Decision{Verdict: Route, Target: a.Route, Reason: "rule " + f.Rule}
		}
	}
	return r
}

// Handle implements Stage: headers and tags of the fired rules go on the
// call, and a reject or route becomes the stage's decision.
func (s *RulesStage) Handle(_ context.Context, c *Call) Decision {
	if c.Emergency || c.CallbackOf != "" {
		// SPEC §1: no rule rejects, reroutes or rewrites an emergency call
		// or its call back, whatever it was written for.
		return Decision{Verdict: Continue}
	}
	r := s.Evaluate(c)
	c.Trace.note(r)
	for _, err := range r.Errors {
		s.log.Warn("rule skipped", zap.String("call_id", c.CallID), zap.Error(err))
	}
	if len(r.Headers) > 0 {
		if c.Headers == nil {
			c.Headers = make(map[string]string, len(r.Headers))
		}
		for n, v := range r.Headers {
			c.Headers[n] = v
		}
	}
	c.Notify = append(c.Notify, r.Notify...)
	c.SkipNotify = c.SkipNotify || r.SkipNotify
	for _, t := range r.Tags {
		if !slices.Contains(c.Tags, t) {
			c.Tags = append(c.Tags, t)
		}
	}
	if len(r.Fired) > 0 {
		names := make([]string, len(r.Fired))
		for i, f := range r.Fired {
			names[i] = f.Rule
		}
		s.log.Debug("rules fired", zap.String("call_id", c.CallID), zap.Strings("rules", names))
	}
	return r.Decision
}
