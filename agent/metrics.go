package agent

import (
	"github.com/switchboard-sip/switchboard/callctl"
	"github.com/switchboard-sip/switchboard/cdr"
	"github.com/switchboard-sip/switchboard/metrics"
)

// observeCall hands a call event to the metrics as plain values: metrics
// knows no domain package, so the agent reads the event for it.
func observeCall(m *metrics.Metrics, active int, e callctl.Event) {
	r := &e.Record
	m.ObserveCall(active, e.Type == callctl.EventEnded, string(r.Direction), string(r.Disposition), r.Hotline,
		r.Disposition == cdr.Blocked)
}
