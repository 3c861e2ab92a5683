package sip

import (
	"time"

	gosip "github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/callctl"
	"github.com/switchboard-sip/switchboard/cdr"
)

// MessageRecorder records routed MESSAGE requests (SPEC §2);
// *callctl.TextRecorder implements it. It is called once the final
// response has been relayed and must not wait for the disk.
type MessageRecorder interface {
	Record(t callctl.Text) cdr.Message
}

// recordMessage hands an out-of-dialog MESSAGE (RFC 3428) that went on by
// direction, and the final status relayed for it, to the recorder. The
// UDP fast path hands every MESSAGE to sipgo, so this is the one place.
func (p *Proxy) recordMessage(req *gosip.Request, status int, at time.Time) {
	r := p.routing.Load()
	if r.Messages == nil {
		return
	}
	dir, trunk := r.classifyRequest(req)
	t := callctl.Text{Direction: dir, Node: r.Node, Signalling: Signalling(req), Body: req.Body(), Status: status, At: at}
	if id := req.CallID(); id != nil {
		t.CallID = id.Value()
	}
	if ct := req.ContentType(); ct != nil {
		t.ContentType = ct.Value()
	}
	if trunk != nil {
		t.Trunk, t.Region = trunk.Name, trunk.Region
		t.Trusted = dir == callctl.Inbound && trunk.Trust
	}
	r.Messages.Record(t)
}
