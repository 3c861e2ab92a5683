package templates

import (
	"hash/maphash"
	"strconv"
	"sync"
	"text/template"
	"text/template/parse"
	"time"
)

// A template's output depends only on the parts of Data it reads. Most
// hotline templates read the contact, the caller and the hotline, which
// repeat from call to call, so their output is cached under a hash of
// exactly those parts: a changed contact (renamed, retagged) hashes to a
// new key, which is how an entry is invalidated. A template that reads
// the time, the call itself (its ids are new on every call) or lookup
// answers is executed every time.

// roots are the fields of Data a template reads.
type roots uint16

const (
	rootCall roots = 1 << iota
	rootCaller
	rootCalled
	rootHotline
	rootContact
	rootNow
	rootLookup
	rootAll // the whole of Data, or a use the walk cannot follow
	// rootDaypart: .Now is read only as {{daypart .Now}} or {{weekday
	// .Now}}, so the output changes with the part of the day and the day
	// of the week, not with every call's time (a greeting's usual form).
	rootDaypart
)

// uncacheable are the roots that change on every call.
const uncacheable = rootCall | rootNow | rootLookup | rootAll

var rootNames = map[string]roots{"Call": rootCall, "Caller": rootCaller, "Called": rootCalled,
	"Hotline": rootHotline, "Contact": rootContact, "Now": rootNow, "Lookup": rootLookup}

// readRoots walks a parsed template for the fields of Data it reads.
func readRoots(t *template.Template) roots {
	if t == nil || t.Tree == nil {
		return 0
	}
	var r roots
	walkNode(t.Tree.Root, true, &r)
	return r
}

// walkNode adds what n reads; atRoot tells whether dot is Data there (a
// with or range moves dot to a part already counted by its pipeline).
func walkNode(n parse.Node, atRoot bool, r *roots) {
	switch n := n.(type) {
	case nil:
	case *parse.ListNode:
		if n == nil {
			return
		}
		for _, c := range n.Nodes {
			walkNode(c, atRoot, r)
		}
	case *parse.ActionNode:
		walkNode(n.Pipe, atRoot, r)
	case *parse.IfNode:
		walkNode(n.Pipe, atRoot, r)
		walkNode(n.List, atRoot, r)
		walkNode(n.ElseList, atRoot, r)
	case *parse.WithNode:
		walkNode(n.Pipe, atRoot, r)
		walkNode(n.List, false, r)
		walkNode(n.ElseList, atRoot, r)
	case *parse.RangeNode:
		walkNode(n.Pipe, atRoot, r)
		walkNode(n.List, false, r)
		walkNode(n.ElseList, atRoot, r)
	case *parse.PipeNode:
		if n == nil {
			return
		}
		for _, c := range n.Cmds {
			walkNode(c, atRoot, r)
		}
	case *parse.CommandNode:
		if atRoot && daypartOfNow(n) {
			*r |= rootDaypart
			return
		}
		for _, a := range n.Args {
			walkNode(a, atRoot, r)
		}
	case *parse.ChainNode:
		walkNode(n.Node, atRoot, r)
	case *parse.FieldNode:
		if atRoot {
			*r |= field(n.Ident)
		}
	case *parse.VariableNode:
		// $ is Data wherever it is used; other variables hold a value
		// their declaration's pipeline already counted.
		if n.Ident[0] == "$" {
			*r |= field(n.Ident[1:])
		}
	case *parse.DotNode:
		if atRoot {
			*r |= rootAll
		}
	case *parse.TextNode, *parse.CommentNode, *parse.IdentifierNode, *parse.StringNode, *parse.NumberNode,
		*parse.BoolNode, *parse.NilNode, *parse.BreakNode, *parse.ContinueNode:
	default: // {{template}}, {{block}} and whatever comes later
		*r |= rootAll
	}
}

// daypartOfNow tells whether a command is daypart or weekday of .Now.
func daypartOfNow(n *parse.CommandNode) bool {
	if len(n.Args) != 2 {
		return false
	}
	fn, ok := n.Args[0].(*parse.IdentifierNode)
	if !ok || (fn.Ident != "daypart" && fn.Ident != "weekday") {
		return false
	}
	f, ok := n.Args[1].(*parse.FieldNode)
	return ok && len(f.Ident) == 1 && f.Ident[0] == "Now"
}

