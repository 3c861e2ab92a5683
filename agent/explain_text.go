package agent

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/switchboard-sip/switchboard/callctl"
)

// WriteText writes the explanation for reading on a terminal
// (`switchboard explain` without --json): one line per finding, in the
// order the pipeline met them, the decision last.
func (ex *Explanation) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	line := func(k, format string, args ...any) { fmt.Fprintf(tw, "%s\t%s\n", k, fmt.Sprintf(format, args...)) }
	for _, n := range ex.Notes {
		line("note", "%s", n)
	}
	line("direction", "%s (source %s%s)", orDash(string(ex.Direction)), ex.Source, trunkNote(ex.Trunk))
	line("caller", "%s", partyLine(ex.Caller))
	line("called", "%s", partyLine(ex.Called))
	if ex.OriginalCalled != nil {
		line("originally called", "%s", partyLine(*ex.OriginalCalled))
	}
	if ex.Emergency != "" {
		line("emergency", "%s", ex.Emergency)
	}
	line("blocking", "%s", blockLine(ex.Block))
	if ex.Contact != nil {
		line("contact", "%s", contactLine(ex.Contact))
	}
	if h := ex.Hotline; h != nil {
		open := "open"
		if !h.Open {
			open = "closed"
		}
		if !h.Reached {
			line("hotline called", "%s (%s, matched %s, %s)", h.Name, h.Company, h.Number, open)
		} else {
			line("hotline", "%s (%s, matched %s, %s)", h.Name, h.Company, h.Number, open)
			line("greeting", "%s", h.Greeting)
			line("display", "%s", h.Display)
		}
	} else if ex.Direction == callctl.Inbound {
		line("hotline", "none")
	}
	if ex.DisplayName != "" {
		line("caller name to PBX", "%s", ex.DisplayName)
	}
	for _, r := range ex.Rules {
		b, _ := json.Marshal(r.Then)
		line("rule fired", "%s: %s", r.Name, b)
	}
	for _, e := range ex.RuleErrors {
		line("rule skipped", "%s", e)
	}
	for k, v := range ex.Headers {
		line("header", "%s: %s", k, v)
	}
	for _, st := range ex.Steps {
		line("stage", "%s: %s", st.Stage, st.Verdict)
	}
	d := ex.Decision
	switch d.Action {
	case "reject":
		line("decision", "reject %d (%s)%s", d.Code, d.Reason, annNote(d.Announcement))
	default:
		line("decision", "forward to %s", d.Target)
	}
	return tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func trunkNote(t string) string {
	if t == "" {
		return ""
	}
	return ", trunk " + t
}

func annNote(a string) string {
	if a == "" {
		return ""
	}
	return ", announcement " + a
}

func partyLine(p callctl.Party) string {
	var b strings.Builder
	b.WriteString(orDash(p.Raw))
	if p.E164 != "" {
		fmt.Fprintf(&b, " → %s (%s)", p.E164, p.National)
	}
	if p.Name != "" {
		fmt.Fprintf(&b, " %q", p.Name)
	}
	for flag, on := range map[string]bool{"anonymous": p.Anonymous, "internal": p.Internal} {
		if on {
			b.WriteString(" [" + flag + "]")
		}
	}
	return b.String()
}

func blockLine(b ExplainBlock) string {
	if !b.Blocked {
		return "not blocked (" + orDash(b.Number) + ")"
	}
	s := "BLOCKED " + orDash(b.Number)
	if b.Anonymous {
		s += " (anonymous)"
	}
	if b.Entry != nil {
		e, _ := json.Marshal(b.Entry)
		s += " by " + string(e)
	}
	return s
}

func contactLine(c *ExplainContact) string {
	switch {
	case c.Found != nil:
		return fmt.Sprintf("found #%d %s", c.Found.ID, c.Found.Name)
	case c.Create:
		if c.Name == "" {
			return "to be created (no name)"
		}
		return "to be created: " + c.Name
	default:
		return "none (" + c.Skip + ")"
	}
}
