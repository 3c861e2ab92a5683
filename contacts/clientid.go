package contacts

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// contactColumns are read by scanContact, in its order.
const contactColumns = `id, name, company, email, tags, fields, source, created_at, updated_at, client_id`

// maxClientIDLen bounds a client id: CRM keys are short.
const maxClientIDLen = 100

// ClientIDTakenError says that a client id already belongs to another
// contact: client ids are unique when set (SPEC §2).
type ClientIDTakenError struct {
	ClientID  string
	ContactID int64
}

// Error implements error.
func (e *ClientIDTakenError) Error() string {
	return fmt.Sprintf("contacts: client_id %q already belongs to contact %d", e.ClientID, e.ContactID)
}

// Unwrap lets errors.Is(err, ErrConflict) match.
func (e *ClientIDTakenError) Unwrap() error { return ErrConflict }

// AmbiguousEmailError says that several contacts share an email address,
// so a trace by email cannot pick one.
type AmbiguousEmailError struct {
	Email string
	IDs   []int64
}

// Error implements error.
func (e *AmbiguousEmailError) Error() string {
	return fmt.Sprintf("contacts: email %q belongs to %d contacts (%v); ask by client id or number", e.Email, len(e.IDs), e.IDs)
}

// Unwrap lets errors.Is(err, ErrConflict) match.
func (e *AmbiguousEmailError) Unwrap() error { return ErrConflict }

func nullText(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// checkClientID fails when id is set and belongs to a contact other than
// self.
func (s *Store) checkClientID(ctx context.Context, q querier, self int64, clientID string) error {
	if clientID == "" {
		return nil
	}
	var owner int64
	err := q.QueryRowContext(ctx, s.q(`SELECT id FROM contacts WHERE client_id = ?`), clientID).Scan(&owner)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil
	case err != nil:
		return fmt.Errorf("contacts: client_id %q: %w", clientID, err)
	case owner != self:
		return &ClientIDTakenError{ClientID: clientID, ContactID: owner}
	}
	return nil
}

// FindByClientID returns the contact with a client id (ErrNotFound when
// none has it).
func (s *Store) FindByClientID(ctx context.Context, clientID string) (Contact, error) {
	clientID = strings.TrimSpace(clientID)
	if clientID == "" {
		return Contact{}, &FieldError{Field: "client_id", Reason: "empty"}
	}
	if err := s.flushPending(ctx); err != nil {
		return Contact{}, err
	}
	var id int64
	err := s.db.QueryRowContext(ctx, s.q(`SELECT id FROM contacts WHERE client_id = ?`), clientID).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return Contact{}, fmt.Errorf("contacts: client_id %q: %w", clientID, ErrNotFound)
	}
	if err != nil {
		return Contact{}, fmt.Errorf("contacts: client_id %q: %w", clientID, err)
	}
	return s.Get(ctx, id)
}

// FindByEmail returns the one contact with an email address, compared
// without regard to case. Several contacts with it are an
// *AmbiguousEmailError; none is ErrNotFound.
func (s *Store) FindByEmail(ctx context.Context, email string) (Contact, error) {
	email = strings.TrimSpace(email)
	if email == "" {
		return Contact{}, &FieldError{Field: "email", Reason: "empty"}
	}
	if err := s.flushPending(ctx); err != nil {
		return Contact{}, err
	}
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT id FROM contacts WHERE LOWER(email) = LOWER(?) ORDER BY id LIMIT 10`), email)
	if err != nil {
		return Contact{}, fmt.Errorf("contacts: email %q: %w", email, err)
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return Contact{}, fmt.Errorf("contacts: email %q: %w", email, err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return Contact{}, fmt.Errorf("contacts: email %q: %w", email, err)
	}
	switch len(ids) {
	case 0:
		return Contact{}, fmt.Errorf("contacts: email %q: %w", email, ErrNotFound)
	case 1:
		return s.Get(ctx, ids[0])
	}
	return Contact{}, &AmbiguousEmailError{Email: email, IDs: ids}
}

// clientOwnersOf finds which stored contacts already hold the client ids
// of a batch.
func (s *Store) clientOwnersOf(ctx context.Context, tx *sql.Tx, recs []record) (map[string]int64, error) {
	var all []any
	for i := range recs {
		if recs[i].reject == "" && recs[i].clientID != "" {
			all = append(all, recs[i].clientID)
		}
	}
	owners := map[string]int64{}
	for len(all) > 0 {
		n := min(len(all), lookupChunk)
		rows, err := tx.QueryContext(ctx, s.q(`SELECT client_id, id FROM contacts WHERE client_id IN (`+placeholders(n)+`)`), all[:n]...)
		if err != nil {
			return nil, fmt.Errorf("contacts: import: find client ids: %w", err)
		}
		for rows.Next() {
			var cid string
			var id int64
			if err := rows.Scan(&cid, &id); err != nil {
				rows.Close()
				return nil, fmt.Errorf("contacts: import: find client ids: %w", err)
			}
			owners[cid] = id
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("contacts: import: find client ids: %w", err)
		}
		all = all[n:]
	}
	return owners, nil
}

// clientConflict says why a row's client id cannot go on the contact it
// creates (into nil) or merges into; "" when it can. A contact keeps the
// client id it has: a row giving it another one is refused.
func clientConflict(cid string, into *target, batch map[string]*target, stored map[string]int64) string {
	if cid == "" {
		return ""
	}
	if into != nil && into.c.ClientID != "" && into.c.ClientID != cid {
		return fmt.Sprintf("client_id %q: the contact of this row's number has client_id %q", cid, into.c.ClientID)
	}
	if t := batch[cid]; t != nil && t != into {
		return fmt.Sprintf("client_id %q: given to another contact earlier in the file", cid)
	}
	if id, ok := stored[cid]; ok && (into == nil || !into.existing || into.c.ID != id) {
		return fmt.Sprintf("client_id %q: already belongs to contact %d", cid, id)
	}
	return ""
}
