package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/switchboard-sip/switchboard/blocking"
	"github.com/switchboard-sip/switchboard/contacts"
	"github.com/switchboard-sip/switchboard/wire"
)

// BlockStore is what the block endpoints need; *blocking.Store implements
// it.
type BlockStore interface {
	Config() []blocking.Entry
	List(ctx context.Context, after int64, limit int) ([]blocking.Entry, int64, error)
	Add(ctx context.Context, e blocking.Entry) (blocking.Entry, error)
	Remove(ctx context.Context, id int64) (blocking.Entry, error)
}

// BlockOptions configure the block endpoints.
type BlockOptions struct {
	Store BlockStore
	// Numbers is the number reader in force: its region reads national
	// prefixes (0900* in DE), its ExactKey exact numbers in any format.
	// Asked on every request, so a config reload reaches the API.
	Numbers func() *contacts.Numbers
}

// RegisterBlocks adds GET and POST /api/blocks and DELETE /api/blocks/{id}
// to s. Changes take effect on the next call: the store updates its index
// before it answers.
func RegisterBlocks(s *Server, o BlockOptions) {
	h := &blockHandler{s: s, o: o}
	s.HandleFunc("GET /api/blocks", h.list)
	s.HandleFunc("POST /api/blocks", h.add)
	s.HandleFunc("DELETE /api/blocks/{id}", h.remove)
}

type blockHandler struct {
	s *Server
	o BlockOptions
}

// list serves config entries first, then stored entries by id; the cursor
// is the id of the last stored entry of the previous page.
func (h *blockHandler) list(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	limit, err := ParseLimit(v.Get("limit"))
	if err != nil {
		WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	var after int64
	out := wire.BlockList{Items: []wire.Block{}}
	if c := v.Get("cursor"); c != "" {
		if after, err = strconv.ParseInt(c, 10, 64); err != nil || after <= 0 {
			WriteError(w, http.StatusBadRequest, "cursor: not a cursor from a previous page")
			return
		}
	} else {
		// Config entries are few and always shown whole on the first
		// page, so the cursor only needs to walk the stored ones.
		for _, e := range h.o.Store.Config() {
			out.Items = append(out.Items, wire.NewBlock(e, h.s.loc))
		}
	}
	entries, next, err := h.o.Store.List(r.Context(), after, limit)
	if err != nil {
		h.s.internal(w, r, err)
		return
	}
	for _, e := range entries {
		out.Items = append(out.Items, wire.NewBlock(e, h.s.loc))
	}
	if next != 0 {
		out.Next = strconv.FormatInt(next, 10)
	}
	WriteJSON(w, http.StatusOK, out)
}

// blockRequest is the body of POST /api/blocks.
type blockRequest struct {
	Number    string `json:"number"`
	Action    string `json:"action"`
	Direction string `json:"direction"`
	Reason    string `json:"reason"`
}

// maxBlockBody bounds a POST body; an entry is a few hundred bytes.
const maxBlockBody = 16 << 10

func (h *blockHandler) add(w http.ResponseWriter, r *http.Request) {
	var req blockRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBlockBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		WriteError(w, http.StatusBadRequest, "body: "+describeBodyError(err))
		return
	}
	if dec.Decode(&struct{}{}) != io.EOF {
		WriteError(w, http.StatusBadRequest, "body: more than one JSON value")
		return
	}
	numbers := h.o.Numbers()
	number, err := blocking.NormalizeNumber(req.Number, numbers.Region, numbers.ExactKey)
	if err != nil {
		WriteError(w, http.StatusBadRequest, "number: "+err.Error())
		return
	}
	e := blocking.Entry{Number: number, Action: blocking.Action(req.Action), Direction: blocking.Direction(req.Direction),
		Reason: strings.TrimSpace(req.Reason), Source: blocking.SourceAPI}
	if err := e.Normalize(); err != nil {
		WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	e, err = h.o.Store.Add(r.Context(), e)
	if err != nil {
		h.s.internal(w, r, err)
		return
	}
	WriteJSON(w, http.StatusCreated, wire.NewBlock(e, h.s.loc))
}

func (h *blockHandler) remove(w http.ResponseWriter, r *http.Request) {
	raw := r.PathValue("id")
	id, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || id < 0 {
		WriteError(w, http.StatusBadRequest, fmt.Sprintf("id: %q is not a block id", raw))
		return
	}
	e, err := h.o.Store.Remove(r.Context(), id)
	if errors.Is(err, blocking.ErrNotFound) {
		msg := fmt.Sprintf("block %d not found", id)
		if id == 0 {
			msg += "; entries from the config file (id 0) can only be removed there"
		}
		WriteError(w, http.StatusNotFound, msg)
		return
	}
	if err != nil {
		h.s.internal(w, r, err)
		return
	}
	WriteJSON(w, http.StatusOK, wire.NewBlock(e, h.s.loc))
}

// describeBodyError describes a decoding error without Go type names.
func describeBodyError(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var big *http.MaxBytesError
	switch {
	case errors.Is(err, io.EOF):
		return "empty, want a JSON object"
	case errors.As(err, &syn):
		return fmt.Sprintf("invalid JSON at byte %d", syn.Offset)
	case errors.As(err, &typ):
		return fmt.Sprintf("field %s: want a %s", typ.Field, typ.Type.Kind())
	case errors.As(err, &big):
		return fmt.Sprintf("longer than %d bytes", big.Limit)
	}
	return err.Error()
}
