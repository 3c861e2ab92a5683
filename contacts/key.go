package contacts

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Key names a contact as a person gives it (SPEC §2): by one of its
// numbers in any format, its client id or its email address; one is set.
type Key struct{ Number, ClientID, Email string }

// String is the key as a message names it: client_id "K-1", email "a@b",
// or the number.
func (k Key) String() string {
	switch {
	case k.ClientID != "":
		return "client_id " + strconv.Quote(k.ClientID)
	case k.Email != "":
		return "email " + strconv.Quote(k.Email)
	}
	return k.Number
}

// FindKey finds the contact of a key; none is the zero Contact. A number
// is read in any format first, with numbers and region.
func (s *Store) FindKey(ctx context.Context, k Key, numbers *Numbers, region string) (Contact, error) {
	var ct Contact
	var err error
	switch {
	case k.ClientID != "":
		ct, err = s.FindByClientID(ctx, k.ClientID)
	case k.Email != "":
		ct, err = s.FindByEmail(ctx, k.Email)
	default:
		var e164 string
		if e164, err = numbers.ContactNumber(k.Number, region); err != nil {
			return ct, err
		}
		ct, err = s.FindByNumber(ctx, e164)
	}
	if errors.Is(err, ErrNotFound) {
		return Contact{}, nil
	}
	return ct, err
}

// ContactNumber reads a number a person typed, in any format, as the E.164
// key a contact is found by. An internal extension has no contact, and
// says so.
func (n *Numbers) ContactNumber(raw, region string) (string, error) {
	num, err := n.Normalize(raw, region)
	if err != nil {
		var ne *NumberError
		if errors.As(err, &ne) {
			return "", fmt.Errorf("number %q: %s", raw, ne.Reason)
		}
		return "", err
	}
	if num.Internal || num.E164 == "" {
		return "", fmt.Errorf("number %q is an internal extension: extensions have no contact", raw)
	}
	return num.E164, nil
}

// FindID reads a contact given as a person gives it on the command line:
// its id when a contact has that id, else one of its numbers in any
// format. No such contact is an error.
func (s *Store) FindID(ctx context.Context, v string, numbers *Numbers, region string) (int64, error) {
	if id, err := strconv.ParseInt(v, 10, 64); err == nil && id > 0 && !strings.HasPrefix(v, "0") {
		if _, err := s.Get(ctx, id); err == nil {
			return id, nil
		}
	}
	ct, err := s.FindKey(ctx, Key{Number: v}, numbers, region)
	if err != nil {
		return 0, err
	}
	if ct.ID == 0 {
		return 0, fmt.Errorf("no contact has id or number %q", v)
	}
	return ct.ID, nil
}
