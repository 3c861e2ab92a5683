package sip

import (
	"bytes"
	"strings"
)

// tidyLWS rewrites the header section of a request that uses the liberal
// whitespace RFC 3261 §7.3.1 and §25.1 allow (folded lines, SWS around ";",
// "=", "," and "/") into the plain form sipgo's parser expects, which
// otherwise reads "tag = x" as a parameter named "tag " and loses the
// dialog's tags (RFC 4475 §3.1.1.1). Messages written plainly, nearly all
// of them, are returned as they are without a copy.
func tidyLWS(data []byte) []byte {
	end := bytes.Index(data, []byte("\r\n\r\n"))
	if end < 0 {
		return data
	}
	head := data[:end]
	if !bytes.Contains(head, []byte("\n ")) && !bytes.Contains(head, []byte("\n\t")) &&
		!bytes.Contains(head, []byte(" =")) && !bytes.Contains(head, []byte("= ")) &&
		!bytes.Contains(head, []byte(" ;")) && !bytes.Contains(head, []byte("; ")) {
		return data
	}
	lines := unfold(string(head))
	var b bytes.Buffer
	b.Grow(len(data))
	for i, line := range lines {
		if i > 0 && addressHeader(line) {
			line = tightenSeparators(line)
		}
		b.WriteString(line)
		b.WriteString("\r\n")
	}
	b.Write(data[end+2:])
	return b.Bytes()
}

// unfold joins continuation lines to their header with one space.
func unfold(head string) []string {
	raw := strings.Split(strings.ReplaceAll(head, "\r\n", "\n"), "\n")
	out := make([]string, 0, len(raw))
	for _, l := range raw {
		if len(out) > 0 && (strings.HasPrefix(l, " ") || strings.HasPrefix(l, "\t")) {
			out[len(out)-1] = strings.TrimRight(out[len(out)-1], " \t") + " " + strings.TrimLeft(l, " \t")
			continue
		}
		out = append(out, l)
	}
	return out
}

// addressHeader reports the headers whose parameters sipgo must read right:
// the ones transactions and dialogs are matched by.
func addressHeader(line string) bool {
	name, _, ok := strings.Cut(line, ":")
	if !ok {
		return false
	}
	switch strings.ToLower(strings.TrimSpace(name)) {
	case "from", "f", "to", "t", "via", "v", "contact", "m", "route", "record-route", "cseq":
		return true
	}
	return false
}

// tightenSeparators drops the whitespace around ; = , / outside quoted
// strings and angle brackets, and after the colon.
func tightenSeparators(line string) string {
	name, value, _ := strings.Cut(line, ":")
	var b strings.Builder
	b.WriteString(strings.TrimSpace(name))
	b.WriteString(": ")
	value = strings.TrimSpace(value)
	quoted, angle := false, false
	for i := 0; i < len(value); i++ {
		c := value[i]
		switch {
		case quoted:
			b.WriteByte(c)
			if c == '\\' && i+1 < len(value) {
				i++
				b.WriteByte(value[i])
			} else if c == '"' {
				quoted = false
			}
			continue
		case c == '"':
			quoted = true
		case c == '<':
			angle = true
		case c == '>':
			angle = false
		}
		if !angle && strings.IndexByte(";=,/", c) >= 0 {
			trimSpaceRight(&b)
			b.WriteByte(c)
			for i+1 < len(value) && (value[i+1] == ' ' || value[i+1] == '\t') {
				i++
			}
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

func trimSpaceRight(b *strings.Builder) {
	s := b.String()
	t := strings.TrimRight(s, " \t")
	if len(t) != len(s) {
		b.Reset()
		b.WriteString(t)
	}
}
