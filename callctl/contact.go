package callctl

import (
	"context"
	"errors"

	"github.com/switchboard-sip/switchboard/contacts"
)

// Contacts is the in-memory contact index the contact stage reads;
// *contacts.Cache implements it. Neither method may touch the disk.
type Contacts interface {
	Lookup(e164 string) *contacts.Info
	FindOrCreate(p contacts.Phone, name string) (info *contacts.Info, created bool)
}

// ContactStage links the call to the contact of its remote party (the
// caller inbound, the callee outbound, SPEC §2), creating the contact on
// the first call of an unknown external number, named after the SIP
// display name when there is one. Anonymous and internal parties get no
// contact.
//
// It fails open: it never rejects a call. When no contact can be had
// without waiting (no id left in the reserved block) the call goes on
// unlinked.
type ContactStage struct {
	contacts Contacts
}

// NewContactStage builds the stage over the contact index.
func NewContactStage(c Contacts) (*ContactStage, error) {
	if c == nil {
		return nil, errors.New("callctl: contact stage: no contact index")
	}
	return &ContactStage{contacts: c}, nil
}

// Name implements Stage.
func (s *ContactStage) Name() string { return "contact" }

// ContactResult is the contact decision for one call, for the stage and
// for `switchboard explain`.
type ContactResult struct {
	Contact *contacts.Info // the contact found (or created); nil when none
	Create  bool           // the number is unknown and gets a contact
	Name    string         // the name a created contact gets
	Skip    string         // why the call gets no contact: anonymous, internal, no number
}

// Check finds the call's contact without creating one.
func (s *ContactStage) Check(c *Call) ContactResult {
	r := c.Remote()
	switch {
	case r.Anonymous:
		return ContactResult{Skip: "anonymous"}
	case r.Internal:
		return ContactResult{Skip: "internal"}
	case r.E164 == "":
		return ContactResult{Skip: "no number"}
	}
	if in := s.contacts.Lookup(r.E164); in != nil {
		return ContactResult{Contact: in}
	}
	return ContactResult{Create: true, Name: ContactName(r)}
}

// Handle implements Stage: it sets c.ContactID and always continues. In a
// dry run it only looks the contact up and reports the one it would
// create.
func (s *ContactStage) Handle(_ context.Context, c *Call) Decision {
	if c.DryRun() {
		r := s.Check(c)
		if r.Contact != nil {
			c.ContactID = r.Contact.ID
		}
		c.Trace.note(r)
		return Decision{Verdict: Continue}
	}
	r := c.Remote()
	if r.Anonymous || r.Internal || r.E164 == "" {
		return Decision{Verdict: Continue}
	}
	in := s.contacts.Lookup(r.E164)
	if in == nil {
		in, _ = s.contacts.FindOrCreate(contacts.Phone{E164: r.E164, Raw: r.Raw, Ext: r.Ext}, ContactName(r))
	}
	if in != nil {
		c.ContactID = in.ID
	}
	return Decision{Verdict: Continue}
}

// ContactName is the name a contact created from a call gets: the party's
// SIP display name, cleaned, when it names someone. Display names that are
// only a number (many trunks repeat the number there) or a placeholder
// ("Anonymous", "Unknown") give no name.
func ContactName(p *Party) string {
	name := CleanDisplayName(p.Name)
	if name == "" || isPlaceholderName(name) || !hasLetter(name) {
		return ""
	}
	return name
}
