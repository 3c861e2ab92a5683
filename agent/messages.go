package agent

import (
	"github.com/switchboard-sip/switchboard/cdr"
	"github.com/switchboard-sip/switchboard/wire"
)

// messageLog is where the call path's message records go: the records
// writer, which batches them to the database, and the board's event
// stream, as message.received or message.sent, so that an open contact
// page sees a text as it arrives. Neither waits.
type messageLog struct{ a *Agent }

func (l messageLog) SaveMessage(m cdr.Message) {
	l.a.calls.SaveMessage(m)
	l.a.hub.Publish("message."+string(m.Direction), wire.NewMessage(m, l.a.cfg.Load().Location))
}
