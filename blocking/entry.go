// Package blocking holds the device block list (SPEC §7 blocking): entries
// for exact numbers and prefixes that block or allow calls per direction,
// stored in the database for entries made through the CLI and the API,
// merged with the entries of the config file, and served from an in-memory
// index so that the call path never touches the disk.
package blocking

import (
	"fmt"
	"strings"
	"time"
)

// Action is what an entry does with a matching call.
type Action string

// Actions of an entry. Allow always wins over block, so that a service
// number can be kept out of a broader blocked prefix. Emergency calls need
// no allow entry: the pipeline routes them before blocking is asked
// (callctl.EmergencyStage, SPEC §1).
const (
	Block Action = "block"
	Allow Action = "allow"
)

// Direction says which calls an entry applies to.
type Direction string

// Directions of an entry, seen from the PBX like callctl.Direction.
const (
	In   Direction = "in"   // inbound calls: the entry matches the caller
	Out  Direction = "out"  // outbound calls: the entry matches the callee
	Both Direction = "both" // either
)

// Source says where an entry was made.
type Source string

// Sources of entries. Config entries live only in memory; the others are
// rows of the blocks table.
const (
	SourceConfig Source = "config"
	SourceCLI    Source = "cli"
	SourceAPI    Source = "api"
)

// Entry is one block or allow entry.
type Entry struct {
	// ID is the row id of a stored entry; 0 for entries from the config
	// file, which can only be changed there.
	ID int64
	// Number is an E.164 number (+4930123456), or a prefix of one ending in
	// * (+49900*). Numbers without + (short codes, extensions) are matched
	// as received. It may also be a SIP address (user@host) or a whole
	// domain (*@host), see NormalizeAddress.
	Number    string
	Action    Action
	Direction Direction
	Reason    string
	Source    Source
	CreatedAt time.Time
}

// IsPrefix reports whether the entry matches every number starting with
// its number without the trailing *.
func (e Entry) IsPrefix() bool { return strings.HasSuffix(e.Number, "*") }

// Key is the number as matched: without the trailing * of a prefix.
func (e Entry) Key() string { return strings.TrimSuffix(e.Number, "*") }

// maxReason bounds reasons, which end up in call records and on the board.
const maxReason = 200

// Normalize fills defaults (action block, direction both) and checks the
// entry. Number must already be normalised (E.164 or digits, optionally
// followed by *, or an address as NormalizeAddress gives it); callers that
// accept any format normalise it first.
func (e *Entry) Normalize() error {
	if e.Action == "" {
		e.Action = Block
	}
	if e.Direction == "" {
		e.Direction = Both
	}
	switch e.Action {
	case Block, Allow:
	default:
		return fmt.Errorf("action %q: want block or allow", e.Action)
	}
	switch e.Direction {
	case In, Out, Both:
	default:
		return fmt.Errorf("direction %q: want in, out or both", e.Direction)
	}
	if err := CheckEntryNumber(e.Number); err != nil {
		return err
	}
	if len(e.Reason) > maxReason {
		return fmt.Errorf("reason is longer than %d bytes", maxReason)
	}
	for _, r := range e.Reason {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("reason contains a control character")
		}
	}
	return nil
}

// CheckNumber accepts an optional +, then digits, then an optional * that
// makes it a prefix. A prefix needs at least one character before the *
// ("+*" matches every public number, useful with allow entries for an
// outbound whitelist); an exact number needs at least one digit.
func CheckNumber(n string) error {
	key := strings.TrimSuffix(n, "*")
	digits := strings.TrimPrefix(key, "+")
	switch {
	case n == "":
		return fmt.Errorf("number is empty")
	case key == "":
		return fmt.Errorf("number %q: a prefix needs at least + or a digit before *", n)
	case key == n && digits == "":
		return fmt.Errorf("number %q has no digits", n)
	case len(digits) > 20:
		return fmt.Errorf("number %q is too long", n)
	}
	for _, r := range digits {
		if r < '0' || r > '9' {
			return fmt.Errorf("number %q: only digits, a leading + and a trailing * are allowed", n)
		}
	}
	return nil
}

// FromConfig converts config file entries (already validated by configs) to
// entries with source config.
func FromConfig(entries []ConfigEntry) ([]Entry, error) {
	out := make([]Entry, 0, len(entries))
	for i, c := range entries {
		e := Entry{Number: c.Number, Action: Action(c.Action), Direction: Direction(c.Direction), Reason: c.Reason, Source: SourceConfig}
		if IsAddress(e.Number) {
			// The config may spell an address as a URI or in capitals.
			n, err := NormalizeAddress(e.Number)
			if err != nil {
				return nil, fmt.Errorf("blocking.entries[%d]: %w", i, err)
			}
			e.Number = n
		}
		if err := e.Normalize(); err != nil {
			return nil, fmt.Errorf("blocking.entries[%d]: %w", i, err)
		}
		out = append(out, e)
	}
	return out, nil
}

// ConfigEntry is the shape of one entry in the config file
// (configs.BlockEntry converts to it directly).
type ConfigEntry struct {
	Number    string
	Action    string
	Direction string
	Reason    string
}
