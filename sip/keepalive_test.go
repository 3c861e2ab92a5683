package sip

import (
	"testing"
	"time"

	gosip "github.com/emiago/sipgo/sip"
)

// TestProbesDownOnlyAfterAnswering: a target that never answered OPTIONS
// (a carrier that filters them) stays up however many probes it misses; one
// that answered and then stopped is down after missesDown misses, and back
// up at its next answer.
func TestProbesDownOnlyAfterAnswering(t *testing.T) {
	at := time.Now()
	silent := target{name: "carrier", uri: gosip.Uri{Scheme: "sip", Host: "127.0.0.1", Port: 5090}}
	pbx := target{name: "pbx", uri: gosip.Uri{Scheme: "sip", Host: "127.0.0.1", Port: 5080}}
	var ps probes
	for range 5 {
		ps.note(silent, false, at)
	}
	if ps.down(silent.uri) {
		t.Fatal("a target that never answered a probe was marked down")
	}
	ps.note(pbx, true, at)
	for i := range missesDown {
		if ps.down(pbx.uri) {
			t.Fatalf("down after %d misses, want %d", i, missesDown)
		}
		ps.note(pbx, false, at)
	}
	if !ps.down(pbx.uri) {
		t.Fatalf("up after %d misses of a target that answered before", missesDown)
	}
	ps.note(pbx, true, at)
	if ps.down(pbx.uri) {
		t.Fatal("still down after an answer")
	}
	for _, s := range ps.list() {
		if s.AnswersOptions != (s.Name == "pbx") {
			t.Errorf("%s: answers_options %v", s.Name, s.AnswersOptions)
		}
	}
}
