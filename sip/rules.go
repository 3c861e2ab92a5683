package sip

import (
	gosip "github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/callctl"
)

// The proxy rules of SPEC §1 that both paths apply, each written once:
// the sipgo path calls them with sipgo's parsed values, the fast path with
// the index's byte spans (hence the string-or-bytes type parameters, which
// keep the fast path free of allocations). Other rules shared as functions
// live where they are used: crossingRequests (a 200 crossing a CANCEL),
// fallbackFor and waiting (failover), decidedCall (the hand-over).

// stampRule says what a proxy writes into the top Via of a request it
// received (RFC 3261 §18.2.1, RFC 3581 §4): rport gets the source port
// when the sender asked for it, and received the source address whenever
// rport was asked for, even when it equals sent-by, or when sent-by is not
// the source address.
func stampRule(rportAsked, sentByIsSource bool) (fillRport, addReceived bool) {
	return rportAsked, rportAsked || !sentByIsSource
}

// hopRule is where a response goes for a Via (RFC 3261 §18.2.2, RFC 3581
// §4): received, else the sent-by host; rport, else the sent-by port,
// else 5060.
func hopRule[T ~string | ~[]byte](host, received T, port, rport int) (T, int) {
	if len(received) > 0 {
		host = received
	}
	if rport != 0 {
		port = rport
	}
	if port == 0 {
		port = 5060
	}
	return host, port
}

// relayRule says whether a response from downstream goes upstream at all:
// a proxy never forwards a 100 (RFC 3261 §16.7 item 5).
func relayRule(status int) bool { return status != gosip.StatusTrying }

// verdictCode is the final response for a call the pipeline rejected:
// the stage's code when it is a final error (3xx-6xx), else 603 Decline.
func verdictCode(d callctl.Decision) int {
	if d.Code < 300 || d.Code > 699 {
		return gosip.StatusGlobalDecline
	}
	return d.Code
}
