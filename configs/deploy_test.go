package configs

import (
	"net/netip"
	"path/filepath"
	"testing"
)

// TestDeployNodesLoad: the two node configs of the README's "Several
// nodes" load, name the balancer both in record_route and in balancers,
// and differ only in node, listen and http.listen.
func TestDeployNodesLoad(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "deploy", "nodes", "*.yaml"))
	if err != nil || len(files) != 2 {
		t.Fatalf("deploy/nodes: %v %v, want two node configs", files, err)
	}
	var nodes []*Config
	for _, f := range files {
		c, err := Load(f)
		if err != nil {
			t.Fatalf("Load(%s):\n%v", f, err)
		}
		lb := netip.MustParseAddrPort(c.SIP.RecordRoute)
		if !c.SIP.BalancerSources.Matches(lb) {
			t.Errorf("%s: sip.balancers does not hold the record_route balancer %s", f, lb)
		}
		if c.Storage.Driver != "postgres" {
			t.Errorf("%s: storage.driver %q, want postgres", f, c.Storage.Driver)
		}
		nodes = append(nodes, c)
	}
	a, b := nodes[0], nodes[1]
	if a.Node == b.Node || a.SIP.Listeners[0] == b.SIP.Listeners[0] || a.HTTP.Listen == b.HTTP.Listen {
		t.Errorf("the nodes share a name, SIP or HTTP address: %s/%s %v/%v %s/%s",
			a.Node, b.Node, a.SIP.Listeners, b.SIP.Listeners, a.HTTP.Listen, b.HTTP.Listen)
	}
	if a.Storage.DSN != b.Storage.DSN || a.SIP.PBX != b.SIP.PBX || a.SIP.RecordRoute != b.SIP.RecordRoute {
		t.Error("the nodes differ in their database, PBX or balancer")
	}
}
