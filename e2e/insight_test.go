package e2e

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-sip/switchboard/contacts"
)

// newInsightNode is newNode with extra top-level config sections and
// contacts stored before the start.
func newInsightNode(t *testing.T, extra string, people ...contacts.Contact) *node {
	t.Helper()
	n := prepareNode(t, nodeOptions{})
	n.launch(n.config()+extra, people)
	return n
}

// api sends one request to the node's API and decodes a JSON answer into
// out (when not nil); it returns the status and the raw body.
func (n *node) api(t *testing.T, method, path, body string, header map[string]string, out any) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, fmt.Sprintf("http://127.0.0.1:%d%s", n.httpPort, path), strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if out != nil && res.StatusCode < 300 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
	return res.StatusCode, string(b)
}

// scenarioWith writes a copy of a scenario of ../sipp with replacements
// and returns its path as startSIPp takes it.
func scenarioWith(t *testing.T, name string, repl ...string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(scenarioDir, name))
	if err != nil {
		t.Fatal(err)
	}
	s := strings.NewReplacer(repl...).Replace(string(b))
	dir := t.TempDir()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	rel, err := filepath.Rel(scenarioDir, path)
	if err != nil {
		t.Fatal(err)
	}
	return rel
}

// wrapRecord is a record with the insight fields (SPEC §8).
type wrapRecord struct {
	ID           string `json:"id"`
	CallID       string `json:"call_id"`
	Hotline      string `json:"hotline"`
	Campaign     string `json:"campaign"`
	AnsweredBy   string `json:"answered_by"`
	Disposition  string `json:"disposition"`
	Reason       string `json:"reason"`
	Satisfaction *int   `json:"satisfaction"`
	Notes        string `json:"notes"`
}

const insightHotlines = `hotlines:
  - name: acme
    numbers: ["+49301234560"]
    company: ACME GmbH
    campaign: radio-spring
wrapup:
  reasons: [order, complaint]
`

