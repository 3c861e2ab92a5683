package web

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/switchboard-sip/switchboard/emergency"
	"github.com/switchboard-sip/switchboard/storage"
	"github.com/switchboard-sip/switchboard/storage/storagetest"
	"github.com/switchboard-sip/switchboard/wire"
)

// TestEmergencyEndpoints: the open list, one alert, and the
// acknowledgement with who and when, published to the boards; bad input
// is a 4xx, never a crash.
func TestEmergencyEndpoints(t *testing.T) {
	ctx := context.Background()
	db, err := storage.Open(storagetest.Target(t, "sb"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	st, err := emergency.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now()
	for _, id := range []string{"e1", "e2"} {
		if err := st.Add(ctx, emergency.Alert{ID: id, Extension: "2001", Name: "Reception", Location: "Hall", Dialled: "112",
			At: at, CallbackUntil: at.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	calls := newCallStore(t, 0)
	s := New(Options{Token: "tok", Log: zaptest.NewLogger(t)})
	var mu sync.Mutex
	var published []wire.Emergency
	RegisterEmergencies(s, EmergencyOptions{Store: st, Records: calls, Publish: func(typ string, data any) {
		mu.Lock()
		defer mu.Unlock()
		if typ == EventEmergencyAcknowledged {
			published = append(published, data.(wire.Emergency))
		}
	}})
	srv := httptest.NewServer(s)
	defer srv.Close()
	do := func(method, path, body string, out any) int {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer tok")
		res, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		if out != nil && res.StatusCode == http.StatusOK {
			if err := json.Unmarshal(b, out); err != nil {
				t.Fatalf("%s %s: %v: %s", method, path, err, b)
			}
		}
		return res.StatusCode
	}
	var list wire.EmergencyList
	if code := do("GET", "/api/emergencies", "", &list); code != 200 || len(list.Items) != 2 || list.Items[0].Location != "Hall" {
		t.Fatalf("list: %d %+v", code, list)
	}
	var got wire.Emergency
	if code := do("POST", "/api/calls/e1/acknowledge", `{"by": "Anna\u0007"}`, &got); code != 200 || got.AcknowledgedBy != "Anna" || got.AcknowledgedAt == nil {
		t.Fatalf("acknowledge: %d %+v", code, got)
	}
	if code := do("POST", "/api/calls/e2/acknowledge", "", &got); code != 200 || got.AcknowledgedBy != "api token" {
		t.Fatalf("acknowledge without a name: %d %+v", code, got)
	}
	for _, c := range []struct {
		path, body string
		want       int
	}{{"/api/calls/nope/acknowledge", "", 404}, {"/api/calls/e1/acknowledge", "{", 400}, {"/api/calls/e1/acknowledge", `{"by": 3}`, 400}} {
		if code := do("POST", c.path, c.body, nil); code != c.want {
			t.Errorf("POST %s %q: %d, want %d", c.path, c.body, code, c.want)
		}
	}
	if code := do("GET", "/api/emergencies", "", &list); code != 200 || len(list.Items) != 0 {
		t.Errorf("open after both acknowledged: %d %+v", code, list)
	}
	if code := do("GET", "/api/emergencies/e1", "", &got); code != 200 || got.AcknowledgedBy != "Anna" {
		t.Errorf("one: %d %+v", code, got)
	}
	if code := do("GET", "/api/emergencies/nope", "", nil); code != 404 {
		t.Errorf("unknown: %d", code)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(published) != 2 {
		t.Errorf("published %d acknowledgements, want 2", len(published))
	}
}
