package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard-sip/switchboard/internal/mailtest"
	"github.com/switchboard-sip/switchboard/storage"
)

// The short fault run of SPEC §9 ("Faults"; bench/chaos.sh is the hour):
// answered and missed calls under load while switchboard is SIGKILLed and
// restarted, its SQLite file is held locked by another process for 10 s,
// and the webhook receiver refuses everything for a while. Nothing may be
// lost (a record for every call whose INVITE reached the PBX) and nothing
// sent twice (one webhook and one email per missed call).

const (
	chaosAnswerRate = 30 // answered calls a second
	chaosMissedRate = 5  // missed calls a second (each from its own number)
	chaosPhase      = 15 * time.Second
)

// hookCounter is a webhook receiver that counts deliveries per missed-call
// entry and refuses them (503) while down, and an SMTP server (started
// with startSMTP, its address reserved before) that counts emails per
// entry (from the Message-ID, "<outbox id>.<missed id>@switchboard").
type hookCounter struct {
	mu       sync.Mutex
	got      map[string]int // missed-call id → webhooks
	mails    map[string]int // missed-call id → emails
	refused  atomic.Int64
	down     atomic.Bool
	delay    atomic.Int64 // ns the receiver takes before it answers 200
	url      string
	smtpAddr string
}

func startHookCounter(t *testing.T) *hookCounter {
	t.Helper()
	h := &hookCounter{got: map[string]int{}, mails: map[string]int{}, smtpAddr: fmt.Sprintf("127.0.0.1:%d", freePort(t))}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		if h.down.Load() {
			h.refused.Add(1)
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		var p struct {
			Missed struct {
				ID string `json:"id"`
			} `json:"missed"`
		}
		if err := json.Unmarshal(b, &p); err != nil || p.Missed.ID == "" {
			t.Errorf("webhook body without missed.id: %s", b)
		}
		h.mu.Lock()
		h.got[p.Missed.ID]++
		h.mu.Unlock()
		time.Sleep(time.Duration(h.delay.Load())) // a slow receiver: the sender waits with the row claimed
	}))
	t.Cleanup(srv.Close)
	h.url = srv.URL + "/hook"
	return h
}

// startSMTP serves SMTP on the reserved address from now on.
func (h *hookCounter) startSMTP(t *testing.T) {
	t.Helper()
	ch := make(chan mailtest.Message, 1000)
	mailtest.Serve(t, h.smtpAddr, ch)
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	go func() {
		for {
			select {
			case <-stop:
				return
			case m := <-ch:
				id := mailMissedID(m.Data)
				h.mu.Lock()
				h.mails[id]++
				h.mu.Unlock()
			}
		}
	}()
}

// mailMissedID is the missed-call id in an email's Message-ID.
func mailMissedID(data []byte) string {
	for _, line := range strings.Split(string(data), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || !strings.EqualFold(strings.TrimSpace(k), "Message-ID") {
			continue
		}
		v, _, _ = strings.Cut(strings.Trim(strings.TrimSpace(v), "<>"), "@")
		return v[strings.LastIndexByte(v, '.')+1:]
	}
	return ""
}

// counts returns copies of the webhooks and emails per missed-call id.
func (h *hookCounter) counts() (hooks, mails map[string]int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	hooks, mails = make(map[string]int, len(h.got)), make(map[string]int, len(h.mails))
	for k, v := range h.got {
		hooks[k] = v
	}
	for k, v := range h.mails {
		mails[k] = v
	}
	return hooks, mails
}

// window is a stretch of time during which calls may fail (a kill).
type window struct{ from, to time.Time }

func (w window) has(at time.Time) bool { return !at.Before(w.from) && !at.After(w.to) }

// chaosLoad is one phase's SIPp runs.
type chaosLoad struct {
	pbx, answer, missed *sippRun
}

// startChaosLoad starts the PBX and the two callers for one phase; the
// missed calls come from +49305559<phase><n>, a new number each.
func startChaosLoad(t *testing.T, n *node, phase int) chaosLoad {
	t.Helper()
	secs := int(chaosPhase / time.Second)
	na, nm := chaosAnswerRate*secs, chaosMissedRate*secs
	pbx := startSIPp(t, sippSpec{name: fmt.Sprintf("pbx%d", phase), scenario: "uas_ring_or_answer.xml", port: n.pbxPort,
		calls: na + nm + 100})
	answer := startSIPp(t, sippSpec{name: fmt.Sprintf("answer%d", phase), scenario: "uac_answer.xml", remote: n.sipAddr(),
		service: hotlineNumber, pause: 300 * time.Millisecond, calls: na,
		extra: []string{"-r", strconv.Itoa(chaosAnswerRate), "-l", strconv.Itoa(na)}})
	missed := startSIPp(t, sippSpec{name: fmt.Sprintf("missed%d", phase),
		scenario: callerScenario(t, fmt.Sprintf("+49305559%d[call_number]", phase), false), remote: n.sipAddr(),
		service: hotlineNumber, pause: 200 * time.Millisecond, calls: nm,
		extra: []string{"-r", strconv.Itoa(chaosMissedRate), "-l", strconv.Itoa(nm)}})
	return chaosLoad{pbx: pbx, answer: answer, missed: missed}
}

