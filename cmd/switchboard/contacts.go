package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/switchboard-sip/switchboard/agent"
	"github.com/switchboard-sip/switchboard/contacts"
	"github.com/switchboard-sip/switchboard/wire"
)

const contactsUsage = `usage: switchboard contacts COMMAND [-c FILE] ...

commands:
  import [--strict] PATH...   import CSV or vCard 3.0/4.0 files
  find NUMBER [--json]        the contact for a number, in any format
  find --client-id ID         the contact with a client id (the customer's key in your CRM)
  find --email ADDR           the contact with an email address
  export ID                   a contact and all its calls, as JSON
  delete ID                   delete a contact and all its calls

CSV files have a header row; columns name, company, email, phone, phone2...,
tags, client_id ("Customer Number", "Client ID", "Kundennummer"...), and the
usual CRM export headers ("First Name", "Mobile Phone", ...). Rows whose
numbers or client id already belong to a contact are merged into it. import
exits 1 when a file cannot be read, and with --strict also when a row was
rejected.
`

// contactsCommand is `switchboard contacts` (SPEC §6).
func contactsCommand(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, contactsUsage)
		return 2
	}
	sub := args[0]
	switch sub {
	case "import", "find", "export", "delete":
	case "-h", "--help", "help":
		fmt.Fprint(stdout, contactsUsage)
		return 0
	default:
		fmt.Fprintf(stderr, "switchboard contacts: unknown command %q\n%s", sub, contactsUsage)
		return 2
	}
	fs := flag.NewFlagSet("contacts "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("c", "", "config file (default: the embedded default config)")
	strict := fs.Bool("strict", false, "import: exit 1 when a row was rejected")
	asJSON := fs.Bool("json", false, "find: print the contact as the HTTP API does")
	clientID := fs.String("client-id", "", "find: the contact with this client id")
	email := fs.String("email", "", "find: the contact with this email address")
	fs.Usage = func() { fmt.Fprint(stderr, contactsUsage) }
	pos, err := parseInterspersed(fs, args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if set["strict"] && sub != "import" || (set["json"] || set["client-id"] || set["email"]) && sub != "find" {
		fmt.Fprintf(stderr, "switchboard contacts %s: --strict is for import, --json, --client-id and --email for find\n", sub)
		return 2
	}
	keys := len(pos)
	if set["client-id"] {
		keys++
	}
	if set["email"] {
		keys++
	}
	switch {
	case sub == "find" && keys != 1:
		fmt.Fprintln(stderr, "switchboard contacts find: want one of NUMBER, --client-id ID or --email ADDR")
		return 2
	case sub == "import" && len(pos) == 0:
		fmt.Fprintln(stderr, "switchboard contacts import: no file to import")
		return 2
	case sub != "import" && sub != "find" && len(pos) != 1:
		fmt.Fprintf(stderr, "switchboard contacts %s: want 1 argument, got %d\n", sub, len(pos))
		return 2
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "switchboard contacts %s: %s\n", sub, oneLine(err))
		return 1
	}
	access := agent.ReadOnly
	switch sub {
	case "import":
		access = agent.Create
	case "delete":
		access = agent.ReadWrite
	}
	cli, err := openContactsCLI(context.Background(), *path, access)
	if err != nil {
		return fail(err)
	}
	defer cli.close()
	ctx := context.Background()
	switch sub {
	case "import":
		return cli.importFiles(ctx, pos, *strict, stdout, stderr)
	case "find":
		if err := cli.find(ctx, stdout, contactKey{Number: first(pos), ClientID: *clientID, Email: *email}, *asJSON); err != nil {
			return fail(err)
		}
	case "export", "delete":
		id, err := strconv.ParseInt(pos[0], 10, 64)
		if err != nil || id <= 0 {
			fmt.Fprintf(stderr, "switchboard contacts %s: %q is not a contact id\n", sub, pos[0])
			return 2
		}
		if sub == "export" {
			err = cli.export(ctx, stdout, id)
		} else {
			err = cli.delete(ctx, stdout, id)
		}
		if err != nil {
			return fail(err)
		}
	}
	return 0
}

// contactsCLI is the config's stores, opened through the agent's front
// door, with the config's number reader and time zone.
type contactsCLI struct {
	st      *agent.Stores
	store   *contacts.Store
	numbers *contacts.Numbers
	region  string
	loc     *time.Location
}

