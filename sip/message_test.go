package sip

import (
	"strconv"
	"testing"
	"time"

	gosip "github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/callctl"
	"github.com/switchboard-sip/switchboard/cdr"
)

// textSink is a MessageRecorder that hands each Text to the test.
type textSink chan callctl.Text

func (s textSink) Record(t callctl.Text) cdr.Message {
	s <- t
	return cdr.Message{}
}

var _ MessageRecorder = (*callctl.TextRecorder)(nil)

// TestMessageRecorded: an out-of-dialog MESSAGE routed either way is
// handed to the recorder once, after its final response was relayed,
// with its direction, trunk, addresses, body and that response's code
// (SPEC §2); an OPTIONS routed the same way is not.
func TestMessageRecorded(t *testing.T) {
	out := newPeer(t, func(p *udpPeer, d datagram) {
		if req, ok := peerRequest(d); ok {
			reply(p, d.from, gosip.NewResponseFromRequest(req, 480, "Temporarily Unavailable", nil))
		}
	})
	texts := make(textSink, 4)
	h := startProxy(t, harnessOpts{routing: func(r *Routing) {
		withOutbound(t, out)(r)
		r.Messages = texts
	}})
	self := h.addr.String()
	send := func(from *udpPeer, method, ruri, id, body string) {
		me := from.addr().String()
		msg := method + " " + ruri + " SIP/2.0\r\n" +
			"Via: SIP/2.0/UDP " + me + ";branch=z9hG4bK-" + id + ";rport\r\nMax-Forwards: 70\r\n" +
			"From: <sip:+4930111222@carrier.example>;tag=" + id + "\r\nTo: <" + ruri + ">\r\n" +
			"Call-ID: " + id + "\r\nCSeq: 1 " + method + "\r\n" +
			"Content-Type: text/plain;charset=UTF-8\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
		start := from.count()
		from.send(t, h.addr, []byte(msg))
		if _, ok := from.waitFor(start, 5*time.Second, func(d datagram) bool {
			return rawCallID(d.b) == id && resStatus(d.b) >= 200
		}); !ok {
			t.Fatalf("%s %s: no final response", method, id)
		}
	}
	tests := []struct {
		from         *udpPeer
		ruri, id     string
		dir          callctl.Direction
		status       int
		calledUser   string
		wantRecorded bool
		method       string
	}{
		{h.trunk, "sip:201@" + self, "text-in", callctl.Inbound, 200, "201", true, "MESSAGE"},
		{h.pbx, "sip:+4930999888@" + self, "text-out", callctl.Outbound, 480, "+4930999888", true, "MESSAGE"},
		{h.pbx, "sip:+4930999888@" + self, "options-out", callctl.Outbound, 480, "", false, "OPTIONS"},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			send(tt.from, tt.method, tt.ruri, tt.id, "hello "+tt.id)
			if !tt.wantRecorded {
				// A MESSAGE after it: the next record must be that one's.
				send(tt.from, "MESSAGE", tt.ruri, tt.id+"-after", "after")
				if got := next(t, texts); got.CallID != tt.id+"-after" {
					t.Fatalf("%s recorded: %+v", tt.method, got)
				}
				return
			}
			got := next(t, texts)
			if got.CallID != tt.id || got.Direction != tt.dir || got.Trunk != "carrier" || got.Region != "DE" ||
				got.Node != "torture" || got.Status != tt.status || string(got.Body) != "hello "+tt.id ||
				got.ContentType != "text/plain;charset=UTF-8" || got.At.IsZero() {
				t.Errorf("recorded %+v", got)
			}
			if got.Signalling.From.User != "+4930111222" || got.Signalling.RequestURI.User != tt.calledUser {
				t.Errorf("addresses: From %+v, Request-URI %+v", got.Signalling.From, got.Signalling.RequestURI)
			}
			if got.Trusted != (tt.dir == callctl.Inbound) {
				t.Errorf("trusted %v for %s", got.Trusted, tt.dir)
			}
		})
	}
}

func next(t *testing.T, texts textSink) callctl.Text {
	t.Helper()
	select {
	case got := <-texts:
		return got
	case <-time.After(5 * time.Second):
		t.Fatal("no message recorded")
	}
	return callctl.Text{}
}
