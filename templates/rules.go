package templates

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common"
	"github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/ext"
	"github.com/google/cel-go/interpreter"

	"github.com/switchboard-sip/switchboard/configs"
)

// costLimit bounds one rule's evaluation (CEL cost units, roughly one per
// operation). Rules look at a handful of fields; a comprehension over a
// huge contact field must not hold up an INVITE.
const costLimit = 100_000

// Fields of each rule variable. The variables are maps so that rules read
// like the config (contact.tags), and these lists let the compiler reject
// a misspelt field at load instead of failing at every call.
var ruleFields = map[string][]string{
	"caller":  {"e164", "raw", "name", "anonymous", "internal", "national", "international"},
	"called":  {"e164", "raw", "name", "anonymous", "internal", "national", "international"},
	"call":    {"direction", "trunk", "hotline", "tags", "call_id", "id"},
	"hotline": {"name", "company", "open"},
	"contact": {"id", "known", "name", "company", "email", "tags", "fields", "calls"},
}

// Rule is one compiled call-control rule.
type Rule struct {
	Name  string
	Index int // position in the config, for logs and errors
	Then  configs.Action
	When  string

	prg cel.Program
}

// Rules is the compiled rules section, in config order.
type Rules struct {
	list []*Rule
}

// Fired is a rule whose condition held, with its actions.
type Fired struct {
	Rule  string
	Index int
	Then  configs.Action
}

// Ends reports whether the rule ends evaluation: a reject or a route.
func (f Fired) Ends() bool { return f.Then.Reject != nil || f.Then.Route != "" }

// RuleError is a rule whose evaluation failed at run time; the rule was
// skipped.
type RuleError struct {
	Rule  string
	Index int
	Err   error
}

func (e *RuleError) Error() string {
	return fmt.Sprintf("rules[%d] (%s): %v", e.Index, e.Rule, e.Err)
}

func (e *RuleError) Unwrap() error { return e.Err }

// newEnv declares the rule variables. now is a timestamp in the time
// zone of the hotline (or of the config), and accessors without a zone
// read it there: now.getHours() is the local hour a front desk thinks in.
// An explicit zone (now.getHours("Asia/Tokyo")) works too, but loads the
// zone at every evaluation.
func newEnv() (*cel.Env, error) {
	opts := []cel.EnvOption{
		cel.Variable("now", cel.TimestampType),
		// lookup.<name> is a lookup's JSON object; its fields are the data
		// source's, so they are not checked at load.
		cel.Variable("lookup", cel.MapType(cel.StringType, cel.DynType)),
		cel.DefaultUTCTimeZone(false),
		ext.Strings(),
	}
	for name := range ruleFields {
		opts = append(opts, cel.Variable(name, cel.MapType(cel.StringType, cel.DynType)))
	}
	return cel.NewEnv(opts...)
}

