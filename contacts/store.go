package contacts

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/switchboard-sip/switchboard/storage"
)

// Source says how a contact came into the store.
type Source string

// Sources of a contact.
const (
	SourceImport Source = "import" // a CSV or vCard import
	SourceAPI    Source = "api"    // POST /api/contacts
	SourceCall   Source = "call"   // the first call of an unknown number
)

// Phone is one number of a contact, kept as received and as E.164.
type Phone struct {
	E164 string
	Raw  string
	Ext  string
}

// History summarises a contact's calls (SPEC §8 contact fields).
type History struct {
	CallsCount  int64
	FirstCallAt *time.Time
	LastCallAt  *time.Time
	OpenMissed  int64
}

// Contact is a stored contact with its numbers and call history, in the
// JSON shape of SPEC §8.
type Contact struct {
	ID      int64
	Name    string
	Company string
	Email   string
	// ClientID is the customer's key in the company's own CRM (SPEC §2);
	// unique among contacts when set.
	ClientID  string
	Tags      []string
	Fields    map[string]string
	Numbers   []Phone
	Source    Source
	CreatedAt time.Time
	UpdatedAt time.Time
	History
}

// Patch changes some fields of a contact (PATCH semantics): nil pointers
// leave a field alone. Fields are merged key by key, a nil value removing
// the key (as in RFC 7396). Numbers, when set, replace all numbers.
type Patch struct {
	Name     *string
	Company  *string
	Email    *string
	ClientID *string
	Tags     *[]string
	Fields   map[string]*string
	Numbers  *[]Phone
}

// ErrNotFound is returned for a contact that does not exist.
var ErrNotFound = errors.New("contacts: not found")

// ErrConflict is wrapped by a *NumberTakenError.
var ErrConflict = errors.New("contacts: conflict")

// NumberTakenError says that a number already belongs to another contact:
// numbers are unique across contacts.
type NumberTakenError struct {
	E164      string
	ContactID int64
}

// Error implements error.
func (e *NumberTakenError) Error() string {
	return fmt.Sprintf("contacts: number %s already belongs to contact %d", e.E164, e.ContactID)
}

// Unwrap lets errors.Is(err, ErrConflict) match.
func (e *NumberTakenError) Unwrap() error { return ErrConflict }

// FieldError is a validation error naming the offending field, so that the
// API can answer 400 with a message a client can act on.
type FieldError struct {
	Field  string // JSON path: name, numbers[1].e164, fields.x
	Reason string
}

// Error implements error.
func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

// Limits on stored text. They keep one contact small in the call-path cache
// and in SIP headers built from it.
const (
	maxNameLen   = 200
	maxEmailLen  = 254 // RFC 5321 §4.5.3.1.3
	maxTagLen    = 64
	maxTags      = 64
	maxFields    = 64
	maxFieldKey  = 64
	maxFieldLen  = 1000
	maxNumbers   = 32
	maxSearchLen = 100
)

// contactMigrations are the schema steps of the "contacts" component.
// Append only. Times are unix milliseconds in UTC, like the calls table.
//
// Ids come from contact_seq rather than from the table so that the call path
// can hand out ids from a block reserved in memory (see Cache) and write the
// row later. contact_changes lets every process holding a Cache (another
// node, or the agent while the CLI imports) see writes made elsewhere.
var contactMigrations = []string{
	`CREATE TABLE contacts (
		id         INTEGER NOT NULL PRIMARY KEY,
		name       TEXT    NOT NULL DEFAULT '',
		company    TEXT    NOT NULL DEFAULT '',
		email      TEXT    NOT NULL DEFAULT '',
		tags       TEXT    NOT NULL DEFAULT '[]',
		fields     TEXT    NOT NULL DEFAULT '{}',
		source     TEXT    NOT NULL,
		created_at INTEGER NOT NULL,
		updated_at INTEGER NOT NULL
	);
	CREATE TABLE contact_numbers (
		e164       TEXT    NOT NULL PRIMARY KEY,
		raw        TEXT    NOT NULL DEFAULT '',
		ext        TEXT    NOT NULL DEFAULT '',
		contact_id INTEGER NOT NULL REFERENCES contacts(id) ON DELETE CASCADE
	) WITHOUT ROWID;
	CREATE INDEX contact_numbers_contact ON contact_numbers(contact_id);
	CREATE TABLE contact_seq (
		id   INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
		next INTEGER NOT NULL
	);
	INSERT INTO contact_seq(id, next) VALUES (1, 1);
	CREATE TABLE contact_changes (
		seq     INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
		from_id INTEGER NOT NULL,
		to_id   INTEGER NOT NULL,
		at      INTEGER NOT NULL
	);`,
	// client_id (SPEC §2): NULL when unset, so that the unique index
	// holds only among contacts that have one. Emails are found case-
	// insensitively for the trace by email.
	`ALTER TABLE contacts ADD COLUMN client_id TEXT;
	CREATE UNIQUE INDEX contacts_client_id ON contacts(client_id);
	CREATE INDEX contacts_email ON contacts(LOWER(email));`,
}

