package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRunBadEnvironment: every way the agent cannot start gives one clear
// error line and exit 1, never a panic or a half-started agent.
func TestRunBadEnvironment(t *testing.T) {
	dir := t.TempDir()
	busyUDP, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busyUDP.Close()
	busyTCP, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busyTCP.Close()
	config := func(name, sipListen, httpListen, dsn string) string {
		p := filepath.Join(dir, name+".yaml")
		body := fmt.Sprintf(`sip: {listen: [%s], pbx: "sip:127.0.0.1:5080", trunks: [{name: c, match: [127.0.0.1/32]}]}
storage: {dsn: %q}
http: {listen: %q}
`, sipListen, dsn, httpListen)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	db := filepath.Join(dir, "sb.db")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"missing config", []string{"-c", filepath.Join(dir, "nope.yaml")}, "nope.yaml"},
		{"SIP port in use", []string{"-c", config("sip", "udp://"+busyUDP.LocalAddr().String(), "127.0.0.1:0", db)}, "address already in use"},
		{"HTTP port in use", []string{"-c", config("http", "udp://127.0.0.1:0", busyTCP.Addr().String(), db)}, "address already in use"},
		{"database in a missing folder", []string{"-c", config("db", "udp://127.0.0.1:0", "127.0.0.1:0", filepath.Join(dir, "no", "such", "dir", "sb.db"))}, "storage"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := dispatch(append([]string{"run"}, tc.args...), &out, &errb)
			msg := strings.TrimSpace(errb.String())
			if code != 1 {
				t.Fatalf("exit %d, want 1; stderr %q", code, msg)
			}
			if !strings.Contains(msg, tc.want) || strings.Contains(msg, "panic") {
				t.Errorf("stderr %q, want one line naming %q", msg, tc.want)
			}
			if lines := strings.Count(msg, "\n") + 1; lines != 1 {
				t.Errorf("%d lines on stderr, want 1:\n%s", lines, msg)
			}
		})
	}
}
