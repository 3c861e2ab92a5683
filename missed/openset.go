package missed

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"go.uber.org/zap"

	"github.com/switchboard-sip/switchboard/storage"
)

// busTopic carries "contact_id caller" of a new open entry to the other
// nodes (SPEC §11), so that their auto-resolve knows of it.
const busTopic = "missed"

// openSet is the callers (contacts and numbers) that may have an open
// entry. Most answered calls resolve nothing, and asking the database on
// every one of them was the dearest part of a call; with the set only an
// answered call whose party is in it costs a query (SPEC §4 auto-resolve,
// §9). It is a superset: a key may stay after its entries were processed
// (by hand, on another node) until an answered call finds none and drops
// it; a key is never missing while an entry of it is open, once loaded.
type openSet struct {
	mu       sync.Mutex
	loaded   bool // false until the first load: every party may have one
	contacts map[int64]struct{}
	callers  map[string]struct{}
	epoch    uint64 // moves on every addition, so a drop never undoes one
}

func newOpenSet() *openSet {
	return &openSet{contacts: map[int64]struct{}{}, callers: map[string]struct{}{}}
}

// add records an open entry of a contact (0: none) or caller ("": none).
func (o *openSet) add(contactID int64, caller string) {
	o.mu.Lock()
	o.addLocked(contactID, caller)
	o.mu.Unlock()
}

func (o *openSet) addLocked(contactID int64, caller string) {
	if contactID != 0 {
		o.contacts[contactID] = struct{}{}
	}
	if caller != "" {
		o.callers[caller] = struct{}{}
	}
	o.epoch++
}

// mayHave tells whether the party may have open entries, and the epoch to
// hand to drop when a query finds none.
func (o *openSet) mayHave(contactID int64, number string) (bool, uint64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.loaded {
		return true, o.epoch
	}
	_, c := o.contacts[contactID]
	_, n := o.callers[number]
	return (contactID != 0 && c) || (number != "" && n), o.epoch
}

// drop forgets a party that a query found without open entries, unless an
// entry was added since the query began (it may be this party's).
func (o *openSet) drop(contactID int64, number string, epoch uint64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.epoch != epoch {
		return
	}
	delete(o.contacts, contactID)
	delete(o.callers, number)
}

// isLoaded tells whether the set came from the database at least once.
func (o *openSet) isLoaded() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.loaded
}

// merge adds the keys read from the database. It never removes: an entry
// created while the query ran is in the set already and must stay.
func (o *openSet) merge(contacts []int64, callers []string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, id := range contacts {
		o.contacts[id] = struct{}{}
	}
	for _, c := range callers {
		o.callers[c] = struct{}{}
	}
	o.epoch++
	o.loaded = true
}

// loadOpen reads the parties of all open entries into the set.
func (s *Service) loadOpen(ctx context.Context) error {
	rows, err := s.st.db.QueryContext(ctx, `SELECT DISTINCT contact_id, caller FROM missed_calls WHERE status = 'open'`)
	if err != nil {
		return fmt.Errorf("missed: load open entries: %w", err)
	}
	defer rows.Close()
	var ids []int64
	var callers []string
	for rows.Next() {
		var id sql.NullInt64
		var caller string
		if err := rows.Scan(&id, &caller); err != nil {
			return fmt.Errorf("missed: load open entries: %w", err)
		}
		if id.Valid && id.Int64 != 0 {
			ids = append(ids, id.Int64)
		}
		if caller != "" {
			callers = append(callers, caller)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("missed: load open entries: %w", err)
	}
	s.open.merge(ids, callers)
	return nil
}

// listenOpen keeps the set in step with the entries other nodes create. A
// notice without data follows a lost connection: notices may have been
// missed, so the set is read again.
func (s *Service) listenOpen(db *storage.DB) (cancel func()) {
	return db.Bus().Subscribe(busTopic, func(data []byte) {
		if len(data) == 0 {
			if err := s.loadOpen(context.Background()); err != nil {
				s.log.Warn("open missed calls not reloaded", zap.Error(err))
			}
			return
		}
		id, caller, _ := strings.Cut(string(data), " ")
		n, _ := strconv.ParseInt(id, 10, 64)
		s.open.add(n, caller)
	})
}

// announceOpen tells the other nodes of a new open entry when tx commits.
// A caller too long for a notice sends none: the other nodes read the
// whole set again.
func (s *Service) announceOpen(ctx context.Context, tx storage.Execer, e Entry) error {
	data := strconv.FormatInt(e.ContactID, 10) + " " + e.Caller
	if len(data) > maxNoticeData {
		return s.st.db.NotifyTx(ctx, tx, busTopic)
	}
	return s.st.db.NotifyTxData(ctx, tx, busTopic, data)
}

// maxNoticeData keeps a notice well inside PostgreSQL's payload bound.
const maxNoticeData = 4096
