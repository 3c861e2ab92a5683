package contacts

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-vcard"
)

// maxVCardLine bounds one physical line; unfolded PHOTO data in vCard 4
// exports can be long, anything beyond this is not a contact.
const maxVCardLine = 8 << 20

// parseVCards splits a vCard 3.0/4.0 stream into cards itself, so that each
// card keeps the line of its BEGIN:VCARD and a broken card rejects only
// itself, then decodes each card with go-vcard.
func parseVCards(r io.Reader, emit func(record) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxVCardLine)
	var (
		buf   bytes.Buffer
		line  int
		start int
		in    bool
		cards int
	)
	for sc.Scan() {
		line++
		l := sc.Bytes()
		if line == 1 {
			l = bytes.TrimPrefix(l, []byte("\xef\xbb\xbf"))
		}
		t := bytes.ToUpper(bytes.TrimSpace(l))
		switch {
		case bytes.Equal(t, []byte("BEGIN:VCARD")):
			if in {
				if err := emit(record{line: start, reject: "vCard without END:VCARD"}); err != nil {
					return err
				}
			}
			in, start = true, line
			buf.Reset()
			buf.Write(l)
			buf.WriteString("\r\n")
		case bytes.Equal(t, []byte("END:VCARD")):
			if !in {
				if err := emit(record{line: line, reject: "END:VCARD without BEGIN:VCARD"}); err != nil {
					return err
				}
				continue
			}
			buf.Write(l)
			buf.WriteString("\r\n")
			in = false
			cards++
			if err := emit(vcardRecord(start, buf.Bytes())); err != nil {
				return err
			}
		case in:
			buf.Write(l)
			buf.WriteString("\r\n")
		case len(t) > 0:
			if err := emit(record{line: line, reject: "text outside a vCard"}); err != nil {
				return err
			}
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return fmt.Errorf("vcard line %d: longer than %d bytes", line+1, maxVCardLine)
		}
		return fmt.Errorf("read vcard: %w", err)
	}
	if in {
		return emit(record{line: start, reject: "vCard without END:VCARD"})
	}
	if cards == 0 && line > 0 {
		return errors.New("vcard: no BEGIN:VCARD in the file")
	}
	return nil
}

// vcardRecord reads one card: FN (or N), ORG, EMAIL, TEL with its types,
// CATEGORIES, TITLE and NOTE.
func vcardRecord(line int, card []byte) record {
	rec := record{line: line}
	if !utf8.Valid(card) {
		rec.reject = "vCard: not valid UTF-8"
		return rec
	}
	c, err := vcard.NewDecoder(bytes.NewReader(card)).Decode()
	if err != nil {
		rec.reject = "malformed vCard: " + strings.TrimPrefix(err.Error(), "vcard: ")
		return rec
	}
	switch v := c.Value(vcard.FieldVersion); v {
	case "", "3.0", "4.0":
	default:
		rec.reject = fmt.Sprintf("vCard version %q: only 3.0 and 4.0 are read", v)
		return rec
	}
	rec.name = strings.TrimSpace(c.PreferredValue(vcard.FieldFormattedName))
	if rec.name == "" {
		if n := c.Name(); n != nil {
			rec.name = strings.Join(nonEmpty(strings.TrimSpace(n.HonorificPrefix), strings.TrimSpace(n.GivenName),
				strings.TrimSpace(n.AdditionalName), strings.TrimSpace(n.FamilyName), strings.TrimSpace(n.HonorificSuffix)), " ")
		}
	}
	// ORG is "Company;Department;...": the company is the first part.
	org, _, _ := strings.Cut(c.PreferredValue(vcard.FieldOrganization), ";")
	rec.company = unescapeText(strings.TrimSpace(org))
	rec.name = unescapeText(rec.name)
	emails := c.Values(vcard.FieldEmail)
	if p := c.PreferredValue(vcard.FieldEmail); p != "" {
		rec.email = strings.TrimSpace(p)
	}
	extra := 1
	for _, e := range emails {
		if e = strings.TrimSpace(e); e != "" && e != rec.email {
			extra++
			setField(&rec, fmt.Sprintf("email%d", extra), e)
		}
	}
	for _, f := range c[vcard.FieldTelephone] {
		if f.Params.HasType(vcard.TypeFax) || f.Params.HasType(vcard.TypePager) {
			continue
		}
		if v := strings.TrimSpace(f.Value); v != "" {
			rec.raw = append(rec.raw, v)
		}
	}
	for _, cat := range c.Values(vcard.FieldCategories) {
		for _, t := range strings.Split(cat, ",") {
			if t = strings.TrimSpace(t); t != "" {
				rec.tags = append(rec.tags, t)
			}
		}
	}
	if v := strings.TrimSpace(c.PreferredValue(vcard.FieldTitle)); v != "" {
		setField(&rec, "title", unescapeText(v))
	}
	if v := strings.TrimSpace(c.PreferredValue(vcard.FieldNote)); v != "" {
		setField(&rec, "note", unescapeText(v))
	}
	return rec
}

// unescapeText undoes the vCard text escapes go-vcard leaves in place
// (RFC 6350 §3.4: \; and \N besides \, \\ and \n).
func unescapeText(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	return strings.NewReplacer(`\;`, `;`, `\N`, "\n", `\,`, `,`, `\\`, `\`, `\n`, "\n").Replace(s)
}