// CompileRules compiles and type-checks every rule's condition. Errors name
// the rule's key and the position in the expression
// (`rules[1].when: line 1, column 4: undeclared reference to 'calle'`), all
// of them at once.
func CompileRules(rs []configs.Rule) (*Rules, error) {
	env, err := newEnv()
	if err != nil {
		return nil, fmt.Errorf("templates: rule environment: %w", err)
	}
	out := &Rules{}
	var errs []error
	for i, r := range rs {
		key := fmt.Sprintf("rules[%d].when", i)
		prg, err := compileRule(env, key, r.When)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out.list = append(out.list, &Rule{Name: r.Name, Index: i, Then: r.Then, When: r.When, prg: prg})
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

func compileRule(env *cel.Env, key, src string) (cel.Program, error) {
	if strings.TrimSpace(src) == "" {
		return nil, fmt.Errorf("%s: empty condition (use true for a rule that always applies)", key)
	}
	checked, iss := env.CompileSource(common.NewStringSource(src, key))
	if iss != nil && iss.Err() != nil {
		var msgs []string
		for _, e := range iss.Errors() {
			msg := e.Message
			if strings.Contains(msg, "map(string, dyn), null") || strings.Contains(msg, "null, map(string, dyn)") {
				// The variables are never null, so that rules need no
				// null checks; say how to test for a missing contact.
				msg += " (the variables are never null: test contact.known, or hotline.name != \"\")"
			}
			msgs = append(msgs, fmt.Sprintf("%s: line %d, column %d: %s", key, e.Location.Line(), e.Location.Column()+1, msg))
		}
		return nil, errors.New(strings.Join(msgs, "\n"))
	}
	if t := checked.OutputType(); !t.IsExactType(types.BoolType) && !t.IsExactType(types.DynType) {
		return nil, fmt.Errorf("%s: the condition is a %s, want a bool", key, t)
	}
	if err := checkFields(key, checked); err != nil {
		return nil, err
	}
	prg, err := env.Program(checked, cel.CostLimit(costLimit))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	return prg, nil
}

// checkFields rejects selections of fields the variables do not have
// (contact.tag instead of contact.tags). CEL cannot see them, since the
// variables are maps.
func checkFields(key string, checked *cel.Ast) error {
	native := checked.NativeRep()
	sel := ast.MatchDescendants(ast.NavigateAST(native), ast.KindMatcher(ast.SelectKind))
	var msgs []string
	for _, e := range sel {
		s := e.AsSelect()
		op := s.Operand()
		if op.Kind() != ast.IdentKind {
			continue
		}
		known, ok := ruleFields[op.AsIdent()]
		if !ok || slices.Contains(known, s.FieldName()) {
			continue
		}
		loc := native.SourceInfo().GetStartLocation(e.ID())
		msgs = append(msgs, fmt.Sprintf("%s: line %d, column %d: %s has no field %s (it has %s)",
			key, loc.Line(), loc.Column()+1, op.AsIdent(), s.FieldName(), strings.Join(known, ", ")))
	}
	if len(msgs) > 0 {
		return errors.New(strings.Join(msgs, "\n"))
	}
	return nil
}

// Len is the number of rules.
func (rs *Rules) Len() int {
	if rs == nil {
		return 0
	}
	return len(rs.list)
}

// All returns the rules in config order.
func (rs *Rules) All() []*Rule {
	if rs == nil {
		return nil
	}
	return rs.list
}

// Eval runs the rules in order over d and returns those whose condition
// held, stopping after the first reject or route. A rule that fails to
// evaluate (a missing map key, a wrong type, the cost limit) is skipped and
// reported in errs: rules fail open, a broken rule never stops a call.
func (rs *Rules) Eval(d Data) (fired []Fired, errs []error) {
	if rs.Len() == 0 {
		return nil, nil
	}
	vars := &activation{d: &d}
	for _, r := range rs.list {
		v, _, err := r.prg.Eval(vars)
		if err != nil {
			errs = append(errs, &RuleError{Rule: r.Name, Index: r.Index, Err: err})
			continue
		}
		b, ok := v.Value().(bool)
		if !ok {
			errs = append(errs, &RuleError{Rule: r.Name, Index: r.Index, Err: fmt.Errorf("condition gave %s, not a bool", v.Type())})
			continue
		}
		if !b {
			continue
		}
		f := Fired{Rule: r.Name, Index: r.Index, Then: r.Then}
		fired = append(fired, f)
		if f.Ends() {
			break
		}
	}
	return fired, errs
}

// Vars is the activation rules are evaluated with: the maps described in
// SPEC §5, and now as given (its zone is the one rules read hours in). Every field is present even when its value is unknown, so that
// `"vip" in contact.tags` is simply false for a caller without a contact.
func Vars(d Data) map[string]any {
	out := make(map[string]any, len(varNames))
	for i, name := range varNames {
		out[name] = buildVar(i, &d)
	}
	return out
}

// varNames are the rule variables, in buildVar's order.
var varNames = [...]string{"caller", "called", "call", "hotline", "contact", "now", "lookup"}

// buildVar makes the value of rule variable varNames[i] for d.
func buildVar(i int, d *Data) any {
	switch varNames[i] {
	case "caller":
		return partyVars(d.Caller)
	case "called":
		return partyVars(d.Called)
	case "call":
		tags := d.Call.Tags
		if tags == nil {
			tags = []string{}
		}
		return map[string]any{
			"direction": d.Call.Direction, "trunk": d.Call.Trunk, "hotline": d.Call.Hotline,
			"tags": tags, "call_id": d.Call.CallID, "id": d.Call.ID,
		}
	case "hotline":
		return map[string]any{"name": d.Hotline.Name, "company": d.Hotline.Company, "open": d.Hotline.Open}
	case "contact":
		return contactVars(d.Contact)
	case "now":
		return d.Now
	default:
		return lookupVars(d.Lookup)
	}
}

func contactVars(c *Contact) map[string]any {
	if c == nil {
		return map[string]any{
			"id": int64(0), "known": false, "name": "", "company": "", "email": "",
			"tags": []string{}, "fields": map[string]string{}, "calls": int64(0),
		}
	}
	tags, fields := c.Tags, c.Fields
	if tags == nil {
		tags = []string{}
	}
	if fields == nil {
		fields = map[string]string{}
	}
	return map[string]any{
		"id": c.ID, "known": true, "name": c.Name, "company": c.Company, "email": c.Email,
		"tags": tags, "fields": fields, "calls": c.Calls,
	}
}

// activation gives the rules of one call the variables they read, each
// made on first use: a rule on contact.tags builds the contact's map and
// none of the others (SPEC §9: the pipeline's cost per call).
type activation struct {
	d    *Data
	made uint8
	vals [len(varNames)]any
}

// ResolveName implements interpreter.Activation.
func (a *activation) ResolveName(name string) (any, bool) {
	for i, n := range varNames {
		if n != name {
			continue
		}
		if a.made&(1<<i) == 0 {
			a.vals[i] = buildVar(i, a.d)
			a.made |= 1 << i
		}
		return a.vals[i], true
	}
	return nil, false
}

// Parent implements interpreter.Activation: there is none.
func (a *activation) Parent() interpreter.Activation { return nil }

// lookupVars is never nil, so that a rule on lookup.crm fails to
// evaluate (and is skipped) rather than the whole activation when no lookup
// is configured.
func lookupVars(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}

func partyVars(p Party) map[string]any {
	return map[string]any{
		"e164": p.E164, "raw": p.Raw, "name": p.Name, "anonymous": p.Anonymous,
		"internal": p.Internal, "national": p.National, "international": p.International,
	}
}
