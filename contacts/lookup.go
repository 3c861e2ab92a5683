package contacts

import (
	"context"
	"errors"
	"time"
)

// Lookup finds contacts by number straight from the database and never
// writes: the contact index of a dry run (`switchboard explain`), which
// must neither migrate the schema nor reserve contact ids as a Cache does.
// A nil database knows no contact.
type Lookup struct {
	store *Store
	ctx   context.Context
	// Err is the first read error, for the dry run to report; a failed
	// read counts as "no contact".
	Err error
}

// NewLookup reads from db, which may be nil (no database yet).
func NewLookup(ctx context.Context, db DB) *Lookup {
	l := &Lookup{ctx: ctx}
	if db != nil {
		l.store = &Store{db: db, now: time.Now}
	}
	return l
}

// Lookup returns the contact owning e164, nil when none does.
func (l *Lookup) Lookup(e164 string) *Info {
	if l.store == nil {
		return nil
	}
	id, err := l.store.owner(l.ctx, l.store.db, e164)
	if err == nil && id != 0 {
		var c Contact
		if c, err = l.store.get(l.ctx, l.store.db, id); err == nil {
			return infoOf(&c)
		}
	}
	if err != nil && !errors.Is(err, ErrNotFound) && l.Err == nil {
		l.Err = err
	}
	return nil
}

// FindOrCreate only finds: a dry run creates nothing.
func (l *Lookup) FindOrCreate(p Phone, _ string) (*Info, bool) {
	return l.Lookup(p.E164), false
}