// DB is the database a Store works on; *storage.DB implements it. The
// interface names what the contacts need of it.
type DB interface {
	BeginTx(ctx context.Context, opts *sql.TxOptions) (*sql.Tx, error)
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	// Migrate applies a component's schema steps (see storage.DB.Migrate).
	Migrate(ctx context.Context, component string, steps []string) error
	// Rebind turns ? placeholders into the driver's own.
	Rebind(query string) string
	// AppendLock orders the change log's appends (see storage.DB).
	AppendLock(ctx context.Context, tx storage.Execer, table string) error
	// NotifyTx tells the other nodes of a change when tx commits, and Bus
	// hears theirs (SPEC §11).
	NotifyTx(ctx context.Context, tx storage.Execer, topic string) error
	Bus() *storage.Bus
}

// busTopic is the topic of contact changes on the storage bus: a node's
// cache reads the change log when another node wrote to it.
const busTopic = "contacts"

// querier is what both *sql.DB and *sql.Tx offer, so helpers run inside or
// outside a transaction.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Store keeps contacts in the shared SQL database. Queries and schema steps
// are written once with ? placeholders and portable SQL (ON CONFLICT,
// RETURNING), and storage makes them the driver's own.
// Consumers declare the small interfaces they need (see callctl and web).
//
// When a Cache is attached, every write through the Store updates it before
// the write returns.
type Store struct {
	db    DB
	now   func() time.Time
	cache atomic.Pointer[Cache]

	calls  CallLog    // nil: no calls (UseCalls)
	missed MissedLog  // nil: no missed-call entries (UseMissed)
	texts  MessageLog // nil: no messages (UseMessages)
}

// NewStore migrates the contacts schema and returns the store.
func NewStore(ctx context.Context, db DB) (*Store, error) {
	if db == nil {
		return nil, errors.New("contacts: store: no database")
	}
	if err := db.Migrate(ctx, "contacts", contactMigrations); err != nil {
		return nil, fmt.Errorf("contacts: store: %w", err)
	}
	return &Store{db: db, now: time.Now}, nil
}

// DB returns the database the store uses.
func (s *Store) DB() DB { return s.db }

func (s *Store) q(query string) string { return s.db.Rebind(query) }

func millis(t time.Time) int64 { return t.UnixMilli() }

func fromMillis(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

// reserveIDs takes n consecutive ids from contact_seq inside tx and returns
// the first.
func (s *Store) reserveIDs(ctx context.Context, q querier, n int) (int64, error) {
	var next int64
	err := q.QueryRowContext(ctx, s.q(`UPDATE contact_seq SET next = next + ? WHERE id = 1 RETURNING next`), n).Scan(&next)
	if err != nil {
		return 0, fmt.Errorf("contacts: reserve %d ids: %w", n, err)
	}
	return next - int64(n), nil
}

// logChange records that contacts from..to changed, for other processes'
// caches.
func (s *Store) logChange(ctx context.Context, q querier, from, to int64) error {
	if err := s.db.AppendLock(ctx, q, "contact_changes"); err != nil {
		return fmt.Errorf("contacts: log change %d-%d: %w", from, to, err)
	}
	if err := s.db.NotifyTx(ctx, q, busTopic); err != nil {
		return fmt.Errorf("contacts: log change %d-%d: %w", from, to, err)
	}
	_, err := q.ExecContext(ctx, s.q(`INSERT INTO contact_changes(from_id, to_id, at) VALUES (?, ?, ?)`), from, to, millis(s.now()))
	if err != nil {
		return fmt.Errorf("contacts: log change %d-%d: %w", from, to, err)
	}
	return nil
}

// flushPending writes the contacts the call path created in memory, so that
// a write through the store sees them in the database.
func (s *Store) flushPending(ctx context.Context) error {
	if c := s.cache.Load(); c != nil {
		return c.Flush(ctx)
	}
	return nil
}

func (s *Store) begin(ctx context.Context) (*sql.Tx, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("contacts: begin: %w", err)
	}
	return tx, nil
}

