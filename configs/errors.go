package configs

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// FieldError is one problem in a configuration file.
type FieldError struct {
	// Path is the key path, e.g. hotlines[2].numbers[0]; empty for
	// syntax errors that belong to no key.
	Path string
	// Line is the 1-based line in the file, 0 when unknown (a required
	// key that is absent, or a Config built in code).
	Line int
	Msg  string
}

// Error formats the problem as `line 12: hotlines[2].numbers[0]: message`,
// leaving out what is unknown.
func (e FieldError) Error() string {
	var b strings.Builder
	if e.Line > 0 {
		b.WriteString("line ")
		b.WriteString(strconv.Itoa(e.Line))
		b.WriteString(": ")
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found in a configuration, in file order.
type Errors []FieldError

// Error lists the problems one per line.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// sort orders errors by line so that `check` reads like the file; errors
// without a line (absent keys) come last, in the order they were found.
func (es Errors) sort() {
	sort.SliceStable(es, func(i, j int) bool {
		li, lj := es[i].Line, es[j].Line
		if li == 0 || lj == 0 {
			return li != 0 && lj == 0
		}
		return li < lj
	})
}

// without drops the errors about keys that already failed to decode, or
// that lie inside or around them: a key with the wrong type would
// otherwise also be reported as missing or invalid.
func (es Errors) without(decoded Errors) Errors {
	var out Errors
	for _, e := range es {
		related := false
		for _, d := range decoded {
			if d.Path != "" && (within(e.Path, d.Path) || within(d.Path, e.Path)) {
				related = true
				break
			}
		}
		if !related {
			out = append(out, e)
		}
	}
	return out
}

// within reports whether path is base or a key below it.
func within(path, base string) bool {
	if !strings.HasPrefix(path, base) {
		return false
	}
	rest := path[len(base):]
	return rest == "" || rest[0] == '.' || rest[0] == '['
}

// collector gathers errors under key paths during validation.
type collector struct {
	errs  Errors
	lines map[string]int
}

func (c *collector) add(path, format string, args ...any) {
	c.errs = append(c.errs, FieldError{Path: path, Line: c.line(path), Msg: fmt.Sprintf(format, args...)})
}

// line finds where path was written, or else its nearest written parent:
// an absent key is best shown at the section that lacks it.
func (c *collector) line(path string) int {
	for p := path; p != ""; p = parent(p) {
		if l, ok := c.lines[p]; ok {
			return l
		}
	}
	return 0
}

func parent(path string) string {
	i := strings.LastIndexAny(path, ".[")
	if i < 0 {
		return ""
	}
	return path[:i]
}
