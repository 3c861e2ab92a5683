package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

var (
	// binPath is the switchboard binary built by TestMain.
	binPath string
	// buildErr is why the binary could not be built; every test fails with it.
	buildErr error
	// sippPath is the sipp executable, empty when it is not installed.
	sippPath string
	// scenarioDir is the absolute path of the repository's sipp/ folder.
	scenarioDir string
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "switchboard-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)

	scenarioDir, err = filepath.Abs(filepath.Join("..", "sipp"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	if p, err := exec.LookPath("sipp"); err == nil {
		sippPath = p
	}
	if sippPath != "" || os.Getenv("CI") != "" {
		binPath = filepath.Join(dir, "switchboard")
		buildErr = build(binPath)
	}
	return m.Run()
}

// build compiles ./cmd/switchboard once for all tests, bounded in time.
func build(out string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	args := []string{"build", "-o", out}
	if dir := os.Getenv("SWITCHBOARD_COVERDIR"); dir != "" {
		// make cover: the binary counts its coverage of every package
		// into GOCOVERDIR, which every switchboard the tests start
		// inherits from this process.
		args = append(args, "-cover", "-coverpkg=github.com/switchboard-sip/switchboard/...")
		if err := os.Setenv("GOCOVERDIR", dir); err != nil {
			return err
		}
	}
	cmd := exec.CommandContext(ctx, "go", append(args, "../cmd/switchboard")...)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ../cmd/switchboard: %v\n%s", err, b)
	}
	return nil
}

// requirements skips the test when sipp is missing (fails under CI) and
// fails it when the binary did not build.
func requirements(t *testing.T) {
	t.Helper()
	if sippPath == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("sipp is not installed (Debian package sip-tester) and CI is set")
		}
		t.Skip("sipp is not installed (Debian package sip-tester); set CI=1 to make this a failure")
	}
	if testing.Short() {
		t.Skip("end-to-end test skipped in -short mode")
	}
	if buildErr != nil {
		t.Fatal(buildErr)
	}
}