// Create stores a new contact with its numbers and returns it with its id.
// Source defaults to api. A number that belongs to another contact gives a
// *NumberTakenError.
func (s *Store) Create(ctx context.Context, c Contact) (Contact, error) {
	if c.Source == "" {
		c.Source = SourceAPI
	}
	if err := clean(&c); err != nil {
		return Contact{}, err
	}
	if err := s.flushPending(ctx); err != nil {
		return Contact{}, err
	}
	tx, err := s.begin(ctx)
	if err != nil {
		return Contact{}, err
	}
	defer tx.Rollback()
	if err := s.checkNumbers(ctx, tx, 0, c.Numbers); err != nil {
		return Contact{}, err
	}
	id, err := s.reserveIDs(ctx, tx, 1)
	if err != nil {
		return Contact{}, err
	}
	now := s.now().UTC().Truncate(time.Millisecond)
	c.ID, c.CreatedAt, c.UpdatedAt = id, now, now
	if err := s.insertContact(ctx, tx, &c); err != nil {
		return Contact{}, err
	}
	if err := s.logChange(ctx, tx, id, id); err != nil {
		return Contact{}, err
	}
	if err := tx.Commit(); err != nil {
		return Contact{}, fmt.Errorf("contacts: create: %w", err)
	}
	s.cached(&c)
	return c, nil
}

