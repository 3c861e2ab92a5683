package web

import (
	"encoding/json"
	"strconv"

	"github.com/switchboard-sip/switchboard/cdr"
	"github.com/switchboard-sip/switchboard/wire"
)

// pendingCall is a call event kept as its parts, not yet encoded: while
// nobody watches the board (the common case under load) an event costs no
// JSON and no allocation; it is encoded when a reconnecting client asks the
// history for it.
type pendingCall struct {
	rec                            cdr.Record
	callerNational, calledNational string
	hotline                        EventHotline
	hasHotline                     bool
	contact                        *EventContact
}

// event is the call event in its wire shape.
func (p *pendingCall) event(h *Hub) CallEvent {
	ev := CallEvent{Call: wire.NewCall(p.rec, h.o.Location), Contact: p.contact,
		CallerNational: p.callerNational, CalledNational: p.calledNational}
	if p.hasHotline {
		hot := p.hotline
		ev.Hotline = &hot
	}
	return ev
}

// slot is one event of the history: encoded (msg), or a call event that
// nobody has seen yet (call).
type slot struct {
	id   uint64
	typ  string
	msg  *message
	call pendingCall
}

// history is the last events, in a ring of fixed size: a new event
// overwrites the oldest, with no shifting and no allocation.
type history struct {
	slots []slot
	head  int // index of the oldest event
	n     int
}

func newHistory(size int) history { return history{slots: make([]slot, size)} }

// push makes room for the newest event and returns its slot, cleared.
func (r *history) push() *slot {
	i := (r.head + r.n) % len(r.slots)
	if r.n == len(r.slots) {
		r.head = (r.head + 1) % len(r.slots)
	} else {
		r.n++
	}
	s := &r.slots[i]
	*s = slot{}
	return s
}

// at is the i-th event, oldest first.
func (r *history) at(i int) *slot { return &r.slots[(r.head+i)%len(r.slots)] }

// encode makes the stream form of an event: "id: N\nevent: T\ndata: …\n\n".
func encode(id uint64, typ string, data []byte) *message {
	b := make([]byte, 0, len(data)+len(typ)+40)
	b = append(b, "id: "...)
	b = strconv.AppendUint(b, id, 10)
	b = append(b, "\nevent: "...)
	b = append(b, typ...)
	b = append(b, "\ndata: "...)
	b = append(b, data...)
	b = append(b, "\n\n"...)
	return &message{id: id, wire: b}
}

// message returns the slot's encoded event, encoding a pending call event
// once. ok is false for an event that cannot be encoded.
func (s *slot) message(h *Hub) (*message, bool) {
	if s.msg != nil {
		return s.msg, true
	}
	b, err := json.Marshal(s.call.event(h))
	if err != nil {
		return nil, false
	}
	s.msg = encode(s.id, s.typ, b)
	s.call = pendingCall{}
	return s.msg, true
}
