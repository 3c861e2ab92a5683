package callstore

import (
	"context"

	"github.com/switchboard-sip/switchboard/cdr"
)

// ListUpTo pages through the records q selects until limit are read, for
// a reader that shows them at once (the command line).
func (s *Store) ListUpTo(ctx context.Context, q Query, limit int) ([]cdr.Record, error) {
	var out []cdr.Record
	for len(out) < limit {
		q.Limit = limit - len(out)
		items, next, err := s.List(ctx, q)
		if err != nil {
			return nil, err
		}
		out = append(out, items...)
		if next == "" {
			break
		}
		q.Cursor = next
	}
	return out, nil
}
