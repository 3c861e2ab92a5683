// Package lookups fetches the data sources of SPEC §7 `lookups:` for a
// call: an HTTP GET of a URL rendered from the call, answered with a JSON
// object, cached, bounded by a timeout. The result is lookup.<name> in
// rules and .Lookup.<name> in templates (SPEC §5).
//
// Lookups fail open: a source that is slow, down or answers something
// other than a JSON object leaves its name empty and the call goes on; no
// call waits longer than the lookup's timeout, and every outcome is
// counted (switchboard_lookups_total).
package lookups

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"text/template"
	"time"

	"go.uber.org/zap"

	"github.com/switchboard-sip/switchboard/callctl"
	"github.com/switchboard-sip/switchboard/configs"
)

// Outcomes of one lookup for one call, the result label of the metric.
const (
	ResultOK      = "ok"       // fetched and decoded
	ResultCached  = "cached"   // served from the cache
	ResultTimeout = "timeout"  // no answer within the timeout
	ResultError   = "error"    // transport error or a non-2xx status
	ResultBadJSON = "bad_json" // the answer was not a JSON object
)

// Limits: an answer larger than maxBody is refused (a lookup feeds rules,
// not files); the cache holds at most maxCached answers per source.
const (
	maxBody   = 1 << 20
	maxCached = 10000
)

// Data is what a lookup's URL template sees: the call's parties and ids,
// each value already escaped for a URL query (a + in +4930… arrives as
// %2B, not as a space).
type Data struct {
	Caller, Called Party
	Call           Call
}

// Party is a call party in a lookup URL.
type Party struct{ E164, National, International, Raw, Name string }

// Call is the call in a lookup URL.
type Call struct{ ID, CallID, Direction, Trunk string }

// Counter counts an outcome of a lookup (name, result).
type Counter func(name, result string)

// source is one configured lookup, compiled.
type source struct {
	name    string
	url     *template.Template
	timeout time.Duration
	ttl     time.Duration

	mu       sync.Mutex
	cache    map[string]entry
	inflight map[string]*flight
}

type entry struct {
	val     map[string]any
	expires time.Time
}

// flight is a request in progress that calls for the same URL share.
type flight struct {
	done   chan struct{}
	val    map[string]any
	result string
}

// Fetcher runs the configured lookups of a call; it implements
// callctl.Fetcher. It is safe for concurrent use.
type Fetcher struct {
	sources []*source
	client  *http.Client
	count   Counter
	log     *zap.Logger
	now     func() time.Time
}

var _ callctl.Fetcher = (*Fetcher)(nil)

// New compiles the lookups (validated by configs) and returns a fetcher;
// nil when none is configured. count may be nil.
func New(cfg []configs.Lookup, count Counter, log *zap.Logger) (*Fetcher, error) {
	if len(cfg) == 0 {
		return nil, nil
	}
	if count == nil {
		count = func(string, string) {}
	}
	if log == nil {
		log = zap.NewNop()
	}
	f := &Fetcher{count: count, log: log, now: time.Now,
		client: &http.Client{Transport: &http.Transport{
			Proxy: http.ProxyFromEnvironment, MaxIdleConnsPerHost: 64, IdleConnTimeout: 90 * time.Second,
			ResponseHeaderTimeout: 10 * time.Second,
		}}}
	for i, l := range cfg {
		if err := Check(l.URL); err != nil {
			return nil, fmt.Errorf("lookups[%d].url: %w", i, err)
		}
		t, err := template.New(l.Name).Option("missingkey=error").Parse(l.URL)
		if err != nil {
			return nil, fmt.Errorf("lookups[%d].url: %w", i, err)
		}
		ttl := time.Duration(0)
		if l.Cache != nil {
			ttl = time.Duration(*l.Cache)
		}
		f.sources = append(f.sources, &source{name: l.Name, url: t, timeout: time.Duration(l.Timeout),
			ttl: ttl, cache: map[string]entry{}, inflight: map[string]*flight{}})
	}
	return f, nil
}

