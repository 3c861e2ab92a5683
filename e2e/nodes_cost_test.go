package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestNodesCost measures calls per second and CPU per call through the
// balancer with two nodes and with one node on PostgreSQL, against one
// node on SQLite without a balancer, in one run at one rate. On a machine
// of two cores the figures show what the balancer and the database cost,
// not how nodes scale. It runs only with SWITCHBOARD_BENCH=1:
//
//	SWITCHBOARD_BENCH=1 go test -count=1 -v -run TestNodesCost ./e2e
func TestNodesCost(t *testing.T) {
	if os.Getenv("SWITCHBOARD_BENCH") != "1" {
		t.Skip("a measurement: set SWITCHBOARD_BENCH=1")
	}
	const rate, secs = 100, 10
	const calls = rate * secs
	run := func(t *testing.T, name, remote string, pbxPort int, pids func() []int) {
		pbx := startSIPp(t, sippSpec{name: name + "-pbx", scenario: "uas_answer.xml", port: pbxPort, calls: calls})
		cpu0 := treeCPU(t, pids())
		start := time.Now()
		r := startSIPp(t, sippSpec{name: name, scenario: "uac_answer.xml", remote: remote, service: hotlineNumber,
			pause: 200 * time.Millisecond, calls: calls, extra: []string{"-r", strconv.Itoa(rate), "-l", strconv.Itoa(rate)}})
		r.wait(t)
		took := time.Since(start)
		cpu := treeCPU(t, pids()) - cpu0
		done := len(completed(t, r))
		pbx.proc.kill()
		t.Logf("%-34s %4d of %d calls in %5.1f s (%5.1f calls/s), CPU %6v, %5.0f µs per call",
			name, done, calls, took.Seconds(), float64(done)/took.Seconds(), cpu.Round(10*time.Millisecond),
			float64(cpu.Microseconds())/float64(max(done, 1)))
	}

	// One node on SQLite, no balancer.
	// Its log at info, as the deploy/nodes configs have it (the harness
	// logs debug, a cost of its own).
	solo := prepareNode(t, nodeOptions{name: "solo"})
	solo.launch(strings.Replace(solo.config(), "level: debug", "level: info", 1), nil)
	run(t, "one node, SQLite", solo.sipAddr(), solo.pbxPort, func() []int { return []int{solo.current().cmd.Process.Pid} })

	// Two nodes on PostgreSQL behind Kamailio; the cluster's own PBX is
	// stopped so that each run brings its own.
	c := startCluster(t)
	c.pbx.proc.kill()
	c.pbx.wait(t)
	lb := fmt.Sprintf("127.0.0.1:%d", c.lbPort)
	all := func() []int {
		pids := []int{c.kam.cmd.Process.Pid}
		for _, n := range []*node{c.a, c.b} {
			if p := n.current(); p != nil && !p.exited() {
				pids = append(pids, p.cmd.Process.Pid)
			}
		}
		return pids
	}
	run(t, "two nodes, PostgreSQL, Kamailio", lb, c.pbx.spec.port, all)
	// One node behind the balancer: b stops, the probes take it out.
	c.b.signal(9)
	c.b.waitExit(5 * time.Second)
	time.Sleep(3 * time.Second) // PING_INTERVAL 1 s: the balancer marks b down
	run(t, "one node, PostgreSQL, Kamailio", lb, c.pbx.spec.port, all)
	t.Log("CPU counts switchboard and Kamailio (all its processes), not PostgreSQL or SIPp")
}

// treeCPU is the CPU time so far of the processes and all their children
// (Kamailio forks its workers).
func treeCPU(t *testing.T, pids []int) time.Duration {
	t.Helper()
	want := map[int]bool{}
	for _, p := range pids {
		want[p] = true
	}
	entries, _ := filepath.Glob("/proc/[0-9]*/stat")
	var total time.Duration
	for _, e := range entries {
		b, err := os.ReadFile(e)
		if err != nil {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		pid, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(filepath.Dir(e), "/proc/"), "/"))
		ppid, _ := strconv.Atoi(f[1])
		if !want[pid] && !want[ppid] {
			continue
		}
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		total += time.Duration(ut+st) * 10 * time.Millisecond
	}
	return total
}
