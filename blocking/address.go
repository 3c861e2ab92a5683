package blocking

import (
	"fmt"
	"net/url"
	"strings"
)

// SIP address entries (SPEC §1, §7 blocking): besides numbers, an entry may
// name one SIP address, "user@host", or a whole domain, "*@host". They are
// matched against the caller's From and P-Asserted-Identity URIs inbound
// and the Request-URI outbound.
//
// Comparison follows RFC 3261 §19.1.4: the user part is case-sensitive and
// compared after %-unescaping, the host is not case-sensitive. So entries
// keep the user as typed (unescaped) and the host in lower case, and a
// lookup lowers the host it is given. A domain entry matches that host
// exactly, not its subdomains: "*@spam.example" does not match
// "sip.spam.example", which may belong to someone else.

// maxAddress bounds an address entry; RFC 1035 limits a host to 253
// characters, and a user part longer than a hundred is no one's.
const (
	maxAddressUser = 128
	maxAddressHost = 253
)

// IsAddress reports whether an entry number is a SIP address or domain
// rather than a number: it holds an @.
func IsAddress(n string) bool { return strings.IndexByte(n, '@') >= 0 }

// IsDomain reports whether the entry matches every address of one host.
func (e Entry) IsDomain() bool { return strings.HasPrefix(e.Number, "*@") }

// NormalizeAddress reads a SIP address typed by a user or written in the
// config ("spam@Example.NET", "sip:spam@example.net", "*@spam.example")
// into the form entries are stored and matched in: "user@host" with the
// user unescaped and the host in lower case, or "*@host". URI parameters
// and a port are refused rather than dropped, so that nobody believes an
// entry is narrower than it is.
func NormalizeAddress(raw string) (string, error) {
	s := strings.TrimSpace(raw)
	for _, scheme := range []string{"sip:", "sips:"} {
		if len(s) >= len(scheme) && strings.EqualFold(s[:len(scheme)], scheme) {
			s = s[len(scheme):]
			break
		}
	}
	user, host, ok := strings.Cut(s, "@")
	switch {
	case !ok:
		return "", fmt.Errorf("address %q: want user@host or *@host", raw)
	case strings.IndexByte(host, '@') >= 0:
		return "", fmt.Errorf("address %q has more than one @", raw)
	case user == "":
		return "", fmt.Errorf("address %q: no user part (a whole domain is *@host)", raw)
	}
	if user != "*" {
		u, err := url.PathUnescape(user)
		if err != nil {
			return "", fmt.Errorf("address %q: user part: %w", raw, err)
		}
		if err := checkAddressUser(u); err != nil {
			return "", fmt.Errorf("address %q: %w", raw, err)
		}
		user = u
	}
	host = strings.ToLower(host)
	if err := checkAddressHost(host); err != nil {
		return "", fmt.Errorf("address %q: %w", raw, err)
	}
	return user + "@" + host, nil
}

// CheckAddress accepts an address entry only in the form NormalizeAddress
// gives, so that the index never holds two spellings of one address.
func CheckAddress(n string) error {
	c, err := NormalizeAddress(n)
	if err != nil {
		return err
	}
	if c != n {
		return fmt.Errorf("address %q: want %q", n, c)
	}
	return nil
}

func checkAddressUser(u string) error {
	if len(u) > maxAddressUser {
		return fmt.Errorf("user part is longer than %d bytes", maxAddressUser)
	}
	for _, r := range u {
		switch {
		case r <= ' ' || r == 0x7f:
			return fmt.Errorf("user part contains a space or control character")
		case r == '*':
			return fmt.Errorf("user part: * stands alone (*@host, a whole domain)")
		case r == '@':
			return fmt.Errorf("user part contains @")
		}
	}
	return nil
}

func checkAddressHost(h string) error {
	switch {
	case h == "":
		return fmt.Errorf("no host")
	case len(h) > maxAddressHost:
		return fmt.Errorf("host is longer than %d bytes", maxAddressHost)
	case h[0] == '[':
		// An IPv6 reference (RFC 3261 §25.1).
		if h[len(h)-1] != ']' || strings.Trim(h[1:len(h)-1], "0123456789abcdef:.") != "" || len(h) < 4 {
			return fmt.Errorf("host %q is not an IPv6 reference", h)
		}
		return nil
	case strings.IndexByte(h, ':') >= 0:
		return fmt.Errorf("host %q: a port is no part of an address", h)
	case strings.IndexByte(h, ';') >= 0:
		return fmt.Errorf("host %q: URI parameters are no part of an address", h)
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("host %q is not a host name", h)
		}
		if strings.Trim(label, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" {
			return fmt.Errorf("host %q is not a host name", h)
		}
	}
	return nil
}

// CheckEntryNumber accepts what an entry may name: a number or prefix
// (CheckNumber) or a SIP address or domain (CheckAddress).
func CheckEntryNumber(n string) error {
	if IsAddress(n) {
		return CheckAddress(n)
	}
	return CheckNumber(n)
}

// LookupAddress decides for the SIP address user@host on a call in
// direction dir: an entry for the address, then one for its host's domain.
// Allow wins over block as for numbers. host may be in any case.
func (ix *Index) LookupAddress(user, host string, dir Direction) Match {
	if ix == nil || ix.addrs == 0 || user == "" || host == "" {
		return Match{}
	}
	m := ix.dirs[dirIndex(dir)]
	// The keys are built in a stack buffer, and a map index with
	// string(bytes) does not allocate: a call costs no garbage here.
	var buf [320]byte
	key := append(append(append(buf[:0], user...), '@'), host...)
	lowerASCII(key[len(user)+1:])
	exact := m[string(key)]
	key = append(append(buf[:0], '*', '@'), key[len(user)+1:]...)
	domain := m[string(key)]
	var block *Entry
	for _, n := range []*node{exact, domain} {
		if n == nil {
			continue
		}
		if n.exactAllow != nil {
			return Match{Entry: n.exactAllow}
		}
		if n.prefixAllow != nil {
			return Match{Entry: n.prefixAllow}
		}
		if block == nil {
			block = n.exactBlock
		}
		if block == nil {
			block = n.prefixBlock
		}
	}
	if block == nil {
		return Match{}
	}
	return Match{Blocked: true, Entry: block}
}

// LookupAddress decides for a SIP address from memory; see
// Index.LookupAddress.
func (s *Store) LookupAddress(user, host string, dir Direction) Match {
	return s.snap.Load().index.LookupAddress(user, host, dir)
}

// Either combines the matches of one call's number and addresses: an
// allow entry in any of them wins, else the first block.
func Either(ms ...Match) Match {
	for _, m := range ms {
		if m.Entry != nil && !m.Blocked {
			return m
		}
	}
	for _, m := range ms {
		if m.Blocked {
			return m
		}
	}
	return Match{}
}

func lowerASCII(b []byte) {
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
}
