// Command switchboard is the SIP call-handling agent. This package parses
// flags, runs commands and turns signals into calls on the agent package,
// which builds and runs everything else.
package main

import (
	"fmt"
	"io"
	"os"
	"strings"
)

// command is one `switchboard COMMAND`.
type command struct {
	name, help string
	run        func(args []string, stdout, stderr io.Writer) int
}

// commands is every command, in the order usage lists them (SPEC §6).
var commands = []command{
	{"run", "run the agent (without -c: the embedded default config)", runCommand},
	{"check", "validate a config file", checkCommand},
	{"explain", "dry run of the decision for one call", explainCommand},
	{"calls", "list call records", callsCommand},
	{"contacts", "import, find, export or delete contacts", contactsCommand},
	{"trace", "the contact trace of a number, email address or client id", traceCommand},
	{"stats", "front-desk figures: calls, answer rate, busiest hours, top callers", statsCommand},
	{"block", "manage device blocking", blockCommand},
	{"demo", "a self-contained demonstration on loopback", demoCommand},
}

func usage() string {
	var b strings.Builder
	b.WriteString("usage: switchboard COMMAND [flags]\n\ncommands:\n")
	for _, c := range commands {
		fmt.Fprintf(&b, "  %-9s %s\n", c.name, c.help)
	}
	return b.String()
}

func main() {
	os.Exit(dispatch(os.Args[1:], os.Stdout, os.Stderr))
}

func dispatch(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage())
		return 2
	}
	for _, c := range commands {
		if c.name == args[0] {
			return c.run(args[1:], stdout, stderr)
		}
	}
	if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, usage())
		return 0
	}
	fmt.Fprintf(stderr, "switchboard: unknown command %q\n%s", args[0], usage())
	return 2
}
