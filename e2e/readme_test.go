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
	requirements(t)
	// The default config binds SIP on UDP and TCP 5060 and HTTP on TCP
	// 8080. A machine where one is taken cannot run the command; in CI
	// that is a failure, not a reason to skip.
	for _, p := range []struct{ network, addr string }{
		{"udp", "127.0.0.1:5060"}, {"tcp", "127.0.0.1:5060"}, {"tcp", "127.0.0.1:8080"},
	} {
		if err := probe(p.network, p.addr); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s %s is taken and CI is set: %v", p.network, p.addr, err)
			}
			t.Skipf("%s %s is taken on this machine: %v", p.network, p.addr, err)
		}
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

// probe binds addr on network and lets it go again.
func probe(network, addr string) error {
	if network == "udp" {
		c, err := net.ListenPacket(network, addr)
		if err == nil {
			c.Close()
		}
		return err
	}
	l, err := net.Listen(network, addr)
	if err == nil {
		l.Close()
	}
	return err
}

// TestReadmeLayoutListsEveryPackage: the README's layout table names every
// package of the module, so a new package cannot go unexplained.
func TestReadmeLayoutListsEveryPackage(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, layout, ok := strings.Cut(string(readme), "## Layout")
	if !ok {
		t.Fatal("README has no Layout section")
	}
	layout, _, _ = strings.Cut(layout, "\n## ")
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	err = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") {
			return nil
		}
		pkg, _ := filepath.Rel(root, filepath.Dir(path))
		if pkg == "." {
			return nil
		}
		seen++
		if !strings.Contains(layout, "`"+filepath.ToSlash(pkg)+"`") {
			t.Errorf("README's layout table does not list %s", pkg)
			return filepath.SkipDir
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if seen == 0 {
		t.Fatal("no Go files found")
	}
}
