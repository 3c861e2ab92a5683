package contacts

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"
)

// column roles of a CSV header.
type role int

const (
	roleIgnore role = iota
	roleName
	roleFirst
	roleMiddle
	roleLast
	roleCompany
	roleEmail
	roleClientID
	rolePhone
	roleTags
	roleField
)

type column struct {
	role role
	key  string // header as written, for roleField and extra emails
}

// headerKey folds a header for matching: lower case, letters and digits
// only, so "E-mail Address", "e_mail address" and "EmailAddress" agree.
func headerKey(h string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(h) {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			b.WriteRune(r)
		}
	}
	return b.String()
}

var exactRoles = map[string]role{
	"name": roleName, "fullname": roleName, "displayname": roleName, "contactname": roleName,
	"contact": roleName, "fn": roleName,
	"firstname": roleFirst, "givenname": roleFirst, "first": roleFirst, "vorname": roleFirst,
	"middlename": roleMiddle, "additionalname": roleMiddle,
	"lastname": roleLast, "surname": roleLast, "familyname": roleLast, "last": roleLast, "nachname": roleLast,
	"company": roleCompany, "companyname": roleCompany, "organization": roleCompany, "organisation": roleCompany,
	"org": roleCompany, "organizationname": roleCompany, "organization1name": roleCompany,
	"account": roleCompany, "accountname": roleCompany, "firma": roleCompany, "business": roleCompany,
	// The customer's key in the company's CRM (SPEC §2 client_id).
	"clientid": roleClientID, "client": roleClientID, "clientnumber": roleClientID, "clientno": roleClientID,
	"customerid": roleClientID, "customernumber": roleClientID, "customerno": roleClientID, "customer": roleClientID,
	"customernr": roleClientID, "accountnumber": roleClientID, "accountid": roleClientID, "accountno": roleClientID,
	"kundennummer": roleClientID, "kundennr": roleClientID, "crmid": roleClientID, "externalid": roleClientID,
	"email": roleEmail, "mail": roleEmail, "emailaddress": roleEmail, "primaryemail": roleEmail,
	"tags": roleTags, "tag": roleTags, "categories": roleTags, "category": roleTags, "labels": roleTags,
	"groups": roleTags, "groupmembership": roleTags,
	"phone": rolePhone, "tel": rolePhone, "telephone": rolePhone, "mobile": rolePhone, "cell": rolePhone,
	"cellphone": rolePhone, "number": rolePhone, "phonenumber": rolePhone, "mobilenumber": rolePhone,
	"telefon": rolePhone, "handy": rolePhone, "mobil": rolePhone,
}

// roleOf maps one header to a role. Besides the exact names it knows the
// families of CRM and address book exports: Outlook ("Mobile Phone",
// "Business Phone 2", "E-mail 2 Address"), Google ("Phone 1 - Value",
// "E-mail 1 - Value"), and phone2, phone3... Type and label columns and
// fax or pager numbers are kept as fields: they are not numbers a contact
// calls from.
func roleOf(h string) role {
	k := headerKey(h)
	if k == "" {
		return roleIgnore
	}
	if r, ok := exactRoles[k]; ok {
		return r
	}
	if strings.Contains(k, "type") || strings.Contains(k, "label") {
		return roleIgnore
	}
	if strings.Contains(k, "fax") || strings.Contains(k, "pager") || strings.Contains(k, "display") {
		return roleField
	}
	switch {
	case strings.HasPrefix(k, "email"), strings.HasPrefix(k, "mail"):
		return roleEmail
	case strings.Contains(k, "phone"), strings.HasPrefix(k, "tel"), strings.HasPrefix(k, "mobile"),
		strings.HasPrefix(k, "cell"):
		return rolePhone
	}
	return roleField
}

// sniffComma picks the delimiter from the header line: spreadsheet
// exports in many locales use ';', some tools tabs.
func sniffComma(header []byte) rune {
	best, n := ',', bytes.Count(header, []byte{','})
	for _, c := range []rune{';', '\t'} {
		if m := bytes.Count(header, []byte(string(c))); m > n {
			best, n = c, m
		}
	}
	return best
}

