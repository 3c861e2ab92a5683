package contacts

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Format is the file format of an import.
type Format string

// Import formats.
const (
	FormatCSV   Format = "csv"
	FormatVCard Format = "vcard"
)

// DetectFormat tells the format of an import file from its name and first
// bytes: vCard when it says BEGIN:VCARD or is named .vcf/.vcard, else CSV.
func DetectFormat(name string, head []byte) Format {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".vcf", ".vcard":
		return FormatVCard
	case ".csv", ".txt", ".tsv":
		return FormatCSV
	}
	head = bytes.TrimPrefix(head, []byte("\xef\xbb\xbf"))
	if bytes.HasPrefix(bytes.ToUpper(bytes.TrimSpace(head)), []byte("BEGIN:VCARD")) {
		return FormatVCard
	}
	return FormatCSV
}

// ImportOptions tunes Import. Zero values take the defaults.
type ImportOptions struct {
	// Region reads numbers without a country code; empty means the
	// default region of the Numbers.
	Region string
	// BatchSize is the number of rows per transaction. Default 10000.
	BatchSize int
	// Workers normalise numbers in parallel. Default GOMAXPROCS.
	Workers int
	// Progress, when set, is called after every committed batch.
	Progress func(Progress)
}

// Progress tells how far an import has come.
type Progress struct {
	Bytes    int64 // bytes of the input read so far
	Rows     int   // rows (contacts in the file) processed and committed
	Created  int
	Merged   int
	Rejected int
}

// Rejection is one row an import refused, with its line in the file
// (header = line 1; for vCard the BEGIN:VCARD line) and the reason.
type Rejection struct {
	Line   int
	Reason string
}

// Summary is the outcome of an import. Every row is in exactly one of
// Created, Merged (into a contact that existed or came earlier in the file)
// and Rejected.
type Summary struct {
	Rows       int
	Created    int
	Merged     int
	Rejected   int
	Rejections []Rejection
}

// record is one contact read from a file, before and after normalisation.
type record struct {
	line    int
	name    string
	company string
	email   string
	// clientID is the customer's key in the company's CRM; empty when the
	// file has no such column.
	clientID string
	tags     []string
	fields   map[string]string
	raw      []string // phone numbers as written
	phones   []Phone  // normalised, filled by a worker
	reject   string   // why the row is refused; empty when it is fine
}

type batch struct {
	records []record
	bytes   int64 // input read when the batch was complete
	done    chan struct{}
}