func field(idents []string) roots {
	if len(idents) == 0 {
		return rootAll
	}
	if f, ok := rootNames[idents[0]]; ok {
		return f
	}
	return rootAll
}

// maxCached bounds a template's cache: past it the cache starts again,
// so that callers seen once do not pile up.
const maxCached = 4096

// renderCache is one template's outputs by the hash of what it reads.
type renderCache struct {
	reads roots
	loc   *time.Location // the hotline's zone, that daypart and weekday read in
	seed  maphash.Seed
	mu    sync.RWMutex
	out   map[uint64]string
}

func newRenderCache(t *template.Template, loc *time.Location) *renderCache {
	r := readRoots(t)
	if t == nil || r&uncacheable != 0 {
		return nil
	}
	if loc == nil {
		loc = time.UTC
	}
	return &renderCache{reads: r, loc: loc, seed: maphash.MakeSeed(), out: map[uint64]string{}}
}

func (c *renderCache) get(key uint64) (string, bool) {
	c.mu.RLock()
	s, ok := c.out[key]
	c.mu.RUnlock()
	return s, ok
}

func (c *renderCache) put(key uint64, s string) {
	c.mu.Lock()
	if len(c.out) >= maxCached {
		c.out = map[uint64]string{}
	}
	c.out[key] = s
	c.mu.Unlock()
}

// key hashes the parts of d that the template reads.
func (c *renderCache) key(d *Data) uint64 {
	var h maphash.Hash
	h.SetSeed(c.seed)
	if c.reads&rootCaller != 0 {
		hashParty(&h, &d.Caller)
	}
	if c.reads&rootCalled != 0 {
		hashParty(&h, &d.Called)
	}
	if c.reads&rootHotline != 0 {
		str(&h, d.Hotline.Name)
		str(&h, d.Hotline.Company)
		flag(&h, d.Hotline.Open)
	}
	if c.reads&rootContact != 0 {
		hashContact(&h, d.Contact, c.seed)
	}
	if c.reads&rootDaypart != 0 {
		now := d.Now.In(c.loc)
		str(&h, daypart(now))
		num(&h, int64(now.Weekday()))
	}
	return h.Sum64()
}

// str writes s with its length, so that ("ab", "c") and ("a", "bc") differ.
func str(h *maphash.Hash, s string) {
	var n [20]byte
	h.Write(strconv.AppendInt(n[:0], int64(len(s)), 10))
	h.WriteByte(':')
	h.WriteString(s)
}

func num(h *maphash.Hash, n int64) {
	var b [24]byte
	h.Write(strconv.AppendInt(b[:0], n, 10))
	h.WriteByte(';')
}

func flag(h *maphash.Hash, b bool) {
	if b {
		h.WriteByte(1)
	} else {
		h.WriteByte(0)
	}
}

func hashParty(h *maphash.Hash, p *Party) {
	for _, s := range [...]string{p.E164, p.National, p.International, p.Raw, p.Name} {
		str(h, s)
	}
	flag(h, p.Anonymous)
	flag(h, p.Internal)
}

func hashContact(h *maphash.Hash, c *Contact, seed maphash.Seed) {
	if c == nil {
		h.WriteByte(0)
		return
	}
	h.WriteByte(1)
	num(h, c.ID)
	num(h, c.Calls)
	for _, s := range [...]string{c.Name, c.Company, c.Email} {
		str(h, s)
	}
	num(h, int64(len(c.Tags)))
	for _, t := range c.Tags {
		str(h, t)
	}
	// Map order is random: the fields are summed, each hashed on its own.
	var sum uint64
	for k, v := range c.Fields {
		var f maphash.Hash
		f.SetSeed(seed)
		str(&f, k)
		str(&f, v)
		sum += f.Sum64()
	}
	num(h, int64(len(c.Fields)))
	num(h, int64(sum))
}

// run executes t for d, from c when c has its output for what d holds.
func run(t *template.Template, c *renderCache, d *Data) (string, error) {
	if c == nil {
		return execute(t, *d)
	}
	k := c.key(d)
	if s, ok := c.get(k); ok {
		return s, nil
	}
	s, err := execute(t, *d)
	if err == nil {
		c.put(k, s)
	}
	return s, err
}
