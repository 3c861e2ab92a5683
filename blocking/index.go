package blocking

import "strings"

// Index answers "is this number blocked for this direction" from memory. It
// is immutable once built: the Store swaps in a new one on every change, so
// lookups need no lock.
//
// One map is keyed by every entry's number (without the * of a prefix); a
// lookup probes the number itself and each of its prefixes, longest first.
// Numbers are at most ~20 characters, so that is at most ~20 map probes on
// substrings, which allocate nothing, whatever the number of entries.
type Index struct {
	dirs  [2]map[string]*node // by dirIndex: in, out
	size  int
	addrs int // SIP address and domain entries: none, and LookupAddress costs nothing
}

// node holds the entries deciding for one key in one direction: the most
// recent allow and block entry, exact and prefix apart.
type node struct {
	exactAllow, exactBlock   *Entry
	prefixAllow, prefixBlock *Entry
}

// Match is the result of a lookup.
type Match struct {
	// Blocked is true when a block entry matches and no allow entry does.
	Blocked bool
	// Entry is the deciding entry: the most specific allow entry when one
	// matches, else the most specific block entry; nil when none matches.
	Entry *Entry
}

// NewIndex builds an index over entries. Entries must be normalised (see
// Entry.Normalize); invalid ones are skipped rather than failing a rebuild,
// since the store validates everything it accepts.
func NewIndex(entries []Entry) *Index {
	ix := &Index{dirs: [2]map[string]*node{make(map[string]*node), make(map[string]*node)}}
	for i := range entries {
		e := &entries[i]
		if CheckEntryNumber(e.Number) != nil {
			continue
		}
		ix.size++
		if IsAddress(e.Number) {
			ix.addrs++
		}
		for d := range ix.dirs {
			if e.Direction != Both && dirIndex(e.Direction) != d {
				continue
			}
			key := e.Key()
			n := ix.dirs[d][key]
			if n == nil {
				n = &node{}
				ix.dirs[d][key] = n
			}
			var slot **Entry
			switch {
			// A domain (*@host) is the prefix slot of its key.
			case (e.IsPrefix() || e.IsDomain()) && e.Action == Allow:
				slot = &n.prefixAllow
			case e.IsPrefix() || e.IsDomain():
				slot = &n.prefixBlock
			case e.Action == Allow:
				slot = &n.exactAllow
			default:
				slot = &n.exactBlock
			}
			// Later entries win for the reason shown: a stored entry made
			// after a config entry for the same number is the fresher one.
			*slot = e
		}
	}
	return ix
}

func dirIndex(d Direction) int {
	if d == Out {
		return 1
	}
	return 0
}

// Len is the number of entries in the index.
func (ix *Index) Len() int {
	if ix == nil {
		return 0
	}
	return ix.size
}

// Lookup decides for number (E.164 or as received) on a call in direction
// dir (In or Out). Allow wins over block at any specificity: an allow entry
// for +49110 passes calls to +49110 even under a blocked +49* prefix, and an
// allow prefix +49800* passes a blocked exact number under it too. A
// number holding an @ is looked up as a SIP address (LookupAddress).
func (ix *Index) Lookup(number string, dir Direction) Match {
	if ix == nil || number == "" {
		return Match{}
	}
	if user, host, ok := strings.Cut(number, "@"); ok {
		return ix.LookupAddress(user, host, dir)
	}
	m := ix.dirs[dirIndex(dir)]
	var block *Entry
	for l := len(number); l >= 1; l-- {
		n := m[number[:l]]
		if n == nil {
			continue
		}
		if l == len(number) {
			if n.exactAllow != nil {
				return Match{Entry: n.exactAllow}
			}
			if n.exactBlock != nil && block == nil {
				block = n.exactBlock
			}
		}
		if n.prefixAllow != nil {
			return Match{Entry: n.prefixAllow}
		}
		if n.prefixBlock != nil && block == nil {
			block = n.prefixBlock
		}
	}
	if block == nil {
		return Match{}
	}
	return Match{Blocked: true, Entry: block}
}
