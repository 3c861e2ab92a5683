package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/switchboard-sip/switchboard/configs"
	"github.com/switchboard-sip/switchboard/stats"
	"github.com/switchboard-sip/switchboard/web"
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
	cli, err := openContactsCLI(ctx, *path, false)
	if err != nil {
		return fail(err)
	}
	defer cli.close()
	cfg, err := loadConfigOrDefault(*path)
	if err != nil {
		return fail(err)
	}
	flags := map[string]string{"since": *since, "until": *until, "hotline": *hotline, "campaign": *campaign}
	f, err := web.StatsFilter(func(k string) string { return flags[k] }, time.Now(), cli.loc)
	if err != nil {
		fmt.Fprintf(stderr, "switchboard stats: --%s\n", err)
		return 2
	}
	if *contact != "" {
		if f.ContactID, err = cli.contactID(ctx, *contact); err != nil {
			return fail(fmt.Errorf("--contact: %w", err))
		}
	}
	calls, _, closeCalls, err := openCallStore(ctx, cfg.Storage.Driver, cfg.Storage.DSN)
	if err != nil {
		return fail(err)
	}
	defer closeCalls()
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
	r.Complete(web.Companies(cfg.Hotlines), web.ContactCaller(ctx, cli.store))
	switch {
	case *asJSON:
		err = writeJSON(stdout, r)
	case *asCSV:
		err = stats.WriteCSV(stdout, r)
	default:
		err = writeStatsText(stdout, r)
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

// writeStatsText prints the figures for reading on a terminal.
func writeStatsText(w io.Writer, r stats.Report) error {
	pct := func(v float64) string { return strconv.FormatFloat(100*v, 'f', 1, 64) + "%" }
	sec := func(ms int64) string { return strconv.FormatFloat(float64(ms)/1000, 'f', 1, 64) + "s" }
	t := r.Totals
	fmt.Fprintf(w, "%s to %s: %d calls, %d answered, %d missed, answer rate %s\n",
		r.Since.Format("2006-01-02 15:04"), r.Until.Format("2006-01-02 15:04 MST"), t.Calls, t.Answered, t.Missed, pct(t.AnswerRate))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	section := func(title string, header ...string) {
		fmt.Fprintf(tw, "\n%s\n%s\n", title, strings.ToUpper(strings.Join(header, "\t")))
	}
	section("Hotlines", "hotline", "company", "calls", "answered", "missed", "rate", "ring p50", "ring p90", "talk p50")
	for _, h := range r.Hotlines {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\t%s\t%s\t%s\n", cell(orNone(h.Name)), cell(h.Company), h.Calls, h.Answered, h.Missed,
			pct(h.AnswerRate), sec(h.RingMSP50), sec(h.RingMSP90), sec(h.TalkMSP50))
	}
	section("Campaigns", "campaign", "calls", "answered", "missed", "rate")
	for _, c := range r.Campaigns {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\n", cell(orNone(c.Campaign)), c.Calls, c.Answered, c.Missed, pct(c.AnswerRate))
	}
	section("Most frequent callers", "contact", "name", "number", "calls", "last call", "open missed")
	for _, c := range r.TopCallers {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%d\n", c.ContactID, cell(c.Name), c.Number, c.Calls, c.LastCallAt.Format("2006-01-02 15:04"), c.OpenMissed)
	}
	section("Wrap-up reasons", "reason", "calls")
	for _, c := range r.Reasons {
		fmt.Fprintf(tw, "%s\t%d\n", cell(c.Reason), c.Calls)
	}
	fmt.Fprintf(tw, "\nSatisfaction: %.2f from %d scored calls\n", r.Satisfaction.Mean, r.Satisfaction.Count)
	fmt.Fprintf(tw, "Resolved: %s of %d calls with a resolution\n", pct(r.Resolved.Share), r.Resolved.Count)
	return tw.Flush()
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// contactID reads --contact: a contact's id when one has it, else a
// number in any format that a contact holds.
func (c *contactsCLI) contactID(ctx context.Context, v string) (int64, error) {
	if id, err := strconv.ParseInt(v, 10, 64); err == nil && id > 0 && !strings.HasPrefix(v, "0") {
		if _, err := c.store.Get(ctx, id); err == nil {
			return id, nil
		}
	}
	ct, err := c.lookup(ctx, contactKey{number: v})
	if err != nil {
		return 0, err
	}
	if ct.ID == 0 {
		return 0, fmt.Errorf("no contact has id or number %q", v)
	}
	return ct.ID, nil
}