func (s *Store) insertContact(ctx context.Context, q querier, c *Contact) error {
	tags, fields := encodeJSON(c.Tags, c.Fields)
	if err := s.checkClientID(ctx, q, c.ID, c.ClientID); err != nil {
		return err
	}
	_, err := q.ExecContext(ctx, s.q(`INSERT INTO contacts(id, name, company, email, tags, fields, source, created_at, updated_at, client_id)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		c.ID, c.Name, c.Company, c.Email, tags, fields, string(c.Source), millis(c.CreatedAt), millis(c.UpdatedAt), nullText(c.ClientID))
	if err != nil {
		return fmt.Errorf("contacts: insert contact %d: %w", c.ID, err)
	}
	for _, p := range c.Numbers {
		if err := s.insertNumber(ctx, q, c.ID, p); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) insertNumber(ctx context.Context, q querier, id int64, p Phone) error {
	_, err := q.ExecContext(ctx, s.q(`INSERT INTO contact_numbers(e164, raw, ext, contact_id) VALUES (?, ?, ?, ?)`), p.E164, p.Raw, p.Ext, id)
	if err != nil {
		return fmt.Errorf("contacts: add number %s to %d: %w", p.E164, id, err)
	}
	return nil
}

// checkNumbers fails with a *NumberTakenError when one of ps belongs to a
// contact other than self.
func (s *Store) checkNumbers(ctx context.Context, q querier, self int64, ps []Phone) error {
	for _, p := range ps {
		owner, err := s.owner(ctx, q, p.E164)
		if err != nil {
			return err
		}
		if owner != 0 && owner != self {
			return &NumberTakenError{E164: p.E164, ContactID: owner}
		}
	}
	return nil
}

// owner returns the contact id holding e164, 0 when none.
func (s *Store) owner(ctx context.Context, q querier, e164 string) (int64, error) {
	var id int64
	err := q.QueryRowContext(ctx, s.q(`SELECT contact_id FROM contact_numbers WHERE e164 = ?`), e164).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("contacts: find number %s: %w", e164, err)
	}
	return id, nil
}

// Get returns one contact with its numbers and history.
func (s *Store) Get(ctx context.Context, id int64) (Contact, error) {
	c, err := s.get(ctx, s.db, id)
	if err != nil {
		return Contact{}, err
	}
	list := []*Contact{&c}
	if err := s.fillHistory(ctx, list); err != nil {
		return Contact{}, err
	}
	return c, nil
}

// get reads a contact and its numbers, without history.
func (s *Store) get(ctx context.Context, q querier, id int64) (Contact, error) {
	row := q.QueryRowContext(ctx, s.q(`SELECT `+contactColumns+`
		FROM contacts WHERE id = ?`), id)
	c, err := scanContact(row)
	if errors.Is(err, sql.ErrNoRows) {
		return Contact{}, fmt.Errorf("contacts: contact %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return Contact{}, fmt.Errorf("contacts: get %d: %w", id, err)
	}
	list := []*Contact{&c}
	if err := s.fillNumbers(ctx, q, list); err != nil {
		return Contact{}, err
	}
	return c, nil
}

type scanner interface{ Scan(dest ...any) error }

func scanContact(r scanner) (Contact, error) {
	var (
		c                Contact
		tags, fields     string
		source           string
		created, updated int64
	)
	var client sql.NullString
	if err := r.Scan(&c.ID, &c.Name, &c.Company, &c.Email, &tags, &fields, &source, &created, &updated, &client); err != nil {
		return Contact{}, err
	}
	c.ClientID = client.String
	c.Tags = decodeTags(tags)
	c.Fields = decodeFields(fields)
	c.Source = Source(source)
	c.CreatedAt, c.UpdatedAt = fromMillis(created), fromMillis(updated)
	return c, nil
}

// fillNumbers loads the numbers of the listed contacts in one query.
func (s *Store) fillNumbers(ctx context.Context, q querier, list []*Contact) error {
	if len(list) == 0 {
		return nil
	}
	byID := make(map[int64]*Contact, len(list))
	args := make([]any, len(list))
	for i, c := range list {
		c.Numbers = []Phone{}
		byID[c.ID] = c
		args[i] = c.ID
	}
	rows, err := q.QueryContext(ctx, s.q(`SELECT contact_id, e164, raw, ext FROM contact_numbers
		WHERE contact_id IN (`+placeholders(len(list))+`) ORDER BY contact_id, e164`), args...)
	if err != nil {
		return fmt.Errorf("contacts: load numbers: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var p Phone
		if err := rows.Scan(&id, &p.E164, &p.Raw, &p.Ext); err != nil {
			return fmt.Errorf("contacts: load numbers: %w", err)
		}
		if c := byID[id]; c != nil {
			c.Numbers = append(c.Numbers, p)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("contacts: load numbers: %w", err)
	}
	return nil
}

// fillHistory sets the call summary and the open missed calls of the
// listed contacts, one query each.
func (s *Store) fillHistory(ctx context.Context, list []*Contact) error {
	if len(list) == 0 {
		return nil
	}
	ids := make([]int64, len(list))
	for i, c := range list {
		ids[i] = c.ID
	}
	if s.calls != nil {
		counts, err := s.calls.CallCounts(ctx, ids)
		if err != nil {
			return fmt.Errorf("contacts: call history: %w", err)
		}
		for _, c := range list {
			if h, ok := counts[c.ID]; ok {
				c.CallsCount, c.FirstCallAt, c.LastCallAt = h.Calls, &h.First, &h.Last
			}
		}
	}
	if s.missed != nil {
		open, err := s.missed.OpenMissed(ctx, ids)
		if err != nil {
			return fmt.Errorf("contacts: open missed calls: %w", err)
		}
		for _, c := range list {
			c.OpenMissed = open[c.ID]
		}
	}
	return nil
}

// History returns the call summary of one contact.
func (s *Store) History(ctx context.Context, id int64) (History, error) {
	c := Contact{ID: id}
	if err := s.fillHistory(ctx, []*Contact{&c}); err != nil {
		return History{}, err
	}
	return c.History, nil
}

func placeholders(n int) string {
	if n <= 0 {
		return ""
	}
	return strings.Repeat("?, ", n-1) + "?"
}

// Update applies a patch and returns the contact as stored.
func (s *Store) Update(ctx context.Context, id int64, p Patch) (Contact, error) {
	if err := s.flushPending(ctx); err != nil {
		return Contact{}, err
	}
	tx, err := s.begin(ctx)
	if err != nil {
		return Contact{}, err
	}
	defer tx.Rollback()
	c, err := s.get(ctx, tx, id)
	if err != nil {
		return Contact{}, err
	}
	old := c.Numbers
	apply(&c, p)
	if err := clean(&c); err != nil {
		return Contact{}, err
	}
	c.UpdatedAt = s.now().UTC().Truncate(time.Millisecond)
	if err := s.checkClientID(ctx, tx, id, c.ClientID); err != nil {
		return Contact{}, err
	}
	tags, fields := encodeJSON(c.Tags, c.Fields)
	if _, err := tx.ExecContext(ctx, s.q(`UPDATE contacts SET name = ?, company = ?, email = ?, tags = ?, fields = ?, updated_at = ?, client_id = ?
		WHERE id = ?`), c.Name, c.Company, c.Email, tags, fields, millis(c.UpdatedAt), nullText(c.ClientID), id); err != nil {
		return Contact{}, fmt.Errorf("contacts: update %d: %w", id, err)
	}
	if p.Numbers != nil {
		if err := s.checkNumbers(ctx, tx, id, c.Numbers); err != nil {
			return Contact{}, err
		}
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM contact_numbers WHERE contact_id = ?`), id); err != nil {
			return Contact{}, fmt.Errorf("contacts: update %d numbers: %w", id, err)
		}
		for _, n := range c.Numbers {
			if err := s.insertNumber(ctx, tx, id, n); err != nil {
				return Contact{}, err
			}
		}
	}
	if err := s.logChange(ctx, tx, id, id); err != nil {
		return Contact{}, err
	}
	if err := tx.Commit(); err != nil {
		return Contact{}, fmt.Errorf("contacts: update %d: %w", id, err)
	}
	if cc := s.cache.Load(); cc != nil {
		cc.dropNumbers(id, old)
	}
	s.cached(&c)
	if err := s.fillHistory(ctx, []*Contact{&c}); err != nil {
		return Contact{}, err
	}
	return c, nil
}

