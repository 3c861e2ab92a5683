package web

import (
	"net/http"
	"strings"
	"testing"

	"github.com/switchboard-sip/switchboard/blocking"
)

// POST /api/blocks takes a SIP address or domain as the number, stores it
// in its matched form and blocks it on the next lookup; a malformed one is
// a 400 naming the number.
func TestBlocksAPIAddresses(t *testing.T) {
	srv, store := blockServer(t, "")
	code, body := doBlocks(t, http.MethodPost, srv.URL+"/api/blocks", "", `{"number": "sip:Spam@Example.NET", "reason": "spam"}`)
	if code != http.StatusCreated || body["number"] != "Spam@example.net" {
		t.Fatalf("POST address: %d %v", code, body)
	}
	code, body = doBlocks(t, http.MethodPost, srv.URL+"/api/blocks", "", `{"number": "*@Robocall.example", "direction": "in"}`)
	if code != http.StatusCreated || body["number"] != "*@robocall.example" || body["direction"] != "in" {
		t.Fatalf("POST domain: %d %v", code, body)
	}
	if m := store.LookupAddress("Spam", "EXAMPLE.net", blocking.In); !m.Blocked {
		t.Error("the stored address does not block")
	}
	if m := store.LookupAddress("anyone", "robocall.example", blocking.In); !m.Blocked {
		t.Error("the stored domain does not block")
	}
	for _, bad := range []string{"spam@example.net:5060", "sp am@example.net", "spam*@example.net", "@example.net"} {
		code, body := doBlocks(t, http.MethodPost, srv.URL+"/api/blocks", "", `{"number": "`+bad+`"}`)
		if msg, _ := body["error"].(string); code != http.StatusBadRequest || !strings.HasPrefix(msg, "number: ") {
			t.Errorf("POST %q: %d %v, want 400 naming the number", bad, code, body)
		}
	}
}
