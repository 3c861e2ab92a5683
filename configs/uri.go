package configs

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// URI is a SIP or SIPS URI from the config (RFC 3261 §19.1), reduced to
// what a proxy needs to send a request there.
type URI struct {
	Scheme    string // sip or sips
	User      string // optional user part
	Host      string // IP address (IPv6 without brackets) or host name
	Port      int    // 0 when not written
	Transport string // udp, tcp or tls from ;transport=, lower case; empty when absent
	Raw       string // as written
}

// IsZero reports whether the URI was left empty in the config.
func (u URI) IsZero() bool { return u.Raw == "" }

// String returns the URI as written.
func (u URI) String() string { return u.Raw }

// HostPort is host:port with the default port of the scheme filled in
// (5060 for sip, 5061 for sips).
func (u URI) HostPort() string {
	return net.JoinHostPort(u.Host, strconv.Itoa(u.port()))
}

// AddrPort is the URI's address when its host is an IP literal.
func (u URI) AddrPort() (netip.AddrPort, bool) {
	ip, err := netip.ParseAddr(u.Host)
	if err != nil {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(ip.Unmap(), uint16(u.port())), true
}

func (u URI) port() int {
	switch {
	case u.Port != 0:
		return u.Port
	case u.Scheme == "sips":
		return 5061
	}
	return 5060
}

// ParseURI reads sip:[user@]host[:port][;params]. Headers (?…) are refused:
// a proxy target never carries them.
func ParseURI(s string) (URI, error) {
	u := URI{Raw: s}
	scheme, rest, ok := strings.Cut(s, ":")
	u.Scheme = strings.ToLower(scheme)
	if !ok || (u.Scheme != "sip" && u.Scheme != "sips") {
		return URI{}, fmt.Errorf("%q is not a SIP URI (want sip:host:port)", s)
	}
	if strings.ContainsAny(rest, "? \t\r\n") {
		return URI{}, fmt.Errorf("%q: headers and spaces are not allowed in a SIP URI", s)
	}
	rest, params, _ := strings.Cut(rest, ";")
	if at := strings.LastIndexByte(rest, '@'); at >= 0 {
		u.User, rest = rest[:at], rest[at+1:]
		if u.User == "" {
			return URI{}, fmt.Errorf("%q: empty user part", s)
		}
	}
	host, port, err := splitHostPort(rest)
	if err != nil {
		return URI{}, fmt.Errorf("%q: %w", s, err)
	}
	if port == 0 {
		return URI{}, fmt.Errorf("%q: port 0 cannot be sent to", s)
	}
	u.Host, u.Port = host, max(port, 0)
	for p := range strings.SplitSeq(params, ";") {
		if p == "" {
			continue
		}
		name, val, _ := strings.Cut(p, "=")
		if strings.EqualFold(name, "transport") {
			u.Transport = strings.ToLower(val)
			switch u.Transport {
			case "udp", "tcp", "tls":
			default:
				return URI{}, fmt.Errorf("%q: transport must be udp, tcp or tls", s)
			}
		}
	}
	return u, nil
}

// Listener is one SIP listening socket from sip.listen.
type Listener struct {
	Network string // udp, tcp or tls
	Host    string // IP address, host name, or a wildcard (0.0.0.0, ::)
	Port    int
}

// Addr is host:port for net.Listen.
func (l Listener) Addr() string { return net.JoinHostPort(l.Host, strconv.Itoa(l.Port)) }

// String is the listener as written in the config.
func (l Listener) String() string { return l.Network + "://" + l.Addr() }

// Wildcard reports whether the listener binds every interface, in which
// case its host cannot be advertised in Via and Record-Route.
func (l Listener) Wildcard() bool {
	ip, err := netip.ParseAddr(l.Host)
	return err == nil && ip.IsUnspecified()
}

// parseListener reads udp://host:port, tcp://… or tls://…; the port
// defaults to 5060 (5061 for tls). Port 0 asks the system for a free port,
// which tests use.
func parseListener(s string) (Listener, error) {
	network, rest, ok := strings.Cut(s, "://")
	network = strings.ToLower(network)
	if !ok || (network != "udp" && network != "tcp" && network != "tls") {
		return Listener{}, fmt.Errorf("%q is not a listen URL (want udp://host:port, tcp://host:port or tls://host:port)", s)
	}
	host, port, err := splitHostPort(rest)
	if err != nil {
		return Listener{}, fmt.Errorf("%q: %w", s, err)
	}
	if port < 0 {
		port = 5060
		if network == "tls" {
			port = 5061
		}
	}
	return Listener{Network: network, Host: host, Port: port}, nil
}

// splitHostPort reads host[:port] with IPv6 in brackets. The port is -1
// when absent.
func splitHostPort(s string) (string, int, error) {
	var host, port string
	switch {
	case strings.HasPrefix(s, "["):
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return "", 0, errors.New("missing ] after IPv6 address")
		}
		host, port = s[1:end], s[end+1:]
		if ip, err := netip.ParseAddr(host); err != nil || !ip.Is6() {
			return "", 0, fmt.Errorf("%q is not an IPv6 address", host)
		}
		if port != "" {
			if port[0] != ':' {
				return "", 0, errors.New("unexpected text after ]")
			}
			port = port[1:]
		}
	case strings.Count(s, ":") > 1:
		return "", 0, errors.New("IPv6 addresses must be written in brackets: [::1]:5060")
	default:
		host, port, _ = strings.Cut(s, ":")
		if !validHost(host) {
			return "", 0, fmt.Errorf("%q is not a valid host", host)
		}
	}
	if port == "" {
		if strings.HasSuffix(s, ":") {
			return "", 0, errors.New("empty port")
		}
		return host, -1, nil
	}
	p, err := strconv.Atoi(port)
	if err != nil || !allDigits(port) || p > 65535 {
		return "", 0, fmt.Errorf("port %q is not a number from 0 to 65535", port)
	}
	return host, p, nil
}

// validHost accepts an IP address or a DNS name (RFC 1123 labels).
func validHost(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	if _, err := netip.ParseAddr(h); err == nil {
		return true
	}
	labels := strings.Split(strings.TrimSuffix(h, "."), ".")
	if strings.Trim(labels[len(labels)-1], "0123456789") == "" {
		return false // a numeric top label is a mistyped IP address, not a name
	}
	for _, label := range labels {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}
