// Command protos-send sends PROTOS c07-sip INVITE cases to a running
// switchboard on loopback and prints, per group, how many cases were
// answered and dropped, then pings switchboard (OPTIONS) to prove it still
// answers. bench/protos.sh runs it group by group between SIPp calls.
//
//	protos-send -target 127.0.0.1:5060 [-group NAME] [-wait 300ms] [-workers 16]
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"sort"
	"time"

	"github.com/switchboard-sip/switchboard/bench/protos"
)

func main() {
	target := flag.String("target", "127.0.0.1:5060", "switchboard UDP address (loopback only)")
	dir := flag.String("corpus", protos.Dir("."), "protos-c07-sip directory")
	group := flag.String("group", "", "only this group (default: all)")
	wait := flag.Duration("wait", 300*time.Millisecond, "wait for a final response per case")
	workers := flag.Int("workers", 16, "cases in flight")
	limit := flag.Duration("timeout", 10*time.Minute, "hard limit for the whole run")
	flag.Parse()
	if err := run(*target, *dir, *group, *wait, *workers, *limit); err != nil {
		fmt.Fprintln(os.Stderr, "protos-send:", err)
		os.Exit(1)
	}
}

func run(target, dir, group string, wait time.Duration, workers int, limit time.Duration) error {
	addr, err := net.ResolveUDPAddr("udp", target)
	if err != nil {
		return err
	}
	gs, err := protos.Groups(dir)
	if err != nil {
		return err
	}
	var sel []protos.Group
	for _, g := range gs {
		if group == "" || g.Name == group {
			sel = append(sel, g)
		}
	}
	if len(sel) == 0 {
		return fmt.Errorf("no group %q", group)
	}
	in := func(n int) bool {
		for _, g := range sel {
			if n >= g.First && n < g.First+g.Count {
				return true
			}
		}
		return false
	}
	cases, err := protos.Load(dir, in)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	byN := map[int]protos.Case{}
	for _, c := range cases {
		byN[c.N] = c
	}
	failed := false
	for _, g := range sel {
		var gc []protos.Case
		for n := g.First; n < g.First+g.Count; n++ {
			if c, ok := byN[n]; ok {
				gc = append(gc, c)
			}
		}
		start := time.Now()
		res, err := protos.Run(ctx, gc, protos.Options{Target: addr, Wait: wait, Workers: workers})
		if err != nil {
			return fmt.Errorf("group %s: %w", g.Name, err)
		}
		answered, dropped, unsent := 0, 0, 0
		codes := map[int]int{}
		for _, r := range res {
			switch {
			case r.Err != nil:
				unsent++
			case r.Answered():
				answered++
				codes[r.Final()]++
			default:
				dropped++
			}
		}
		alive := "answers"
		if err := protos.Ping(addr, 5*time.Second); err != nil {
			alive = "STALLED: " + err.Error()
			failed = true
		}
		fmt.Printf("%-32s cases %4d answered %4d dropped %4d unsendable %3d finals %s  %s  %s\n",
			g.Name, len(res), answered, dropped, unsent, fmtCodes(codes), time.Since(start).Round(time.Millisecond), alive)
	}
	if failed {
		return fmt.Errorf("switchboard stopped answering")
	}
	return nil
}

func fmtCodes(m map[int]int) string {
	var ks []int
	for k := range m {
		ks = append(ks, k)
	}
	sort.Ints(ks)
	s := "{"
	for i, k := range ks {
		if i > 0 {
			s += " "
		}
		if k == 0 {
			s += fmt.Sprintf("1xx-only:%d", m[k])
		} else {
			s += fmt.Sprintf("%d:%d", k, m[k])
		}
	}
	return s + "}"
}