// openContactsCLI opens the stores. Only import (and delete) may create
// or change the database: reading commands pointed at the wrong DSN must
// say so rather than leave an empty database behind.
func openContactsCLI(ctx context.Context, path string, access agent.Access) (*contactsCLI, error) {
	cfg, err := loadConfigOrDefault(path)
	if err != nil {
		return nil, err
	}
	st, err := agent.OpenStores(ctx, cfg, access)
	if err != nil {
		return nil, err
	}
	return &contactsCLI{st: st, store: st.Contacts, numbers: st.Numbers, region: st.Region, loc: st.Location}, nil
}

func (c *contactsCLI) close() { c.st.Close() }

// e164 reads a number given on the command line in any format.
func (c *contactsCLI) e164(raw string) (string, error) { return c.numbers.ContactNumber(raw, c.region) }

// importFiles imports every path, printing a summary per file. A file that
// cannot be read does not stop the others.
func (c *contactsCLI) importFiles(ctx context.Context, paths []string, strict bool, stdout, stderr io.Writer) int {
	code := 0
	for _, p := range paths {
		sum, err := c.importFile(ctx, p, stderr)
		if sum.Rows > 0 || err == nil {
			printSummary(stdout, p, sum)
		}
		if err != nil {
			fmt.Fprintf(stderr, "switchboard contacts import: %s: %s\n", p, oneLine(err))
			code = 1
			continue
		}
		if strict && sum.Rejected > 0 {
			code = 1
		}
	}
	return code
}

func (c *contactsCLI) importFile(ctx context.Context, path string, stderr io.Writer) (contacts.Summary, error) {
	f, err := os.Open(path)
	if err != nil {
		return contacts.Summary{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return contacts.Summary{}, err
	}
	if st.IsDir() {
		return contacts.Summary{}, errors.New("is a directory")
	}
	br := bufio.NewReaderSize(f, 64<<10)
	head, _ := br.Peek(512)
	opts := contacts.ImportOptions{Region: c.region}
	if isTerminal(stderr) {
		bar := progressbar.NewOptions64(st.Size(),
			progressbar.OptionSetWriter(stderr),
			progressbar.OptionSetDescription(path),
			progressbar.OptionShowBytes(true),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish(),
		)
		defer bar.Finish()
		opts.Progress = func(p contacts.Progress) { bar.Set64(p.Bytes) }
	}
	return contacts.Import(ctx, c.store, c.numbers, br, contacts.DetectFormat(path, head), opts)
}

// isTerminal is true when w is a terminal: a progress bar in a log file or
// a pipe is noise.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func printSummary(w io.Writer, path string, s contacts.Summary) {
	fmt.Fprintf(w, "%s: %d rows: %d created, %d merged, %d rejected\n", path, s.Rows, s.Created, s.Merged, s.Rejected)
	for _, r := range s.Rejections {
		fmt.Fprintf(w, "  line %d: %s\n", r.Line, cell(r.Reason))
	}
}

func (c *contactsCLI) find(ctx context.Context, w io.Writer, key contactKey, asJSON bool) error {
	if key.Number != "" {
		e164, err := c.e164(key.Number)
		if err != nil {
			return err
		}
		key.Number = e164
	}
	ct, err := c.lookup(ctx, key)
	if err != nil {
		return err
	}
	if ct.ID == 0 {
		return fmt.Errorf("no contact has %s", key)
	}
	if asJSON {
		return writeJSON(w, wire.NewContact(ct, c.loc))
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(tw, "%s\t%s\n", k, cell(v))
		}
	}
	row("id", strconv.FormatInt(ct.ID, 10))
	row("name", ct.Name)
	row("company", ct.Company)
	row("email", ct.Email)
	row("client_id", ct.ClientID)
	row("tags", strings.Join(ct.Tags, ", "))
	for _, p := range ct.Numbers {
		n := p.E164
		if p.Ext != "" {
			n += " ext. " + p.Ext
		}
		if p.Raw != "" && p.Raw != p.E164 {
			n += " (" + p.Raw + ")"
		}
		row("number", n)
	}
	for k, v := range ct.Fields {
		row(k, v)
	}
	row("source", string(ct.Source))
	row("created", ct.CreatedAt.In(c.loc).Format("2006-01-02 15:04:05"))
	calls := strconv.FormatInt(ct.CallsCount, 10)
	if ct.FirstCallAt != nil {
		calls += fmt.Sprintf(" (first %s, last %s)", ct.FirstCallAt.In(c.loc).Format("2006-01-02 15:04"),
			ct.LastCallAt.In(c.loc).Format("2006-01-02 15:04"))
	}
	row("calls", calls)
	return tw.Flush()
}

