package sip

import (
	"strings"
	"testing"

	gosip "github.com/emiago/sipgo/sip"
)

func TestTidyLWS(t *testing.T) {
	plain := "INVITE sip:a@b SIP/2.0\r\nFrom: <sip:x@y>;tag=1\r\nContent-Length: 0\r\n\r\n"
	if got := tidyLWS([]byte(plain)); string(got) != plain {
		t.Errorf("a plain message was rewritten:\n%q", got)
	}
	loose := "INVITE sip:a@b SIP/2.0\r\n" +
		"from   : \"J \\\"R\\\" = ; x\"   <sip:j@example.com>\r\n  ;\r\n  tag = 98asjd8\r\n" +
		"To: <sip:b@c> ;  tag  = t1\r\n" +
		"Via: SIP / 2.0 / UDP 192.0.2.2 ; branch = z9hG4bK1\r\n" +
		"Call-ID: c\r\nCSeq: 1 INVITE\r\nSubject: a = b\r\nContent-Length: 4\r\n\r\nbody"
	got := string(tidyLWS([]byte(loose)))
	for _, want := range []string{
		`from: "J \"R\" = ; x"`, // quoted text untouched
		`<sip:j@example.com>;tag=98asjd8`,
		"To: <sip:b@c>;tag=t1",
		"Via: SIP/2.0/UDP 192.0.2.2;branch=z9hG4bK1",
		"Subject: a = b", // not an address header: left alone
		"\r\n\r\nbody",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("tidied message lacks %q:\n%s", want, got)
		}
	}
	msg, err := gosip.ParseMessage([]byte(got))
	if err != nil {
		t.Fatal(err)
	}
	if tag, _ := msg.(*gosip.Request).From().Params.Get("tag"); tag != "98asjd8" {
		t.Errorf("From tag after tidying = %q", tag)
	}
}
