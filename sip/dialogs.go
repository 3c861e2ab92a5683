package sip

import (
	"sync"
	"time"

	gosip "github.com/emiago/sipgo/sip"
)

// dialogs remembers, for calls answered through this process, where each
// side's Contact is. Compliant user agents never need it: they route
// in-dialog requests by the Route set. It rescues the ones that send them
// back to our address without a Route (SIPp's built-in scenarios do).
type dialogs struct {
	mu sync.Mutex
	m  map[string]*dialog
}

type dialog struct {
	callerTag string
	caller    gosip.Uri // Contact of the INVITE
	callee    gosip.Uri // Contact of the 2xx
	at        time.Time
}

func (d *dialogs) add(invite *gosip.Request, ok *gosip.Response) {
	from, c1, c2 := invite.From(), invite.Contact(), ok.Contact()
	id := invite.CallID()
	if from == nil || c1 == nil || c2 == nil || id == nil {
		return
	}
	tag, _ := from.Params.Get("tag")
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.m == nil {
		d.m = map[string]*dialog{}
	}
	d.m[id.Value()] = &dialog{callerTag: tag, caller: *c1.Address.Clone(), callee: *c2.Address.Clone(), at: time.Now()}
}

// target returns where a request of a known dialog goes: to the side that
// did not send it.
func (d *dialogs) target(req *gosip.Request) (gosip.Uri, bool) {
	id, from := req.CallID(), req.From()
	if id == nil || from == nil {
		return gosip.Uri{}, false
	}
	d.mu.Lock()
	dl := d.m[id.Value()]
	d.mu.Unlock()
	if dl == nil {
		return gosip.Uri{}, false
	}
	if tag, _ := from.Params.Get("tag"); tag == dl.callerTag {
		return dl.callee, true
	}
	return dl.caller, true
}

func (d *dialogs) remove(callID string) {
	d.mu.Lock()
	delete(d.m, callID)
	d.mu.Unlock()
}

// expire forgets dialogs older than max.
func (d *dialogs) expire(max time.Duration) {
	cut := time.Now().Add(-max)
	d.mu.Lock()
	defer d.mu.Unlock()
	for k, v := range d.m {
		if v.at.Before(cut) {
			delete(d.m, k)
		}
	}
}
