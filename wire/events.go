package wire

// EventHotline is the hotline part of a call event: which company was
// called, what to say and what to show (rendered templates, SPEC §5).
type EventHotline struct {
	Name     string `json:"name"`
	Company  string `json:"company"`
	Greeting string `json:"greeting"`
	Display  string `json:"display"`
}

// EventContact summarises the remote party's contact for the board.
// CallsCount and LastCallAt count the calls before this one.
type EventContact struct {
	ID         int64    `json:"id"`
	Name       string   `json:"name"`
	Company    string   `json:"company"`
	Email      string   `json:"email"`
	Tags       []string `json:"tags"`
	CallsCount int64    `json:"calls_count"`
	LastCallAt *string  `json:"last_call_at"`
	OpenMissed int64    `json:"open_missed"`
}

// CallEvent is the data of call.ringing, call.answered and call.ended: the
// record in the shape of /api/calls, the numbers formatted for reading, the
// hotline and the contact (null when none).
type CallEvent struct {
	Call           Call          `json:"call"`
	CallerNational string        `json:"caller_national"`
	CalledNational string        `json:"called_national"`
	Hotline        *EventHotline `json:"hotline"`
	Contact        *EventContact `json:"contact"`
}
