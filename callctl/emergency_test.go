package callctl_test

import (
	"context"
	"testing"
	"time"

	"github.com/switchboard-sip/switchboard/callctl"
	"github.com/switchboard-sip/switchboard/configs"
	"github.com/switchboard-sip/switchboard/contacts"
	"github.com/switchboard-sip/switchboard/emergency"
)

type fakeCallbacks map[string]string

func (f fakeCallbacks) Callback(number string, _ time.Time) (string, string, bool) {
	ext, ok := f[number]
	return ext, "rec-" + ext, ok
}

// emergencyPipeline is identify, emergency and a real block list that
// blocks "+49*" both ways and anonymous callers, with "1xx" extensions
// (so that 112 also matches an internal pattern).
func emergencyPipeline(t *testing.T, route string, cb callctl.Callbacks) callctl.Pipeline {
	t.Helper()
	nums, err := contacts.NewNumbers("DE", []string{"1xx", "2xxx"})
	if err != nil {
		t.Fatal(err)
	}
	norm := func(raw, region string) (callctl.Party, error) {
		n, err := nums.Normalize(raw, region)
		return callctl.Party{Raw: n.Raw, E164: n.E164, Internal: n.Internal}, err
	}
	blockCfg := configs.Blocking{Anonymous: "block", Response: 603,
		Entries: []configs.BlockEntry{{Number: "+49*", Action: "block"}}}
	block, err := callctl.NewBlockStage(blockCfg, newBlockStore(t, blockCfg))
	if err != nil {
		t.Fatal(err)
	}
	em := callctl.NewEmergencyStage(callctl.EmergencyOptions{Numbers: emergency.NewNumbers("0", nil), Region: "DE",
		Route: route, Callbacks: cb, Target: func(ext string) string { return "sip:" + ext + "@127.0.0.1:5080" }})
	return callctl.Pipeline{callctl.NewIdentify(norm), em, block}
}

func emergencyCall(ruri string) *callctl.Call {
	return &callctl.Call{Direction: callctl.Outbound, Region: "DE", Signalling: callctl.Signalling{
		RequestURI: callctl.Address{Scheme: "sip", User: ruri, Host: "127.0.0.1"},
		From:       callctl.Address{Scheme: "sip", User: "2001", Host: "127.0.0.1", Display: "Reception"},
	}}
}

// TestEmergencyPassesBlocking: a call to 112 in any form is routed as an
// emergency call although "+49*" is blocked and 112 matches the internal
// pattern 1xx; an ordinary call to a German number is blocked (the
// positive control).
func TestEmergencyPassesBlocking(t *testing.T) {
	p := emergencyPipeline(t, "", nil)
	for _, n := range []string{"112", "0112", "+49112", "110"} {
		c := emergencyCall(n)
		d := p.Run(context.Background(), c)
		if d.Verdict != callctl.Route || d.Target != "" || !c.Emergency {
			t.Errorf("%s: verdict %v target %q emergency %v", n, d.Verdict, d.Target, c.Emergency)
		}
	}
	c := emergencyCall("+4930123456")
	if d := p.Run(context.Background(), c); d.Verdict != callctl.Reject || c.Emergency {
		t.Errorf("ordinary call: verdict %v emergency %v", d.Verdict, c.Emergency)
	}
	c = emergencyCall("911")
	if d := p.Run(context.Background(), c); c.Emergency || d.Verdict == callctl.Route {
		t.Errorf("911 in Germany: verdict %v emergency %v", d.Verdict, c.Emergency)
	}
	// emergency.route is the target when set.
	c = emergencyCall("112")
	if d := emergencyPipeline(t, "sip:psap@127.0.0.1:5999", nil).Run(context.Background(), c); d.Target != "sip:psap@127.0.0.1:5999" {
		t.Errorf("route: %+v", d)
	}
}

// TestEmergencyCallback: an anonymous call to the number an emergency
// call presented goes to the extension past the anonymous block; the same
// call to another number is blocked.
func TestEmergencyCallback(t *testing.T) {
	p := emergencyPipeline(t, "", fakeCallbacks{"+4930123450": "2001"})
	in := func(called string) *callctl.Call {
		return &callctl.Call{Direction: callctl.Inbound, Region: "DE", Signalling: callctl.Signalling{
			RequestURI: callctl.Address{Scheme: "sip", User: called, Host: "127.0.0.1"},
			From:       callctl.Address{Scheme: "sip", User: "anonymous", Host: "anonymous.invalid"},
		}}
	}
	c := in("+4930123450")
	d := p.Run(context.Background(), c)
	if d.Verdict != callctl.Route || d.Target != "sip:2001@127.0.0.1:5080" || c.CallbackOf != "rec-2001" {
		t.Fatalf("callback: %+v, of %q", d, c.CallbackOf)
	}
	c = in("+4930123451")
	if d := p.Run(context.Background(), c); d.Verdict != callctl.Reject || c.CallbackOf != "" {
		t.Fatalf("other number: %+v", d)
	}
}

// TestStagesLetEmergencyPass: each stage that could refuse lets a call
// marked emergency pass even when it runs first.
func TestStagesLetEmergencyPass(t *testing.T) {
	blockCfg := configs.Blocking{Anonymous: "block", Response: 603, Entries: []configs.BlockEntry{{Number: "+49*", Action: "block"}}}
	block, err := callctl.NewBlockStage(blockCfg, newBlockStore(t, blockCfg))
	if err != nil {
		t.Fatal(err)
	}
	c := &callctl.Call{Direction: callctl.Outbound, Called: callctl.Party{Raw: "+49112", E164: "+49112"}}
	if d := block.Handle(context.Background(), c); d.Verdict != callctl.Reject {
		t.Fatalf("control: %+v", d)
	}
	c.Emergency = true
	if d := block.Handle(context.Background(), c); d.Verdict != callctl.Continue {
		t.Fatalf("emergency blocked: %+v", d)
	}
}