// countingReader counts the bytes read, for the progress bar.
type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// Import reads contacts from r and stores them. Numbers go through
// numbers.Normalize. A row whose numbers already belong to a contact (in the
// store, or earlier in the file) is merged into it: empty fields are filled,
// new numbers added and tags united. A row with an unreadable number, no
// number, invalid fields or malformed syntax is rejected with its line and
// reason. Rows are applied in transactions of BatchSize rows, so a row is
// either fully stored or not at all.
//
// The error is for the file as a whole (unreadable input, no phone column,
// a database failure); the Summary then covers the batches committed before.
func Import(ctx context.Context, store *Store, numbers *Numbers, r io.Reader, format Format, opts ImportOptions) (Summary, error) {
	if store == nil || numbers == nil {
		return Summary{}, errors.New("contacts: import: no store or numbers")
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = 10000
	}
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	var parse func(io.Reader, func(record) error) error
	switch format {
	case FormatCSV:
		parse = parseCSV
	case FormatVCard:
		parse = parseVCards
	default:
		return Summary{}, fmt.Errorf("contacts: import: unknown format %q", format)
	}
	if err := store.flushPending(ctx); err != nil {
		return Summary{}, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	in := &countingReader{r: r}

	work := make(chan *batch, opts.Workers)
	ordered := make(chan *batch, opts.Workers+1)
	var parseErr error
	go func() {
		defer close(work)
		defer close(ordered)
		cur := &batch{done: make(chan struct{})}
		send := func() bool {
			cur.bytes = in.n.Load()
			select {
			case ordered <- cur:
			case <-ctx.Done():
				return false
			}
			select {
			case work <- cur:
			case <-ctx.Done():
				return false
			}
			cur = &batch{done: make(chan struct{})}
			return true
		}
		parseErr = parse(in, func(rec record) error {
			cur.records = append(cur.records, rec)
			if len(cur.records) >= opts.BatchSize && !send() {
				return ctx.Err()
			}
			return nil
		})
		if len(cur.records) > 0 && parseErr == nil {
			send()
		}
	}()
	var wg sync.WaitGroup
	for range opts.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range work {
				for i := range b.records {
					prepare(numbers, opts.Region, &b.records[i])
				}
				close(b.done)
			}
		}()
	}
	defer wg.Wait()

	var sum Summary
	var applyErr error
	for b := range ordered {
		if applyErr != nil {
			continue // drain, so the parser goroutine ends
		}
		select {
		case <-b.done:
		case <-ctx.Done():
			applyErr = ctx.Err()
			cancel()
			continue
		}
		res, err := store.applyBatch(ctx, b.records)
		if err != nil {
			applyErr = err
			cancel()
			continue
		}
		sum.Rows += len(b.records)
		sum.Created += res.created
		sum.Merged += res.merged
		sum.Rejected += len(res.rejections)
		sum.Rejections = append(sum.Rejections, res.rejections...)
		if opts.Progress != nil {
			opts.Progress(Progress{Bytes: b.bytes, Rows: sum.Rows, Created: sum.Created, Merged: sum.Merged, Rejected: sum.Rejected})
		}
	}
	if applyErr != nil {
		return sum, fmt.Errorf("contacts: import: %w", applyErr)
	}
	if parseErr != nil {
		return sum, fmt.Errorf("contacts: import: %w", parseErr)
	}
	return sum, nil
}

// prepare normalises a record's numbers and checks its fields, setting
// reject when the row cannot be stored as it is.
func prepare(numbers *Numbers, region string, rec *record) {
	if rec.reject != "" {
		return
	}
	seen := make(map[string]bool, len(rec.raw))
	for _, raw := range rec.raw {
		n, err := numbers.NormalizeKey(raw, region)
		if err != nil {
			var ne *NumberError
			if errors.As(err, &ne) {
				rec.reject = fmt.Sprintf("phone %q: %s", raw, ne.Reason)
			} else {
				rec.reject = fmt.Sprintf("phone %q: %v", raw, err)
			}
			return
		}
		if n.Internal || n.E164 == "" {
			rec.reject = fmt.Sprintf("phone %q: an internal extension, not a contact's number", raw)
			return
		}
		if !seen[n.E164] {
			seen[n.E164] = true
			rec.phones = append(rec.phones, Phone{E164: n.E164, Raw: strings.TrimSpace(raw), Ext: n.Ext})
		}
	}
	if len(rec.phones) == 0 {
		rec.reject = "no phone number"
		return
	}
	c := Contact{Name: rec.name, Company: rec.company, Email: rec.email, ClientID: rec.clientID, Tags: rec.tags, Fields: rec.fields,
		Numbers: rec.phones, Source: SourceImport}
	if err := clean(&c); err != nil {
		rec.reject = err.Error()
		return
	}
	rec.name, rec.company, rec.email, rec.tags, rec.fields, rec.phones = c.Name, c.Company, c.Email, c.Tags, c.Fields, c.Numbers
	rec.clientID = c.ClientID
}

type batchResult struct {
	created, merged int
	rejections      []Rejection
}

// target is a contact a batch creates or changes.
type target struct {
	c        Contact
	existing bool    // in the store before this batch
	added    []Phone // numbers to insert
	changed  bool
}

