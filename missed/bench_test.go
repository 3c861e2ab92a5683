package missed_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/switchboard-sip/switchboard/callctl"
	"github.com/switchboard-sip/switchboard/cdr"
)

// BenchmarkResolveNoOpenEntry is the missed-call work of an answered call
// whose caller has no open entry, the common case: 100 other callers have
// one each. It reports the open-entry queries per call (SPEC §9: no SQL
// per answered call).
func BenchmarkResolveNoOpenEntry(b *testing.B) {
	e := newEnv(b, envOptions{})
	ctx := context.Background()
	for i := range 100 {
		e.end(call{caller: external(fmt.Sprintf("+4930555%04d", i)), ring: 3 * time.Second, at: day(9, 0)})
	}
	ev := call{caller: external(jane), disp: cdr.Answered, talk: time.Minute, at: day(9, 30)}.event()
	ev.Type = callctl.EventAnswered
	before := e.svc.Lookups()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := e.svc.Handle(ctx, ev); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(e.svc.Lookups()-before)/float64(b.N), "queries/op")
}