// finish waits for the callers, gives the PBX a moment for the last BYEs,
// and stops it.
func (l chaosLoad) finish(t *testing.T) {
	t.Helper()
	l.answer.wait(t)
	l.missed.wait(t)
	if _, ok := l.pbx.proc.wait(3 * time.Second); !ok {
		l.pbx.proc.kill()
	}
}

// sentInvites are the times the UAC sent each call's first INVITE, by
// Call-ID, from SIPp's message trace (each message follows a separator
// line with its time).
func sentInvites(t *testing.T, r *sippRun) map[string]time.Time {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(r.dir, "messages.log"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]time.Time{}
	var at time.Time
	lines := strings.Split(string(b), "\n")
	for i, line := range lines {
		if rest, ok := strings.CutPrefix(line, "----------------------------------------------- "); ok {
			at, _ = time.ParseInLocation("2006-01-02 15:04:05.999999", strings.TrimSpace(rest), time.Local)
			continue
		}
		if !strings.HasPrefix(strings.TrimSpace(line), "INVITE ") || i == 0 || !strings.Contains(lines[max(i-2, 0)], "message sent") {
			continue
		}
		for _, h := range lines[i:min(i+20, len(lines))] {
			if v, ok := strings.CutPrefix(h, "Call-ID: "); ok {
				id := strings.TrimSpace(v)
				if _, seen := out[id]; !seen {
					out[id] = at
				}
				break
			}
		}
	}
	return out
}

// callsDone are the Call-IDs whose scenario ran to its end on the
// caller's side: the BYE's 200 for an answered call, the 487 for a missed
// one.
func callsDone(t *testing.T, r *sippRun, missed bool) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	if !missed {
		for _, id := range completed(t, r) {
			out[id] = true
		}
		return out
	}
	for _, m := range r.received(t, "SIP/2.0 487") {
		if ids := m.header("Call-ID"); len(ids) == 1 {
			out[ids[0]] = true
		}
	}
	return out
}

// forwarded are the Call-IDs of the INVITEs the PBX received.
func forwarded(t *testing.T, pbx *sippRun) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, m := range pbx.received(t, "INVITE ") {
		if ids := m.header("Call-ID"); len(ids) == 1 {
			out[ids[0]] = true
		}
	}
	return out
}

// TestChaos is the short fault run. Phase 1 SIGKILLs and restarts
// switchboard under load while the webhook receiver refuses (503) and
// nothing listens on the SMTP address. Phase 2 holds the database locked
// for 10 s (BEGIN EXCLUSIVE from another connection) under load: /healthz
// says degraded with the reason and ok after, and the calls placed during
// the lock complete. Then: a record for every call whose INVITE was
// forwarded, ≥ 99.9 % of the calls sent outside the kill window completed,
// and exactly one webhook and one email per notified missed call.
func TestChaos(t *testing.T) {
	hooks := startHookCounter(t)
	n := newChaosNode(t, hooks, nodeOptions{})

	var kills []window
	var loads []chaosLoad

	// Phase 1: SIGKILL and restart at once, webhook and SMTP down.
	hooks.down.Store(true)
	l := startChaosLoad(t, n, 1)
	loads = append(loads, l)
	time.Sleep(chaosPhase / 3) // load runs; the fault comes at a fixed point
	w := window{from: time.Now().Add(-time.Second)}
	n.kill()
	n.start()
	w.to = time.Now().Add(time.Second)
	kills = append(kills, w)
	t.Logf("killed and restarted in %v", w.to.Sub(w.from)-2*time.Second)
	l.finish(t)
	hooks.down.Store(false)
	hooks.startSMTP(t)
	if hooks.refused.Load() == 0 {
		t.Error("no webhook was refused while the receiver was down: no missed call was notified in phase 1")
	}

	// Phase 2: the database locked 10 s by another connection.
	l = startChaosLoad(t, n, 2)
	loads = append(loads, l)
	time.Sleep(2 * time.Second)
	lock := window{from: time.Now()}
	chaosLock(t, n, 10*time.Second)
	lock.to = time.Now()
	l.finish(t)
	sent, done := 0, 0
	for i, r := range []*sippRun{l.answer, l.missed} {
		ok := callsDone(t, r, i == 1)
		for id, at := range sentInvites(t, r) {
			if lock.has(at) {
				sent++
				if ok[id] {
					done++
				}
			}
		}
	}
	t.Logf("calls placed during the lock: %d, completed %d", sent, done)
	if sent == 0 || done != sent {
		t.Errorf("%d of %d calls placed during the lock completed, want all (SIP does not wait for the database)", done, sent)
	}

	checkChaos(t, n, hooks, loads, kills)
}

