package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"time"

	"github.com/switchboard-sip/switchboard/agent"
)

// explainCommand is a dry run of the whole decision for one call: nothing
// is stored, no contact is created, no SIP is sent (agent.Explain).
func explainCommand(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("explain", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("c", "", "config file")
	from := fs.String("from", "", "calling number, as the caller sends it, or a SIP address (user@host)")
	to := fs.String("to", "", "called number, as the caller sends it")
	name := fs.String("name", "", "display name the caller sends")
	source := fs.String("source", "", "IP[:PORT] the INVITE comes from (default: the first trunk)")
	at := fs.String("at", "", "time of the call, RFC 3339 or 2006-01-02T15:04 in the config's zone (default now)")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *from == "" || *to == "" {
		fmt.Fprintln(stderr, "switchboard explain: --from and --to are required")
		return 2
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	when, err := parseAt(*at, cfg.Location)
	if err != nil {
		fmt.Fprintln(stderr, "switchboard explain: --at:", err)
		return 2
	}
	src, err := explainSource(*source)
	if err != nil {
		fmt.Fprintln(stderr, "switchboard explain:", err)
		return 2
	}
	ex, err := agent.Explain(context.Background(), cfg, agent.Query{From: *from, To: *to, Name: *name, Source: src, At: when})
	if err != nil {
		fmt.Fprintln(stderr, "switchboard explain:", err)
		return 1
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(ex); err != nil {
			return 1
		}
		return 0
	}
	ex.WriteText(stdout)
	return 0
}

func parseAt(s string, loc *time.Location) (time.Time, error) {
	if s == "" {
		return time.Now(), nil
	}
	if loc == nil {
		loc = time.UTC
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.ParseInLocation("2006-01-02T15:04", s, loc)
}

// explainSource is --source: an IP, or IP:PORT; empty means a trunk's.
func explainSource(s string) (netip.AddrPort, error) {
	if s == "" {
		return netip.AddrPort{}, nil
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap, nil
	}
	ip, err := netip.ParseAddr(s)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("--source %q: not an IP or IP:PORT", s)
	}
	return netip.AddrPortFrom(ip, 5060), nil
}
