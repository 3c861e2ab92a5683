package missed

import (
	"errors"
	"github.com/switchboard-sip/switchboard/cdr"

	"context"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/switchboard-sip/switchboard/callctl"
)

// recoverWindow is how far back a start looks for missed calls whose entry
// a crash kept from being written.
const recoverWindow = 24 * time.Hour

// recoverLost queues again the missed calls of this node that ended before
// this process started but got no entry: the process died between the end
// of the call and the entry's transaction (SIGKILL, power loss). Calls of
// this process are left alone, they reach Observe themselves.
func (s *Service) recoverLost(ctx context.Context, node string, started time.Time) error {
	if s.records == nil {
		return nil
	}
	lost, err := s.records.UnlinkedMissed(ctx, node, started.Add(-recoverWindow), started)
	if err != nil {
		return fmt.Errorf("missed: recover: %w", err)
	}
	for _, r := range lost {
		// An entry may exist whose link was not written yet.
		if _, err := s.st.byRecord(ctx, s.st.db, r.ID); err == nil {
			continue
		} else if !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("missed: recover %s: %w", r.ID, err)
		}
		s.log.Warn("missed call recovered after an unclean stop", zap.String("record", r.ID))
		s.Observe(callctl.Event{Type: callctl.EventEnded, Record: r})
	}
	return nil
}

// recordedCaller rebuilds the caller of a record whose call is no longer in
// memory. The record keeps no flags: a caller without an E.164 number was
// an internal extension when the raw form is digits, else anonymous.
func recordedCaller(r cdr.Record) callctl.Party {
	p := callctl.Party{E164: r.Caller, Raw: r.CallerRaw, Name: r.CallerName}
	if p.E164 != "" {
		return p
	}
	digits := p.Raw != "" && strings.Trim(p.Raw, "0123456789") == ""
	p.Internal, p.Anonymous = digits, !digits
	return p
}
