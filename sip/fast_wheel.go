package sip

import (
	"sync"
	"time"
)

// wheel is the one timing wheel of a fast-path socket: every transaction
// timer (RFC 3261 §17: A, B, C, D, E, F, G, H, I, K, L, M) is an entry in a
// slot, fired by one goroutine ticking at wheelTick. Adding a timer is an
// append; cancelling one is bumping the transaction's sequence number for
// that kind, so that the stale entry does nothing when its slot comes up.
type wheel struct {
	mu    sync.Mutex
	slots [wheelSlots][]wheelEntry
	pos   int
	fire  func(tx *fastTx, kind timerKind, seq uint32)
}

// wheelTick is the resolution; wheelSlots*wheelTick spans Timer B (32 s),
// longer timers (C) go round more than once.
const (
	wheelTick  = 10 * time.Millisecond
	wheelSlots = 4096
)

type wheelEntry struct {
	tx     *fastTx
	kind   timerKind
	seq    uint32
	rounds int
}

// add schedules kind for tx after d; seq is tx's sequence for kind now.
func (w *wheel) add(tx *fastTx, kind timerKind, seq uint32, d time.Duration) {
	ticks := max(1, int((d+wheelTick-1)/wheelTick))
	w.mu.Lock()
	slot := (w.pos + ticks) % wheelSlots
	w.slots[slot] = append(w.slots[slot], wheelEntry{tx: tx, kind: kind, seq: seq, rounds: (ticks - 1) / wheelSlots})
	w.mu.Unlock()
}

// run ticks until done is closed.
func (w *wheel) run(done <-chan struct{}) {
	t := time.NewTicker(wheelTick)
	defer t.Stop()
	var due []wheelEntry
	for {
		select {
		case <-done:
			return
		case <-t.C:
		}
		due = w.advance(due[:0])
		for i, e := range due {
			w.fire(e.tx, e.kind, e.seq)
			due[i] = wheelEntry{}
		}
	}
}

// advance moves to the next slot and returns the entries due in it.
func (w *wheel) advance(due []wheelEntry) []wheelEntry {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.pos = (w.pos + 1) % wheelSlots
	slot := w.slots[w.pos]
	keep := slot[:0]
	for _, e := range slot {
		if e.rounds > 0 {
			e.rounds--
			keep = append(keep, e)
			continue
		}
		due = append(due, e)
	}
	clear(slot[len(keep):])
	w.slots[w.pos] = keep
	return due
}
