package sip

import (
	"errors"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// fallbackReason says why the fast path passed a datagram to sipgo: the
// label of switchboard_sip_fallback_total. A message of a transaction the
// fast path started is never one of them (SPEC §1).
type fallbackReason uint8

const (
	fbNone      fallbackReason = iota // taken by the fast path
	fbUnindexed                       // the index refused it, and it belongs to no fast-path transaction
	fbResponse                        // a response to a request the sipgo path sent
	fbInvite                          // an initial INVITE the fast path does not take (Route, drain, CPS, stranger...)
	fbRequest                         // another request the fast path does not handle (REGISTER, OPTIONS, re-INVITE...)
	fbHandover                        // an INVITE the fast path took and then passed on (announcement, DNS, TCP target...)
	fbBalancer                        // a request a balancer passed on, judged by its X-Switchboard-Source
	nFallbacks
)

var fallbackNames = [nFallbacks]string{"", "unindexed", "response", "invite", "request", "handover", "balancer"}

// fallbacks counts what the fast path passed to sipgo, by reason. It is
// read by /metrics through its Collect and by tests through n.
type fallbacks struct {
	count [nFallbacks]atomic.Uint64
}

func (c *fallbacks) add(r fallbackReason) { c.count[r].Add(1) }

// n is the count for one reason; total is every reason's.
func (c *fallbacks) n(r fallbackReason) uint64 { return c.count[r].Load() }

func (c *fallbacks) total() uint64 {
	var t uint64
	for r := fbUnindexed; r < nFallbacks; r++ {
		t += c.n(r)
	}
	return t
}

var fallbackDesc = prometheus.NewDesc("switchboard_sip_fallback_total",
	"Datagrams the UDP fast path passed to the sipgo path, by reason.", []string{"reason"}, nil)

// Describe is part of prometheus.Collector.
func (c *fallbacks) Describe(ch chan<- *prometheus.Desc) { ch <- fallbackDesc }

// Collect is part of prometheus.Collector.
func (c *fallbacks) Collect(ch chan<- prometheus.Metric) {
	for r := fbUnindexed; r < nFallbacks; r++ {
		ch <- prometheus.MustNewConstMetric(fallbackDesc, prometheus.CounterValue, float64(c.n(r)), fallbackNames[r])
	}
}

// register shows the counts on /metrics; a second proxy on the same
// registry (tests) keeps the first one's.
func (c *fallbacks) register(reg *prometheus.Registry) {
	if err := reg.Register(c); err != nil && !errors.As(err, new(prometheus.AlreadyRegisteredError)) {
		panic(err)
	}
}
