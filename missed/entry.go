// Package missed turns unanswered (and, when asked, short) calls into
// missed-call entries (SPEC §3, §4): it applies the front desk's exceptions,
// hands the notifications to an outbox in the entry's own transaction, and
// marks entries processed when the caller is reached later or a
// receptionist says so.
//
// Nothing here runs on the SIP path: the Observer only queues events, and
// one goroutine works through them in order.
package missed

import (
	"context"
	"database/sql"
	"time"

	"github.com/switchboard-sip/switchboard/cdr"
	"github.com/switchboard-sip/switchboard/configs"
	"github.com/switchboard-sip/switchboard/contacts"
)

// Status is where an entry stands.
type Status string

// Statuses of an entry.
const (
	Open      Status = "open"
	Processed Status = "processed"
)

// Kind tells why an entry exists.
type Kind string

// Kinds of entry.
const (
	KindMissed Kind = "missed" // inbound, no_answer or busy
	KindShort  Kind = "short"  // answered, talk below missed.short_call
)

// Exception is the reason an entry was not notified (SPEC §4). The empty
// exception means its notifications were queued.
type Exception string

// Exceptions, each switched by a key of missed.exceptions (min_ring by
// missed.min_ring).
const (
	None           Exception = ""
	Internal       Exception = "internal"
	Anonymous      Exception = "anonymous"
	Excluded       Exception = "exclude"
	MinRing        Exception = "min_ring"
	UnknownContact Exception = "unknown_contact"
	SameDayRepeat  Exception = "same_day_repeat"
	SkippedByRule  Exception = "rule" // a call-control rule said skip_notify
	Absent         Exception = "absent"
)

// Entry is one missed-call entry. Repeated calls of a caller on one day may
// be counted on a single entry (Count).
type Entry struct {
	ID          string
	CallID      string // SIP Call-ID of the first call
	RecordID    string // call record of the first call
	Kind        Kind
	ContactID   int64 // 0 when the caller has no contact
	Caller      string
	CallerName  string
	Hotline     string
	Status      Status
	Count       int
	Exception   Exception
	NotifiedAt  *time.Time // when its notifications were queued
	ProcessedAt *time.Time
	ResolvedBy  string // record id of the resolving call, or who marked it by hand
	CreatedAt   time.Time
	Day         string // YYYY-MM-DD in the hotline's time zone
}

// EventType names a change of an entry, as sent to subscribers.
type EventType string

// Events published to subscribers (and on /api/events).
const (
	EventCreated   EventType = "missed.created"
	EventProcessed EventType = "missed.processed"
)

// Event tells subscribers that an entry was created (or counted a repeat)
// or processed.
type Event struct {
	Type  EventType
	Entry Entry
}

// Notice is what the notifier gets for an entry to notify: everything its
// channels show, taken when the entry is created.
type Notice struct {
	Entry   Entry
	Record  cdr.Record
	Contact *contacts.Contact // nil when the caller has no contact
	Hotline *configs.Hotline  // nil when the call matched no hotline
	// Extra are recipients a call-control rule added (notify): addresses
	// for email, +E.164 numbers for SMS.
	Extra []string
}

// Notifier queues the notifications of an entry in the outbox, inside the
// transaction that creates the entry, so that an entry is notified once or
// not at all. Kick is called after the commit to start delivery at once.
type Notifier interface {
	Enqueue(ctx context.Context, tx *sql.Tx, n Notice) (int, error)
	Kick()
}

// SignIns tells when a receptionist last signed in to the board; the board
// implements it. The zero time means never.
type SignIns interface {
	LastSignIn() time.Time
}

// Contacts reads the caller's contact; *contacts.Store implements it.
type Contacts interface {
	Get(ctx context.Context, id int64) (contacts.Contact, error)
	FindByNumber(ctx context.Context, e164 string) (contacts.Contact, error)
}

// Records is the call store, the owner of the calls table
// (*callstore.Store): the service links an entry to its record through it
// and asks it for the missed calls an unclean stop left without entry.
type Records interface {
	// Save stores the record again, with its missed_id.
	Save(r cdr.Record)
	// LinkMissed writes the entry id into the record within tx, the
	// entry's transaction.
	LinkMissed(ctx context.Context, tx *sql.Tx, recordID, missedID string) error
	// UnlinkedMissed lists node's missed calls ended in [from, to) that
	// have no entry id.
	UnlinkedMissed(ctx context.Context, node string, from, to time.Time) ([]cdr.Record, error)
}

// linker is a Records that saves the record again only when the link
// needs it (*callstore.Store): most records are still waiting for the
// writer when their entry is made, and take the id there.
type linker interface {
	LinkSaved(ctx context.Context, r cdr.Record, missedID string)
}
