package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/switchboard-sip/switchboard/contacts"
	"github.com/switchboard-sip/switchboard/wire"
)

// ContactStore is what the contact endpoints need; *contacts.Store
// implements it.
type ContactStore interface {
	Create(ctx context.Context, c contacts.Contact) (contacts.Contact, error)
	Get(ctx context.Context, id int64) (contacts.Contact, error)
	Update(ctx context.Context, id int64, p contacts.Patch) (contacts.Contact, error)
	Delete(ctx context.Context, id int64) (int64, error)
	FindByNumber(ctx context.Context, e164 string) (contacts.Contact, error)
	FindByClientID(ctx context.Context, clientID string) (contacts.Contact, error)
	FindByEmail(ctx context.Context, email string) (contacts.Contact, error)
	Search(ctx context.Context, q string, limit int, cursor string) ([]contacts.Contact, string, error)
	Trace(ctx context.Context, q contacts.TraceQuery) (contacts.Trace, error)
}

// ContactOptions configure the contact endpoints.
type ContactOptions struct {
	Store ContactStore
	// Numbers is the number reader in force (numbers.region for national
	// numbers, numbers.internal); asked on every request, so a config
	// reload reaches the API.
	Numbers func() *contacts.Numbers
}

// RegisterContacts adds the contact and trace endpoints (SPEC §8) to s:
// GET and POST /api/contacts, GET, PATCH and DELETE /api/contacts/{id},
// GET /api/trace. Writes go through the store, which updates the call
// path's cache before it answers, so they count from the next call.
func RegisterContacts(s *Server, o ContactOptions) {
	h := &contactHandler{s: s, o: o}
	s.HandleFunc("GET /api/contacts", h.list)
	s.HandleFunc("POST /api/contacts", h.create)
	s.HandleFunc("GET /api/contacts/{id}", h.get)
	s.HandleFunc("PATCH /api/contacts/{id}", h.patch)
	s.HandleFunc("DELETE /api/contacts/{id}", h.remove)
	s.HandleFunc("GET /api/trace", h.trace)
}

type contactHandler struct {
	s *Server
	o ContactOptions
}

// maxContactBody bounds a POST or PATCH body: a contact is a few KiB even
// with every field at its limit.
const maxContactBody = 256 << 10

// normalize reads one number the way every other part of switchboard does.
func (h *contactHandler) normalize(field, raw string) (contacts.Number, error) {
	numbers := h.o.Numbers()
	n, err := numbers.Normalize(raw, numbers.Region)
	if err != nil {
		var ne *contacts.NumberError
		if errors.As(err, &ne) {
			return n, &paramError{field, fmt.Sprintf("%q: %s", raw, ne.Reason)}
		}
		return n, &paramError{field, err.Error()}
	}
	if n.Internal || n.E164 == "" {
		return n, &paramError{field, fmt.Sprintf("%q is an internal extension, not a contact's number", raw)}
	}
	return n, nil
}

