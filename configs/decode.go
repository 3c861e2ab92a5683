package configs

import (
	"errors"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

// maxNodes bounds the work of decoding one file: aliases can expand a
// small file exponentially ("billion laughs"). maxDepth stops an alias
// that refers to its own anchor; the config itself nests 6 levels deep.
const (
	maxNodes = 1 << 16
	maxDepth = 32
)

// decode fills c from the YAML in data. goccy/go-yaml parses the text; the
// values are then read from its syntax tree here rather than with
// yaml.Unmarshal, for three reasons: every unknown key and wrong type is
// reported (Unmarshal stops at the first), each error carries its key path,
// and unquoted numbers such as +4915112345678 or 0301234 keep their exact
// text in string fields instead of becoming 4915112345678 and 301234.
// It returns the line of every key path it saw and the errors found.
func decode(data []byte, c *Config) (map[string]int, Errors) {
	f, err := parser.ParseBytes(data, 0)
	if err != nil {
		return nil, Errors{syntaxError(err)}
	}
	d := &decoder{lines: map[string]int{}, anchors: map[string]ast.Node{}}
	var body ast.Node
	for _, doc := range f.Docs {
		if doc == nil || doc.Body == nil || isComment(doc.Body) {
			continue
		}
		if body != nil {
			d.fail("", doc.Body, "the file must hold one YAML document, found another")
			break
		}
		body = doc.Body
	}
	if body != nil {
		d.value(body, reflect.ValueOf(c).Elem(), "")
	}
	return d.lines, d.errs
}

func syntaxError(err error) FieldError {
	var ye yaml.Error
	if errors.As(err, &ye) {
		fe := FieldError{Msg: "syntax error: " + ye.GetMessage()}
		if tk := ye.GetToken(); tk != nil && tk.Position != nil {
			fe.Line = tk.Position.Line
		}
		return fe
	}
	return FieldError{Msg: "syntax error: " + err.Error()}
}

func isComment(n ast.Node) bool {
	switch n.(type) {
	case *ast.CommentGroupNode, *ast.CommentNode:
		return true
	}
	return false
}

type decoder struct {
	errs    Errors
	lines   map[string]int
	anchors map[string]ast.Node
	nodes   int
	depth   int
}

// nodeDecoder is implemented by config types that accept more than one
// YAML shape (a code or a mapping, a string or a list).
type nodeDecoder interface {
	decodeNode(d *decoder, n ast.Node, path string)
}

func (d *decoder) fail(path string, n ast.Node, msg string) {
	d.errs = append(d.errs, FieldError{Path: path, Line: line(n), Msg: msg})
}

func line(n ast.Node) int {
	if n == nil {
		return 0
	}
	if tk := n.GetToken(); tk != nil && tk.Position != nil {
		return tk.Position.Line
	}
	return 0
}

// resolve strips anchors, aliases and tags down to the node holding the
// value. It returns nil for a null or an unresolvable alias (reported).
func (d *decoder) resolve(n ast.Node, path string) ast.Node {
	for {
		switch x := n.(type) {
		case *ast.AnchorNode:
			if x.Name != nil {
				d.anchors[x.Name.GetToken().Value] = x.Value
			}
			n = x.Value
		case *ast.AliasNode:
			name := ""
			if x.Value != nil {
				name = x.Value.GetToken().Value
			}
			target, ok := d.anchors[name]
			if !ok {
				d.fail(path, n, "alias *"+name+" refers to no anchor defined before it")
				return nil
			}
			n = target
		case *ast.TagNode:
			n = x.Value
		case *ast.NullNode, nil:
			return nil
		default:
			return n
		}
	}
}

// value decodes n into v. A null leaves v at its default.
func (d *decoder) value(n ast.Node, v reflect.Value, path string) {
	d.nodes++
	if d.nodes == maxNodes {
		d.fail(path, n, "the file expands to too many values (aliases nested too deep?)")
	}
	if d.nodes >= maxNodes {
		return
	}
	d.depth++
	defer func() { d.depth-- }()
	if d.depth > maxDepth {
		d.fail(path, n, "nested too deep (an alias inside its own anchor?)")
		return
	}
	n = d.resolve(n, path)
	if n == nil {
		return
	}
	if v.CanAddr() {
		if nd, ok := v.Addr().Interface().(nodeDecoder); ok {
			nd.decodeNode(d, n, path)
			return
		}
	}
	d.plain(n, v, path)
}

// plain decodes n into v by v's kind, without looking for a nodeDecoder.
func (d *decoder) plain(n ast.Node, v reflect.Value, path string) {
	switch v.Kind() {
	case reflect.Struct:
		d.structure(n, v, path)
	case reflect.Slice:
		seq, ok := n.(*ast.SequenceNode)
		if !ok {
			d.fail(path, n, "expected a list, got "+kind(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(seq.Values), len(seq.Values))
		for i, e := range seq.Values {
			p := path + "[" + strconv.Itoa(i) + "]"
			d.lines[p] = line(e)
			d.value(e, s.Index(i), p)
		}
		v.Set(s)
	case reflect.Map:
		entries, ok := d.mapping(n)
		if !ok {
			d.fail(path, n, "expected a mapping, got "+kind(n))
			return
		}
		m := reflect.MakeMapWithSize(v.Type(), len(entries))
		for _, mv := range entries {
			k := keyText(mv.Key)
			p := path + "." + k
			d.lines[p] = line(mv.Key)
			e := reflect.New(v.Type().Elem()).Elem()
			d.value(mv.Value, e, p)
			m.SetMapIndex(reflect.ValueOf(k), e)
		}
		v.Set(m)
	case reflect.Pointer:
		e := reflect.New(v.Type().Elem())
		d.value(n, e.Elem(), path)
		v.Set(e)
	case reflect.String:
		s, ok := stringText(n)
		if !ok {
			d.fail(path, n, "expected a string, got "+kind(n))
			return
		}
		v.SetString(s)
	case reflect.Int, reflect.Int64:
		i, ok := n.(*ast.IntegerNode)
		if !ok {
			d.fail(path, n, "expected a whole number, got "+kind(n))
			return
		}
		switch x := i.Value.(type) {
		case int64:
			v.SetInt(x)
		case uint64:
			if x > math.MaxInt64 {
				d.fail(path, n, "number out of range")
				return
			}
			v.SetInt(int64(x))
		}
	case reflect.Bool:
		b, ok := n.(*ast.BoolNode)
		if !ok {
			d.fail(path, n, "expected true or false, got "+kind(n))
			return
		}
		v.SetBool(b.Value)
	default:
		// Only reachable if a field of an unsupported kind is added to Config.
		d.fail(path, n, "cannot be set from YAML")
	}
}

// structure decodes a mapping into a struct by the fields' yaml tags.
func (d *decoder) structure(n ast.Node, v reflect.Value, path string) {
	entries, ok := d.mapping(n)
	if !ok {
		d.fail(path, n, "expected a mapping, got "+kind(n))
		return
	}
	fields := fieldsOf(v.Type())
	for _, mv := range entries {
		k := keyText(mv.Key)
		p := k
		if path != "" {
			p = path + "." + k
		}
		idx, ok := fields[k]
		if !ok {
			d.fail(p, mv.Key, "unknown key (known here: "+strings.Join(sortedKeys(fields), ", ")+")")
			continue
		}
		d.lines[p] = line(mv.Key)
		d.value(mv.Value, v.Field(idx), p)
	}
}

// mapping lists the entries of a mapping node, merge keys (<<) first so
// that keys written next to them override what they bring in.
func (d *decoder) mapping(n ast.Node) ([]*ast.MappingValueNode, bool) {
	var values []*ast.MappingValueNode
	switch m := n.(type) {
	case *ast.MappingNode:
		values = m.Values
	case *ast.MappingValueNode:
		values = []*ast.MappingValueNode{m}
	default:
		return nil, false
	}
	var merged, own []*ast.MappingValueNode
	for _, mv := range values {
		if mv.Key == nil || !mv.Key.IsMergeKey() {
			own = append(own, mv)
			continue
		}
		src := d.resolve(mv.Value, "")
		var list []ast.Node
		if seq, ok := src.(*ast.SequenceNode); ok {
			list = seq.Values
		} else if src != nil {
			list = []ast.Node{src}
		}
		for _, s := range list {
			if sub, ok := d.mapping(d.resolve(s, "")); ok {
				merged = append(merged, sub...)
			}
		}
	}
	return append(merged, own...), true
}

// fieldsOf maps the yaml key of each decodable field to its index.
func fieldsOf(t reflect.Type) map[string]int {
	m := map[string]int{}
	for i := range t.NumField() {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || tag == "-" || tag == "" {
			continue
		}
		m[tag] = i
	}
	return m
}

func sortedKeys(m map[string]int) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func keyText(k ast.MapKeyNode) string {
	if k == nil {
		return ""
	}
	if mk, ok := k.(*ast.MappingKeyNode); ok && mk.Value != nil {
		if s, ok := scalarText(mk.Value); ok {
			return s
		}
	}
	if s, ok := scalarText(k); ok {
		return s
	}
	return k.String()
}

// scalarText is the text of a scalar as written: numbers, booleans and
// the like keep their source form, since a config string such as a phone
// number must not be reinterpreted.
func scalarText(n ast.Node) (string, bool) {
	switch x := n.(type) {
	case *ast.StringNode:
		return x.Value, true
	case *ast.LiteralNode:
		if x.Value == nil {
			return "", true
		}
		return x.Value.Value, true
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.InfinityNode, *ast.NanNode:
		return n.GetToken().Value, true
	}
	return "", false
}

// stringText is scalarText, plus a repair: inside a flow mapping,
// goccy/go-yaml reads a plain scalar with a colon in it, such as
// 192.0.2.7:5060 or 08:00-18:00 in `{match: [192.0.2.7:5060]}`, as a
// one-entry mapping, although YAML 1.2 (ns-plain-char) makes it one scalar.
// Where a string is expected and the colon touches both sides, the text
// is glued back together.
func stringText(n ast.Node) (string, bool) {
	if s, ok := scalarText(n); ok {
		return s, true
	}
	mv, ok := n.(*ast.MappingValueNode)
	if m, isMap := n.(*ast.MappingNode); isMap && len(m.Values) == 1 && m.GetToken() != nil && m.GetToken().Value == ":" {
		mv, ok = m.Values[0], true
	}
	if !ok || mv.Key == nil || mv.Value == nil || mv.Start == nil {
		return "", false
	}
	key, ok1 := scalarText(mv.Key)
	val, ok2 := stringText(mv.Value)
	kt, ct, vt := mv.Key.GetToken(), mv.Start, mv.Value.GetToken()
	if !ok1 || !ok2 || kt == nil || vt == nil || kt.Position == nil || ct.Position == nil || vt.Position == nil {
		return "", false
	}
	touching := kt.Position.Line == ct.Position.Line && ct.Position.Line == vt.Position.Line &&
		kt.Position.Column+utf8.RuneCountInString(kt.Value) == ct.Position.Column &&
		ct.Position.Column+1 == vt.Position.Column
	if !touching {
		return "", false
	}
	return key + ":" + val, true
}

// kind names a node's type as an administrator would.
func kind(n ast.Node) string {
	switch n.(type) {
	case *ast.MappingNode, *ast.MappingValueNode:
		return "a mapping"
	case *ast.SequenceNode:
		return "a list"
	case *ast.StringNode, *ast.LiteralNode:
		return "a string"
	case *ast.IntegerNode, *ast.FloatNode, *ast.InfinityNode, *ast.NanNode:
		return "a number"
	case *ast.BoolNode:
		return "a boolean"
	}
	return "a " + strings.ToLower(n.Type().String())
}

// decodeNode reads a Go duration string.
func (dur *Duration) decodeNode(d *decoder, n ast.Node, path string) {
	if i, ok := n.(*ast.IntegerNode); ok && i.GetToken().Value == "0" {
		*dur = 0
		return
	}
	s, ok := n.(*ast.StringNode)
	if !ok {
		d.fail(path, n, "expected a duration such as 2s or 10m, got "+kind(n))
		return
	}
	v, err := parseDuration(s.Value)
	if err != nil {
		d.fail(path, n, err.Error())
		return
	}
	*dur = v
}

// decodeNode reads `reject: 486` or `reject: {code: 486, announcement: …}`.
func (r *Reject) decodeNode(d *decoder, n ast.Node, path string) {
	if _, ok := n.(*ast.IntegerNode); ok {
		d.plain(n, reflect.ValueOf(&r.Code).Elem(), path)
		return
	}
	if _, ok := d.mapping(n); !ok {
		d.fail(path, n, "expected a SIP status code or {code, announcement}, got "+kind(n))
		return
	}
	d.structure(n, reflect.ValueOf(r).Elem(), path)
}

// Strings is a list of strings that may be written as a single string.
type Strings []string

// decodeNode reads a string or a list of strings.
func (s *Strings) decodeNode(d *decoder, n ast.Node, path string) {
	if t, ok := stringText(n); ok {
		*s = Strings{t}
		return
	}
	var list []string
	d.plain(n, reflect.ValueOf(&list).Elem(), path)
	*s = list
}
