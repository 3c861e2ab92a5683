package callctl

// Trace is the stage-by-stage account of one call run in dry-run mode
// (`switchboard explain`, SPEC §6). A Call with a Trace is a dry run: the
// stages decide exactly as for a live call, but write nothing (the
// contact stage reports the contact it would create instead of creating
// it). Live calls carry no Trace and pay nothing for it.
type Trace struct {
	Steps []Step

	detail any // set by the running stage, taken by the pipeline
}

// Step is what one stage saw and decided.
type Step struct {
	Stage    string
	Decision Decision
	// Detail is the stage's own account: BlockResult, ContactResult,
	// HotlineResult or RulesResult; nil for stages with nothing to add.
	Detail any
}

// DryRun reports whether c is a dry run, in which stages must not write.
func (c *Call) DryRun() bool { return c.Trace != nil }

// note hands a stage's detail to the trace; a no-op on live calls.
func (t *Trace) note(detail any) {
	if t != nil {
		t.detail = detail
	}
}

// add records the step of stage s with its decision.
func (t *Trace) add(s Stage, d Decision) {
	t.Steps = append(t.Steps, Step{Stage: s.Name(), Decision: d, Detail: t.detail})
	t.detail = nil
}
