package main

import (
	"math"
	"runtime/debug"

	"go.uber.org/zap"

	"github.com/switchboard-sip/switchboard/configs"
)

// envMemoryLimit is the soft memory limit the process started with: the
// GOMEMLIMIT environment variable, or none. runtime.memory_limit: 0 goes
// back to it.
var envMemoryLimit = debug.SetMemoryLimit(-1)

// applyRuntime applies runtime.memory_limit (SPEC §7), at start and on
// every reload. GOGC stays Go's default: a finished call keeps nothing, so
// the heap stays small and a limit, not a lazier collector, bounds it.
func applyRuntime(r configs.Runtime, log *zap.Logger) {
	limit := envMemoryLimit
	if r.MemoryLimit > 0 {
		limit = int64(r.MemoryLimit)
	}
	if prev := debug.SetMemoryLimit(limit); prev != limit {
		shown := limit
		if limit == math.MaxInt64 {
			shown = 0
		}
		log.Info("memory limit set", zap.Int64("bytes", shown))
	}
}
