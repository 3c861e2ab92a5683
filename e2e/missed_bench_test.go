package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"
)

// BenchmarkMissedToWebhook measures the time from the end of a missed call
// (the ended_at of its record, when switchboard relays the final 487) to
// its webhook arriving at a healthy receiver, through the real binary:
// SIPp places b.N calls at 10 calls/s that ring 300 ms and are cancelled;
// email and SMS go out at the same time to their own receivers. Run with
// a fixed count, for example
//
//	go test -run '^$' -bench MissedToWebhook -benchtime 200x ./e2e/
//
// The harness helpers take a *testing.T, so this benchmark starts its
// processes itself.
func BenchmarkMissedToWebhook(b *testing.B) {
	if sippPath == "" {
		b.Skip("sipp is not installed (Debian package sip-tester)")
	}
	if buildErr != nil {
		b.Fatal(buildErr)
	}
	r := startReceivers(b, false)
	dir := b.TempDir()
	n := &node{
		opts: nodeOptions{transport: "udp", drain: 5 * time.Second, match: []string{"127.0.0.1/32"}}, dir: dir,
		cfgPath: filepath.Join(dir, "switchboard.yaml"), logPath: filepath.Join(dir, "switchboard.log"),
		sipPort: freePort(b), pbxPort: freePort(b), trunkPort: freePort(b), httpPort: freePort(b),
	}
	// Every call is news: no repeat or absence folding, and a short ring
	// counts, so each call gives one webhook.
	cfg := n.config() + r.missedConfig("  min_ring: 100ms\n  exceptions: {same_day_repeat: false, absent: false}\n")
	if err := os.WriteFile(n.cfgPath, []byte(cfg), 0o644); err != nil {
		b.Fatal(err)
	}
	logf, err := os.Create(n.logPath)
	if err != nil {
		b.Fatal(err)
	}
	defer logf.Close()
	sb := exec.Command(binPath, "run", "-c", n.cfgPath)
	sb.Dir, sb.Stdout, sb.Stderr = dir, logf, logf
	p, err := startProcess(sb)
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		p.kill()
		if b.Failed() {
			dumpFile(b, "switchboard log", n.logPath)
		}
	}()
	waitHealthyTB(b, n.httpPort, p)

	calls := b.N
	sipp := func(name string, args ...string) *process {
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(calls)*time.Second/5+time.Minute)
		b.Cleanup(cancel)
		cmd := exec.CommandContext(ctx, sippPath, append([]string{"-i", "127.0.0.1", "-t", "u1", "-m", strconv.Itoa(calls),
			"-nostdin", "-timeout", "120s", "-timeout_error"}, args...)...)
		cmd.Dir = b.TempDir()
		out, err := os.Create(filepath.Join(cmd.Dir, name+".log"))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() {
			out.Close()
			if b.Failed() {
				dumpFile(b, "sipp "+name, out.Name())
			}
		})
		cmd.Stdout, cmd.Stderr = out, out
		sp, err := startProcess(cmd)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(sp.kill)
		return sp
	}
	pbx := sipp("pbx", "-sf", filepath.Join(scenarioDir, "uas_ring_forever.xml"), "-p", strconv.Itoa(n.pbxPort))
	for !listening("udp", n.pbxPort) {
		if pbx.exited() {
			b.Fatal("sipp pbx exited before listening")
		}
		time.Sleep(5 * time.Millisecond) // polling /proc: no event to await
	}

	b.ResetTimer()
	uac := sipp("trunk", "-sf", filepath.Join(scenarioDir, "uac_cancel.xml"), "-s", hotlineNumber,
		"-d", "300", "-r", "10", "-p", strconv.Itoa(freePort(b)), n.sipAddr())
	lat := make([]time.Duration, 0, calls)
	deadline := time.After(time.Duration(calls)*time.Second/5 + time.Minute)
	for len(lat) < calls {
		select {
		case h := <-r.hooks:
			var payload struct {
				Call struct {
					EndedAt string `json:"ended_at"`
				} `json:"call"`
			}
			if err := json.Unmarshal(h.body, &payload); err != nil {
				b.Fatalf("webhook body %s: %v", h.body, err)
			}
			ended, err := time.Parse(time.RFC3339Nano, payload.Call.EndedAt)
			if err != nil {
				b.Fatalf("ended_at %q: %v", payload.Call.EndedAt, err)
			}
			lat = append(lat, h.at.Sub(ended))
		case <-deadline:
			b.Fatalf("%d of %d webhooks arrived", len(lat), calls)
		}
	}
	b.StopTimer()
	if err, _ := uac.wait(time.Minute); err != nil {
		b.Errorf("sipp trunk: %v", err)
	}
	slices.Sort(lat)
	pct := func(q float64) time.Duration { return lat[min(len(lat)-1, int(q*float64(len(lat))))] }
	b.ReportMetric(float64(pct(0.50).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(pct(0.99).Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
	b.ReportMetric(0, "ns/op") // the time per op is SIPp's call rate, not a result
}

// waitHealthyTB waits for /healthz like node.waitHealthy, for benchmarks.
func waitHealthyTB(tb testing.TB, port int, p *process) {
	tb.Helper()
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(startTimeout)
	for {
		resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", port))
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if p.exited() {
			tb.Fatalf("switchboard exited during start-up (status %d)", exitCode(p.err))
		}
		if time.Now().After(deadline) {
			tb.Fatalf("switchboard not healthy within %v", startTimeout)
		}
		time.Sleep(20 * time.Millisecond) // polling an HTTP endpoint: no event to await
	}
}
