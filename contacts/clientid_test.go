package contacts_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/switchboard-sip/switchboard/contacts"
)

func TestClientIDAndEmail(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	s := e.store
	jane, err := s.Create(ctx, contacts.Contact{Name: "Jane", Email: "Jane@ACME.example", ClientID: " C-100 ",
		Numbers: []contacts.Phone{{E164: "+49301234567"}}})
	if err != nil || jane.ClientID != "C-100" {
		t.Fatalf("create: %+v %v", jane, err)
	}
	max, err := s.Create(ctx, contacts.Contact{Name: "Max", Email: "max@acme.example", Numbers: []contacts.Phone{{E164: "+49301234568"}}})
	if err != nil || max.ClientID != "" {
		t.Fatalf("create without client id: %+v %v", max, err)
	}
	// A second contact without client id is fine; a second C-100 is not.
	var taken *contacts.ClientIDTakenError
	if _, err := s.Create(ctx, contacts.Contact{Name: "X", ClientID: "C-100"}); !errors.As(err, &taken) || taken.ContactID != jane.ID || !errors.Is(err, contacts.ErrConflict) {
		t.Errorf("duplicate client id: %v", err)
	}
	if _, err := s.Update(ctx, max.ID, contacts.Patch{ClientID: ptr("C-100")}); !errors.As(err, &taken) {
		t.Errorf("update to a taken client id: %v", err)
	}
	if c, err := s.Update(ctx, max.ID, contacts.Patch{ClientID: ptr("C-200")}); err != nil || c.ClientID != "C-200" {
		t.Errorf("update: %+v %v", c, err)
	}
	if c, err := s.Update(ctx, jane.ID, contacts.Patch{Name: ptr("Jane Doe")}); err != nil || c.ClientID != "C-100" {
		t.Errorf("an update keeps the client id: %+v %v", c, err)
	}
	if c, err := s.FindByClientID(ctx, "C-200"); err != nil || c.ID != max.ID || len(c.Numbers) != 1 {
		t.Errorf("find by client id: %+v %v", c, err)
	}
	if _, err := s.FindByClientID(ctx, "nope"); !errors.Is(err, contacts.ErrNotFound) {
		t.Errorf("unknown client id: %v", err)
	}
	if c, err := s.FindByEmail(ctx, "jane@acme.EXAMPLE"); err != nil || c.ID != jane.ID {
		t.Errorf("find by email: %+v %v", c, err)
	}
	if _, err := s.Create(ctx, contacts.Contact{Name: "Jane's twin", Email: "jane@acme.example"}); err != nil {
		t.Fatal(err)
	}
	var amb *contacts.AmbiguousEmailError
	if _, err := s.FindByEmail(ctx, "jane@acme.example"); !errors.As(err, &amb) || len(amb.IDs) != 2 {
		t.Errorf("shared email: %v", err)
	}
	// The trace of a contact found by client id is the trace by its number.
	byID, err := s.Trace(ctx, contacts.TraceQuery{ContactID: jane.ID})
	byNumber, err2 := s.Trace(ctx, contacts.TraceQuery{E164: "+49301234567"})
	if err != nil || err2 != nil || byID.Contact == nil || byNumber.Contact == nil || byID.Contact.ID != byNumber.Contact.ID {
		t.Errorf("trace by contact %v / number %v", err, err2)
	}
}

func TestImportClientID(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	if _, err := e.store.Create(ctx, contacts.Contact{Name: "Stored", ClientID: "K-9", Numbers: []contacts.Phone{{E164: "+12125550199"}}}); err != nil {
		t.Fatal(err)
	}
	data := "Name,Customer Number,Phone\n" +
		"Jane,K-1,212 555 0100\n" + // line 2: new
		"Jane mobile,K-1,212 555 0101\n" + // line 3: same customer, another number: merged
		"Max,K-1,212 555 0102\n" + // line 4: merged too (the client id decides)
		"Eve,K-2,212 555 0100\n" + // line 5: Jane's number with another client id: refused
		"Stored again,K-9,212 555 0103\n" + // line 6: merged into the stored contact
		"Bob,,212 555 0104\n" // line 7: no client id
	sum, err := contacts.Import(ctx, e.store, usNumbers(t), strings.NewReader(data), contacts.FormatCSV, contacts.ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Created != 2 || sum.Merged != 3 || len(sum.Rejections) != 1 || sum.Rejections[0].Line != 5 || !strings.Contains(sum.Rejections[0].Reason, "K-1") {
		t.Errorf("summary %+v", sum)
	}
	jane, err := e.store.FindByClientID(ctx, "K-1")
	if err != nil || len(jane.Numbers) != 3 || jane.Name != "Jane" {
		t.Errorf("K-1: %+v %v", jane, err)
	}
	stored, err := e.store.FindByNumber(ctx, "+12125550103")
	if err != nil || stored.ClientID != "K-9" {
		t.Errorf("K-9: %+v %v", stored, err)
	}
}
