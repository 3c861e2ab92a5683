package e2e

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// recordingStore is a PBX's recording store: it notes each DELETE with
// the Authorization it came with.
type recordingStore struct {
	mu      sync.Mutex
	deletes []string // "path auth"
}

func (s *recordingStore) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodDelete {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	s.mu.Lock()
	s.deletes = append(s.deletes, r.URL.Path+" "+r.Header.Get("Authorization"))
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (s *recordingStore) seen() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.deletes...)
}

// TestContactPageInBrowser drives the contact page (SPEC §8) in real
// Chromium while SIPp places calls through switchboard: the search box
// finds the caller by a national number; the timeline shows the call with
// its recording (Listen is an <audio> at recordings.base_url) and a
// wrap-up with resolved, which the charts count; a new name shows on the
// next call's row; an unreadable number is refused with the reason;
// Delete asks the PBX's recording store with the configured token and
// clears the reference; Block refuses the next call. A screenshot of the
// page goes to docs/ with SWITCHBOARD_UPDATE_DOCS=1.
func TestContactPageInBrowser(t *testing.T) {
	exe := chromiumPath(t)
	store := &recordingStore{}
	recSrv := httptest.NewServer(store)
	defer recSrv.Close()
	n := boardNode(t, func(n *node) {
		f, err := os.OpenFile(n.cfgPath, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(f, "recordings:\n  base_url: %s/recordings/\n  delete_url: \"%s/recordings/{{.Recording}}\"\n  delete_token: rec-secret\n",
			recSrv.URL, recSrv.URL)
		f.Close()
	})
	ctx := browser(t, exe)
	signIn(t, ctx, n)

	// A call the PBX answers with a recording reference (rec-1).
	pbx := n.pbx(t, "uas_answer.xml", 0)
	call := n.trunkCall(t, "uac_answer.xml", 300*time.Millisecond)
	call.succeed(t)
	pbx.succeed(t)
	step(t, ctx, "see the call in recent calls", chromedp.WaitVisible(chromedp.CSS(`#recent li[data-disposition="answered"]`)))
	auth := map[string]string{"Authorization": "Bearer " + boardToken}
	var list struct{ Items []wrapRecordWithRecording }
	n.api(t, "GET", "/api/calls?limit=1", "", auth, &list)
	if len(list.Items) != 1 {
		t.Fatalf("calls: %+v", list)
	}
	rec := list.Items[0]
	if href := value(t, ctx, "read the row's contact link", chromedp.AttributeValue(chromedp.CSS(`#recent li a.who`), "href")); href.Value != "/board/contacts/1" {
		t.Errorf("the call row links to %q, want the contact page", href.Value)
	}

	// Search by the number in national format.
	step(t, ctx, "search by a national number",
		chromedp.SendKeys(chromedp.CSS(`#search-q`), "030 111222"),
		chromedp.WaitVisible(chromedp.CSS(`#search-results a`)),
		chromedp.KeyEvent(kb.Enter),
		chromedp.WaitVisible(chromedp.CSS(`#contact`)),
		chromedp.WaitVisible(chromedp.CSS(`#timeline li.kind-call`)))
	waitJS(t, ctx, "see the contact's name", `document.getElementById("contact-name-big").textContent === "Jane Doe"`)
	if path := value(t, ctx, "read the address", chromedp.Evaluate[string](`location.pathname`)); path != "/board/contacts/1" {
		t.Errorf("the search led to %q", path)
	}

	// The recording: Stored, with an <audio> at the configured base URL.
	row := fmt.Sprintf(`#timeline li[data-call-id=%q]`, rec.ID)
	src := value(t, ctx, "read the audio's address", chromedp.AttributeValue(chromedp.CSS(row+` audio`), "src"))
	if want := recSrv.URL + "/recordings/" + rec.Recording; rec.Recording == "" || src.Value != want {
		t.Errorf("Listen plays %q, want %q (reference %q)", src.Value, want, rec.Recording)
	}

	// A wrap-up with resolved, from the timeline.
	step(t, ctx, "wrap up from the timeline",
		chromedp.Click(chromedp.CSS(row+` button.wrapup`)),
		chromedp.WaitVisible(chromedp.CSS(`#wrapup-dialog`)),
		chromedp.SendKeys(chromedp.CSS(`#wrapup-reason`), "order"),
		chromedp.Click(chromedp.CSS(`#wrapup-form input[name="satisfaction"][value="5"]`)),
		chromedp.Click(chromedp.CSS(`#wrapup-form input[name="resolved"][value="true"]`)),
		chromedp.Click(chromedp.CSS(`#wrapup-save`)),
		chromedp.WaitNotVisible(chromedp.CSS(`#wrapup-dialog`)))
	waitJS(t, ctx, "see the wrap-up in the timeline",
		fmt.Sprintf(`(document.querySelector(%q) || {}).textContent === "reason: order · satisfaction 5/5 · resolved"`, row+` .wrap`))
	alt := value(t, ctx, "see the resolved chart", chromedp.Poll[string](
		`(() => { const i = document.querySelector('#contact-charts figure[data-chart="resolved"] img'); return i && i.alt.includes("100% of 1 calls resolved") ? i.alt : ""; })()`,
		chromedp.WithPollingTimeout(10*time.Second)))
	t.Logf("resolved chart: %q", alt)
	for _, chart := range []string{"by_month", "satisfaction", "reasons"} {
		step(t, ctx, "see the "+chart+" chart", chromedp.WaitVisible(chromedp.CSS(`#contact-charts figure[data-chart="`+chart+`"] img`)))
	}

	// An unreadable number is refused with the reason.
	step(t, ctx, "add an unreadable number",
		chromedp.SendKeys(chromedp.CSS(`#c-number-new`), "+1 437-555-1234567"),
		chromedp.Click(chromedp.CSS(`#c-number-add`)))
	waitJS(t, ctx, "see the number refused", `document.getElementById("numbers-error").textContent.includes("+1 437-555-1234567")`)
	t.Logf("number error: %q", value(t, ctx, "read the error", chromedp.TextContent(chromedp.CSS(`#numbers-error`))))
	if n := value(t, ctx, "count the numbers", chromedp.Evaluate[int](`document.querySelectorAll("#c-numbers li[data-e164]").length`)); n != 1 {
		t.Errorf("%d numbers after a refused one, want 1", n)
	}

	// A new name, seen on the next call's row.
	step(t, ctx, "rename the contact",
		chromedp.Evaluate[chromedp.Void](`document.getElementById("c-name").value = ""`),
		chromedp.SendKeys(chromedp.CSS(`#c-name`), "Jane Q. Doe"),
		chromedp.Click(chromedp.CSS(`#contact-save`)))
	waitJS(t, ctx, "see the new name", `document.getElementById("contact-name-big").textContent === "Jane Q. Doe"`)

	// A missed call: open on the page until marked processed there.
	pbx = startSIPp(t, sippSpec{name: "pbx-missed", scenario: "uas_ring_forever.xml", port: n.pbxPort})
	missed := n.trunkCall(t, "uac_cancel.xml", 1500*time.Millisecond)
	missed.succeed(t)
	pbx.succeed(t)
	step(t, ctx, "see the missed call on the page",
		chromedp.WaitVisible(chromedp.CSS(`#c-missed li[data-missed-id]`)),
		chromedp.WaitVisible(chromedp.CSS(`#timeline li.kind-call[data-disposition="no_answer"]`)),
		chromedp.Click(chromedp.CSS(`#c-missed li[data-missed-id] button.processed`)),
		chromedp.WaitNotPresent(chromedp.CSS(`#c-missed li[data-missed-id]`)))

	// Phone-sized: nothing runs off the side.
	step(t, ctx, "narrow the window", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
	waitJS(t, ctx, "see the narrow layout", `window.innerWidth <= 400`)
	if over := value(t, ctx, "measure the page", chromedp.Evaluate[int](`document.documentElement.scrollWidth - window.innerWidth`)); over > 0 {
		t.Errorf("on a phone-sized screen the contact page is %dpx too wide", over)
	}
	step(t, ctx, "widen the window", chromedp.EmulateViewport(1280, 1000))

	// Block from the page: the next call from the number is refused.
	step(t, ctx, "block the contact",
		chromedp.Click(chromedp.CSS(`#c-block`)),
		chromedp.WaitVisible(chromedp.CSS(`#contact-block-dialog`)),
		chromedp.SendKeys(chromedp.CSS(`#cblock-reason`), "abusive calls"),
		chromedp.Click(chromedp.CSS(`#cblock-confirm`)),
		chromedp.WaitVisible(chromedp.CSS(`#c-allow`)))
	step(t, ctx, "let the toast go", chromedp.Evaluate[chromedp.Void](`document.getElementById("toast").hidden = true`))
	shot := value(t, ctx, "take a screenshot", chromedp.FullScreenshot(100))
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil || img.Bounds().Dx() < 800 {
		t.Fatalf("screenshot: %v (%v)", err, img.Bounds())
	}
	out := filepath.Join(t.TempDir(), "contact-page.png")
	if os.Getenv("SWITCHBOARD_UPDATE_DOCS") != "" {
		out = filepath.Join(filepath.Dir(scenarioDir), "docs", "contact-page.png")
	}
	if err := os.WriteFile(out, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s (%dx%d)", out, img.Bounds().Dx(), img.Bounds().Dy())
	// Delete the recording: the PBX's store is asked with the token.
	step(t, ctx, "delete the recording",
		chromedp.Click(chromedp.CSS(row+` button.delete-recording`)),
		chromedp.Click(chromedp.CSS(row+` button.delete-recording`)))
	waitJS(t, ctx, "see the recording gone", fmt.Sprintf(`(document.querySelector(%q) || {}).textContent === "Recording: N/A"`, row+` .recording`))
	if got, want := store.seen(), "/recordings/"+rec.Recording+" Bearer rec-secret"; len(got) != 1 || got[0] != want {
		t.Errorf("the recording store got %q, want one DELETE %q", got, want)
	}
	var after wrapRecordWithRecording
	n.api(t, "GET", "/api/calls/"+rec.ID, "", auth, &after)
	if after.Recording != "" || after.ID != rec.ID {
		t.Errorf("after Delete the record says recording %q", after.Recording)
	}

	blocked := n.trunkCall(t, "uac_expect_error.xml", 0, "-set", "expected", "603")
	blocked.succeed(t)

	// Back on the board: the renamed contact's name on the new row.
	step(t, ctx, "go back to the calls",
		chromedp.Click(chromedp.CSS(`#contact-back`)),
		chromedp.WaitVisible(chromedp.CSS(`#board`)),
		chromedp.WaitVisible(chromedp.CSS(`#recent li[data-disposition="blocked"]`)))
	blockedRow := value(t, ctx, "read the blocked call's row", chromedp.Text(chromedp.CSS(`#recent li[data-disposition="blocked"]`)))
	if !strings.Contains(blockedRow, "Jane Q. Doe") {
		t.Errorf("the next call's row %q lacks the new name", blockedRow)
	}
}

// wrapRecordWithRecording is a record's id and recording reference.
type wrapRecordWithRecording struct {
	ID        string `json:"id"`
	Recording string `json:"recording"`
}

// waitJS waits until expr is true in the page (10 s at most).
func waitJS(t *testing.T, ctx context.Context, what, expr string) {
	t.Helper()
	if !value(t, ctx, what, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(10*time.Second))) {
		t.Fatalf("board: %s: not true: %s", what, expr)
	}
}
