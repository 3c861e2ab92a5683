package agent

import (
	"github.com/switchboard-sip/switchboard/callctl"
	"github.com/switchboard-sip/switchboard/contacts"
	"github.com/switchboard-sip/switchboard/storage/callstore"
)

// The call store imports neither the call path nor the contacts; these
// are the interfaces they declare for it, checked where all three meet.
var (
	_ callctl.MessageLog  = (*callstore.Store)(nil)
	_ contacts.MessageLog = (*callstore.Store)(nil)
	_ contacts.CallLog    = (*callstore.Store)(nil)
)
