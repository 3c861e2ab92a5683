package sip

import (
	"bytes"
	"strconv"
	"testing"
	"time"

	"github.com/switchboard-sip/switchboard/cdr"
)

// TestTranscriptHeader: the header named by wrapup.transcript_header is
// kept with the record, from the callee's 200 and from a BYE (SPEC §10),
// on both paths; a call whose messages carry no such header keeps none.
func TestTranscriptHeader(t *testing.T) { onBothPaths(t, testTranscriptHeader) }

func testTranscriptHeader(t *testing.T) {
	withTranscript := func(b []byte) []byte {
		if !bytes.HasPrefix(b, []byte("SIP/2.0 200")) || !bytes.Contains(b, []byte(" INVITE\r\n")) ||
			!bytes.Contains(b, []byte("Call-ID: call-in-200")) {
			return b
		}
		return bytes.Replace(b, []byte("\r\n\r\n"), []byte("\r\nX-Transcript: https://pbx.example/t/1\r\n\r\n"), 1)
	}
	h := startProxy(t, harnessOpts{pbx: shapedPBX(withTranscript),
		options: func(o *Options) { o.TranscriptHeader = "X-Transcript" }})

	byeWith := func(id, header string) {
		dl := h.answerCall(t, id)
		start := h.trunk.count()
		me := h.trunk.addr().String()
		bye := rawReq{method: "BYE", ruri: dl.contact, route: dl.routes, from: dl.from, to: dl.to, callID: id, cseq: 2,
			via: []string{"SIP/2.0/UDP " + me + ";branch=z9hG4bK-" + id + "-bye;rport"}}
		if header != "" {
			bye.extra = []string{"X-Transcript: " + header}
		}
		h.trunk.send(t, h.addr, bye.bytes())
		if _, ok := h.trunk.waitFor(start, 5*time.Second, isRes(200, "BYE", id)); !ok {
			t.Fatalf("%s: the BYE got no 200", id)
		}
		h.waitRecord(t, id, cdr.Answered)
	}
	byeWith("call-in-200", "")
	byeWith("call-in-bye", "Caller thanked the desk")
	byeWith("call-none", "")
	for id, want := range map[string]string{"call-in-200": "https://pbx.example/t/1", "call-in-bye": "Caller thanked the desk", "call-none": ""} {
		if r, _ := h.sink.get(id); r.Transcript != want {
			t.Errorf("%s: transcript %s, want %s", id, strconv.Quote(r.Transcript), strconv.Quote(want))
		}
	}
}