func (h *contactHandler) list(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	limit, err := ParseLimit(v.Get("limit"))
	if err != nil {
		WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	out := wire.ContactList{Items: []wire.Contact{}}
	if cid := v.Get("client_id"); cid != "" {
		c, err := h.o.Store.FindByClientID(r.Context(), cid)
		if err != nil && !errors.Is(err, contacts.ErrNotFound) {
			h.storeError(w, r, err)
			return
		}
		if err == nil {
			out.Items = append(out.Items, wire.NewContact(c, h.s.loc))
		}
		WriteJSON(w, http.StatusOK, out)
		return
	}
	if raw := QueryNumber(v.Get("number")); raw != "" {
		n, err := h.normalize("number", raw)
		if err != nil {
			WriteError(w, http.StatusBadRequest, err.Error())
			return
		}
		c, err := h.o.Store.FindByNumber(r.Context(), n.E164)
		if err != nil && !errors.Is(err, contacts.ErrNotFound) {
			h.s.internal(w, r, err)
			return
		}
		if err == nil {
			out.Items = append(out.Items, wire.NewContact(c, h.s.loc))
		}
		WriteJSON(w, http.StatusOK, out)
		return
	}
	items, next, err := h.o.Store.Search(r.Context(), v.Get("q"), limit, v.Get("cursor"))
	if h.storeError(w, r, err) {
		return
	}
	if v.Get("cursor") == "" {
		// A number in any format (030 1234567, 0049…) finds its contact
		// first, as the call path would (SPEC §8 contact page search).
		items = h.numberFirst(r.Context(), v.Get("q"), items)
	}
	for _, c := range items {
		out.Items = append(out.Items, wire.NewContact(c, h.s.loc))
	}
	out.Next = next
	WriteJSON(w, http.StatusOK, out)
}

// numberFirst puts the contact that holds q, read as a number, first.
func (h *contactHandler) numberFirst(ctx context.Context, q string, items []contacts.Contact) []contacts.Contact {
	q = strings.TrimSpace(q)
	if !strings.ContainsAny(q, "0123456789") {
		return items
	}
	n, err := h.normalize("q", q)
	if err != nil {
		return items
	}
	c, err := h.o.Store.FindByNumber(ctx, n.E164)
	if err != nil || c.ID == 0 {
		return items
	}
	out := []contacts.Contact{c}
	for _, it := range items {
		if it.ID != c.ID {
			out = append(out, it)
		}
	}
	return out
}

func (h *contactHandler) id(w http.ResponseWriter, r *http.Request) (int64, bool) {
	raw := r.PathValue("id")
	id, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || id <= 0 {
		WriteError(w, http.StatusBadRequest, fmt.Sprintf("id: %q is not a contact id", raw))
		return 0, false
	}
	return id, true
}

func (h *contactHandler) get(w http.ResponseWriter, r *http.Request) {
	id, ok := h.id(w, r)
	if !ok {
		return
	}
	c, err := h.o.Store.Get(r.Context(), id)
	if h.storeError(w, r, err) {
		return
	}
	WriteJSON(w, http.StatusOK, wire.NewContact(c, h.s.loc))
}

func (h *contactHandler) remove(w http.ResponseWriter, r *http.Request) {
	id, ok := h.id(w, r)
	if !ok {
		return
	}
	n, err := h.o.Store.Delete(r.Context(), id)
	if h.storeError(w, r, err) {
		return
	}
	WriteJSON(w, http.StatusOK, struct {
		ID           int64 `json:"id"`
		DeletedCalls int64 `json:"deleted_calls"`
	}{id, n})
}

// contactBody is a POST or PATCH body, read key by key so that PATCH can
// tell an absent key from an empty value. Read-only keys of the contact
// shape are accepted and ignored, so a client may send back what it got.
type contactBody struct {
	Name     *string
	Company  *string
	Email    *string
	ClientID *string
	Tags     *[]string
	Fields   map[string]*string
	Numbers  *[]contacts.Phone
}

var readOnlyContactKeys = map[string]bool{
	"id": true, "source": true, "created_at": true, "updated_at": true, "calls_count": true,
	"first_call_at": true, "last_call_at": true, "open_missed": true,
}

func (h *contactHandler) readBody(w http.ResponseWriter, r *http.Request) (contactBody, error) {
	var b contactBody
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxContactBody))
	if err != nil {
		return b, &paramError{"body", describeBodyError(err)}
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		if len(bytes.TrimSpace(data)) == 0 {
			err = io.EOF
		}
		return b, &paramError{"body", describeBodyError(err)}
	}
	if raw == nil {
		return b, &paramError{"body", "want a JSON object"}
	}
	str := func(key string) (*string, error) {
		v, ok := raw[key]
		if !ok {
			return nil, nil
		}
		var s *string
		if err := json.Unmarshal(v, &s); err != nil {
			return nil, &paramError{key, "want a string"}
		}
		if s == nil {
			s = new(string) // null clears the field
		}
		return s, nil
	}
	for key, v := range raw {
		switch key {
		case "name":
			b.Name, err = str(key)
		case "company":
			b.Company, err = str(key)
		case "email":
			b.Email, err = str(key)
		case "client_id":
			b.ClientID, err = str(key)
		case "tags":
			var tags []string
			if e := json.Unmarshal(v, &tags); e != nil {
				err = &paramError{"tags", "want a list of strings"}
			}
			if tags == nil {
				tags = []string{}
			}
			b.Tags = &tags
		case "fields":
			if e := json.Unmarshal(v, &b.Fields); e != nil {
				err = &paramError{"fields", "want an object of strings"}
			}
			if b.Fields == nil {
				b.Fields = map[string]*string{}
			}
		case "numbers":
			var nums []contacts.Phone
			nums, err = h.numbers(v)
			b.Numbers = &nums
		default:
			if !readOnlyContactKeys[key] {
				err = &paramError{key, "unknown field"}
			}
		}
		if err != nil {
			return b, err
		}
	}
	return b, nil
}