// TestInsightAnsweredWrapUpTrace: a call answered by a PBX whose 200 names
// the phone in P-Asserted-Identity; the record carries answered_by and the
// hotline's campaign; a wrap-up set over the API shows in the trace by
// number, email and client id (JSON), in the CSV trace of the command line
// and in the statistics.
func TestInsightAnsweredWrapUpTrace(t *testing.T) {
	t.Parallel()
	n := newInsightNode(t, insightHotlines, contacts.Contact{Name: "Jane Doe", Email: "jane@doe.example", ClientID: "CRM-42",
		Numbers: []contacts.Phone{{E164: trunkCaller}}})
	pbx := startSIPp(t, sippSpec{name: "pbx", port: n.pbxPort, scenario: scenarioWith(t, "uas_answer.xml",
		"      X-Recording-Id: rec-[call_number]\n", "      X-Recording-Id: rec-[call_number]\n      P-Asserted-Identity: \"Front desk\" <sip:201@[local_ip]>\n")})
	call := n.trunkCall(t, "uac_answer.xml", 300*time.Millisecond)
	call.succeed(t)
	pbx.succeed(t)
	n.waitEnded(call.callID)

	var list struct{ Items []wrapRecord }
	n.api(t, "GET", "/api/calls?limit=1", "", nil, &list)
	if len(list.Items) != 1 {
		t.Fatalf("calls: %+v", list)
	}
	rec := list.Items[0]
	if rec.AnsweredBy != "201" || rec.Campaign != "radio-spring" || rec.Hotline != "acme" || rec.Satisfaction != nil {
		t.Errorf("record %+v: want answered_by 201 from the 200's P-Asserted-Identity, campaign radio-spring", rec)
	}

	// Wrap-up: a bad score is refused naming the field; a good one is kept.
	if code, body := n.api(t, "PATCH", "/api/calls/"+rec.ID, `{"satisfaction": 9}`, nil, nil); code != 400 || !strings.Contains(body, "satisfaction") {
		t.Errorf("satisfaction 9: %d %s", code, body)
	}
	var patched wrapRecord
	if code, body := n.api(t, "PATCH", "/api/calls/"+rec.ID, `{"reason": "order", "satisfaction": 4, "notes": "two boxes, wants a callback"}`, nil, &patched); code != 200 {
		t.Fatalf("PATCH: %d %s", code, body)
	}
	if patched.Reason != "order" || patched.Satisfaction == nil || *patched.Satisfaction != 4 {
		t.Errorf("PATCH answered %+v", patched)
	}

	// The trace, by number, email and client id: the same calls.
	var byNumber string
	for _, q := range []string{"number=" + strings.Replace(trunkCaller, "+", "%2B", 1), "email=JANE@doe.example", "client_id=CRM-42"} {
		var tr struct {
			Contact *struct {
				ClientID string `json:"client_id"`
			}
			Items []wrapRecord
		}
		code, body := n.api(t, "GET", "/api/trace?"+q, "", nil, &tr)
		if code != 200 || tr.Contact == nil || tr.Contact.ClientID != "CRM-42" || len(tr.Items) != 1 {
			t.Fatalf("trace %s: %d %s", q, code, body)
		}
		it := tr.Items[0]
		if it.Reason != "order" || it.Satisfaction == nil || *it.Satisfaction != 4 || it.Notes != "two boxes, wants a callback" ||
			it.AnsweredBy != "201" || it.Campaign != "radio-spring" {
			t.Errorf("trace %s item %+v", q, it)
		}
		items, _ := json.Marshal(tr.Items)
		if byNumber == "" {
			byNumber = string(items)
		} else if string(items) != byNumber {
			t.Errorf("trace %s = %s, by number %s", q, items, byNumber)
		}
	}

	// The command line's CSV trace, by client id.
	out, err := exec.Command(binPath, "trace", "-c", n.cfgPath, "--client-id", "CRM-42", "--csv").CombinedOutput()
	if err != nil {
		t.Fatalf("switchboard trace: %v\n%s", err, out)
	}
	rows, err := csv.NewReader(bytes.NewReader(out)).ReadAll()
	if err != nil || len(rows) != 2 {
		t.Fatalf("trace CSV: %v\n%s", err, out)
	}
	row := map[string]string{}
	for i, h := range rows[0] {
		row[h] = rows[1][i]
	}
	if row["reason"] != "order" || row["satisfaction"] != "4" || row["notes"] != "two boxes, wants a callback" ||
		row["answered_by"] != "201" || row["campaign"] != "radio-spring" {
		t.Errorf("trace CSV row %v", row)
	}

	// The statistics see the call, its campaign and its wrap-up.
	var st struct {
		Totals    struct{ Calls, Answered, Missed int64 }
		Campaigns []struct{ Campaign string }
		Reasons   []struct {
			Reason string
			Calls  int64
		}
		Satisfaction struct {
			Mean  float64
			Count int64
		}
	}
	n.api(t, "GET", "/api/stats", "", nil, &st)
	if st.Totals.Calls != 1 || st.Totals.Answered != 1 || len(st.Campaigns) != 1 || st.Campaigns[0].Campaign != "radio-spring" ||
		len(st.Reasons) != 1 || st.Reasons[0].Reason != "order" || st.Satisfaction.Mean != 4 || st.Satisfaction.Count != 1 {
		t.Errorf("stats %+v", st)
	}
}