func apply(c *Contact, p Patch) {
	if p.Name != nil {
		c.Name = *p.Name
	}
	if p.Company != nil {
		c.Company = *p.Company
	}
	if p.Email != nil {
		c.Email = *p.Email
	}
	if p.ClientID != nil {
		c.ClientID = *p.ClientID
	}
	if p.Tags != nil {
		c.Tags = append([]string(nil), (*p.Tags)...)
	}
	if len(p.Fields) > 0 {
		if c.Fields == nil {
			c.Fields = map[string]string{}
		}
		for k, v := range p.Fields {
			if v == nil {
				delete(c.Fields, k)
			} else {
				c.Fields[k] = *v
			}
		}
	}
	if p.Numbers != nil {
		c.Numbers = append([]Phone(nil), (*p.Numbers)...)
	}
}

// AddNumber gives contact id one more number.
func (s *Store) AddNumber(ctx context.Context, id int64, p Phone) error {
	if err := checkPhone("number", &p); err != nil {
		return err
	}
	if err := s.flushPending(ctx); err != nil {
		return err
	}
	tx, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	c, err := s.get(ctx, tx, id)
	if err != nil {
		return err
	}
	owner, err := s.owner(ctx, tx, p.E164)
	if err != nil {
		return err
	}
	if owner == id {
		return nil
	}
	if owner != 0 {
		return &NumberTakenError{E164: p.E164, ContactID: owner}
	}
	if len(c.Numbers) >= maxNumbers {
		return &FieldError{Field: "numbers", Reason: fmt.Sprintf("at most %d numbers per contact", maxNumbers)}
	}
	if err := s.insertNumber(ctx, tx, id, p); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, s.q(`UPDATE contacts SET updated_at = ? WHERE id = ?`), millis(s.now()), id); err != nil {
		return fmt.Errorf("contacts: add number to %d: %w", id, err)
	}
	if err := s.logChange(ctx, tx, id, id); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("contacts: add number to %d: %w", id, err)
	}
	c.Numbers = append(c.Numbers, p)
	s.cached(&c)
	return nil
}

