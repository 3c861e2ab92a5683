package callctl

import (
	"context"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/switchboard-sip/switchboard/cdr"
	"github.com/switchboard-sip/switchboard/contacts"
)

// Text is one out-of-dialog MESSAGE (RFC 3428) that the sip package routed
// between a trunk and the PBX, with its final response, free of SIP types.
type Text struct {
	CallID    string
	Direction Direction // Inbound: from a trunk to the PBX; Outbound: the other way
	Trunk     string    // the trunk it came from or went to
	Region    string    // the trunk's default country for numbers
	Trusted   bool      // the trunk's identity headers are trusted
	Node      string
	// Signalling holds the request's addresses as for an INVITE.
	Signalling  Signalling
	Source      string // the sender's address as received (the From URI)
	ContentType string
	Body        []byte
	// Status is the final response relayed back; 408 when none came.
	Status int
	At     time.Time
}

// MessageLog keeps message records; storage/callstore implements it.
// SaveMessage is called on the SIP path and must not wait for the disk.
type MessageLog interface {
	SaveMessage(m cdr.Message)
}

// DefaultMaxContent is the text kept of one message when no bound is
// given (SPEC §7 messages.max_content).
const DefaultMaxContent = 4 << 10

// TextRecorder turns routed MESSAGE requests into message records (SPEC
// §2): it identifies the parties like the Identify stage does for a call,
// links the record to the remote party's contact, creating the contact on
// the first message of an unknown external number like the contact stage
// does, and hands the record to the log. It reads memory only.
type TextRecorder struct {
	identify *Identify
	contacts Contacts // nil: records are not linked
	log      MessageLog
	max      int
}

// NewTextRecorder builds a recorder: normalize reads numbers as for calls,
// contacts is the in-memory contact index (nil links nothing), maxContent
// bounds the text kept (0 means DefaultMaxContent).
func NewTextRecorder(normalize NormalizeFunc, contacts Contacts, log MessageLog, maxContent int) *TextRecorder {
	if maxContent <= 0 {
		maxContent = DefaultMaxContent
	}
	return &TextRecorder{identify: NewIdentify(normalize), contacts: contacts, log: log, max: maxContent}
}

// Record builds the record of t, saves it and returns it.
func (r *TextRecorder) Record(t Text) cdr.Message {
	c := &Call{Direction: t.Direction, Trunk: t.Trunk, Region: t.Region, Trusted: t.Trusted, Signalling: t.Signalling}
	r.identify.Handle(context.Background(), c)
	m := cdr.Message{
		ID: NewID(t.At), CallID: t.CallID, Direction: cdr.Received,
		Caller: c.Caller.Key(), CallerRaw: c.Caller.RecordRaw(), Called: c.Called.Key(), CalledRaw: c.Called.RecordRaw(),
		Size: len(t.Body), ContentType: t.ContentType, Trunk: t.Trunk, Source: t.Source,
		Node: t.Node, Status: t.Status, At: t.At,
	}
	if t.Direction == Outbound {
		m.Direction = cdr.Sent
	}
	if m.Source == "" {
		m.Source = addressURI(&t.Signalling.From)
	}
	if c.Caller.Anonymous {
		m.Caller = ""
	} else if m.Caller == c.Caller.Raw {
		m.Caller = m.CallerRaw // a SIP address rather than a bare user part
	}
	if m.Called == c.Called.Raw {
		m.Called = m.CalledRaw
	}
	m.Content, m.Truncated = MessageText(t.Body, t.ContentType, r.max)
	m.ContactID = r.contactOf(c.Remote())
	if r.log != nil {
		r.log.SaveMessage(m)
	}
	return m
}

// contactOf finds or creates the contact of the remote party, as the
// contact stage does for a call; 0 when it gets none (anonymous, internal,
// no readable number, or no id to be had without waiting).
func (r *TextRecorder) contactOf(p *Party) int64 {
	if r.contacts == nil || p.Anonymous || p.Internal || p.E164 == "" {
		return 0
	}
	in := r.contacts.Lookup(p.E164)
	if in == nil {
		in, _ = r.contacts.FindOrCreate(contacts.Phone{E164: p.E164, Raw: p.Raw, Ext: p.Ext}, ContactName(p))
	}
	if in == nil {
		return 0
	}
	return in.ID
}

// MessageText is the text kept of a message body: UTF-8 with the control
// characters but newline and tab removed, cut at a character boundary so
// that it holds at most max bytes; cut reports that something was left
// out. A body that is neither text/* nor valid UTF-8 (an image, binary
// data) keeps no text: its record says only its type and size.
func MessageText(body []byte, contentType string, max int) (text string, cut bool) {
	mediaType, _, _ := strings.Cut(strings.ToLower(strings.TrimSpace(contentType)), ";")
	if !utf8.Valid(body) && !strings.HasPrefix(strings.TrimSpace(mediaType), "text/") {
		return "", false
	}
	var b strings.Builder
	b.Grow(min(len(body), max))
	for _, r := range strings.ToValidUTF8(string(body), "\uFFFD") {
		if (r < 0x20 && r != '\n' && r != '\t') || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			continue
		}
		if b.Len()+utf8.RuneLen(r) > max {
			return b.String(), true
		}
		b.WriteRune(r)
	}
	return b.String(), false
}

// addressURI writes an address back as a URI without parameters:
// sip:user@host, or tel:number.
func addressURI(a *Address) string {
	switch {
	case a.Scheme == "tel":
		return "tel:" + a.User
	case a.Scheme == "" || a.Host == "":
		return a.User
	case a.User == "":
		return a.Scheme + ":" + a.Host
	}
	return a.Scheme + ":" + a.User + "@" + a.Host
}
