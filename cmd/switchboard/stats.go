package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/switchboard-sip/switchboard/agent"
	"github.com/switchboard-sip/switchboard/configs"
	"github.com/switchboard-sip/switchboard/stats"
)

const statsUsage = `usage: switchboard stats [-c FILE] [--since DUR] [--until TIME] [--hotline NAME] [--campaign NAME] [--contact ID|NUMBER] [--json|--csv]
       switchboard stats [-c FILE] --rebuild

Front-desk figures (SPEC §10) of inbound calls: per hotline and campaign,
per day and hour of the week, the most frequent callers, wrap-up reasons
satisfaction and the share resolved. --contact narrows every figure to
one contact, given by its id or one of its numbers in any format.
--rebuild recomputes the per-day rollups the figures are read from
(done by itself when the timezone changes). The
default range is the last 30 days in the configured
time zone. --json prints what GET /api/stats answers, --csv what it
answers with Accept: text/csv.
`

// statsCommand is `switchboard stats` (SPEC §6).
func statsCommand(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("stats", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("c", "", "config file (default: the embedded default config)")
	since := fs.String("since", "", "start: a duration back from now (168h) or an RFC 3339 time (default: 30 days)")
	until := fs.String("until", "", "end: a duration back from now or an RFC 3339 time (default: now)")
	hotline := fs.String("hotline", "", "only this hotline's calls")
	campaign := fs.String("campaign", "", "only this campaign's calls")
	contact := fs.String("contact", "", "only this contact's calls: its id or one of its numbers")
	asJSON := fs.Bool("json", false, "print JSON as GET /api/stats does")
	asCSV := fs.Bool("csv", false, "print CSV with a header row")
	rebuild := fs.Bool("rebuild", false, "recompute the statistics' per-day rollups from the calls")
	fs.Usage = func() {
		fmt.Fprint(stderr, statsUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	switch {
	case fs.NArg() > 0:
		fmt.Fprintf(stderr, "switchboard stats: unexpected argument %q\n", fs.Arg(0))
		return 2
	case *asJSON && *asCSV:
		fmt.Fprintln(stderr, "switchboard stats: --json and --csv exclude each other")
		return 2
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "switchboard stats: %s\n", oneLine(err))
		return 1
	}
	ctx := context.Background()
	cli, err := openContactsCLI(ctx, *path, agent.ReadWrite)
	if err != nil {
		return fail(err)
	}
	defer cli.close()
	flags := map[string]string{"since": *since, "until": *until, "hotline": *hotline, "campaign": *campaign}
	f, err := stats.ParseFilter(func(k string) string { return flags[k] }, time.Now(), cli.loc)
	if err != nil {
		fmt.Fprintf(stderr, "switchboard stats: --%s\n", err)
		return 2
	}
	if *contact != "" {
		if f.ContactID, err = cli.store.FindID(ctx, *contact, cli.numbers, cli.region); err != nil {
			return fail(fmt.Errorf("--contact: %w", err))
		}
	}
	calls := cli.st.Calls
	if cli.st.InProgress != nil {
		fmt.Fprintln(stderr, "switchboard: calls in progress not shown:", cli.st.InProgress)
	}
	if err := calls.EnableRollups(ctx, cli.loc); err != nil {
		return fail(err)
	}
	if *rebuild {
		t0 := time.Now()
		n, err := calls.RebuildRollups(ctx)
		if err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "rollups rebuilt in %s from %d inbound calls (timezone %s)\n", time.Since(t0).Round(time.Millisecond), n, cli.loc)
		return 0
	}
	r, err := calls.Stats(ctx, f)
	if err != nil {
		return fail(err)
	}
	cli.st.CompleteStats(ctx, &r)
	switch {
	case *asJSON:
		err = writeJSON(stdout, r)
	case *asCSV:
		err = stats.WriteCSV(stdout, r)
	default:
		err = stats.WriteText(stdout, r)
	}
	if err != nil {
		return fail(err)
	}
	return 0
}

// loadConfigOrDefault is the config of -c FILE, or the embedded default.
func loadConfigOrDefault(path string) (*configs.Config, error) {
	if path == "" {
		return configs.Default(), nil
	}
	return configs.Load(path)
}
