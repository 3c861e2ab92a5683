package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
	_ "time/tzdata" // config time zones must load on hosts without a zoneinfo database

	"github.com/switchboard-sip/switchboard/agent"
	"github.com/switchboard-sip/switchboard/cdr"
	"github.com/switchboard-sip/switchboard/missed"
	"github.com/switchboard-sip/switchboard/stats"
	"github.com/switchboard-sip/switchboard/storage"
	"github.com/switchboard-sip/switchboard/storage/callstore"
	"github.com/switchboard-sip/switchboard/wire"
)

// callsCommand lists call records: switchboard calls -c FILE [--missed]
// [--since DUR] [--limit N] [--json].
func callsCommand(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("calls", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("c", "", "config file (default: the embedded default config)")
	missedOnly := fs.Bool("missed", false, "only missed calls (inbound, no answer or busy) with their missed-call entry")
	since := fs.String("since", "", "only calls started within this duration (24h) or after this RFC 3339 time")
	limit := fs.Int("limit", 50, "at most this many calls, newest first")
	asJSON := fs.Bool("json", false, `print {"items": [...]} as the HTTP API does`)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: switchboard calls [-c FILE] [--missed] [--since DUR] [--limit N] [--json]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "switchboard calls: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return 2
	}
	if *limit < 1 {
		fmt.Fprintf(stderr, "switchboard calls: --limit must be at least 1, got %d\n", *limit)
		return 2
	}
	q := callstore.Query{Missed: *missedOnly}
	if *since != "" {
		t, err := storage.ParseSince(*since, time.Now())
		if err != nil {
			fmt.Fprintf(stderr, "switchboard calls: --since: %v\n", err)
			return 2
		}
		q.Since = t
	}

	cfg, err := loadConfigOrDefault(*path)
	if err != nil {
		fmt.Fprintf(stderr, "switchboard calls: %s\n", oneLine(err))
		return 1
	}
	ctx := context.Background()
	st, err := agent.OpenStores(ctx, cfg, agent.ReadOnly)
	if err != nil {
		fmt.Fprintf(stderr, "switchboard calls: %s\n", oneLine(err))
		return 1
	}
	defer st.Close()
	if st.InProgress != nil {
		fmt.Fprintln(stderr, "switchboard: calls in progress not shown:", st.InProgress)
	}
	store, loc := st.Calls, st.Location

	records, err := store.ListUpTo(ctx, q, *limit)
	if err != nil {
		fmt.Fprintf(stderr, "switchboard calls: %s\n", oneLine(err))
		return 1
	}
	var entries map[string]missed.Entry
	if *missedOnly {
		ids := make([]string, len(records))
		for i, r := range records {
			ids[i] = r.MissedID
		}
		if entries, err = st.MissedEntries(ctx, ids); err != nil {
			fmt.Fprintf(stderr, "switchboard calls: %s\n", oneLine(err))
			return 1
		}
	}
	if *asJSON {
		if err := writeJSON(stdout, wire.NewCallsWithMissed(records, entries, loc)); err != nil {
			fmt.Fprintf(stderr, "switchboard calls: %v\n", err)
			return 1
		}
		return 0
	}
	if err := writeCallTable(stdout, records, entries, loc); err != nil {
		fmt.Fprintf(stderr, "switchboard calls: %v\n", err)
		return 1
	}
	return 0
}

// writeCallTable prints records; with entries (--missed) each row also
// shows its missed-call entry: status, repeat count and the exception that
// kept it from being notified.
func writeCallTable(w io.Writer, records []cdr.Record, entries map[string]missed.Entry, loc *time.Location) error {
	if len(records) == 0 {
		_, err := fmt.Fprintln(w, "no calls")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	head := "STARTED\tDIRECTION\tCALLER\tCALLED\tHOTLINE\tDISPOSITION\tSIP\tRING S\tTALK S"
	if entries != nil {
		head += "\tMISSED\tCOUNT\tEXCEPTION"
	}
	fmt.Fprintln(tw, head)
	for _, r := range records {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.1f\t%.1f",
			r.StartedAt.In(loc).Format("2006-01-02 15:04:05"), cell(string(r.Direction)),
			cell(party(r.Caller, r.CallerRaw)), cell(party(r.Called, r.CalledRaw)), cell(r.Hotline),
			cell(string(r.Disposition)), status(r.SIPStatus),
			float64(r.RingMS)/1000, float64(r.TalkMS)/1000)
		if entries != nil {
			e, ok := entries[r.MissedID]
			if ok {
				fmt.Fprintf(tw, "\t%s\t%d\t%s", e.Status, e.Count, cell(string(e.Exception)))
			} else {
				fmt.Fprint(tw, "\t-\t-\t-")
			}
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

func party(norm, raw string) string {
	if norm != "" {
		return norm
	}
	return raw
}

// cell is a value as a cell of the CLI's text tables.
var cell = stats.TextCell

func status(code int) string {
	if code == 0 {
		return "-"
	}
	return fmt.Sprint(code)
}

// oneLine keeps a multi-line error (config validation lists every problem)
// readable on one line.
func oneLine(err error) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", "; ")), " ")
}
