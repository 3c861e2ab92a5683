package main

import (
	"bufio"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// The demo runs end to end: switchboard, the simulated PBX and trunk, and
// the board on HTTP; it stops by itself with --duration.
func TestDemoRunsBriefly(t *testing.T) {
	if testing.Short() {
		t.Skip("demo skipped in -short mode")
	}
	pr, pw := io.Pipe()
	var stderr strings.Builder
	code := make(chan int, 1)
	go func() {
		code <- demoCommand([]string{"--duration", "5s", "--pace", "250ms", "--speed", "8", "--http", "127.0.0.1:0"}, pw, &stderr)
		pw.Close()
	}()
	var (
		out     strings.Builder
		mu      sync.Mutex
		checked bool
	)
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		line := sc.Text()
		mu.Lock()
		out.WriteString(line + "\n")
		mu.Unlock()
		if url, ok := strings.CutPrefix(strings.TrimSpace(line), "Board:"); ok && !checked {
			checked = true
			resp, err := http.Get(strings.TrimSpace(url))
			if err != nil {
				t.Errorf("GET board: %v", err)
				continue
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !strings.Contains(string(b), "board.js") {
				t.Errorf("GET board: %s %.200s", resp.Status, b)
			}
		}
	}
	if c := <-code; c != 0 {
		t.Fatalf("demo exit %d\nstdout:\n%s\nstderr:\n%s", c, out.String(), stderr.String())
	}
	text := out.String()
	if !checked {
		t.Errorf("no board URL printed:\n%s", text)
	}
	for _, want := range []string{"answered", "missed", "busy", "blocked", "ACME GmbH", "Globex Corporation", "text delivered (200)", "Stopped."} {
		if !strings.Contains(text, want) {
			t.Errorf("summary lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, " failed:") {
		t.Errorf("a demo call failed:\n%s", text)
	}
}
