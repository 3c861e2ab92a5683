package web

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/switchboard-sip/switchboard/blocking"
	"github.com/switchboard-sip/switchboard/contacts"
	"github.com/switchboard-sip/switchboard/storage"
	"github.com/switchboard-sip/switchboard/storage/storagetest"
)

// blockServer serves the block endpoints over a real block list in a
// temporary SQLite file, with one config entry.
func blockServer(t *testing.T, token string) (*httptest.Server, *blocking.Store) {
	t.Helper()
	db, err := storage.Open(storagetest.Target(t, "sb"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	config, err := blocking.FromConfig([]blocking.ConfigEntry{{Number: "+49900*", Action: "block", Direction: "out", Reason: "premium rate"}})
	if err != nil {
		t.Fatal(err)
	}
	store, err := blocking.Open(context.Background(), db, config)
	if err != nil {
		t.Fatal(err)
	}
	s := New(Options{Token: token})
	numbers, err := contacts.NewNumbers("DE", nil)
	if err != nil {
		t.Fatal(err)
	}
	RegisterBlocks(s, BlockOptions{Store: store, Numbers: func() *contacts.Numbers { return numbers }})
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return srv, store
}

func doBlocks(t *testing.T, method, url, token, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("%s %s: body %q is not a JSON object: %v", method, url, b, err)
	}
	return resp.StatusCode, out
}

func TestBlocksAPI(t *testing.T) {
	srv, store := blockServer(t, "")
	steps := []struct {
		name       string
		method     string
		path       string
		body       string
		wantStatus int
		check      func(t *testing.T, body map[string]any)
	}{
		{"list shows config entries", "GET", "/api/blocks", "", 200, func(t *testing.T, b map[string]any) {
			items := b["items"].([]any)
			if len(items) != 1 || items[0].(map[string]any)["source"] != "config" || b["next"] != "" {
				t.Errorf("list = %v", b)
			}
		}},
		{"add in national format", "POST", "/api/blocks", `{"number": "0151 12345678", "reason": "spam"}`, 201, func(t *testing.T, b map[string]any) {
			if b["number"] != "+4915112345678" || b["action"] != "block" || b["direction"] != "both" || b["id"].(float64) != 1 || b["reason"] != "spam" {
				t.Errorf("added %v", b)
			}
			if !store.Lookup("+4915112345678", blocking.In).Blocked {
				t.Error("not in force after POST")
			}
		}},
		{"add a national prefix", "POST", "/api/blocks", `{"number": "0137*", "direction": "in", "reason": "votes"}`, 201, func(t *testing.T, b map[string]any) {
			if b["number"] != "+49137*" || b["direction"] != "in" {
				t.Errorf("added %v", b)
			}
		}},
		{"allow", "POST", "/api/blocks", `{"number": "110", "action": "allow"}`, 201, nil},
		{"bad number", "POST", "/api/blocks", `{"number": "hello"}`, 400, wantBlockError("number: ")},
		{"bad direction", "POST", "/api/blocks", `{"number": "+49110", "direction": "up"}`, 400, wantBlockError(`direction "up"`)},
		{"bad action", "POST", "/api/blocks", `{"number": "+49110", "action": "drop"}`, 400, wantBlockError(`action "drop"`)},
		{"unknown field", "POST", "/api/blocks", `{"number": "+49110", "colour": "red"}`, 400, wantBlockError("colour")},
		{"not JSON", "POST", "/api/blocks", `number=1`, 400, wantBlockError("body: invalid JSON")},
		{"empty body", "POST", "/api/blocks", ``, 400, wantBlockError("body: empty")},
		{"wrong type", "POST", "/api/blocks", `{"number": 5}`, 400, wantBlockError("field number")},
		{"list all", "GET", "/api/blocks", "", 200, func(t *testing.T, b map[string]any) {
			if n := len(b["items"].([]any)); n != 4 {
				t.Errorf("%d items, want 4: %v", n, b)
			}
		}},
		{"first page", "GET", "/api/blocks?limit=1", "", 200, func(t *testing.T, b map[string]any) {
			if n := len(b["items"].([]any)); n != 2 || b["next"] != "1" {
				t.Errorf("page = %v, want the config entry, one stored entry and next 1", b)
			}
		}},
		{"next page", "GET", "/api/blocks?limit=1&cursor=1", "", 200, func(t *testing.T, b map[string]any) {
			items := b["items"].([]any)
			if len(items) != 1 || items[0].(map[string]any)["id"].(float64) != 2 || b["next"] != "2" {
				t.Errorf("page = %v", b)
			}
		}},
		{"bad cursor", "GET", "/api/blocks?cursor=x", "", 400, wantBlockError("cursor")},
		{"bad limit", "GET", "/api/blocks?limit=-1", "", 400, wantBlockError("limit")},
		{"delete", "DELETE", "/api/blocks/1", "", 200, func(t *testing.T, b map[string]any) {
			if b["number"] != "+4915112345678" {
				t.Errorf("deleted %v", b)
			}
			if store.Lookup("+4915112345678", blocking.In).Blocked {
				t.Error("still in force after DELETE")
			}
		}},
		{"delete again", "DELETE", "/api/blocks/1", "", 404, wantBlockError("block 1 not found")},
		{"delete config entry", "DELETE", "/api/blocks/0", "", 404, wantBlockError("config file")},
		{"delete bad id", "DELETE", "/api/blocks/abc", "", 400, wantBlockError("not a block id")},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			status, body := doBlocks(t, st.method, srv.URL+st.path, "", st.body)
			if status != st.wantStatus {
				t.Fatalf("%s %s = %d %v, want %d", st.method, st.path, status, body, st.wantStatus)
			}
			if st.check != nil {
				st.check(t, body)
			}
		})
	}
}

func wantBlockError(sub string) func(t *testing.T, b map[string]any) {
	return func(t *testing.T, b map[string]any) {
		t.Helper()
		msg, _ := b["error"].(string)
		if !strings.Contains(msg, sub) {
			t.Errorf("error %q does not contain %q", msg, sub)
		}
	}
}

func TestBlocksAPIToken(t *testing.T) {
	srv, _ := blockServer(t, "secret")
	tests := []struct {
		name, token string
		want        int
	}{
		{"no token", "", 401},
		{"wrong token", "nope", 401},
		{"token", "secret", 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if status, _ := doBlocks(t, "GET", srv.URL+"/api/blocks", tt.token, ""); status != tt.want {
				t.Errorf("status %d, want %d", status, tt.want)
			}
		})
	}
}
