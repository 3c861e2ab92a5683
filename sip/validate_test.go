package sip

import (
	"strings"
	"testing"
)

func TestCheckRequestLine(t *testing.T) {
	tests := []struct {
		line string
		code int
	}{
		{"INVITE sip:1@a SIP/2.0", 0},
		{"SIP/2.0 200 OK", 0},
		{"INVITE sip:1@a SIP/7.0", 505},
		{"INVITE <sip:1@a> SIP/2.0", 400},
		{"INVITE  sip:1@a SIP/2.0", 400},
		{"INVITE sip:1@a SIP/2.0 ", 400},
		{"INVITE sip:1@a; lr SIP/2.0", 400},
		{"OPTIONS soap.beep://192.0.2.103:3002 SIP/2.0", 416},
		{"INVITE tel:+4930123 SIP/2.0", 0},
	}
	for _, tc := range tests {
		t.Run(tc.line, func(t *testing.T) {
			code, _ := checkRequestLine([]byte(tc.line + "\r\nVia: SIP/2.0/UDP a\r\n\r\n"))
			if code != tc.code {
				t.Errorf("code %d, want %d", code, tc.code)
			}
		})
	}
	res := string(rawResponse([]byte("INVITE x SIP/7.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nv: SIP/2.0/UDP g\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\nSubject: s\r\n\r\nbody"), 505, "Version Not Supported"))
	for _, want := range []string{"SIP/2.0 505 Version Not Supported\r\n", "Via: SIP/2.0/UDP h;branch=z9hG4bK1\r\n", "v: SIP/2.0/UDP g\r\n", "Call-ID: x\r\n", "CSeq: 1 INVITE\r\n"} {
		if !strings.Contains(res, want) {
			t.Errorf("response lacks %q:\n%s", want, res)
		}
	}
	if strings.Contains(res, "Subject") || strings.Contains(res, "body") {
		t.Errorf("response copies too much:\n%s", res)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name  string
		extra []string
		code  int
	}{
		{"good", nil, 0},
		{"proxy-require", []string{"Proxy-Require: foo, bar"}, 420},
		{"two Max-Forwards", []string{"Max-Forwards: 10"}, 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, hdrs := validate(invite(t, tc.extra...))
			if code != tc.code {
				t.Fatalf("code %d, want %d", code, tc.code)
			}
			if code == 420 && (len(hdrs) != 1 || hdrs[0].Value() != "foo, bar") {
				t.Errorf("Unsupported = %v", hdrs)
			}
		})
	}
	mismatch := parseReq(t, "OPTIONS sip:a@b SIP/2.0", "Via: SIP/2.0/UDP h;branch=z9hG4bK2", "From: <sip:a@b>;tag=1",
		"To: <sip:a@b>", "Call-ID: m", "CSeq: 1 INVITE", "Content-Length: 0")
	if code, _, _ := validate(mismatch); code != 400 {
		t.Errorf("CSeq method mismatch: code %d", code)
	}
}