// applyBatch stores one batch of prepared records in one transaction.
func (s *Store) applyBatch(ctx context.Context, recs []record) (batchResult, error) {
	var res batchResult
	tx, err := s.begin(ctx)
	if err != nil {
		return res, err
	}
	defer tx.Rollback()
	stored, err := s.ownersOf(ctx, tx, recs)
	if err != nil {
		return res, err
	}

	clientOwners, err := s.clientOwnersOf(ctx, tx, recs)
	if err != nil {
		return res, err
	}
	clients := map[string]*target{} // client ids given in this batch
	owners := map[string]*target{}  // numbers seen in this batch
	existing := map[int64]*target{}
	var created []*target
	now := s.now().UTC().Truncate(time.Millisecond)
	for i := range recs {
		rec := &recs[i]
		if rec.reject != "" {
			res.rejections = append(res.rejections, Rejection{Line: rec.line, Reason: rec.reject})
			continue
		}
		// The first number that already has a contact decides the merge;
		// without one, the client id does (one customer, several rows).
		load := func(id int64) (*target, error) {
			if t := existing[id]; t != nil {
				return t, nil
			}
			c, err := s.get(ctx, tx, id)
			if err != nil {
				return nil, fmt.Errorf("contacts: import line %d: %w", rec.line, err)
			}
			t := &target{c: c, existing: true}
			existing[id] = t
			for _, n := range c.Numbers {
				owners[n.E164] = t
			}
			return t, nil
		}
		var into *target
		for _, p := range rec.phones {
			if t := owners[p.E164]; t != nil {
				into = t
				break
			}
			if id, ok := stored[p.E164]; ok {
				if into, err = load(id); err != nil {
					return res, err
				}
				break
			}
		}
		if into == nil && rec.clientID != "" {
			if t := clients[rec.clientID]; t != nil {
				into = t
			} else if id, ok := clientOwners[rec.clientID]; ok {
				if into, err = load(id); err != nil {
					return res, err
				}
			}
		}
		if why := clientConflict(rec.clientID, into, clients, clientOwners); why != "" {
			res.rejections = append(res.rejections, Rejection{Line: rec.line, Reason: why})
			continue
		}
		if into == nil {
			t := &target{c: Contact{Name: rec.name, Company: rec.company, Email: rec.email, ClientID: rec.clientID, Tags: rec.tags,
				Fields: rec.fields, Source: SourceImport, CreatedAt: now, UpdatedAt: now}}
			if rec.clientID != "" {
				clients[rec.clientID] = t
			}
			for _, p := range rec.phones {
				t.c.Numbers = append(t.c.Numbers, p)
				t.added = append(t.added, p)
				owners[p.E164] = t
			}
			created = append(created, t)
			res.created++
			continue
		}
		merge(into, rec, owners, stored)
		if rec.clientID != "" {
			clients[rec.clientID] = into
		}
		res.merged++
	}

	if len(created) > 0 {
		first, err := s.reserveIDs(ctx, tx, len(created))
		if err != nil {
			return res, err
		}
		insC, err := tx.PrepareContext(ctx, s.q(`INSERT INTO contacts(id, name, company, email, tags, fields, source, created_at, updated_at, client_id)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`))
		if err != nil {
			return res, fmt.Errorf("contacts: import: prepare: %w", err)
		}
		defer insC.Close()
		insN, err := tx.PrepareContext(ctx, s.q(`INSERT INTO contact_numbers(e164, raw, ext, contact_id) VALUES (?, ?, ?, ?)`))
		if err != nil {
			return res, fmt.Errorf("contacts: import: prepare: %w", err)
		}
		defer insN.Close()
		ms := millis(now)
		for i, t := range created {
			t.c.ID = first + int64(i)
			tags, fields := encodeJSON(t.c.Tags, t.c.Fields)
			if _, err := insC.ExecContext(ctx, t.c.ID, t.c.Name, t.c.Company, t.c.Email, tags, fields, string(SourceImport), ms, ms, nullText(t.c.ClientID)); err != nil {
				return res, fmt.Errorf("contacts: import: insert contact: %w", err)
			}
			for _, p := range t.added {
				if _, err := insN.ExecContext(ctx, p.E164, p.Raw, p.Ext, t.c.ID); err != nil {
					return res, fmt.Errorf("contacts: import: insert number %s: %w", p.E164, err)
				}
			}
		}
		if err := s.logChange(ctx, tx, first, first+int64(len(created))-1); err != nil {
			return res, err
		}
	}
	for id, t := range existing {
		if !t.changed {
			continue
		}
		t.c.UpdatedAt = now
		tags, fields := encodeJSON(t.c.Tags, t.c.Fields)
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE contacts SET name = ?, company = ?, email = ?, tags = ?, fields = ?, updated_at = ?, client_id = ? WHERE id = ?`),
			t.c.Name, t.c.Company, t.c.Email, tags, fields, millis(now), nullText(t.c.ClientID), id); err != nil {
			return res, fmt.Errorf("contacts: import: update contact %d: %w", id, err)
		}
		for _, p := range t.added {
			if err := s.insertNumber(ctx, tx, id, p); err != nil {
				return res, err
			}
		}
		if err := s.logChange(ctx, tx, id, id); err != nil {
			return res, err
		}
	}
	if err := tx.Commit(); err != nil {
		return res, fmt.Errorf("contacts: import: commit: %w", err)
	}
	if s.cache.Load() != nil {
		for _, t := range created {
			s.cached(&t.c)
		}
		for _, t := range existing {
			if t.changed {
				s.cached(&t.c)
			}
		}
	}
	return res, nil
}

// merge folds a record into a contact: empty fields are filled, tags and
// fields united, numbers that belong to nobody added. Numbers that belong
// to a third contact stay there.
func merge(t *target, rec *record, owners map[string]*target, stored map[string]int64) {
	c := &t.c
	fill := func(dst *string, v string) {
		if *dst == "" && v != "" {
			*dst = v
			t.changed = true
		}
	}
	fill(&c.Name, rec.name)
	fill(&c.Company, rec.company)
	fill(&c.Email, rec.email)
	fill(&c.ClientID, rec.clientID)
	for _, tag := range rec.tags {
		if !contains(c.Tags, tag) && len(c.Tags) < maxTags {
			c.Tags = append(c.Tags, tag)
			t.changed = true
		}
	}
	for k, v := range rec.fields {
		if _, ok := c.Fields[k]; !ok && len(c.Fields) < maxFields {
			if c.Fields == nil {
				c.Fields = map[string]string{}
			}
			c.Fields[k] = v
			t.changed = true
		}
	}
	for _, p := range rec.phones {
		if owners[p.E164] != nil || len(c.Numbers) >= maxNumbers {
			continue
		}
		if _, ok := stored[p.E164]; ok {
			continue // a third contact's number
		}
		c.Numbers = append(c.Numbers, p)
		t.added = append(t.added, p)
		owners[p.E164] = t
		t.changed = true
	}
}

// lookupChunk is the number of E.164 numbers asked for in one query: far
// below SQLite's and PostgreSQL's parameter limits, and large enough that a
// batch needs a few dozen queries instead of one per number.
const lookupChunk = 500

// ownersOf returns the stored owner of every number in the batch. It runs
// inside the batch's transaction, so no other writer can add a number
// between the lookup and the inserts.
func (s *Store) ownersOf(ctx context.Context, tx *sql.Tx, recs []record) (map[string]int64, error) {
	var all []any
	for i := range recs {
		if recs[i].reject != "" {
			continue
		}
		for _, p := range recs[i].phones {
			all = append(all, p.E164)
		}
	}
	owners := make(map[string]int64)
	for len(all) > 0 {
		n := min(len(all), lookupChunk)
		rows, err := tx.QueryContext(ctx, s.q(`SELECT e164, contact_id FROM contact_numbers WHERE e164 IN (`+placeholders(n)+`)`), all[:n]...)
		if err != nil {
			return nil, fmt.Errorf("contacts: import: find numbers: %w", err)
		}
		for rows.Next() {
			var e164 string
			var id int64
			if err := rows.Scan(&e164, &id); err != nil {
				rows.Close()
				return nil, fmt.Errorf("contacts: import: find numbers: %w", err)
			}
			owners[e164] = id
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("contacts: import: find numbers: %w", err)
		}
		all = all[n:]
	}
	return owners, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
