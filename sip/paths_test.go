package sip

import (
	"strings"
	"testing"
)

// onBothPaths runs a proxy-behaviour test twice, as subtests "fast" (UDP
// served by the fast path, as every Linux user runs it) and "sipgo"
// (sip.fast_path off): both paths follow the same rules (SPEC §1).
// startProxy reads which one from the subtest's name (see pathIsFast).
func onBothPaths(t *testing.T, test func(t *testing.T)) {
	t.Helper()
	t.Run("fast", func(t *testing.T) {
		if !fastPathSupported {
			t.Skip("the fast path needs Linux")
		}
		test(t)
	})
	t.Run("sipgo", test)
}

// pathIsFast reports a test running as the "fast" subtest of onBothPaths,
// at any depth below it.
func pathIsFast(t testing.TB) bool {
	parts := strings.Split(t.Name(), "/")
	for i := 1; i < len(parts); i++ {
		switch parts[i] {
		case "fast":
			return true
		case "sipgo":
			return false
		}
	}
	return false
}
