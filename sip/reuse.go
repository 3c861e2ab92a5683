package sip

import (
	"strings"
	"sync"

	gosip "github.com/emiago/sipgo/sip"
)

// maxPeers bounds the remembered TCP/TLS peers; beyond it the oldest
// knowledge is dropped at once (a phone then gets a new connection, as
// before this existed).
const maxPeers = 100000

// peers remembers, for TCP and TLS, which connection a peer opened to us
// under the address it advertises (Contact, Via sent-by): a phone behind
// NAT can be reached only over the connection it opened (RFC 5923's
// problem; SPEC §1 asks to reuse it while it is up).
type peers struct {
	mu sync.Mutex
	m  map[string]string // network|advertised host:port → source host:port
}

func reliable(network string) bool {
	n := strings.ToLower(network)
	return n == "tcp" || n == "tls"
}

// learn notes the connection a request arrived on under the addresses the
// sender advertised.
func (ps *peers) learn(req *gosip.Request) {
	network := req.Transport()
	src := req.Source()
	if !reliable(network) || src == "" {
		return
	}
	var keys []string
	if c := req.Contact(); c != nil {
		keys = append(keys, uriHostPort(c.Address, network))
	}
	if v := req.Via(); v != nil {
		keys = append(keys, joinHostPort(v.Host, portOr(v.Port, network)))
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.m == nil || len(ps.m) > maxPeers {
		ps.m = map[string]string{}
	}
	for _, k := range keys {
		if k != src {
			ps.m[strings.ToLower(network)+"|"+k] = src
		}
	}
}

func (ps *peers) lookup(network, addr string) (string, bool) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	src, ok := ps.m[strings.ToLower(network)+"|"+addr]
	return src, ok
}

func (ps *peers) forget(network, addr string) {
	ps.mu.Lock()
	delete(ps.m, strings.ToLower(network)+"|"+addr)
	ps.mu.Unlock()
}

func portOr(port int, network string) int {
	if port != 0 {
		return port
	}
	if strings.EqualFold(network, "tls") {
		return 5061
	}
	return 5060
}

func uriHostPort(u gosip.Uri, network string) string {
	return joinHostPort(u.Host, portOr(u.Port, network))
}

// reuse points a request that goes over TCP or TLS at the connection its
// next hop opened to us, when that connection is still up.
func (p *Proxy) reuse(req *gosip.Request) {
	network := req.Transport()
	if !reliable(network) {
		return
	}
	hop := req.Recipient
	if r := req.Route(); r != nil {
		hop = r.Address
	}
	addr := uriHostPort(hop, network)
	src, ok := p.peers.lookup(network, addr)
	if !ok {
		return
	}
	c, err := p.ua.TransportLayer().GetConnection(network, src)
	if err != nil {
		p.peers.forget(network, addr)
		return
	}
	_, _ = c.TryClose() // GetConnection took a reference
	req.SetDestination(src)
}
