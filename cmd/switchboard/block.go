package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/switchboard-sip/switchboard/agent"
	"github.com/switchboard-sip/switchboard/blocking"
	"github.com/switchboard-sip/switchboard/configs"
	"github.com/switchboard-sip/switchboard/contacts"
	"github.com/switchboard-sip/switchboard/wire"
)

const blockUsage = `usage: switchboard block COMMAND [-c FILE] ...

commands:
  add NUMBER [--reason R] [--direction in|out|both]     block a number, prefix (ending in *) or SIP address
  allow NUMBER [--reason R] [--direction in|out|both]   allow it (allow wins over block)
  remove ID|NUMBER                                      remove stored entries
  list [--json]                                         list config and stored entries

Numbers are read in any format (030 1234567, +49 30 1234567); a prefix
ends in * (+49900*, 0900*). A SIP address (spam@example.net) or a whole
domain (*@spam.example) is matched against the caller's From and
P-Asserted-Identity inbound and the Request-URI outbound: the host in any
case, the user exactly (RFC 3261 §19.1.4). Changes take effect on the next
call of a running agent, without a restart.
`

// blockCommand manages device blocking (SPEC §6 block).
func blockCommand(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, blockUsage)
		return 2
	}
	sub := args[0]
	switch sub {
	case "add", "allow", "remove", "list":
	case "-h", "--help", "help":
		fmt.Fprint(stdout, blockUsage)
		return 0
	default:
		fmt.Fprintf(stderr, "switchboard block: unknown command %q\n%s", sub, blockUsage)
		return 2
	}

	fs := flag.NewFlagSet("block "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("c", "", "config file (default: the embedded default config)")
	reason := fs.String("reason", "", "why (shown in call records and on the board)")
	direction := fs.String("direction", "both", "calls the entry applies to: in, out or both")
	asJSON := fs.Bool("json", false, `print {"items": [...]} as the HTTP API does`)
	fs.Usage = func() { fmt.Fprint(stderr, blockUsage) }
	pos, err := parseInterspersed(fs, args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	want := 1
	if sub == "list" {
		want = 0
	}
	if len(pos) != want {
		fmt.Fprintf(stderr, "switchboard block %s: want %d argument(s), got %d\n", sub, want, len(pos))
		return 2
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for name, only := range map[string][]string{"reason": {"add", "allow"}, "direction": {"add", "allow"}, "json": {"list"}} {
		if set[name] && !slices.Contains(only, sub) {
			fmt.Fprintf(stderr, "switchboard block %s: --%s does not apply\n", sub, name)
			return 2
		}
	}

	cfg := configs.Default()
	if *path != "" {
		if cfg, err = configs.Load(*path); err != nil {
			fmt.Fprintf(stderr, "switchboard block: %s\n", oneLine(err))
			return 1
		}
	}
	ctx := context.Background()
	b, err := openBlockCLI(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "switchboard block: %s\n", oneLine(err))
		return 1
	}
	defer b.st.Close()

	switch sub {
	case "add", "allow":
		err = b.add(ctx, stdout, pos[0], blocking.Action(map[string]string{"add": "block", "allow": "allow"}[sub]), *direction, *reason)
	case "remove":
		err = b.remove(ctx, stdout, pos[0])
	case "list":
		err = b.list(ctx, stdout, *asJSON, cfg.Location)
	}
	if err != nil {
		fmt.Fprintf(stderr, "switchboard block %s: %s\n", sub, oneLine(err))
		return 1
	}
	return 0
}

// parseInterspersed parses flags before and after positional arguments,
// since `block add NUMBER --reason spam` puts them after.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// blockCLI is the block list of the config's database, opened through the
// agent's front door, with the number reader of the config.
type blockCLI struct {
	st      *agent.Stores
	store   *blocking.Store
	numbers *contacts.Numbers
}

func openBlockCLI(ctx context.Context, cfg *configs.Config) (*blockCLI, error) {
	st, err := agent.OpenStores(ctx, cfg, agent.Create)
	if err != nil {
		return nil, err
	}
	store, err := st.Blocks(ctx)
	if err != nil {
		st.Close()
		return nil, err
	}
	return &blockCLI{st: st, store: store, numbers: st.Numbers}, nil
}

func (b *blockCLI) add(ctx context.Context, w io.Writer, raw string, action blocking.Action, direction, reason string) error {
	number, err := blocking.NormalizeNumber(raw, b.numbers.Region, b.numbers.ExactKey)
	if err != nil {
		return err
	}
	e, err := b.store.Add(ctx, blocking.Entry{Number: number, Action: action, Direction: blocking.Direction(direction),
		Reason: strings.TrimSpace(reason), Source: blocking.SourceCLI})
	if err != nil {
		return err
	}
	verb := map[blocking.Action]string{blocking.Block: "blocked", blocking.Allow: "allowed"}[e.Action]
	fmt.Fprintf(w, "%s %s (id %d, direction %s", verb, e.Number, e.ID, e.Direction)
	if e.Reason != "" {
		fmt.Fprintf(w, ", reason %q", e.Reason)
	}
	fmt.Fprintln(w, ")")
	// Tell the administrator when the new entry has no effect, rather than
	// let them believe the number is now blocked.
	for _, sh := range b.store.Shadowed(e) {
		fmt.Fprintf(w, "note: %s stays allowed for direction %s by the allow entry %s (allow wins over block)\n", e.Number, sh.Direction, sh.By.Number)
	}
	return nil
}

// remove takes an id or a number. An argument of plain digits is an id
// when an entry has that id, else a number (internal numbers are digits
// too); the output says which entries went.
func (b *blockCLI) remove(ctx context.Context, w io.Writer, arg string) error {
	removed, err := b.store.RemoveArg(ctx, arg, b.numbers.Region, b.numbers.ExactKey)
	if err != nil {
		return err
	}
	for _, e := range removed {
		fmt.Fprintf(w, "removed %d %s %s (direction %s)\n", e.ID, e.Action, e.Number, e.Direction)
	}
	return nil
}

func (b *blockCLI) list(ctx context.Context, w io.Writer, asJSON bool, loc *time.Location) error {
	all, err := b.store.All(ctx)
	if err != nil {
		return err
	}
	if loc == nil {
		loc = time.UTC
	}
	if asJSON {
		out := wire.BlockList{Items: make([]wire.Block, len(all))}
		for i, e := range all {
			out.Items[i] = wire.NewBlock(e, loc)
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNUMBER\tACTION\tDIRECTION\tSOURCE\tCREATED\tREASON")
	for _, e := range all {
		id, created := "-", "-"
		if e.ID != 0 {
			id = strconv.FormatInt(e.ID, 10)
		}
		if !e.CreatedAt.IsZero() {
			created = e.CreatedAt.In(loc).Format("2006-01-02 15:04")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", id, e.Number, e.Action, e.Direction, e.Source, created, e.Reason)
	}
	return tw.Flush()
}
