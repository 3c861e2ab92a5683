package e2e

import (
	"bytes"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestReadmeRunCommand runs the README's first command as a user would:
// no config file, the embedded default (SIP on 127.0.0.1:5060, HTTP on
// 127.0.0.1:8080, switchboard.db in the working directory), then SIGTERM.
func TestReadmeRunCommand(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(readme, []byte("go run ./cmd/switchboard run")) {
		t.Fatal("README no longer starts with the run command this test runs")
	}
	for _, addr := range []string{"127.0.0.1:5060", "127.0.0.1:8080"} {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Skipf("%s is taken on this machine: %v", addr, err)
		}
		l.Close()
	}
	dir := t.TempDir()
	var logs bytes.Buffer
	cmd := exec.Command(binPath, "run")
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = &logs, &logs
	p, err := startProcess(cmd)
	if err != nil {
		t.Fatal(err)
	}
	defer p.kill()
	deadline := time.Now().Add(startTimeout)
	for {
		res, err := http.Get("http://127.0.0.1:8080/healthz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no /healthz on 127.0.0.1:8080: %v\n%s", err, logs.String())
		}
		time.Sleep(50 * time.Millisecond) // polling a port: no event to await
	}
	if _, err := os.Stat(filepath.Join(dir, "switchboard.db")); err != nil {
		t.Errorf("the default database was not created in the working directory: %v", err)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	err, ok := p.wait(10 * time.Second)
	if !ok || exitCode(err) != 0 {
		t.Fatalf("after SIGTERM: exited=%v code %d\n%s", ok, exitCode(err), logs.String())
	}
	if !strings.Contains(logs.String(), "embedded default") {
		t.Errorf("the log does not say the embedded default config is in use:\n%s", logs.String())
	}
}
