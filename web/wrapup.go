package web

import (
	"github.com/switchboard-sip/switchboard/cdr"

	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/switchboard-sip/switchboard/storage"
	"github.com/switchboard-sip/switchboard/wire"
)

// EventCallUpdated is published when the front desk changes a record
// (its wrap-up); the data is the record in the shape of /api/calls.
const EventCallUpdated = "call.updated"

// Limits of a wrap-up. A reason is a short label (shown in statistics), the
// notes a few paragraphs.
const (
	maxWrapReason = 200
	maxWrapNotes  = 4000
	maxWrapBody   = 4 * cdr.MaxTranscript // a transcript with JSON escapes
)

// WrapUpStore is what PATCH /api/calls/{id} needs from the call store;
// *callstore.Store implements it.
type WrapUpStore interface {
	Get(ctx context.Context, id string) (cdr.Record, error)
	SetWrapUp(ctx context.Context, id string, w cdr.WrapUp) (cdr.Record, error)
}

// WrapUpOptions configure the wrap-up endpoint.
type WrapUpOptions struct {
	Store WrapUpStore
	// Publish sends call.updated to the board's event stream; nil sends
	// nothing.
	Publish func(typ string, data any)
}

// RegisterWrapUp adds PATCH /api/calls/{id} (SPEC §8, §10): it sets the
// wrap-up of a call. A reason outside wrapup.reasons is kept as free text;
// a satisfaction outside 1–5 is a 400 naming the field.
func RegisterWrapUp(s *Server, o WrapUpOptions) {
	s.HandleFunc("PATCH /api/calls/{id}", func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		cur, err := o.Store.Get(r.Context(), id)
		if errors.Is(err, storage.ErrNotFound) {
			WriteError(w, http.StatusNotFound, fmt.Sprintf("call %q not found", id))
			return
		}
		if err != nil {
			s.internal(w, r, err)
			return
		}
		wu, err := readWrapUp(w, r, cur.WrapUp)
		if err != nil {
			WriteError(w, http.StatusBadRequest, err.Error())
			return
		}
		rec, err := o.Store.SetWrapUp(r.Context(), id, wu)
		if err != nil {
			s.internal(w, r, err)
			return
		}
		out := wire.NewCall(rec, s.loc)
		if o.Publish != nil {
			o.Publish(EventCallUpdated, CallEvent{Call: out})
		}
		WriteJSON(w, http.StatusOK, out)
	})
}

// callKeys are the fields of the record shape: a client may send back what
// it got, and only the wrap-up keys are applied.
var callKeys = func() map[string]bool {
	m := map[string]bool{}
	b, _ := json.Marshal(wire.Call{})
	var raw map[string]json.RawMessage
	_ = json.Unmarshal(b, &raw)
	for k := range raw {
		m[k] = true
	}
	for _, k := range []string{"trunk", "end_reason", "recording"} {
		m[k] = true
	}
	return m
}()

// readWrapUp reads a PATCH body over the current wrap-up: absent keys stay,
// null clears.
func readWrapUp(w http.ResponseWriter, r *http.Request, cur cdr.WrapUp) (cdr.WrapUp, error) {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxWrapBody))
	if err != nil {
		return cur, &paramError{"body", describeBodyError(err)}
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil || raw == nil {
		if len(bytes.TrimSpace(data)) == 0 {
			err = io.EOF
		}
		if err == nil {
			return cur, &paramError{"body", "want a JSON object"}
		}
		return cur, &paramError{"body", describeBodyError(err)}
	}
	for key, v := range raw {
		switch key {
		case "reason":
			cur.Reason, err = wrapText(key, v, maxWrapReason, false)
		case "notes":
			cur.Notes, err = wrapText(key, v, maxWrapNotes, true)
		case "satisfaction":
			cur.Satisfaction, err = satisfaction(v)
		case "resolved":
			cur.Resolved, err = resolved(v)
		case "transcript":
			cur.Transcript, err = transcript(v)
		default:
			if !callKeys[key] {
				err = &paramError{key, "unknown field; a wrap-up sets reason, satisfaction, notes, resolved and transcript"}
			}
		}
		if err != nil {
			return cur, err
		}
	}
	return cur, nil
}

// satisfaction reads a score 1–5; null clears it (0).
func satisfaction(v json.RawMessage) (int, error) {
	if string(bytes.TrimSpace(v)) == "null" {
		return 0, nil
	}
	var f float64
	if err := json.Unmarshal(v, &f); err != nil {
		return 0, &paramError{"satisfaction", "want a number from 1 to 5"}
	}
	if f != float64(int(f)) || f < 1 || f > 5 {
		return 0, &paramError{"satisfaction", fmt.Sprintf("%s is not a whole number from 1 to 5", bytes.TrimSpace(v))}
	}
	return int(f), nil
}

// resolved reads true or false; null clears it (not said).
func resolved(v json.RawMessage) (*bool, error) {
	var b *bool
	if err := json.Unmarshal(v, &b); err != nil {
		return nil, &paramError{"resolved", "want true, false or null"}
	}
	return b, nil
}

// transcript reads a transcript: text with line breaks, at most
// cdr.MaxTranscript bytes.
func transcript(v json.RawMessage) (string, error) {
	s, err := wrapText("transcript", v, cdr.MaxTranscript, true)
	if err != nil {
		return "", err
	}
	if len(s) > cdr.MaxTranscript {
		return "", &paramError{"transcript", fmt.Sprintf("%d bytes, at most %d", len(s), cdr.MaxTranscript)}
	}
	return s, nil
}

// wrapText reads a text field: control characters removed (line breaks kept
// in notes), trimmed, at most max characters.
func wrapText(key string, v json.RawMessage, max int, multiline bool) (string, error) {
	var s *string
	if err := json.Unmarshal(v, &s); err != nil {
		return "", &paramError{key, "want a string"}
	}
	if s == nil {
		return "", nil
	}
	if !utf8.ValidString(*s) {
		return "", &paramError{key, "not valid UTF-8"}
	}
	out := strings.TrimSpace(strings.Map(func(r rune) rune {
		switch {
		case multiline && (r == '\n' || r == '\t'):
			return r
		case r == '\r':
			return -1
		case unicode.IsControl(r), unicode.Is(unicode.Cf, r):
			return -1
		}
		return r
	}, *s))
	if n := utf8.RuneCountInString(out); n > max {
		return "", &paramError{key, fmt.Sprintf("%d characters, at most %d", n, max)}
	}
	return out, nil
}