// parseCSV reads a CSV file with a header row and emits one record per row.
// Malformed rows become rejected records; only an unreadable file or a
// header without any phone column is an error.
func parseCSV(r io.Reader, emit func(record) error) error {
	br := bufio.NewReaderSize(r, 256<<10)
	head, err := br.Peek(4096)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, bufio.ErrBufferFull) {
		return fmt.Errorf("read csv: %w", err)
	}
	if bytes.HasPrefix(head, []byte("\xef\xbb\xbf")) { // Excel's UTF-8 BOM
		br.Discard(3)
		head = head[3:]
	}
	if i := bytes.IndexByte(head, '\n'); i >= 0 {
		head = head[:i]
	}
	cr := csv.NewReader(br)
	cr.Comma = sniffComma(head)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return errors.New("csv: empty file, a header row is needed")
	}
	if err != nil {
		return fmt.Errorf("csv header: %w", err)
	}
	cols := make([]column, len(header))
	phones := 0
	for i, h := range header {
		h = strings.TrimSpace(h)
		cols[i] = column{role: roleOf(h), key: h}
		if cols[i].role == rolePhone {
			phones++
		}
	}
	if phones == 0 {
		return fmt.Errorf("csv header %q: no phone column (phone, phone2, mobile, \"Mobile Phone\", \"Phone 1 - Value\"...)", strings.Join(header, string(cr.Comma)))
	}
	for {
		row, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			line := pe.StartLine
			if line == 0 {
				line = pe.Line
			}
			if err := emit(record{line: line, reject: "malformed CSV row: " + pe.Err.Error()}); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("read csv: %w", err)
		}
		line, _ := cr.FieldPos(0)
		if len(row) > len(cols) {
			if err := emit(record{line: line, reject: fmt.Sprintf("malformed CSV row: %d fields, the header has %d", len(row), len(cols))}); err != nil {
				return err
			}
			continue
		}
		if err := emit(csvRecord(line, cols, row)); err != nil {
			return err
		}
	}
}

func csvRecord(line int, cols []column, row []string) record {
	rec := record{line: line}
	var first, middle, last string
	for i, v := range row {
		v = strings.TrimSpace(v)
		if v == "" {
			continue
		}
		if !utf8.ValidString(v) {
			rec.reject = fmt.Sprintf("column %q: not valid UTF-8", cols[i].key)
			return rec
		}
		switch cols[i].role {
		case roleName:
			if rec.name == "" {
				rec.name = v
			}
		case roleFirst:
			first = v
		case roleMiddle:
			middle = v
		case roleLast:
			last = v
		case roleCompany:
			if rec.company == "" {
				rec.company = v
			}
		case roleClientID:
			if rec.clientID == "" {
				rec.clientID = v
			}
		case roleEmail:
			for _, e := range splitMulti(v) {
				if rec.email == "" {
					rec.email = e
				} else {
					setField(&rec, cols[i].key, e)
				}
			}
		case rolePhone:
			rec.raw = append(rec.raw, splitMulti(v)...)
		case roleTags:
			rec.tags = append(rec.tags, splitTags(v)...)
		case roleField:
			setField(&rec, cols[i].key, v)
		}
	}
	if rec.name == "" {
		rec.name = strings.Join(nonEmpty(first, middle, last), " ")
	}
	return rec
}

func setField(rec *record, k, v string) {
	if rec.fields == nil {
		rec.fields = map[string]string{}
	}
	if _, ok := rec.fields[k]; !ok {
		rec.fields[k] = v
	}
}

func nonEmpty(ss ...string) []string {
	out := ss[:0:0]
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// splitMulti splits a cell that holds several values the way Google
// Contacts exports them ("a ::: b").
func splitMulti(v string) []string {
	if !strings.Contains(v, ":::") {
		return []string{v}
	}
	var out []string
	for _, p := range strings.Split(v, ":::") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// splitTags splits a tag cell on ';', ',' and ':::'. Google's system
// groups ("* myContacts", "* starred") are not tags anyone chose.
func splitTags(v string) []string {
	var out []string
	for _, t := range strings.FieldsFunc(strings.ReplaceAll(v, ":::", ";"), func(r rune) bool { return r == ';' || r == ',' }) {
		t = strings.TrimSpace(t)
		if t == "" || strings.HasPrefix(t, "* ") {
			continue
		}
		out = append(out, t)
	}
	return out
}