// Delete removes a contact, its numbers and all its calls and messages in
// one transaction (a privacy request), and returns how many calls went.
func (s *Store) Delete(ctx context.Context, id int64) (calls int64, err error) {
	if err := s.flushPending(ctx); err != nil {
		return 0, err
	}
	tx, err := s.begin(ctx)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	c, err := s.get(ctx, tx, id)
	if err != nil {
		return 0, err
	}
	// A privacy request takes the calls and the missed-call entries, in
	// the transaction that takes the contact.
	if s.calls != nil {
		if calls, err = s.calls.DeleteContactCalls(ctx, tx, id); err != nil {
			return 0, err
		}
	}
	if s.missed != nil {
		if err := s.missed.DeleteContactMissed(ctx, tx, id); err != nil {
			return 0, err
		}
	}
	if s.texts != nil {
		if _, err := s.texts.DeleteContactMessages(ctx, tx, id); err != nil {
			return 0, err
		}
	}
	// Numbers go explicitly: a PostgreSQL schema may lack the cascade.
	if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM contact_numbers WHERE contact_id = ?`), id); err != nil {
		return 0, fmt.Errorf("contacts: delete numbers of %d: %w", id, err)
	}
	if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM contacts WHERE id = ?`), id); err != nil {
		return 0, fmt.Errorf("contacts: delete %d: %w", id, err)
	}
	if err := s.logChange(ctx, tx, id, id); err != nil {
		return 0, err
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("contacts: delete %d: %w", id, err)
	}
	if cc := s.cache.Load(); cc != nil {
		cc.drop(id, c.Numbers)
	}
	return calls, nil
}

// FindByNumber returns the contact holding an E.164 number.
func (s *Store) FindByNumber(ctx context.Context, e164 string) (Contact, error) {
	if err := s.flushPending(ctx); err != nil {
		return Contact{}, err
	}
	id, err := s.owner(ctx, s.db, e164)
	if err != nil {
		return Contact{}, err
	}
	if id == 0 {
		return Contact{}, fmt.Errorf("contacts: number %s: %w", e164, ErrNotFound)
	}
	return s.Get(ctx, id)
}

// Search lists contacts whose name, company, email or number contains q
// (all contacts when q is empty), by id, limit at a time. cursor is the
// next value of the previous page; the returned next is empty on the last
// page.
func (s *Store) Search(ctx context.Context, q string, limit int, cursor string) (items []Contact, next string, err error) {
	if limit <= 0 {
		limit = 50
	}
	if limit > 1000 {
		limit = 1000
	}
	var after int64
	if cursor != "" {
		after, err = strconv.ParseInt(cursor, 10, 64)
		if err != nil || after < 0 {
			return nil, "", &FieldError{Field: "cursor", Reason: "not a cursor from a previous page"}
		}
	}
	q = strings.TrimSpace(q)
	if utf8.RuneCountInString(q) > maxSearchLen {
		return nil, "", &FieldError{Field: "q", Reason: fmt.Sprintf("longer than %d characters", maxSearchLen)}
	}
	query := `SELECT ` + contactColumns + ` FROM contacts WHERE id > ?`
	args := []any{after}
	if q != "" {
		like := "%" + escapeLike(strings.ToLower(q)) + "%"
		query += ` AND (LOWER(name) LIKE ? ESCAPE '\' OR LOWER(company) LIKE ? ESCAPE '\' OR LOWER(email) LIKE ? ESCAPE '\'` +
			` OR LOWER(client_id) LIKE ? ESCAPE '\'`
		args = append(args, like, like, like, like)
		if d := digitsOf(q); d != "" {
			query += ` OR id IN (SELECT contact_id FROM contact_numbers WHERE e164 LIKE ?)`
			args = append(args, "%"+d+"%")
		}
		query += `)`
	}
	query += ` ORDER BY id LIMIT ?`
	args = append(args, limit+1)
	rows, err := s.db.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, "", fmt.Errorf("contacts: search %q: %w", q, err)
	}
	defer rows.Close()
	for rows.Next() {
		c, err := scanContact(rows)
		if err != nil {
			return nil, "", fmt.Errorf("contacts: search %q: %w", q, err)
		}
		items = append(items, c)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("contacts: search %q: %w", q, err)
	}
	rows.Close()
	if len(items) > limit {
		items = items[:limit]
		next = strconv.FormatInt(items[limit-1].ID, 10)
	}
	list := make([]*Contact, len(items))
	for i := range items {
		list[i] = &items[i]
	}
	if err := s.fillNumbers(ctx, s.db, list); err != nil {
		return nil, "", err
	}
	if err := s.fillHistory(ctx, list); err != nil {
		return nil, "", err
	}
	if items == nil {
		items = []Contact{}
	}
	return items, next, nil
}

