package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-sip/switchboard/storage"
)

// health is the body of /healthz and its status code.
type health struct {
	code    int
	Status  string   `json:"status"`
	Reasons []string `json:"reasons"`
}

func (n *node) health(t *testing.T, path string) health {
	t.Helper()
	client := &http.Client{Timeout: 3 * time.Second}
	resp, err := client.Get("http://127.0.0.1:" + strconv.Itoa(n.httpPort) + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	h := health{code: resp.StatusCode}
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return h
}

// TestHealthWhileDatabaseLocked: with the SQLite file held by another
// connection (BEGIN EXCLUSIVE), /healthz stays 200 (liveness: the node
// routes calls) but says degraded with a reason; a call placed meanwhile
// completes, and its record is written once the lock is gone; /readyz
// stays 200 (SPEC §8, §11).
func TestHealthWhileDatabaseLocked(t *testing.T) {
	t.Parallel()
	n := newNode(t, nodeOptions{})
	if h := n.health(t, "/healthz"); h.code != 200 || h.Status != "ok" {
		t.Fatalf("/healthz before the lock = %d %+v, want 200 ok", h.code, h)
	}
	release := holdExclusive(t, filepath.Join(n.dir, "sb.db"))
	defer release()

	pbx := n.pbx(t, "uas_answer.xml", 0)
	call := n.trunkCall(t, "uac_answer.xml", 300*time.Millisecond)
	call.succeed(t)
	pbx.succeed(t)

	var h health
	deadline := time.Now().Add(15 * time.Second)
	for h = n.health(t, "/healthz"); h.Status != "degraded"; h = n.health(t, "/healthz") {
		if h.code != 200 || time.Now().After(deadline) {
			t.Fatalf("/healthz while locked = %d %+v, want 200 degraded", h.code, h)
		}
		time.Sleep(100 * time.Millisecond) // the writer holds its pass: poll
	}
	if len(h.Reasons) == 0 || !strings.Contains(strings.Join(h.Reasons, " "), "call records") {
		t.Errorf("/healthz reasons %q, want one naming the call records", h.Reasons)
	}
	t.Logf("/healthz while locked: %d %s %q", h.code, h.Status, h.Reasons)
	if r := n.health(t, "/readyz"); r.code != 200 {
		t.Errorf("/readyz while degraded = %d, want 200 (the node takes calls)", r.code)
	}
	release()
	waitStoredCall(t, n, call.callID)
	deadline = time.Now().Add(15 * time.Second)
	for h = n.health(t, "/healthz"); h.Status != "ok"; h = n.health(t, "/healthz") {
		if time.Now().After(deadline) {
			t.Fatalf("/healthz after the lock = %d %+v, want ok again", h.code, h)
		}
		time.Sleep(100 * time.Millisecond) // the writer retries with a backoff: poll
	}
}

// waitStoredCall waits until the SQLite file itself holds the call's
// ended record.
func waitStoredCall(t *testing.T, n *node, callID string) {
	t.Helper()
	db, err := storage.Open(storage.SQLite, filepath.Join(n.dir, "sb.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var disp string
		err := db.QueryRow(`SELECT disposition FROM calls WHERE call_id = ? AND ended_at IS NOT NULL`, callID).Scan(&disp)
		if err == nil {
			if disp != "answered" {
				t.Errorf("stored disposition %q, want answered", disp)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the record of %s was not written after the lock: %v", callID, err)
		}
		time.Sleep(100 * time.Millisecond) // the writer retries with a backoff: poll
	}
}

// holdExclusive holds the SQLite file at path with BEGIN EXCLUSIVE, as
// another process's writer would, until the returned release (which may be
// called more than once).
func holdExclusive(t *testing.T, path string) (release func()) {
	t.Helper()
	db, err := storage.Open(storage.SQLite, path)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := db.Conn(context.Background())
	if err != nil {
		db.Close()
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(context.Background(), `BEGIN EXCLUSIVE`); err != nil {
		conn.Close()
		db.Close()
		t.Fatal(err)
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			if _, err := conn.ExecContext(context.Background(), `COMMIT`); err != nil {
				t.Error(err)
			}
			conn.Close()
			db.Close()
		})
	}
}
