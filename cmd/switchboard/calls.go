package main

import (
	"github.com/switchboard-sip/switchboard/cdr"

	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"
	_ "time/tzdata" // config time zones must load on hosts without a zoneinfo database

	"go.uber.org/zap"

	"github.com/switchboard-sip/switchboard/configs"
	"github.com/switchboard-sip/switchboard/missed"
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

	var cfg *configs.Config
	var err error
	if *path == "" {
		cfg = configs.Default()
	} else if cfg, err = configs.Load(*path); err != nil {
		fmt.Fprintf(stderr, "switchboard calls: %s\n", oneLine(err))
		return 1
	}
	loc, err := configLocation(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "switchboard calls: timezone: %v\n", err)
		return 1
	}
	ctx := context.Background()
	store, db, closeStore, err := openCallStore(ctx, cfg.Storage.Driver, cfg.Storage.DSN)
	if err != nil {
		fmt.Fprintf(stderr, "switchboard calls: %s\n", oneLine(err))
		return 1
	}
	defer closeStore()

	records, err := listCalls(ctx, store, q, *limit)
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
		if entries, err = missed.Lookup(ctx, db, ids); err != nil {
			fmt.Fprintf(stderr, "switchboard calls: %s\n", oneLine(err))
			return 1
		}
	}
	if *asJSON {
		type item struct {
			wire.Call
			Missed *wire.Missed `json:"missed,omitempty"`
		}
		out := struct {
			Items []item `json:"items"`
		}{Items: make([]item, len(records))}
		for i, r := range records {
			out.Items[i].Call = wire.NewCall(r, loc)
			if e, ok := entries[r.MissedID]; ok {
				m := wire.NewMissed(e, loc)
				out.Items[i].Missed = &m
			}
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
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

// configLocation is the configured time zone; configs may have loaded it
// already.
func configLocation(cfg *configs.Config) (*time.Location, error) {
	if cfg.Location != nil {
		return cfg.Location, nil
	}
	if cfg.Timezone == "" {
		return time.UTC, nil
	}
	return time.LoadLocation(cfg.Timezone)
}

// openCallStore opens an existing database: a command that only reads must
// not leave an empty database behind when the DSN points to the wrong place.
func openCallStore(ctx context.Context, driver, dsn string) (*callstore.Store, *storage.DB, func(), error) {
	if driver == "sqlite" {
		file := strings.TrimPrefix(dsn, "file:")
		file, _, _ = strings.Cut(file, "?")
		if file != ":memory:" {
			if _, err := os.Stat(file); err != nil {
				return nil, nil, nil, fmt.Errorf("database %s (storage.dsn): %w", file, err)
			}
		}
	}
	db, err := storage.Open(driver, dsn)
	if err != nil {
		return nil, nil, nil, err
	}
	store, err := callstore.New(ctx, db, zap.NewNop())
	if err != nil {
		db.Close()
		return nil, nil, nil, err
	}
	// A running node's calls in progress are in its journal, not yet in
	// the database: they are shown, never written from here.
	if p := callstore.JournalPath(driver, dsn); p != "" {
		if err := store.ReadJournal(ctx, p); err != nil {
			fmt.Fprintln(os.Stderr, "switchboard: calls in progress not shown:", err)
		}
	}
	return store, db, func() {
		store.Close(ctx)
		db.Close()
	}, nil
}

// listCalls pages through the store until limit records are read.
func listCalls(ctx context.Context, store *callstore.Store, q callstore.Query, limit int) ([]cdr.Record, error) {
	var out []cdr.Record
	for len(out) < limit {
		q.Limit = limit - len(out)
		items, next, err := store.List(ctx, q)
		if err != nil {
			return nil, err
		}
		out = append(out, items...)
		if next == "" {
			break
		}
		q.Cursor = next
	}
	return out, nil
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

// cell keeps the table aligned: empty values would collapse a column, and
// control characters from the network must not reach a terminal.
func cell(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return -1
		}
		return r
	}, s)
	if s == "" {
		return "-"
	}
	return s
}

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
