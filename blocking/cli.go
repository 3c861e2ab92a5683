package blocking

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Shadow is an allow entry that keeps a new block entry from taking effect
// in one direction (allow wins over block, SPEC §3).
type Shadow struct {
	Direction Direction
	By        *Entry
}

// Shadowed lists the directions in which the block entry e has no effect
// because an allow entry matches its number first; none for an allow
// entry or a prefix.
func (s *Store) Shadowed(e Entry) []Shadow {
	if e.Action != Block || e.IsPrefix() {
		return nil
	}
	var out []Shadow
	for _, d := range []Direction{In, Out} {
		if e.Direction != Both && e.Direction != d {
			continue
		}
		if m := s.Lookup(e.Number, d); !m.Blocked && m.Entry != nil {
			out = append(out, Shadow{Direction: d, By: m.Entry})
		}
	}
	return out
}

// RemoveArg removes entries named as a person names them: by id or by
// number. An argument of plain digits is an id when an entry has that id,
// else a number (internal numbers are digits too). Entries from the config
// file cannot be removed here; the error says where they are.
func (s *Store) RemoveArg(ctx context.Context, arg, region string, normalize NormalizeFunc) ([]Entry, error) {
	id, idErr := strconv.ParseInt(arg, 10, 64)
	if strings.Trim(arg, "0123456789") != "" {
		idErr = strconv.ErrSyntax // +49110 parses as an integer, but is a number
	}
	if idErr == nil && id > 0 {
		e, err := s.Remove(ctx, id)
		switch {
		case err == nil:
			return []Entry{e}, nil
		case !errors.Is(err, ErrNotFound):
			return nil, err
		}
	}
	number, err := NormalizeNumber(arg, region, normalize)
	if err != nil {
		if idErr == nil {
			return nil, fmt.Errorf("no entry with id %d, and %w", id, err)
		}
		return nil, err
	}
	removed, err := s.RemoveNumber(ctx, number)
	switch {
	case errors.Is(err, ErrConfigEntry):
		return nil, fmt.Errorf("%s is set in the config file (blocking.entries); remove it there", number)
	case errors.Is(err, ErrNotFound):
		return nil, fmt.Errorf("no stored entry for %s", number)
	}
	return removed, err
}

// All is every entry in force: the config file's first, then the stored
// ones.
func (s *Store) All(ctx context.Context) ([]Entry, error) {
	stored, _, err := s.List(ctx, 0, 0)
	if err != nil {
		return nil, err
	}
	return slices.Concat(s.Config(), stored), nil
}
