package templates

import (
	"testing"

	"github.com/switchboard-sip/switchboard/configs"
)

// A lookup's answer is lookup.<name> in rules and .Lookup.<name> in
// templates; a failed lookup (an empty object) makes a rule that reads it
// fail open and a template print nothing for it.
func TestLookupInRulesAndTemplates(t *testing.T) {
	rs, err := CompileRules([]configs.Rule{
		{Name: "gold", When: `lookup.crm.tier == "gold"`},
		{Name: "guarded", When: `has(lookup.crm.tier) && lookup.crm.visits > 2.0`},
	})
	if err != nil {
		t.Fatal(err)
	}
	set, err := CompileHotlines([]configs.Hotline{{Name: "acme", Company: "ACME",
		Greeting: `Hello{{with .Lookup.crm}}{{with .tier}}, {{.}} customer{{end}}{{end}}`}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	h := set.All()[0]
	for _, tt := range []struct {
		name     string
		lookup   map[string]any
		fired    int
		errs     int
		greeting string
	}{
		{"answered", map[string]any{"crm": map[string]any{"tier": "gold", "visits": 3.0}}, 2, 0, "Hello, gold customer"},
		{"failed", map[string]any{"crm": map[string]any{}}, 0, 1, "Hello"},
		{"none configured", nil, 0, 2, "Hello"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := sampleData(false)
			d.Lookup = tt.lookup
			fired, errs := rs.Eval(d)
			if len(fired) != tt.fired || len(errs) != tt.errs {
				t.Errorf("fired %v, errors %v; want %d fired, %d errors", fired, errs, tt.fired, tt.errs)
			}
			r, err := h.Render(d)
			if err != nil || r.Greeting != tt.greeting {
				t.Errorf("greeting %q, %v; want %q", r.Greeting, err, tt.greeting)
			}
		})
	}
}
