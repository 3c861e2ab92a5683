package callctl

import "context"

// Fetcher runs the configured lookups (SPEC §7 lookups) of a call;
// *lookups.Fetcher implements it. Fetch returns within the lookups'
// timeouts whatever happens to the sources.
type Fetcher interface {
	Fetch(ctx context.Context, c *Call) map[string]any
}

// LookupStage fetches the call's lookups, so that the hotline's templates
// (.Lookup) and the rules (lookup) see them. It fails open: a lookup that
// failed is an empty object and the call goes on. It comes after blocking,
// so that a blocked call never causes a request to a data source.
type LookupStage struct {
	f Fetcher
}

var _ Stage = (*LookupStage)(nil)

// NewLookupStage returns the stage; a nil fetcher (no lookups configured)
// makes it do nothing.
func NewLookupStage(f Fetcher) *LookupStage { return &LookupStage{f: f} }

// Name implements Stage.
func (s *LookupStage) Name() string { return "lookup" }

// Handle implements Stage.
func (s *LookupStage) Handle(ctx context.Context, c *Call) Decision {
	if s.f != nil {
		c.Lookup = s.f.Fetch(ctx, c)
	}
	return Decision{Verdict: Continue}
}
