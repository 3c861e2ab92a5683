package callctl

import (
	"context"
	"github.com/switchboard-sip/switchboard/cdr"
)

// Verdict is what a stage decided about a call.
type Verdict int

// Verdicts a stage can return.
const (
	Continue Verdict = iota // go on with the next stage
	Reject                  // answer the caller with Code and stop
	Route                   // forward to Target and stop evaluating policy
)

// Decision is a stage's typed answer. The sip package turns it into SIP.
type Decision struct {
	Verdict      Verdict
	Code         int    // SIP status for Reject
	Reason       string // why, for the record and the log
	Disposition  cdr.Disposition
	Announcement string // WAV file to play before a Reject, if any
	Target       string // SIP URI for Route
}

// Stage is one step of the call pipeline.
type Stage interface {
	Name() string
	Handle(ctx context.Context, c *Call) Decision
}

// Pipeline runs stages in order until one stops the call.
type Pipeline []Stage

// Run returns the first decision that is not Continue. A Route decision
// sets c.Target and, like a Reject, ends the pipeline: the stages after it
// do not run, which is why their order matters (agent's pipeline says why
// each stands where it does). The record is not a stage: the tracker
// keeps it for every call, whatever the decision.
func (p Pipeline) Run(ctx context.Context, c *Call) Decision {
	for _, s := range p {
		d := s.Handle(ctx, c)
		if c.Trace != nil {
			c.Trace.add(s, d)
		}
		switch d.Verdict {
		case Continue:
			continue
		case Route:
			c.Target = d.Target
			return d
		default:
			return d
		}
	}
	return Decision{Verdict: Continue}
}
