// Command switchboard is the SIP call-handling agent. This package only
// wires the other packages together and handles signals.
package main

import (
	"fmt"
	"io"
	"os"
)

const usage = `usage: switchboard COMMAND [flags]

commands:
  run       run the agent (without -c: the embedded default config)
  check     validate a config file
  explain   dry run of the decision for one call
  calls     list call records
  contacts  import, find, export or delete contacts
  trace     the contact trace of a number
  block     manage device blocking
  demo      a self-contained demonstration on loopback
`

func main() {
	os.Exit(dispatch(os.Args[1:], os.Stdout, os.Stderr))
}

func dispatch(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmds := map[string]func([]string, io.Writer, io.Writer) int{
		"run":   runCommand,
		"check": checkCommand,
		"calls": callsCommand,
	}
	for name, f := range extraCommands {
		cmds[name] = f
	}
	cmd, ok := cmds[args[0]]
	if !ok {
		if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
			fmt.Fprint(stdout, usage)
			return 0
		}
		fmt.Fprintf(stderr, "switchboard: unknown command %q\n%s", args[0], usage)
		return 2
	}
	return cmd(args[1:], stdout, stderr)
}

// extraCommands are the commands of features wired in their own files.
var extraCommands = map[string]func([]string, io.Writer, io.Writer) int{}