// numbers reads the numbers list: each a plain string in any format, or
// {e164, raw, ext}. Every number goes through the normaliser; an ext given
// explicitly wins over one found in the number.
func (h *contactHandler) numbers(v json.RawMessage) ([]contacts.Phone, error) {
	var items []json.RawMessage
	if err := json.Unmarshal(v, &items); err != nil {
		return nil, &paramError{"numbers", "want a list of numbers (strings or {e164, raw, ext})"}
	}
	out := make([]contacts.Phone, 0, len(items))
	for i, it := range items {
		field := fmt.Sprintf("numbers[%d]", i)
		var s string
		var p wire.Phone
		if err := json.Unmarshal(it, &s); err == nil {
			p.Raw = s
		} else if err := json.Unmarshal(it, &p); err != nil {
			return nil, &paramError{field, "want a string or {e164, raw, ext}"}
		}
		input := p.Raw
		if input == "" {
			input = p.E164
		}
		if strings.TrimSpace(input) == "" {
			return nil, &paramError{field, "empty"}
		}
		n, err := h.normalize(field, input)
		if err != nil {
			return nil, err
		}
		if p.E164 != "" && p.Raw != "" {
			// Both given: they must agree, or one of them is a typo.
			if m, err := h.normalize(field+".e164", p.E164); err != nil || m.E164 != n.E164 {
				return nil, &paramError{field, fmt.Sprintf("e164 %q and raw %q are different numbers", p.E164, p.Raw)}
			}
		}
		ext := n.Ext
		if p.Ext != "" {
			ext = p.Ext
		}
		raw := p.Raw
		if raw == "" {
			raw = p.E164
		}
		out = append(out, contacts.Phone{E164: n.E164, Raw: raw, Ext: ext})
	}
	return out, nil
}

