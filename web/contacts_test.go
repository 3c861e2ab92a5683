package web

import (
	"github.com/switchboard-sip/switchboard/cdr"

	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-sip/switchboard/callctl"
	"github.com/switchboard-sip/switchboard/contacts"
	"github.com/switchboard-sip/switchboard/storage"
	"github.com/switchboard-sip/switchboard/storage/callstore"
	"github.com/switchboard-sip/switchboard/storage/storagetest"
)

// contactServer serves the contact endpoints over a real store in a
// temporary SQLite file, with a cache attached as in the agent.
func contactServer(t *testing.T) (*httptest.Server, *contacts.Store, *contacts.Cache, *callstore.Store) {
	t.Helper()
	ctx := context.Background()
	db, err := storage.Open(storagetest.Target(t, "sb"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	calls, err := callstore.New(ctx, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { calls.Close(context.Background()) })
	store, err := contacts.NewStore(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	store.UseCalls(calls)
	cache, err := contacts.NewCache(ctx, store, contacts.CacheOptions{Poll: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cache.Close(context.Background()) })
	numbers, err := contacts.NewNumbers("DE", []string{"1xx"})
	if err != nil {
		t.Fatal(err)
	}
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	s := New(Options{Location: berlin})
	RegisterContacts(s, ContactOptions{Store: store, Numbers: func() *contacts.Numbers { return numbers }})
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return srv, store, cache, calls
}

func contactDo(t *testing.T, srv *httptest.Server, method, path, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatalf("%s %s: body %q is not a JSON object: %v", method, path, data, err)
	}
	return resp.StatusCode, out
}

func TestContactEndpoints(t *testing.T) {
	srv, _, cache, calls := contactServer(t)

	status, jane := contactDo(t, srv, "POST", "/api/contacts", `{"name": "Jane Doe", "company": "ACME", "tags": ["vip"],
		"fields": {"crm": "42"}, "numbers": ["030 1234567", {"raw": "+1 (212) 555-0100 x12"}, {"e164": "+4915112345678"}]}`)
	if status != http.StatusCreated {
		t.Fatalf("create: %d %v", status, jane)
	}
	id := int64(jane["id"].(float64))
	nums := jane["numbers"].([]any)
	if len(nums) != 3 || nums[0].(map[string]any)["e164"] != "+49301234567" || nums[0].(map[string]any)["raw"] != "030 1234567" ||
		nums[1].(map[string]any)["ext"] != "12" {
		t.Errorf("numbers %v", nums)
	}
	for _, k := range []string{"id", "name", "company", "email", "client_id", "tags", "fields", "numbers", "source", "created_at", "calls_count", "first_call_at", "last_call_at", "open_missed"} {
		if _, ok := jane[k]; !ok {
			t.Errorf("contact has no %q: %v", k, jane)
		}
	}
	if !strings.HasSuffix(jane["created_at"].(string), "+01:00") && !strings.HasSuffix(jane["created_at"].(string), "+02:00") {
		t.Errorf("created_at %v not in the configured zone", jane["created_at"])
	}
	if in := cache.Lookup("+49301234567"); in == nil || in.Name != "Jane Doe" {
		t.Errorf("the call path does not see the new contact: %+v", in)
	}
	start := time.Now().Add(-time.Hour).UTC().Truncate(time.Millisecond)
	calls.Save(cdr.Record{ID: "r1", Direction: callctl.Inbound, Caller: "+49301234567", Called: "+4930999", ContactID: id,
		StartedAt: start, Disposition: cdr.NoAnswer, SIPStatus: 487, RingMS: 9000})
	if err := calls.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name, method, path, body string
		status                   int
		check                    func(t *testing.T, body map[string]any)
	}{
		{"find by national number", "GET", "/api/contacts?number=030%2012345-67", "", 200, func(t *testing.T, b map[string]any) {
			items := b["items"].([]any)
			if len(items) != 1 || items[0].(map[string]any)["name"] != "Jane Doe" || b["next"] != "" {
				t.Errorf("%v", b)
			}
			if items[0].(map[string]any)["calls_count"].(float64) != 1 {
				t.Errorf("history missing: %v", items[0])
			}
		}},
		{"find by unescaped plus", "GET", "/api/contacts?number=+4915112345678", "", 200, func(t *testing.T, b map[string]any) {
			if len(b["items"].([]any)) != 1 {
				t.Errorf("%v", b)
			}
		}},
		{"find unknown number", "GET", "/api/contacts?number=0301111111", "", 200, func(t *testing.T, b map[string]any) {
			if len(b["items"].([]any)) != 0 {
				t.Errorf("%v", b)
			}
		}},
		{"find unreadable number", "GET", "/api/contacts?number=030-CALL-ME", "", 400, errorNaming("number")},
		{"search", "GET", "/api/contacts?q=acme", "", 200, func(t *testing.T, b map[string]any) {
			if len(b["items"].([]any)) != 1 {
				t.Errorf("%v", b)
			}
		}},
		{"bad limit", "GET", "/api/contacts?limit=0", "", 400, errorNaming("limit")},
		{"get", "GET", "/api/contacts/" + itoa(id), "", 200, func(t *testing.T, b map[string]any) {
			if b["name"] != "Jane Doe" || b["last_call_at"] == nil {
				t.Errorf("%v", b)
			}
		}},
		{"get unknown", "GET", "/api/contacts/999", "", 404, errorNaming("contact")},
		{"get bad id", "GET", "/api/contacts/abc", "", 400, errorNaming("id")},
		{"patch", "PATCH", "/api/contacts/" + itoa(id), `{"email": "jane@acme.example", "fields": {"crm": null, "vat": "DE1"}, "id": 5, "calls_count": 9}`, 200, func(t *testing.T, b map[string]any) {
			if b["email"] != "jane@acme.example" || b["name"] != "Jane Doe" || b["company"] != "ACME" {
				t.Errorf("%v", b)
			}
			if f := b["fields"].(map[string]any); f["vat"] != "DE1" || f["crm"] != nil {
				t.Errorf("fields %v", f)
			}
		}},
		{"patch unknown key", "PATCH", "/api/contacts/" + itoa(id), `{"nmae": "x"}`, 400, errorNaming("nmae")},
		{"patch bad email", "PATCH", "/api/contacts/" + itoa(id), `{"email": "nope"}`, 400, errorNaming("email")},
		{"patch bad tags", "PATCH", "/api/contacts/" + itoa(id), `{"tags": "vip"}`, 400, errorNaming("tags")},
		{"patch unknown", "PATCH", "/api/contacts/999", `{"name": "x"}`, 404, errorNaming("contact")},
		{"create unreadable number", "POST", "/api/contacts", `{"name": "X", "numbers": ["437-555-1234 (Jane's Number)"]}`, 400, errorNaming("numbers[0]")},
		{"create internal number", "POST", "/api/contacts", `{"numbers": ["101"]}`, 400, errorNaming("numbers[0]")},
		{"create taken number", "POST", "/api/contacts", `{"numbers": ["+49 30 1234567"]}`, 409, errorNaming("numbers")},
		{"create conflicting forms", "POST", "/api/contacts", `{"numbers": [{"e164": "+49301111111", "raw": "030 2222222"}]}`, 400, errorNaming("numbers[0]")},
		{"create bad JSON", "POST", "/api/contacts", `{"name": `, 400, errorNaming("body")},
		{"create empty body", "POST", "/api/contacts", ``, 400, errorNaming("body")},
		{"create not an object", "POST", "/api/contacts", `[1]`, 400, errorNaming("body")},
		{"create control chars", "POST", "/api/contacts", `{"name": "a\r\nb"}`, 400, errorNaming("name")},
		{"trace", "GET", "/api/trace?number=%2B49301234567&months=12", "", 200, func(t *testing.T, b map[string]any) {
			items := b["items"].([]any)
			if len(items) != 1 || b["contact"].(map[string]any)["name"] != "Jane Doe" {
				t.Fatalf("%v", b)
			}
			it := items[0].(map[string]any)
			if it["disposition"] != "no_answer" || it["sip_status"].(float64) != 487 || it["ring_ms"].(float64) != 9000 {
				t.Errorf("%v", it)
			}
		}},
		{"set client id", "PATCH", "/api/contacts/" + itoa(id), `{"client_id": "CRM-7"}`, 200, func(t *testing.T, b map[string]any) {
			if b["client_id"] != "CRM-7" {
				t.Errorf("%v", b)
			}
		}},
		{"client id taken", "POST", "/api/contacts", `{"name": "Other", "client_id": "CRM-7"}`, 409, errorNaming("client_id")},
		{"find by client id", "GET", "/api/contacts?client_id=CRM-7", "", 200, func(t *testing.T, b map[string]any) {
			if items := b["items"].([]any); len(items) != 1 || items[0].(map[string]any)["name"] != "Jane Doe" {
				t.Errorf("%v", b)
			}
		}},
		{"find unknown client id", "GET", "/api/contacts?client_id=CRM-0", "", 200, func(t *testing.T, b map[string]any) {
			if len(b["items"].([]any)) != 0 {
				t.Errorf("%v", b)
			}
		}},
		{"trace by client id", "GET", "/api/trace?client_id=CRM-7", "", 200, func(t *testing.T, b map[string]any) {
			if items := b["items"].([]any); len(items) != 1 || items[0].(map[string]any)["id"] != "r1" || b["contact"].(map[string]any)["client_id"] != "CRM-7" {
				t.Errorf("%v", b)
			}
		}},
		{"trace by email", "GET", "/api/trace?email=JANE@acme.example", "", 200, func(t *testing.T, b map[string]any) {
			if items := b["items"].([]any); len(items) != 1 || items[0].(map[string]any)["id"] != "r1" {
				t.Errorf("%v", b)
			}
		}},
		{"trace by unknown email", "GET", "/api/trace?email=nobody@acme.example", "", 404, errorNaming("email")},
		{"trace without number", "GET", "/api/trace", "", 400, errorNaming("number")},
		{"trace bad months", "GET", "/api/trace?number=030123456&months=0", "", 400, errorNaming("months")},
		{"delete", "DELETE", "/api/contacts/" + itoa(id), "", 200, func(t *testing.T, b map[string]any) {
			if b["deleted_calls"].(float64) != 1 {
				t.Errorf("%v", b)
			}
		}},
		{"get deleted", "GET", "/api/contacts/" + itoa(id), "", 404, errorNaming("contact")},
		{"trace after delete", "GET", "/api/trace?number=030%201234567", "", 200, func(t *testing.T, b map[string]any) {
			if len(b["items"].([]any)) != 0 || b["contact"] != nil {
				t.Errorf("%v", b)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, body := contactDo(t, srv, tc.method, tc.path, tc.body)
			if status != tc.status {
				t.Fatalf("status %d, want %d: %v", status, tc.status, body)
			}
			tc.check(t, body)
		})
	}
	if cache.Lookup("+49301234567") != nil {
		t.Error("deleted contact still in the call path's cache")
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// errorNaming checks the API error shape and that the message starts with
// (or names) the field.
func errorNaming(field string) func(t *testing.T, b map[string]any) {
	return func(t *testing.T, b map[string]any) {
		t.Helper()
		msg, ok := b["error"].(string)
		if !ok || !strings.Contains(msg, field) {
			t.Errorf("error %q does not name %q", msg, field)
		}
	}
}
