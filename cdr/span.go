package cdr

import "time"

// Span is how many calls a contact has and when the first and the last
// started: what the call store knows of a contact's history, handed to the
// contact store without either importing the other.
type Span struct {
	Calls       int64
	First, Last time.Time
}