func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// digitsOf returns the digits of q when q looks like (part of) a number.
func digitsOf(q string) string {
	var b strings.Builder
	for _, r := range q {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == '+' || r == ' ' || r == '-' || r == '.' || r == '(' || r == ')' || r == '/':
		default:
			return ""
		}
	}
	return b.String()
}

// PurgeCallContacts deletes contacts created by calls before the given
// time that have no call left, for the retention job: once a caller's every
// call has expired, the contact the first call made goes too. The time
// bound spares contacts whose first call record is still on its way to the
// database.
func (s *Store) PurgeCallContacts(ctx context.Context, before time.Time) (int64, error) {
	if s.calls == nil {
		return 0, nil
	}
	if err := s.flushPending(ctx); err != nil {
		return 0, err
	}
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT id FROM contacts WHERE source = ? AND created_at < ?`),
		string(SourceCall), millis(before))
	if err != nil {
		return 0, fmt.Errorf("contacts: purge: %w", err)
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return 0, fmt.Errorf("contacts: purge: %w", err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("contacts: purge: %w", err)
	}
	if ids, err = s.calls.WithoutCalls(ctx, ids); err != nil {
		return 0, fmt.Errorf("contacts: purge: %w", err)
	}
	var n int64
	for _, id := range ids {
		if _, err := s.Delete(ctx, id); err != nil && !errors.Is(err, ErrNotFound) {
			return n, err
		}
		n++
	}
	return n, nil
}

// cached puts c into the attached cache, if any.
func (s *Store) cached(c *Contact) {
	if cc := s.cache.Load(); cc != nil {
		cc.put(infoOf(c), c.Numbers)
	}
}

func encodeJSON(tags []string, fields map[string]string) (string, string) {
	t, f := "[]", "{}"
	if len(tags) > 0 {
		b, _ := json.Marshal(tags) // []string always marshals
		t = string(b)
	}
	if len(fields) > 0 {
		b, _ := json.Marshal(fields) // map[string]string always marshals
		f = string(b)
	}
	return t, f
}

func decodeTags(s string) []string {
	if s == "" || s == "[]" {
		return []string{}
	}
	var t []string
	if json.Unmarshal([]byte(s), &t) != nil || t == nil {
		return []string{}
	}
	return t
}

func decodeFields(s string) map[string]string {
	f := map[string]string{}
	if s == "" || s == "{}" {
		return f
	}
	if json.Unmarshal([]byte(s), &f) != nil {
		return map[string]string{}
	}
	return f
}

// clean trims and checks a contact before it is stored: control characters
// never reach the store, since names end up in SIP headers and HTML.
func clean(c *Contact) error {
	var err error
	if c.Name, err = cleanText("name", c.Name, maxNameLen); err != nil {
		return err
	}
	if c.Company, err = cleanText("company", c.Company, maxNameLen); err != nil {
		return err
	}
	if c.Email, err = cleanText("email", c.Email, maxEmailLen); err != nil {
		return err
	}
	if c.Email != "" && !plausibleEmail(c.Email) {
		return &FieldError{Field: "email", Reason: fmt.Sprintf("%q is not an email address", c.Email)}
	}
	if c.ClientID, err = cleanText("client_id", c.ClientID, maxClientIDLen); err != nil {
		return err
	}
	switch c.Source {
	case SourceAPI, SourceImport, SourceCall:
	default:
		return &FieldError{Field: "source", Reason: fmt.Sprintf("%q is not one of import, api, call", c.Source)}
	}
	tags := make([]string, 0, len(c.Tags))
	seen := make(map[string]bool, len(c.Tags))
	for i, t := range c.Tags {
		t, err := cleanText(fmt.Sprintf("tags[%d]", i), t, maxTagLen)
		if err != nil {
			return err
		}
		if t != "" && !seen[t] {
			seen[t] = true
			tags = append(tags, t)
		}
	}
	if len(tags) > maxTags {
		return &FieldError{Field: "tags", Reason: fmt.Sprintf("at most %d tags", maxTags)}
	}
	c.Tags = tags
	if len(c.Fields) > maxFields {
		return &FieldError{Field: "fields", Reason: fmt.Sprintf("at most %d fields", maxFields)}
	}
	fields := make(map[string]string, len(c.Fields))
	for k, v := range c.Fields {
		key, err := cleanText("fields", k, maxFieldKey)
		if err != nil {
			return err
		}
		if key == "" {
			return &FieldError{Field: "fields", Reason: "empty key"}
		}
		if fields[key], err = cleanMultiline("fields."+key, v, maxFieldLen); err != nil {
			return err
		}
	}
	c.Fields = fields
	if len(c.Numbers) > maxNumbers {
		return &FieldError{Field: "numbers", Reason: fmt.Sprintf("at most %d numbers per contact", maxNumbers)}
	}
	seenNum := make(map[string]bool, len(c.Numbers))
	nums := make([]Phone, 0, len(c.Numbers))
	for i := range c.Numbers {
		p := c.Numbers[i]
		if err := checkPhone(fmt.Sprintf("numbers[%d]", i), &p); err != nil {
			return err
		}
		if !seenNum[p.E164] {
			seenNum[p.E164] = true
			nums = append(nums, p)
		}
	}
	c.Numbers = nums
	return nil
}

// cleanText trims s and rejects invalid UTF-8, over-long text and control
// characters other than tab (replaced by a space).
func cleanText(field, s string, max int) (string, error) {
	if !utf8.ValidString(s) {
		return "", &FieldError{Field: field, Reason: "not valid UTF-8"}
	}
	s = strings.TrimSpace(s)
	if utf8.RuneCountInString(s) > max {
		return "", &FieldError{Field: field, Reason: fmt.Sprintf("longer than %d characters", max)}
	}
	for _, r := range s {
		if unicode.IsControl(r) && r != '\t' {
			return "", &FieldError{Field: field, Reason: "contains control characters"}
		}
	}
	return strings.ReplaceAll(s, "\t", " "), nil
}

// cleanMultiline is cleanText for free text, where line breaks are kept
// (normalised to \n): notes have them, and nothing puts fields into SIP
// headers or HTML unescaped (SPEC §5).
func cleanMultiline(field, s string, max int) (string, error) {
	s = strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\r", "\n")
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		var err error
		if lines[i], err = cleanText(field, l, max); err != nil {
			return "", err
		}
	}
	s = strings.TrimSpace(strings.Join(lines, "\n"))
	if utf8.RuneCountInString(s) > max {
		return "", &FieldError{Field: field, Reason: fmt.Sprintf("longer than %d characters", max)}
	}
	return s, nil
}

func plausibleEmail(s string) bool {
	at := strings.LastIndexByte(s, '@')
	return at > 0 && at < len(s)-1 && !strings.ContainsAny(s, " <>,;\"")
}

// checkPhone checks that p holds an E.164 number (ITU-T E.164: '+', a
// country code not starting with 0, at most 15 digits) and a digit-only
// extension. Numbers reach the store already normalised.
func checkPhone(field string, p *Phone) error {
	if !IsE164(p.E164) {
		return &FieldError{Field: field + ".e164", Reason: fmt.Sprintf("%q is not an E.164 number", p.E164)}
	}
	for i := 0; i < len(p.Ext); i++ {
		if p.Ext[i] < '0' || p.Ext[i] > '9' {
			return &FieldError{Field: field + ".ext", Reason: fmt.Sprintf("%q is not digits", p.Ext)}
		}
	}
	if len(p.Ext) > 10 {
		return &FieldError{Field: field + ".ext", Reason: "longer than 10 digits"}
	}
	var err error
	if p.Raw, err = cleanText(field+".raw", p.Raw, maxNameLen); err != nil {
		return err
	}
	if p.Raw == "" {
		p.Raw = p.E164
	}
	return nil
}

// IsE164 reports whether s is + and 2 to 15 digits, the first not 0.
func IsE164(s string) bool {
	if len(s) < 3 || len(s) > 16 || s[0] != '+' || s[1] == '0' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
