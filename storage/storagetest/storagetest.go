// Package storagetest runs a package's storage tests on both drivers: first
// every test on SQLite, then again on a real PostgreSQL (internal/pgtest)
// the tests that opened a database. Tests open their databases through Open
// or Target and so never name a driver.
package storagetest

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-sip/switchboard/internal/pgtest"
	"github.com/switchboard-sip/switchboard/storage"
)

var (
	mu      sync.Mutex
	driver  = storage.SQLite
	opened  = map[string]bool{} // top-level tests and benchmarks that opened a database
	targets = map[string]string{}
)

// Main is the package's TestMain body: os.Exit(storagetest.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	defer pgtest.StopShared()
	tests, benches := rerun()
	if tests == "" && benches == "" {
		return code
	}
	if _, err := pgtest.Shared(); err != nil {
		if pgtest.Required() {
			fmt.Fprintf(os.Stderr, "storagetest: %v (CI is set: PostgreSQL is required)\n", err)
			return 1
		}
		fmt.Fprintf(os.Stderr, "storagetest: skipping the PostgreSQL pass: %v\n", err)
		return code
	}
	fmt.Printf("storagetest: running %s again on PostgreSQL\n", strings.TrimSuffix(tests+" "+benches, " "))
	mu.Lock()
	driver = storage.Postgres
	mu.Unlock()
	if run := flag.Lookup("test.run").Value.String(); !strings.Contains(run, "/") {
		flag.Set("test.run", tests)
	}
	flag.Set("test.bench", benches)
	return max(code, m.Run())
}

// rerun returns -run and -bench patterns matching the tests and benchmarks
// that opened a database.
func rerun() (tests, benches string) {
	mu.Lock()
	defer mu.Unlock()
	var ts, bs []string
	for name := range opened {
		if strings.HasPrefix(name, "Benchmark") {
			bs = append(bs, regexp.QuoteMeta(name))
		} else {
			ts = append(ts, regexp.QuoteMeta(name))
		}
	}
	sort.Strings(ts)
	sort.Strings(bs)
	pattern := func(names []string) string {
		if len(names) == 0 {
			return "^$"
		}
		return "^(" + strings.Join(names, "|") + ")$"
	}
	if len(ts) == 0 && len(bs) == 0 {
		return "", ""
	}
	return pattern(ts), pattern(bs)
}

// Pass marks the test as one to run on both drivers, for a test that sets
// up its database by itself, and returns the driver of the current pass.
func Pass(t testing.TB) string {
	mu.Lock()
	defer mu.Unlock()
	top, _, _ := strings.Cut(t.Name(), "/")
	opened[top] = true
	return driver
}

// Target returns the driver and DSN of the test's database called name,
// creating an empty one on first use: the same name within one test is the
// same database (to reopen it, as a restart would), another name or test
// another database.
func Target(t testing.TB, name string) (string, string) {
	t.Helper()
	mu.Lock()
	drv := driver
	top, _, _ := strings.Cut(t.Name(), "/")
	opened[top] = true
	key := t.Name() + "\x00" + name
	dsn, ok := targets[key]
	mu.Unlock()
	if ok {
		return drv, dsn
	}
	switch drv {
	case storage.SQLite:
		dsn = filepath.Join(t.TempDir(), name+".db")
	default:
		srv, err := pgtest.Shared()
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if dsn, err = srv.NewDatabase(ctx); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("storage: %s %s", drv, dsn)
	mu.Lock()
	targets[key] = dsn
	mu.Unlock()
	t.Cleanup(func() {
		mu.Lock()
		delete(targets, key)
		mu.Unlock()
	})
	return drv, dsn
}

// Open opens the test's database called name (see Target), closed when the
// test ends.
func Open(t testing.TB, name string) *storage.DB {
	t.Helper()
	db, err := storage.Open(Target(t, name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
