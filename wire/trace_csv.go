package wire

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/switchboard-sip/switchboard/cdr"
	"github.com/switchboard-sip/switchboard/contacts"
)

// traceRow is one call as the table and CSV show it (SPEC §2: date and
// time, direction, hotline and campaign, caller and called, disposition and
// SIP status, ring and talk seconds, node, who answered, the wrap-up,
// recording).
func traceRow(e cdr.Record) []string {
	score := ""
	if e.Satisfaction != 0 {
		score = strconv.Itoa(e.Satisfaction)
	}
	return []string{
		e.StartedAt.Format("2006-01-02"), e.StartedAt.Format("15:04:05"), string(e.Direction), e.Hotline, e.Campaign,
		traceParty(e.Caller, e.CallerRaw), e.CallerName, traceParty(e.Called, e.CalledRaw), string(e.Disposition), traceStatus(e.SIPStatus),
		strconv.FormatFloat(float64(e.RingMS)/1000, 'f', 1, 64), strconv.FormatFloat(float64(e.TalkMS)/1000, 'f', 1, 64),
		e.Node, e.AnsweredBy, e.Reason, score, e.Notes, e.Recording, resolvedText(e.Resolved), e.Transcript,
		KindCall, "", e.Trunk, "", "",
	}
}

// messageRow is one text message in the columns of traceRow (SPEC §2:
// direction, content, source address), its final response as sip_status.
// Content cut at messages.max_content ends in a note saying so.
func messageRow(m cdr.Message) []string {
	content := m.Content
	if m.Truncated {
		content += fmt.Sprintf(" […cut: %d of %d bytes kept]", len(m.Content), m.Size)
	}
	return []string{
		m.At.Format("2006-01-02"), m.At.Format("15:04:05"), string(m.Direction), "", "",
		traceParty(m.Caller, m.CallerRaw), "", traceParty(m.Called, m.CalledRaw), "", traceStatus(m.Status), "", "",
		m.Node, "", "", "", "", "", "", "",
		KindMessage, m.ContentType, m.Trunk, m.Source, content,
	}
}

// TraceRows are the trace's calls and messages, newest first, in the
// columns of TraceHeader: the CSV and the command line's table.
func TraceRows(t contacts.Trace) [][]string {
	var rows [][]string
	for _, e := range t.Timeline() {
		if e.Message != nil {
			rows = append(rows, messageRow(*e.Message))
		} else {
			rows = append(rows, traceRow(*e.Call))
		}
	}
	return rows
}

// TraceHeader names the columns of a trace as CSV and as a table.
var TraceHeader = []string{"date", "time", "direction", "hotline", "campaign", "caller", "caller_name", "called",
	"disposition", "sip_status", "ring_s", "talk_s", "node", "answered_by", "reason", "satisfaction", "notes", "recording",
	"resolved", "transcript", "kind", "content_type", "trunk", "source", "content"}

// resolvedText is a wrap-up's resolved as the trace prints it: yes, no or
// empty when not said.
func resolvedText(b *bool) string {
	switch {
	case b == nil:
		return ""
	case *b:
		return "yes"
	}
	return "no"
}

// WriteTraceCSV writes a trace as CSV with a header row
// (`switchboard trace --csv`).
func WriteTraceCSV(w io.Writer, t contacts.Trace) error {
	cw := csv.NewWriter(w)
	cw.Write(TraceHeader)
	for _, row := range TraceRows(t) {
		for i, v := range row {
			row[i] = csvSafe(v)
		}
		cw.Write(row)
	}
	cw.Flush()
	return cw.Error()
}

// csvSafe keeps a spreadsheet from reading a caller-supplied value (a
// display name) as a formula.
func csvSafe(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) && !isNumberLike(s) {
		return "'" + s
	}
	return s
}

func isNumberLike(s string) bool {
	return strings.Trim(s, "+-0123456789.") == ""
}

// traceParty is a party as the trace shows it: the normalised number, or
// the raw one when it had none.
func traceParty(norm, raw string) string {
	if norm != "" {
		return norm
	}
	return raw
}

// traceStatus is a SIP status as the trace shows it, empty-cell "-" for
// none.
func traceStatus(code int) string {
	if code == 0 {
		return "-"
	}
	return strconv.Itoa(code)
}