func (h *contactHandler) create(w http.ResponseWriter, r *http.Request) {
	b, err := h.readBody(w, r)
	if err != nil {
		WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	c := contacts.Contact{Source: contacts.SourceAPI}
	if b.Name != nil {
		c.Name = *b.Name
	}
	if b.Company != nil {
		c.Company = *b.Company
	}
	if b.Email != nil {
		c.Email = *b.Email
	}
	if b.ClientID != nil {
		c.ClientID = *b.ClientID
	}
	if b.Tags != nil {
		c.Tags = *b.Tags
	}
	if b.Numbers != nil {
		c.Numbers = *b.Numbers
	}
	c.Fields = map[string]string{}
	for k, v := range b.Fields {
		if v != nil {
			c.Fields[k] = *v
		}
	}
	c, err = h.o.Store.Create(r.Context(), c)
	if h.storeError(w, r, err) {
		return
	}
	WriteJSON(w, http.StatusCreated, wire.NewContact(c, h.s.loc))
}

func (h *contactHandler) patch(w http.ResponseWriter, r *http.Request) {
	id, ok := h.id(w, r)
	if !ok {
		return
	}
	b, err := h.readBody(w, r)
	if err != nil {
		WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	c, err := h.o.Store.Update(r.Context(), id, contacts.Patch{
		Name: b.Name, Company: b.Company, Email: b.Email, ClientID: b.ClientID, Tags: b.Tags, Fields: b.Fields, Numbers: b.Numbers,
	})
	if h.storeError(w, r, err) {
		return
	}
	WriteJSON(w, http.StatusOK, wire.NewContact(c, h.s.loc))
}

func (h *contactHandler) trace(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	q := contacts.TraceQuery{Months: 12, Loc: h.s.loc, Cursor: v.Get("cursor")}
	if l := v.Get("limit"); l != "" {
		// Without a limit the store's own page size applies
		// (contacts.DefaultTraceLimit); either way "next" leads on.
		n, err := ParseLimit(l)
		if err != nil {
			WriteError(w, http.StatusBadRequest, err.Error())
			return
		}
		q.Limit = n
	}
	if m := v.Get("months"); m != "" {
		n, err := strconv.Atoi(m)
		if err != nil || n < 1 || n > 120 {
			WriteError(w, http.StatusBadRequest, fmt.Sprintf("months: %q is not a number of months from 1 to 120", m))
			return
		}
		q.Months = n
	}
	if c := v.Get("contact_id"); c != "" {
		id, err := strconv.ParseInt(c, 10, 64)
		if err != nil || id <= 0 {
			WriteError(w, http.StatusBadRequest, fmt.Sprintf("contact_id: %q is not a contact id", c))
			return
		}
		q.ContactID = id
	}
	if raw := QueryNumber(v.Get("number")); raw != "" {
		n, err := h.normalize("number", raw)
		if err != nil {
			WriteError(w, http.StatusBadRequest, err.Error())
			return
		}
		q.E164 = n.E164
	}
	// By email or client id (SPEC §2): the trace of the contact they
	// name, the same as by one of its numbers.
	for _, by := range []struct {
		key  string
		find func(context.Context, string) (contacts.Contact, error)
	}{{"email", h.o.Store.FindByEmail}, {"client_id", h.o.Store.FindByClientID}} {
		val := strings.TrimSpace(v.Get(by.key))
		if val == "" || q.ContactID != 0 || q.E164 != "" {
			continue
		}
		c, err := by.find(r.Context(), val)
		if errors.Is(err, contacts.ErrNotFound) {
			WriteError(w, http.StatusNotFound, fmt.Sprintf("%s: no contact has %q", by.key, val))
			return
		}
		if h.storeError(w, r, err) {
			return
		}
		q.ContactID = c.ID
	}
	if q.E164 == "" && q.ContactID == 0 {
		WriteError(w, http.StatusBadRequest, "number: required (or email, client_id or contact_id)")
		return
	}
	t, err := h.o.Store.Trace(r.Context(), q)
	if h.storeError(w, r, err) {
		return
	}
	WriteJSON(w, http.StatusOK, wire.NewTrace(t, h.s.loc))
}

// storeError answers a store error and reports whether there was one:
// validation errors are 400 naming the field, unknown contacts 404, a
// number of another contact 409.
func (h *contactHandler) storeError(w http.ResponseWriter, r *http.Request, err error) bool {
	if err == nil {
		return false
	}
	var fe *contacts.FieldError
	var taken *contacts.NumberTakenError
	var client *contacts.ClientIDTakenError
	var amb *contacts.AmbiguousEmailError
	switch {
	case errors.As(err, &fe):
		WriteError(w, http.StatusBadRequest, fe.Error())
	case errors.As(err, &taken):
		WriteError(w, http.StatusConflict, fmt.Sprintf("numbers: %s already belongs to contact %d", taken.E164, taken.ContactID))
	case errors.As(err, &client):
		WriteError(w, http.StatusConflict, fmt.Sprintf("client_id: %q already belongs to contact %d", client.ClientID, client.ContactID))
	case errors.As(err, &amb):
		WriteError(w, http.StatusConflict, fmt.Sprintf("email: %q belongs to %d contacts (ids %v); ask by client_id or number", amb.Email, len(amb.IDs), amb.IDs))
	case errors.Is(err, contacts.ErrNotFound):
		WriteError(w, http.StatusNotFound, "contact not found")
	default:
		h.s.internal(w, r, err)
	}
	return true
}
