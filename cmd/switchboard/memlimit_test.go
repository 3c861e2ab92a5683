package main

import (
	"runtime/debug"
	"testing"

	"go.uber.org/zap"

	"github.com/switchboard-sip/switchboard/configs"
)

// TestApplyRuntimeMemoryLimit: runtime.memory_limit becomes Go's soft
// memory limit, and 0 (on a reload) gives back the one the process started
// with.
func TestApplyRuntimeMemoryLimit(t *testing.T) {
	t.Cleanup(func() { debug.SetMemoryLimit(envMemoryLimit) })
	cfg, err := configs.Parse([]byte(`sip:
  listen: [udp://127.0.0.1:5060]
  pbx: sip:127.0.0.1:5080
  trunks: [{name: carrier, match: [127.0.0.1/32], outbound: "sip:127.0.0.1:5090"}]
runtime: {memory_limit: 512MiB}
`))
	if err != nil {
		t.Fatal(err)
	}
	applyRuntime(cfg.Runtime, zap.NewNop())
	if got := debug.SetMemoryLimit(-1); got != 512<<20 {
		t.Fatalf("limit %d, want %d", got, 512<<20)
	}
	applyRuntime(configs.Runtime{}, zap.NewNop())
	if got := debug.SetMemoryLimit(-1); got != envMemoryLimit {
		t.Fatalf("limit %d after memory_limit 0, want the start's %d", got, envMemoryLimit)
	}
}