func (c *contactsCLI) export(ctx context.Context, w io.Writer, id int64) error {
	ex, err := c.store.Export(ctx, id)
	if err != nil {
		return err
	}
	return writeJSON(w, wire.NewContactExport(ex, c.loc))
}

func (c *contactsCLI) delete(ctx context.Context, w io.Writer, id int64) error {
	n, err := c.store.Delete(ctx, id)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "deleted contact %d and its %d calls\n", id, n)
	return err
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

const traceUsage = `usage: switchboard trace [-c FILE] NUMBER|--email ADDR|--client-id ID [--months 12] [--json|--csv]

Every call attempt and text message with the contact (or the number, when
it has no contact) in the last months, newest first, times in the
configured time zone. A
contact found by email address or client id gives the same trace as by one
of its numbers.
`

// traceCommand is `switchboard trace` (SPEC §6): the contact trace.
func traceCommand(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("trace", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("c", "", "config file (default: the embedded default config)")
	months := fs.Int("months", 12, "window in months, up to 120")
	asJSON := fs.Bool("json", false, "print the trace as GET /api/trace does")
	asCSV := fs.Bool("csv", false, "print CSV with a header row")
	email := fs.String("email", "", "the contact with this email address")
	clientID := fs.String("client-id", "", "the contact with this client id")
	fs.Usage = func() {
		fmt.Fprint(stderr, traceUsage)
		fs.PrintDefaults()
	}
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	keys := len(pos)
	for _, v := range []string{*email, *clientID} {
		if v != "" {
			keys++
		}
	}
	switch {
	case keys != 1:
		fmt.Fprintf(stderr, "switchboard trace: want one of NUMBER, --email ADDR or --client-id ID, got %d\n", keys)
		fs.Usage()
		return 2
	case *asJSON && *asCSV:
		fmt.Fprintln(stderr, "switchboard trace: --json and --csv exclude each other")
		return 2
	case *months < 1 || *months > 120:
		fmt.Fprintf(stderr, "switchboard trace: --months must be 1 to 120, got %d\n", *months)
		return 2
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "switchboard trace: %s\n", oneLine(err))
		return 1
	}
	ctx := context.Background()
	cli, err := openContactsCLI(ctx, *path, agent.ReadOnly)
	if err != nil {
		return fail(err)
	}
	defer cli.close()
	q := contacts.TraceQuery{Months: *months, Loc: cli.loc}
	if len(pos) == 1 {
		if q.E164, err = cli.e164(pos[0]); err != nil {
			return fail(err)
		}
	} else {
		key := contactKey{Email: *email, ClientID: *clientID}
		c, err := cli.lookup(ctx, key)
		if err != nil {
			return fail(err)
		}
		if c.ID == 0 {
			return fail(fmt.Errorf("no contact has %s", key))
		}
		q.ContactID = c.ID
	}
	t, err := cli.store.TraceAll(ctx, q)
	if err != nil {
		return fail(err)
	}
	switch {
	case *asJSON:
		err = writeJSON(stdout, wire.NewTrace(t, cli.loc))
	case *asCSV:
		err = wire.WriteTraceCSV(stdout, t)
	default:
		err = writeTraceTable(stdout, t)
	}
	if err != nil {
		return fail(err)
	}
	return 0
}

func writeTraceTable(w io.Writer, t contacts.Trace) error {
	who := t.Number
	if t.Contact != nil {
		name := t.Contact.Name
		if name == "" {
			name = "(no name)"
		}
		who = fmt.Sprintf("%s, contact %d: %s", t.Number, t.Contact.ID, cell(name))
		if t.Contact.Company != "" {
			who += ", " + cell(t.Contact.Company)
		}
	}
	fmt.Fprintf(w, "%s: %d calls and %d messages from %s to %s\n", who, len(t.Items), len(t.Messages),
		t.Since.Format("2006-01-02 15:04"), t.Until.Format("2006-01-02 15:04 MST"))
	if len(t.Items)+len(t.Messages) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.ToUpper(strings.Join(wire.TraceHeader, "\t")))
	for _, row := range wire.TraceRows(t) {
		for i, v := range row {
			row[i] = cell(v)
		}
		row[len(row)-1] = shorten(row[len(row)-1], 40) // the CSV and JSON carry it whole
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	return tw.Flush()
}

// contactKey names a contact on the command line.
type contactKey = contacts.Key

// lookup finds the contact of a key; none is the zero Contact.
func (c *contactsCLI) lookup(ctx context.Context, k contactKey) (contacts.Contact, error) {
	return c.store.FindKey(ctx, k, c.numbers, c.region)
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

// shorten cuts s to at most n characters, marking the cut, for a table
// cell.
func shorten(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
