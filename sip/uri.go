package sip

import gosip "github.com/emiago/sipgo/sip"

// URI is a SIP URI as requests carry it (RFC 3261 §19.1).
type URI = gosip.Uri

// NewURI is a URI from its parts as the config holds them (a port of 0
// leaves it out), with transport as its transport parameter when set: the
// agent builds the PBX's and the trunks' URIs with it, so that only this
// package names sipgo's types.
func NewURI(scheme, user, host string, port int, transport string) URI {
	out := gosip.Uri{Scheme: scheme, User: user, Host: host, Port: port,
		UriParams: gosip.NewParams(), Headers: gosip.NewParams()}
	if transport != "" {
		out.UriParams.Add("transport", transport)
	}
	return out
}
