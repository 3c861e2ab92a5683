package cdr

import "time"

// MessageDirection tells which way a text message went (SPEC §2): seen
// from the company, like the seed's TEXT_RECEIVED and TEXT_SENT.
type MessageDirection string

// Directions of a message record.
const (
	Received MessageDirection = "received" // from a trunk, to the PBX
	Sent     MessageDirection = "sent"     // from the PBX, to a trunk
)

// Message is the record of one out-of-dialog SIP MESSAGE (RFC 3428) that
// switchboard routed between a trunk and the PBX (SPEC §2, §8 field
// names). It is written once, when the final response has come.
type Message struct {
	ID        string
	CallID    string
	Direction MessageDirection
	// Caller and Called are E.164 when readable, else the user part as
	// received; the raw forms keep what the headers said.
	Caller    string
	CallerRaw string
	Called    string
	CalledRaw string
	ContactID int64
	// Content is the body as text, at most messages.max_content bytes;
	// Truncated says it was cut there, Size is the body's full length.
	Content     string
	Truncated   bool
	Size        int
	ContentType string
	Trunk       string
	// Source is the sender's address as received (the From URI, e.g.
	// sip:+4915112345678@carrier.example): the seed's "source address".
	Source string
	Node   string
	// Status is the final response's code (delivery status); 408 when
	// none came, 0 while none is known.
	Status int
	At     time.Time
}
