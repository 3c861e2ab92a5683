package callstore

import (
	"context"
	"time"

	"go.uber.org/zap"
)

// CallContacts deletes the contacts that calls created and that no call
// links to any more; *contacts.Store implements it.
type CallContacts interface {
	PurgeCallContacts(ctx context.Context, before time.Time) (int64, error)
}

// Retain applies storage.retention (SPEC §2): it deletes the call records
// and messages older than keep, then the contacts only those had created. keep <= 0 keeps everything. Failures are logged; the next run
// tries again.
func (s *Store) Retain(ctx context.Context, now time.Time, keep time.Duration, contacts CallContacts) {
	if keep <= 0 {
		return
	}
	before := now.Add(-keep)
	calls, err := s.Prune(ctx, before)
	if err != nil {
		s.log.Warn("retention: calls", zap.Error(err))
		return
	}
	msgs, err := s.PruneMessages(ctx, before)
	if err != nil {
		s.log.Warn("retention: messages", zap.Error(err))
		return
	}
	var gone int64
	if contacts != nil {
		if gone, err = contacts.PurgeCallContacts(ctx, before); err != nil {
			s.log.Warn("retention: contacts", zap.Error(err))
		}
	}
	if calls > 0 || msgs > 0 || gone > 0 {
		s.log.Info("retention", zap.Int64("calls_deleted", calls), zap.Int64("messages_deleted", msgs),
			zap.Int64("contacts_deleted", gone), zap.Time("before", before))
	}
}
