package web

import (
	"context"
	"embed"
	"io/fs"
	"net/http"
	"strings"
	"time"

	"github.com/switchboard-sip/switchboard/callctl"
	"github.com/switchboard-sip/switchboard/cdr"
	"github.com/switchboard-sip/switchboard/contacts"
	"github.com/switchboard-sip/switchboard/storage/callstore"
	"github.com/switchboard-sip/switchboard/wire"
)

// boardFiles is the receptionist board: plain HTML, CSS and JavaScript,
// embedded so that the binary needs nothing else and no build step.
//
//go:embed board
var boardFiles embed.FS

// BoardOptions configure the board.
type BoardOptions struct {
	// LinkPrefix goes before a number in "call back" links
	// (missed.email.link_prefix); "tel:" when empty.
	LinkPrefix string
	// Title is shown in the page header; "Switchboard" when empty.
	Title string
	// WrapUpReasons gives the reasons offered in the wrap-up form
	// (wrapup.reasons; the receptionist may type another). It is asked on
	// each request, so that a reloaded config reaches the board.
	WrapUpReasons func() []string
	// Recordings gives recordings.base_url, to which the board joins a
	// relative recording reference for Listen, and whether Delete also
	// deletes at the PBX; asked on each request.
	Recordings func() (baseURL string, deletesAtPBX bool)
}

// BoardConfig is the body of GET /api/board: what the page needs to know
// of the config.
type BoardConfig struct {
	LinkPrefix    string   `json:"link_prefix"`
	Title         string   `json:"title"`
	WrapUpReasons []string `json:"wrapup_reasons"`
	// RecordingsBaseURL is recordings.base_url (SPEC §2: Listen).
	RecordingsBaseURL string `json:"recordings_base_url"`
	// RecordingsDeleteAtPBX says whether Delete asks the PBX too.
	RecordingsDeleteAtPBX bool `json:"recordings_delete_at_pbx"`
}

// boardCSP allows the page its own files and nothing else: no inline
// script, no other origin, no framing (clickjacking of "block number"); a
// recording plays from any http(s) address, never another scheme.
const boardCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; media-src 'self' http: https:; " +
	"connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// RegisterBoard adds the board (GET / and its files under /board/) and
// GET /api/board to s.
func RegisterBoard(s *Server, o BoardOptions) {
	if o.LinkPrefix == "" {
		o.LinkPrefix = "tel:"
	}
	if o.Title == "" {
		o.Title = "Switchboard"
	}
	files := http.FileServerFS(boardFiles)
	page := func(w http.ResponseWriter, r *http.Request) {
		boardHeaders(w)
		// The contact page (SPEC §8) is the board's page too: it shows
		// the contact named in its path.
		if r.URL.Path == "/" || contactPage(r.URL.Path) {
			b, err := fs.ReadFile(boardFiles, "board/index.html")
			if err != nil {
				s.internal(w, r, err)
				return
			}
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Write(b)
			return
		}
		if strings.HasSuffix(r.URL.Path, "/") {
			// No directory listings.
			WriteError(w, http.StatusNotFound, "no such path "+r.URL.Path)
			return
		}
		files.ServeHTTP(w, r)
	}
	s.HandleFunc("GET /{$}", page)
	s.HandleFunc("GET /board/", page)
	s.HandleFunc("GET /api/board", func(w http.ResponseWriter, r *http.Request) {
		cfg := BoardConfig{LinkPrefix: o.LinkPrefix, Title: o.Title, WrapUpReasons: []string{}}
		if o.WrapUpReasons != nil {
			cfg.WrapUpReasons = append(cfg.WrapUpReasons, o.WrapUpReasons()...)
		}
		if o.Recordings != nil {
			cfg.RecordingsBaseURL, cfg.RecordingsDeleteAtPBX = o.Recordings()
		}
		WriteJSON(w, http.StatusOK, cfg)
	})
}

// contactPage reports whether path is /board/contacts/{id} with a
// numeric id.
func contactPage(path string) bool {
	id, ok := strings.CutPrefix(path, "/board/contacts/")
	if !ok || id == "" || len(id) > 19 {
		return false
	}
	for _, c := range id {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func boardHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", boardCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	// The files change with the binary; no-cache makes the browser ask
	// again after an upgrade rather than run an old script.
	h.Set("Cache-Control", "no-cache")
}

// ContactReader is what call events need from the contact store;
// *contacts.Store implements it.
type ContactReader interface {
	Get(ctx context.Context, id int64) (contacts.Contact, error)
	FindByNumber(ctx context.Context, e164 string) (contacts.Contact, error)
}

// CallHistory is what call events need from the call store: a contact's
// calls before a given one; *callstore.Store implements it.
type CallHistory interface {
	Before(ctx context.Context, contactID int64, r cdr.Record) (callstore.History, error)
}

// ContactEnricher is the contact half of an Enricher: it finds the remote
// party's contact (by the record's contact id, else by number) and its
// history before this call: calls_count and last_call_at count the calls
// that started before it (0 and null on a first call), whether or not this
// call's own record is written yet. calls may be nil; then the history is
// the contact's whole history as stored.
func ContactEnricher(store ContactReader, calls CallHistory, loc *time.Location) func(ctx context.Context, e callctl.Event) *EventContact {
	if loc == nil {
		loc = time.UTC
	}
	return func(ctx context.Context, e callctl.Event) *EventContact {
		c, ok := findEventContact(ctx, store, e)
		if !ok {
			return nil
		}
		out := &EventContact{ID: c.ID, Name: c.Name, Company: c.Company, Email: c.Email, Tags: c.Tags,
			CallsCount: c.CallsCount, LastCallAt: wire.FormatTimePtr(c.LastCallAt, loc), OpenMissed: c.OpenMissed}
		if out.Tags == nil {
			out.Tags = []string{}
		}
		if calls == nil {
			return out
		}
		h, err := calls.Before(ctx, c.ID, e.Record)
		if err != nil {
			return out
		}
		out.CallsCount, out.LastCallAt = h.Calls, wire.FormatTimePtr(h.Last, loc)
		return out
	}
}

func findEventContact(ctx context.Context, store ContactReader, e callctl.Event) (contacts.Contact, bool) {
	if id := e.Record.ContactID; id != 0 {
		c, err := store.Get(ctx, id)
		return c, err == nil
	}
	number := e.Record.Caller
	if e.Record.Direction == callctl.Outbound {
		number = e.Record.Called
	}
	if c := e.Call; c != nil {
		if r := c.Remote(); r.Anonymous || r.Internal {
			return contacts.Contact{}, false
		}
	}
	if !strings.HasPrefix(number, "+") {
		return contacts.Contact{}, false
	}
	c, err := store.FindByNumber(ctx, number)
	if err != nil {
		return contacts.Contact{}, false
	}
	if c.ID == 0 {
		return contacts.Contact{}, false
	}
	return c, true
}