// TestInsightStats checks the figures of /api/stats, its CSV and
// `switchboard stats` against a known set of calls made through the
// binary with SIPp: three answered, two busy.
func TestInsightStats(t *testing.T) {
	t.Parallel()
	n := newInsightNode(t, insightHotlines, contacts.Contact{Name: "Jane Doe", Numbers: []contacts.Phone{{E164: trunkCaller}}})
	pbx := startSIPp(t, sippSpec{name: "pbx", port: n.pbxPort, scenario: "uas_answer.xml", calls: 3})
	answered := startSIPp(t, sippSpec{name: "trunk", scenario: "uac_answer.xml", remote: n.sipAddr(), service: hotlineNumber,
		pause: 200 * time.Millisecond, calls: 3})
	answered.succeed(t)
	pbx.succeed(t)
	busyPBX := startSIPp(t, sippSpec{name: "pbx-busy", port: n.pbxPort, scenario: "uas_busy.xml", calls: 2})
	busy := startSIPp(t, sippSpec{name: "trunk-busy", scenario: "uac_expect_error.xml", remote: n.sipAddr(), service: hotlineNumber,
		calls: 2, extra: []string{"-set", "expected", "486"}})
	busy.succeed(t)
	busyPBX.succeed(t)
	for k := 1; k <= 2; k++ {
		n.waitEnded(busy.nthCallID(k))
	}
	for k := 1; k <= 3; k++ {
		n.waitEnded(answered.nthCallID(k))
	}

	type figures struct {
		Totals struct {
			Calls, Answered, Missed int64
			AnswerRate              float64 `json:"answer_rate"`
		}
		Hotlines []struct {
			Name, Company   string
			Calls, Answered int64
			TalkMSP50       int64 `json:"talk_ms_p50"`
		}
		ByDay []struct {
			Date  string
			Calls int64
		} `json:"by_day"`
		TopCallers []struct {
			Name   string
			Number string
			Calls  int64
		} `json:"top_callers"`
	}
	check := func(what string, f figures) {
		t.Helper()
		if f.Totals.Calls != 5 || f.Totals.Answered != 3 || f.Totals.Missed != 2 || f.Totals.AnswerRate != 0.6 {
			t.Errorf("%s totals %+v, want 5 calls, 3 answered, 2 missed, rate 0.6", what, f.Totals)
		}
		if len(f.Hotlines) != 1 || f.Hotlines[0].Name != "acme" || f.Hotlines[0].Company != "ACME GmbH" || f.Hotlines[0].Calls != 5 ||
			f.Hotlines[0].TalkMSP50 < 100 || f.Hotlines[0].TalkMSP50 > 3000 {
			t.Errorf("%s hotlines %+v", what, f.Hotlines)
		}
		var today int64
		for _, d := range f.ByDay {
			today += d.Calls
		}
		if len(f.ByDay) != 30 || today != 5 {
			t.Errorf("%s by_day: %d days, %d calls", what, len(f.ByDay), today)
		}
		if len(f.TopCallers) != 1 || f.TopCallers[0].Name != "Jane Doe" || f.TopCallers[0].Number != trunkCaller || f.TopCallers[0].Calls != 5 {
			t.Errorf("%s top callers %+v", what, f.TopCallers)
		}
	}
	var api figures
	n.api(t, "GET", "/api/stats", "", nil, &api)
	check("GET /api/stats", api)
	code, body := n.api(t, "GET", "/api/stats?since=1h&hotline=acme", "", map[string]string{"Accept": "text/csv"}, nil)
	if code != 200 || !strings.Contains(body, "\ntotals,,,5,3,2,0.6000") || !strings.Contains(body, "\nhotline,acme,ACME GmbH,5,3,2,") {
		t.Errorf("CSV: %d\n%s", code, body)
	}
	out, err := exec.Command(binPath, "stats", "-c", n.cfgPath, "--since", "24h", "--json").Output()
	if err != nil {
		t.Fatalf("switchboard stats: %v %s", err, out)
	}
	var cli figures
	if err := json.Unmarshal(out, &cli); err != nil {
		t.Fatal(err)
	}
	cli.ByDay = api.ByDay // --since 24h covers one or two dates
	check("switchboard stats --json", cli)
}

