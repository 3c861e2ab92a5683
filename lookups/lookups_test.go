package lookups

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/switchboard-sip/switchboard/callctl"
	"github.com/switchboard-sip/switchboard/configs"
)

// counts records the outcomes a fetcher reports.
type counts struct {
	mu sync.Mutex
	m  map[string]int
}

func (c *counts) add(name, result string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]int{}
	}
	c.m[name+"/"+result]++
}

func (c *counts) get(k string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[k]
}

func dur(d time.Duration) *configs.Duration { v := configs.Duration(d); return &v }

// A real HTTP server started by the test answers well, slowly, with an
// error and with bad JSON; each lookup's outcome is checked, and no Fetch
// takes longer than the timeout.
func TestFetch(t *testing.T) {
	release := make(chan struct{})
	var hits sync.Map // path → *atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := hits.LoadOrStore(r.URL.Path, new(atomic.Int64))
		n.(*atomic.Int64).Add(1)
		switch r.URL.Path {
		case "/good":
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"tier": "gold", "number": %q, "visits": 3}`, r.URL.Query().Get("number"))
		case "/slow":
			select {
			case <-release:
			case <-r.Context().Done():
			}
			fmt.Fprint(w, `{"late": true}`)
		case "/fail":
			http.Error(w, "down", http.StatusServiceUnavailable)
		case "/bad":
			fmt.Fprint(w, `{"tier": "gold"`)
		case "/array":
			fmt.Fprint(w, `["gold"]`)
		}
	}))
	defer srv.Close()
	defer close(release)
	timeout := 150 * time.Millisecond
	cfg := []configs.Lookup{
		{Name: "crm", URL: srv.URL + "/good?number={{.Caller.E164}}", Timeout: configs.Duration(timeout), Cache: dur(time.Minute)},
		{Name: "slow", URL: srv.URL + "/slow", Timeout: configs.Duration(timeout), Cache: dur(time.Minute)},
		{Name: "fail", URL: srv.URL + "/fail", Timeout: configs.Duration(timeout), Cache: dur(time.Minute)},
		{Name: "bad", URL: srv.URL + "/bad", Timeout: configs.Duration(timeout), Cache: dur(time.Minute)},
		{Name: "array", URL: srv.URL + "/array", Timeout: configs.Duration(timeout), Cache: dur(0)},
	}
	var c counts
	f, err := New(cfg, c.add, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	call := &callctl.Call{Caller: callctl.Party{E164: "+4930123456"}}
	for round := range 2 {
		start := time.Now()
		got := f.Fetch(context.Background(), call)
		took := time.Since(start)
		if took > timeout+100*time.Millisecond {
			t.Errorf("round %d: Fetch took %v, the timeout is %v", round, took, timeout)
		}
		crm, _ := got["crm"].(map[string]any)
		if crm["tier"] != "gold" || crm["number"] != "+4930123456" || crm["visits"] != 3.0 {
			t.Errorf("round %d: crm = %v (the + must reach the server escaped)", round, got["crm"])
		}
		for _, name := range []string{"slow", "fail", "bad", "array"} {
			if m, ok := got[name].(map[string]any); !ok || len(m) != 0 {
				t.Errorf("round %d: %s = %#v, want an empty object", round, name, got[name])
			}
		}
	}
	for k, want := range map[string]int{"crm/ok": 1, "crm/cached": 1, "slow/timeout": 2, "fail/error": 2, "bad/bad_json": 2, "array/bad_json": 2} {
		if got := c.get(k); got != want {
			t.Errorf("%s counted %d times, want %d (%v)", k, got, want, c.m)
		}
	}
	if n, _ := hits.Load("/good"); n.(*atomic.Int64).Load() != 1 {
		t.Errorf("the good source was asked %d times, want 1 (cached)", n.(*atomic.Int64).Load())
	}
}

// Under load the calls for one URL share one request, and every call is
// answered within the timeout of a source that never answers.
func TestFetchUnderLoad(t *testing.T) {
	var hits atomic.Int64
	stop := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		select {
		case <-stop:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(stop)
	timeout := 100 * time.Millisecond
	var c counts
	f, err := New([]configs.Lookup{{Name: "crm", URL: srv.URL + "/?n={{.Caller.E164}}", Timeout: configs.Duration(timeout), Cache: dur(time.Minute)}}, c.add, nil)
	if err != nil {
		t.Fatal(err)
	}
	const calls = 200
	var wg sync.WaitGroup
	var slowest atomic.Int64
	for i := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			got := f.Fetch(context.Background(), &callctl.Call{Caller: callctl.Party{E164: fmt.Sprint("+49301", i%4)}})
			if d := int64(time.Since(start)); d > slowest.Load() {
				slowest.Store(d)
			}
			if m := got["crm"].(map[string]any); len(m) != 0 {
				t.Errorf("got %v", m)
			}
		}()
	}
	wg.Wait()
	if d := time.Duration(slowest.Load()); d > timeout+250*time.Millisecond {
		t.Errorf("slowest call waited %v, the timeout is %v", d, timeout)
	}
	if n := hits.Load(); n > 4*3 {
		t.Errorf("%d requests for 4 numbers: calls in flight for one URL must share a request", n)
	}
	if c.get("crm/timeout") != calls {
		t.Errorf("timeouts counted %d, want %d", c.get("crm/timeout"), calls)
	}
}

func TestNewRejectsBadTemplates(t *testing.T) {
	for _, u := range []string{"http://x/{{.Caller.Nope}}", "http://x/{{", "ftp://x/", "{{.Caller.E164}}"} {
		if _, err := New([]configs.Lookup{{Name: "x", URL: u, Timeout: configs.Duration(time.Second)}}, nil, nil); err == nil {
			t.Errorf("%q accepted", u)
		}
	}
}