// newChaosNode starts a node with a hotline and a webhook for missed
// calls (min_ring 0: the load's missed calls ring 200 ms).
func newChaosNode(t *testing.T, hooks *hookCounter, opts nodeOptions) *node {
	t.Helper()
	n := prepareNode(t, opts)
	cfg := n.config() + fmt.Sprintf(`hotlines:
  - name: acme
    numbers: ["%s"]
    company: ACME GmbH
missed:
  min_ring: 0s
  webhook: {url: "%s", secret: %q}
  email: {smtp: "smtp://%s", from: switchboard@example.com, to: [desk@example.com]}
`, hotlineNumber, hooks.url, hookSecret, hooks.smtpAddr)
	cfg = strings.Replace(cfg, "level: debug", "level: info", 1)
	n.launch(cfg, nil)
	return n
}

// checkChaos checks what no fault may change: a record for every INVITE
// the PBX received, ≥ 99.9 % of the calls sent outside the kill windows
// completed, and one webhook per notified missed call.
func checkChaos(t *testing.T, n *node, hooks *hookCounter, loads []chaosLoad, kills []window) {
	t.Helper()
	// Nothing lost: every forwarded INVITE has a record.
	all := map[string]bool{}
	for _, l := range loads {
		for id := range forwarded(t, l.pbx) {
			all[id] = true
		}
	}
	recs := waitChaosRecords(t, n, all, 30*time.Second)
	t.Logf("%d calls forwarded to the PBX, %d records in the database", len(all), len(recs))

	// Calls complete outside the kill windows.
	offered, ok, outside, outsideOK := 0, 0, 0, 0
	for _, l := range loads {
		for i, r := range []*sippRun{l.answer, l.missed} {
			done := callsDone(t, r, i == 1)
			for id, at := range sentInvites(t, r) {
				offered++
				in := false
				for _, k := range kills {
					in = in || k.has(at)
				}
				if done[id] {
					ok++
				}
				if !in {
					outside++
					if done[id] {
						outsideOK++
					}
				}
			}
		}
	}
	t.Logf("calls offered %d, completed %d; outside the kill window %d of %d (%.2f %%)",
		offered, ok, outsideOK, outside, 100*float64(outsideOK)/float64(max(outside, 1)))
	if outside == 0 || outsideOK*1000 < outside*999 {
		t.Errorf("%d of %d calls sent outside the kill window completed, want ≥ 99.9 %%", outsideOK, outside)
	}

	// Exactly once: every notified entry's webhook arrives, none twice.
	waitChaosHooks(t, n, hooks, 60*time.Second)
}

// chaosLock holds the node's SQLite file with BEGIN EXCLUSIVE for d and
// checks /healthz: degraded naming the call records during the lock, ok
// again after it.
func chaosLock(t *testing.T, n *node, d time.Duration) {
	t.Helper()
	release := holdExclusive(t, chaosDBPath(n))
	degraded := sampleHealth(t, n, d)
	release()
	checkDegraded(t, n, "the lock", degraded, "call records")
}

// sampleHealth polls /healthz for d while a fault lasts: it must stay 200
// (alive); it returns the first reasons given with "degraded".
func sampleHealth(t *testing.T, n *node, d time.Duration) string {
	t.Helper()
	end := time.Now().Add(d)
	degraded := ""
	for time.Now().Before(end) {
		h := n.health(t, "/healthz")
		if h.code != http.StatusOK {
			t.Errorf("/healthz during a fault = %d, want 200 (alive)", h.code)
		}
		if h.Status == "degraded" && degraded == "" {
			degraded = strings.Join(h.Reasons, "; ")
		}
		time.Sleep(200 * time.Millisecond) // sampling the health during the fault
	}
	return degraded
}

// checkDegraded checks that /healthz said degraded with a reason naming
// want during the fault, and waits for it to say ok after.
func checkDegraded(t *testing.T, n *node, fault, degraded, want string) {
	t.Helper()
	t.Logf("/healthz during %s: degraded (%s)", fault, degraded)
	if !strings.Contains(degraded, want) {
		t.Errorf("/healthz during %s: reasons %q, want degraded naming %q", fault, degraded, want)
	}
	deadline := time.Now().Add(20 * time.Second)
	for h := n.health(t, "/healthz"); h.Status != "ok"; h = n.health(t, "/healthz") {
		if time.Now().After(deadline) {
			t.Fatalf("/healthz after %s = %+v, want ok again", fault, h)
		}
		time.Sleep(100 * time.Millisecond) // the writer retries with a back-off: poll
	}
}