// TestLookupTimeoutUnderLoad: with a data source that never answers, every
// INVITE still gets its 100 Trying at once, each call is forwarded once the
// lookup's timeout passed (never later), a blocked call never reaches the
// source, and the metric counts the timeouts.
func TestLookupTimeoutUnderLoad(t *testing.T) {
	t.Parallel()
	var hits atomic.Int64
	stop := make(chan struct{})
	src := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		select {
		case <-stop:
		case <-r.Context().Done():
		}
	}))
	defer src.Close()
	defer close(stop)
	const timeout = 400 * time.Millisecond
	const calls = 30
	n := newInsightNode(t, fmt.Sprintf(`lookups:
  - {name: crm, url: "%s/caller?number={{.Caller.E164}}", timeout: %s, cache: 0s}
rules:
  - name: gold
    when: 'lookup.crm.tier == "gold"'
    then: {tag: gold}
blocking:
  entries:
    - {number: "+4930999999", action: block, reason: spam}
`, src.URL, timeout))
	pbx := startSIPp(t, sippSpec{name: "pbx", port: n.pbxPort, scenario: "uas_busy.xml", calls: calls})

	type timing struct{ trying, final time.Duration }
	results := make([]timing, calls)
	var wg sync.WaitGroup
	for i := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = rawInvite(t, n, fmt.Sprintf("+4915100%04d", i), "486")
		}()
	}
	wg.Wait()
	blocked := rawInvite(t, n, "+4930999999", "603")
	pbx.succeed(t)
	for i, r := range results {
		if r.trying > 250*time.Millisecond {
			t.Errorf("call %d: 100 Trying after %v, held by a lookup with a %v timeout", i, r.trying, timeout)
		}
		if r.final < timeout-50*time.Millisecond || r.final > timeout+3*time.Second {
			t.Errorf("call %d: final response after %v, want just after the %v timeout", i, r.final, timeout)
		}
	}
	if blocked.final > 250*time.Millisecond {
		t.Errorf("blocked call refused after %v: it waited for a lookup", blocked.final)
	}
	if h := hits.Load(); h != calls {
		t.Errorf("the data source was asked %d times, want %d (one per call, none for the blocked call)", h, calls)
	}
	_, metrics := n.api(t, "GET", "/metrics", "", nil, nil)
	if want := fmt.Sprintf(`switchboard_lookups_total{lookup="crm",result="timeout"} %d`, calls); !strings.Contains(metrics, want) {
		t.Errorf("metrics lack %q", want)
	}
}

// rawInvite sends one INVITE from caller over its own UDP socket, and
// returns when the final response (code) came, with the times of the 100
// and of the final; it acknowledges the final response.
func rawInvite(t *testing.T, n *node, caller, code string) (r struct{ trying, final time.Duration }) {
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Error(err)
		return
	}
	defer conn.Close()
	dst, _ := net.ResolveUDPAddr("udp", n.sipAddr())
	local := conn.LocalAddr().String()
	callID := fmt.Sprintf("lookup-%s@e2e", strings.TrimPrefix(caller, "+"))
	msg := func(method, branch string) string {
		return fmt.Sprintf("%s sip:%s@%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=%s\r\nMax-Forwards: 70\r\n"+
			"From: <sip:%s@%s>;tag=f1\r\nTo: <sip:%s@%s>\r\nCall-ID: %s\r\nCSeq: 1 %s\r\nContact: <sip:%s@%s>\r\nContent-Length: 0\r\n\r\n",
			method, hotlineNumber, n.sipAddr(), local, branch, caller, local, hotlineNumber, n.sipAddr(), callID, method, caller, local)
	}
	branch := "z9hG4bK" + strings.TrimPrefix(caller, "+")
	start := time.Now()
	if _, err := conn.WriteToUDP([]byte(msg("INVITE", branch)), dst); err != nil {
		t.Error(err)
		return
	}
	buf := make([]byte, 65535)
	conn.SetReadDeadline(time.Now().Add(15 * time.Second))
	for {
		k, _, err := conn.ReadFromUDP(buf)
		if err != nil {
			t.Errorf("%s: no final %s: %v", caller, code, err)
			return
		}
		line, _, _ := strings.Cut(string(buf[:k]), "\r\n")
		switch {
		case strings.HasPrefix(line, "SIP/2.0 100") && r.trying == 0:
			r.trying = time.Since(start)
		case strings.HasPrefix(line, "SIP/2.0 "+code):
			r.final = time.Since(start)
			// The ACK of a non-2xx final is hop by hop, with the INVITE's
			// branch and the To tag of the response (RFC 3261 §17.1.1.3).
			to := ""
			for _, h := range strings.Split(string(buf[:k]), "\r\n") {
				if strings.HasPrefix(strings.ToLower(h), "to:") {
					to = h
				}
			}
			ack := strings.Replace(msg("ACK", branch), fmt.Sprintf("To: <sip:%s@%s>", hotlineNumber, n.sipAddr()), to, 1)
			conn.WriteToUDP([]byte(ack), dst)
			return
		case strings.HasPrefix(line, "SIP/2.0 1"):
		default:
			t.Errorf("%s: unexpected %q", caller, line)
			return
		}
	}
}
