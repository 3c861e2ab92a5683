package wire

import (
	"time"

	"github.com/switchboard-sip/switchboard/blocking"
)

// Block is the JSON form of a block list entry (SPEC §8: id, number,
// action, direction, reason). Entries from the config file have id 0 and
// source config: they can only be changed in the file.
type Block struct {
	ID        int64   `json:"id"`
	Number    string  `json:"number"`
	Action    string  `json:"action"`
	Direction string  `json:"direction"`
	Reason    string  `json:"reason"`
	Source    string  `json:"source"`
	CreatedAt *string `json:"created_at"`
}

// BlockList is the answer of GET /api/blocks.
type BlockList struct {
	Items []Block `json:"items"`
	Next  string  `json:"next"`
}

// NewBlock is the JSON form of e with its time in loc. The command line
// uses it too, so `block list --json` prints what the API serves.
func NewBlock(e blocking.Entry, loc *time.Location) Block {
	b := Block{ID: e.ID, Number: e.Number, Action: string(e.Action), Direction: string(e.Direction),
		Reason: e.Reason, Source: string(e.Source)}
	if !e.CreatedAt.IsZero() {
		b.CreatedAt = FormatTimePtr(&e.CreatedAt, loc)
	}
	return b
}
