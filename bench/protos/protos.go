// Package protos reads the PROTOS c07-sip INVITE test cases (University of
// Oulu, OUSPG) from their tar.gz in place, without extracting them, and
// turns each case into the datagrams to send: the INVITE and its teardown
// (CANCEL) with the placeholders filled in.
//
// Case file format (corpus README): "<decimal length> <INVITE template>"
// followed by "<decimal length> <teardown template>".
package protos

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Cases is how many cases the suite has.
const Cases = 4527

// maxCase bounds what one case may hold (the largest is 287 KB).
const maxCase = 1 << 20

// Case is one test case: two templates with placeholders.
type Case struct {
	N        int
	Invite   []byte
	Teardown []byte
}

// Group is a PROTOS test group: a range of case numbers.
type Group struct {
	Name  string
	First int
	Count int
}

// Dir returns the corpus directory: $SWITCHBOARD_SIP_CORPUS/protos-c07-sip,
// else ../../shared/sip-corpus/protos-c07-sip from the repo root.
func Dir(repoRoot string) string {
	root := os.Getenv("SWITCHBOARD_SIP_CORPUS")
	if root == "" {
		root = filepath.Join(repoRoot, "..", "shared", "sip-corpus")
	}
	return filepath.Join(root, "protos-c07-sip")
}

// Groups reads GROUPS.tsv.
func Groups(dir string) ([]Group, error) {
	f, err := os.Open(filepath.Join(dir, "GROUPS.tsv"))
	if err != nil {
		return nil, fmt.Errorf("protos: %w", err)
	}
	defer f.Close()
	var gs []Group
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		fs := strings.Split(sc.Text(), "\t")
		if line == 1 || len(fs) < 3 {
			continue
		}
		first, err1 := strconv.Atoi(fs[1])
		count, err2 := strconv.Atoi(fs[2])
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("protos: GROUPS.tsv line %d: bad numbers", line)
		}
		gs = append(gs, Group{Name: fs[0], First: first, Count: count})
	}
	return gs, sc.Err()
}

// Load reads every case from c07-sip-invite-cases.tar.gz in dir, in case
// order. keep, when not nil, selects the case numbers to keep.
func Load(dir string, keep func(n int) bool) ([]Case, error) {
	f, err := os.Open(filepath.Join(dir, "c07-sip-invite-cases.tar.gz"))
	if err != nil {
		return nil, fmt.Errorf("protos: %w", err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("protos: %w", err)
	}
	tr := tar.NewReader(zr)
	var cases []Case
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("protos: %w", err)
		}
		if h.Typeflag != tar.TypeReg || path.Dir(h.Name) != "cases" {
			continue
		}
		n, err := strconv.Atoi(path.Base(h.Name))
		if err != nil || (keep != nil && !keep(n)) {
			continue
		}
		if h.Size > maxCase {
			return nil, fmt.Errorf("protos: case %d: %d bytes", n, h.Size)
		}
		b, err := io.ReadAll(io.LimitReader(tr, maxCase))
		if err != nil {
			return nil, fmt.Errorf("protos: case %d: %w", n, err)
		}
		c, err := parse(n, b)
		if err != nil {
			return nil, err
		}
		cases = append(cases, c)
	}
	sort.Slice(cases, func(i, j int) bool { return cases[i].N < cases[j].N })
	return cases, nil
}

func parse(n int, b []byte) (Case, error) {
	c := Case{N: n}
	var err error
	if c.Invite, b, err = chunk(b); err != nil {
		return c, fmt.Errorf("protos: case %d: invite: %w", n, err)
	}
	if c.Teardown, _, err = chunk(b); err != nil {
		return c, fmt.Errorf("protos: case %d: teardown: %w", n, err)
	}
	return c, nil
}

func chunk(b []byte) (part, rest []byte, err error) {
	sp := bytes.IndexByte(b, ' ')
	if sp < 0 {
		return nil, nil, errors.New("no length")
	}
	l, err := strconv.Atoi(string(b[:sp]))
	if err != nil || l < 0 || l > len(b)-sp-1 {
		return nil, nil, fmt.Errorf("bad length %q", b[:sp])
	}
	return b[sp+1 : sp+1+l], b[sp+1+l:], nil
}

// Values fill the placeholders of a case.
type Values struct {
	To, From       string // user@host, as in sip:<To>
	FromAddress    string // host in Via and Call-ID
	FromIP         string // SDP c= address
	LocalPort      int    // Via port: where answers go
	BranchID       string
	CallID         string
	CSeq           int
	TeardownMethod string // CANCEL
}

// Fill substitutes the placeholders of a template and computes
// <Content-Length> from the bytes after the first blank line.
func Fill(tmpl []byte, v Values) []byte {
	r := strings.NewReplacer(
		"<To>", v.To, "<From>", v.From, "<From-Address>", v.FromAddress, "<From-IP>", v.FromIP,
		"<Local-Port>", strconv.Itoa(v.LocalPort), "<Branch-ID>", v.BranchID, "<Call-ID>", v.CallID,
		"<CSeq>", strconv.Itoa(v.CSeq), "<Teardown-Method>", v.TeardownMethod,
	)
	out := []byte(r.Replace(string(tmpl)))
	if !bytes.Contains(out, []byte("<Content-Length>")) {
		return out
	}
	body := 0
	if i := bytes.Index(out, []byte("\r\n\r\n")); i >= 0 {
		body = len(out) - i - 4
		// The placeholder itself sits in the header, so its length does
		// not change the body's.
	}
	return bytes.ReplaceAll(out, []byte("<Content-Length>"), []byte(strconv.Itoa(body)))
}
