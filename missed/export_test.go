package missed

import (
	"context"

	"github.com/switchboard-sip/switchboard/callctl"
)

// Handle runs one call event on the caller's goroutine, for benchmarks.
func (s *Service) Handle(ctx context.Context, e callctl.Event) error { return s.handle(ctx, e) }

// Lookups is how many open-entry queries the service has run.
func (s *Service) Lookups() uint64 { return s.st.lookups.Load() }

// MayHaveOpen tells whether the service's set holds the party.
func (s *Service) MayHaveOpen(contactID int64, number string) bool {
	may, _ := s.open.mayHave(contactID, number)
	return may
}
