package callctl

import "go.uber.org/zap"

// LogFinished returns a call observer that writes one structured line per
// finished call (STYLE: call id, direction, numbers, hotline, contact,
// disposition, ring and talk ms).
func LogFinished(log *zap.Logger) func(Event) {
	return func(e Event) {
		if e.Type != EventEnded {
			return
		}
		r := e.Record
		log.Info("call",
			zap.String("id", r.ID), zap.String("call_id", r.CallID), zap.String("direction", string(r.Direction)),
			zap.String("caller", r.Caller), zap.String("called", r.Called), zap.String("hotline", r.Hotline),
			zap.Int64("contact", r.ContactID), zap.String("disposition", string(r.Disposition)),
			zap.Int("sip_status", r.SIPStatus), zap.Int64("ring_ms", r.RingMS), zap.Int64("talk_ms", r.TalkMS))
	}
}
