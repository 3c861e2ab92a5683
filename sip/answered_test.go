package sip

import (
	"testing"

	gosip "github.com/emiago/sipgo/sip"
)

func TestAnsweredBy(t *testing.T) {
	tests := []struct{ name, headers, want string }{
		{"PAI user part", "P-Asserted-Identity: \"Front desk\" <sip:201@pbx.example>\r\nContact: <sip:999@10.0.0.9>\r\n", "201"},
		{"PAI tel URI", "P-Asserted-Identity: <tel:+4930123456201>\r\n", "+4930123456201"},
		{"PAI display only", "P-Asserted-Identity: \"Anna\" <sip:pbx.example>\r\nContact: <sip:999@10.0.0.9>\r\n", "Anna"},
		{"Contact user", "Contact: \"x\" <sip:202@10.0.0.9:5060;transport=udp>\r\n", "202"},
		{"To display name", "Contact: <sip:10.0.0.9>\r\n", "Reception"},
		{"control characters removed", "P-Asserted-Identity: \"A\\\"\x01b\" <sip:pbx.example>\r\n", "A\"b"},
		{"nothing", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			to := "\"Reception\" <sip:+49301234560@sb>;tag=t1"
			if tt.want == "" {
				to = "<sip:+49301234560@sb>;tag=t1"
			}
			raw := "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK1\r\n" +
				"From: <sip:+4915112345678@carrier>;tag=f1\r\nTo: " + to + "\r\n" +
				"Call-ID: a1\r\nCSeq: 1 INVITE\r\n" + tt.headers + "Content-Length: 0\r\n\r\n"
			m, err := gosip.ParseMessage([]byte(raw))
			if err != nil {
				t.Fatal(err)
			}
			if got := answeredBy(m.(*gosip.Response)); got != tt.want {
				t.Errorf("answeredBy = %q, want %q", got, tt.want)
			}
		})
	}
}