// chaosDB opens the node's SQLite file for reading.
func chaosDB(t *testing.T, n *node) *storage.DB {
	t.Helper()
	db, err := storage.Open(storage.SQLite, chaosDBPath(n))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// waitChaosRecords waits until every Call-ID in want has a row in calls.
func waitChaosRecords(t *testing.T, n *node, want map[string]bool, within time.Duration) map[string]bool {
	t.Helper()
	db := chaosDB(t, n)
	deadline := time.Now().Add(within)
	for {
		have := map[string]bool{}
		rows, err := db.Query(`SELECT call_id FROM calls`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				t.Fatal(err)
			}
			have[id] = true
		}
		rows.Close()
		var missing []string
		for id := range want {
			if !have[id] {
				missing = append(missing, id)
			}
		}
		if len(missing) == 0 {
			return have
		}
		if time.Now().After(deadline) {
			sort.Strings(missing)
			t.Fatalf("%d of %d forwarded calls have no record after %v: %v", len(missing), len(want), within, missing)
		}
		time.Sleep(200 * time.Millisecond) // the writer catches up: poll
	}
}

// waitChaosHooks waits until every missed-call entry that is notified
// (no exception) got its webhook, and checks that none got two.
func waitChaosHooks(t *testing.T, n *node, hooks *hookCounter, within time.Duration) {
	t.Helper()
	db := chaosDB(t, n)
	deadline := time.Now().Add(within)
	for {
		var ids []string
		rows, err := db.Query(`SELECT id FROM missed_calls WHERE exception = ''`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
		rows.Close()
		got, mails := hooks.counts()
		waiting := 0
		for _, id := range ids {
			if got[id] == 0 || mails[id] == 0 {
				waiting++
			}
		}
		if waiting == 0 || time.Now().After(deadline) {
			for what, m := range map[string]map[string]int{"webhook": got, "email": mails} {
				sent, dup, missing := 0, 0, 0
				for _, c := range m {
					sent += c
					if c > 1 {
						dup++
					}
				}
				for _, id := range ids {
					if m[id] == 0 {
						missing++
					}
				}
				t.Logf("missed calls to notify %d: %d × %s delivered, %d duplicated, %d never", len(ids), sent, what, dup, missing)
				if dup > 0 {
					t.Errorf("%d missed calls got their %s more than once", dup, what)
				}
				if missing > 0 {
					t.Errorf("%d of %d missed calls without their %s after %v", missing, len(ids), what, within)
				}
			}
			t.Logf("webhooks refused while the receiver was down: %d", hooks.refused.Load())
			if len(ids) == 0 {
				t.Error("no missed call to notify: the notification checks prove nothing")
			}
			return
		}
		time.Sleep(500 * time.Millisecond) // the outbox retries with a back-off: poll
	}
}

// chaosDBPath is the node's SQLite file: in its folder unless the test
// put it elsewhere (a tmpfs).
func chaosDBPath(n *node) string {
	if dsn, ok := strings.CutPrefix(strings.TrimSpace(n.opts.storage), "dsn: "); ok {
		return dsn
	}
	return filepath.Join(n.dir, "sb.db")
}

// TestChaosDiskFull fills the file system of the node's database (a small
// tmpfs) for 10 s under load: /healthz says degraded naming the call
// records and ok after, calls keep routing, and nothing is lost or sent
// twice. Mounting needs root (CI runs as root).
func TestChaosDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a tmpfs for the database (the disk to fill)")
	}
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=64m"); err != nil {
		t.Skipf("cannot mount a tmpfs: %v", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(dir, syscall.MNT_DETACH) })
	hooks := startHookCounter(t)
	hooks.startSMTP(t)
	n := newChaosNode(t, hooks, nodeOptions{storage: "  dsn: " + filepath.Join(dir, "sb.db") + "\n"})

	l := startChaosLoad(t, n, 3)
	time.Sleep(2 * time.Second)
	fill := filepath.Join(dir, "fill")
	fillDisk(t, fill)
	degraded := sampleHealth(t, n, 10*time.Second)
	if err := os.Remove(fill); err != nil {
		t.Fatal(err)
	}
	checkDegraded(t, n, "the full disk", degraded, "call records")
	l.finish(t)
	checkChaos(t, n, hooks, []chaosLoad{l}, nil)
}

// fillDisk writes zeros to path until the file system is full.
func fillDisk(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling the disk: %v", err)
			}
			return
		}
	}
}