// Fetch runs every lookup of the call at once and returns each one's JSON
// object by name; a lookup that failed or timed out gives an empty object,
// so that rules can test has(lookup.crm.tier). It returns when the last
// lookup has answered or reached its timeout (or ctx ends), never later.
func (f *Fetcher) Fetch(ctx context.Context, c *callctl.Call) map[string]any {
	if f == nil {
		return map[string]any{}
	}
	out := make(map[string]any, len(f.sources))
	d := dataOf(c)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, s := range f.sources {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v := f.one(ctx, s, d)
			mu.Lock()
			out[s.name] = v
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

// one runs one lookup: from the cache, by joining a request in flight for
// the same URL, or by a request of its own; at most s.timeout either way.
func (f *Fetcher) one(ctx context.Context, s *source, d Data) map[string]any {
	var b strings.Builder
	if err := s.url.Execute(&b, d); err != nil {
		f.count(s.name, ResultError)
		f.log.Warn("lookup url failed", zap.String("lookup", s.name), zap.Error(err))
		return map[string]any{}
	}
	u := b.String()
	now := f.now()
	s.mu.Lock()
	if e, ok := s.cache[u]; ok && now.Before(e.expires) {
		s.mu.Unlock()
		f.count(s.name, ResultCached)
		return e.val
	}
	fl, joined := s.inflight[u]
	if !joined {
		fl = &flight{done: make(chan struct{})}
		s.inflight[u] = fl
	}
	s.mu.Unlock()
	if !joined {
		// The request is the source's, not this call's: it runs to its
		// own timeout even when this call's context ends first, so that
		// the calls that joined it get its answer.
		go f.request(s, u, fl)
	}
	timer := time.NewTimer(s.timeout)
	defer timer.Stop()
	select {
	case <-fl.done:
		f.count(s.name, fl.result)
		return fl.val
	case <-timer.C:
	case <-ctx.Done():
	}
	f.count(s.name, ResultTimeout)
	return map[string]any{}
}

// request fetches u for a flight and caches a good answer.
func (f *Fetcher) request(s *source, u string, fl *flight) {
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	val, result, err := f.get(ctx, u)
	if err != nil {
		f.log.Debug("lookup failed", zap.String("lookup", s.name), zap.String("result", result), zap.Error(err))
	}
	if val == nil {
		val = map[string]any{}
	}
	fl.val, fl.result = val, result
	s.mu.Lock()
	delete(s.inflight, u)
	if result == ResultOK && s.ttl > 0 {
		if len(s.cache) >= maxCached {
			s.evictLocked(f.now())
		}
		s.cache[u] = entry{val: val, expires: f.now().Add(s.ttl)}
	}
	s.mu.Unlock()
	close(fl.done)
}

// evictLocked makes room in a full cache: expired answers go, and when
// none has expired, an arbitrary tenth of them.
func (s *source) evictLocked(now time.Time) {
	for k, e := range s.cache {
		if !now.Before(e.expires) {
			delete(s.cache, k)
		}
	}
	n := len(s.cache) / 10
	for k := range s.cache {
		if len(s.cache) < maxCached || n <= 0 {
			break
		}
		delete(s.cache, k)
		n--
	}
}

func (f *Fetcher) get(ctx context.Context, u string) (map[string]any, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, ResultError, err
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "switchboard")
	res, err := f.client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, ResultTimeout, err
		}
		return nil, ResultError, err
	}
	defer res.Body.Close()
	if res.StatusCode < 200 || res.StatusCode > 299 {
		io.Copy(io.Discard, io.LimitReader(res.Body, maxBody))
		return nil, ResultError, fmt.Errorf("status %s", res.Status)
	}
	body, err := io.ReadAll(io.LimitReader(res.Body, maxBody+1))
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, ResultTimeout, err
		}
		return nil, ResultError, err
	}
	if len(body) > maxBody {
		return nil, ResultBadJSON, fmt.Errorf("answer larger than %d bytes", maxBody)
	}
	var v map[string]any
	if err := json.Unmarshal(body, &v); err != nil || v == nil {
		return nil, ResultBadJSON, fmt.Errorf("not a JSON object: %v", err)
	}
	return v, ResultOK, nil
}

func dataOf(c *callctl.Call) Data {
	q := url.QueryEscape
	party := func(p callctl.Party) Party {
		return Party{E164: q(p.E164), National: q(p.National), International: q(p.International), Raw: q(p.Raw), Name: q(p.Name)}
	}
	return Data{
		Caller: party(c.Caller), Called: party(c.Called),
		Call: Call{ID: q(c.ID), CallID: q(c.CallID), Direction: q(string(c.Direction)), Trunk: q(c.Trunk)},
	}
}

// Check executes a URL template over sample data, so that a misspelt field
// is a config error, not a failure at every call.
func Check(raw string) error {
	t, err := template.New("url").Option("missingkey=error").Parse(raw)
	if err != nil {
		return err
	}
	var b strings.Builder
	if err := t.Execute(&b, Data{Caller: Party{E164: "%2B49301234567"}, Called: Party{E164: "%2B49301234560"}}); err != nil {
		return err
	}
	u, err := url.Parse(b.String())
	if err != nil {
		return err
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("%q is not an http:// or https:// URL", raw)
	}
	return nil
}
