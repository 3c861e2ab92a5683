package templates

import (
	"testing"
	"text/template"
	"time"

	"github.com/switchboard-sip/switchboard/configs"
)

// TestReadRoots: what a template reads decides whether its output can be
// cached; anything the walk cannot follow counts as everything.
func TestReadRoots(t *testing.T) {
	for _, tt := range []struct {
		text  string
		reads roots
	}{
		{"ACME", 0},
		{"{{.Caller.National}}", rootCaller},
		{"{{with .Contact}}{{.Name}} {{.Company}}{{else}}{{.Called.E164}}{{end}}", rootContact | rootCalled},
		{"{{with .Contact}}{{$.Hotline.Company}}{{end}}", rootContact | rootHotline},
		{"{{range .Call.Tags}}{{.}}{{end}}", rootCall},
		{"Good {{daypart .Now}}", rootDaypart},
		{"{{weekday .Now}} {{.Caller.E164}}", rootDaypart | rootCaller},
		{"{{date \"15:04\" .Now}}", rootNow},
		{"{{.Now | daypart}}", rootNow},
		{"{{with .Contact}}{{daypart $.Now}}{{end}}", rootContact | rootNow},
		{"{{.Lookup.crm.tier}}", rootLookup},
		{"{{$c := .Contact}}{{with $c}}{{.Name}}{{end}}", rootContact},
		{"{{with .Contact}}{{.Name}}{{end}}{{if .Hotline.Open}}open{{end}}", rootContact | rootHotline},
		{"{{printf \"%v\" .}}", rootAll},
		{"{{printf \"%v\" $}}", rootAll},
		{"{{define \"x\"}}{{.Caller.Raw}}{{end}}{{template \"x\" .}}", rootAll},
		{"{{.Caller.Name | default (field .Contact \"nick\")}}", rootCaller | rootContact},
	} {
		tpl := template.Must(template.New("t").Funcs(funcs(nil, "")).Parse(tt.text))
		if got := readRoots(tpl); got != tt.reads {
			t.Errorf("%s: reads %b, want %b", tt.text, got, tt.reads)
		}
	}
}

// TestRenderCacheFollowsTheData: a cached output is the one executing the
// template would give: a changed contact, another caller and a moved
// clock all show at once.
func TestRenderCacheFollowsTheData(t *testing.T) {
	set, err := CompileHotlines([]configs.Hotline{{
		Name: "acme", Company: "ACME GmbH",
		Greeting: "Good {{daypart .Now}}, happy {{weekday .Now}}",
		Display:  "{{.Hotline.Company}}: {{with .Contact}}{{.Name}} {{field . \"tier\"}}{{else}}{{.Caller.National}}{{end}}",
	}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	h := set.All()[0]
	if h.displayCache == nil || h.greetingCache == nil {
		t.Fatalf("display cached %v, greeting cached %v: want both", h.displayCache != nil, h.greetingCache != nil)
	}
	morning := time.Date(2030, 3, 4, 9, 0, 0, 0, time.UTC)
	jane := &Contact{ID: 7, Name: "Jane", Fields: map[string]string{"tier": "gold"}}
	render := func(d Data) Rendered {
		t.Helper()
		r, err := h.Render(d)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	steps := []struct {
		d        Data
		greeting string
		display  string
		cached   int
	}{
		{Data{Now: morning, Contact: jane}, "Good morning, happy Monday", "ACME GmbH: Jane gold", 1},
		{Data{Now: morning.Add(time.Minute), Contact: jane}, "Good morning, happy Monday", "ACME GmbH: Jane gold", 1},
		{Data{Now: morning.Add(6 * time.Hour), Contact: &Contact{ID: 7, Name: "Janet", Fields: map[string]string{"tier": "gold"}}},
			"Good afternoon, happy Monday", "ACME GmbH: Janet gold", 2},
		{Data{Now: morning, Contact: &Contact{ID: 7, Name: "Jane", Fields: map[string]string{"tier": "silver"}}},
			"Good morning, happy Monday", "ACME GmbH: Jane silver", 3},
		{Data{Now: morning, Caller: Party{National: "030 111"}}, "Good morning, happy Monday", "ACME GmbH: 030 111", 4},
		{Data{Now: morning, Caller: Party{National: "030 222"}}, "Good morning, happy Monday", "ACME GmbH: 030 222", 5},
		{Data{Now: morning, Contact: jane}, "Good morning, happy Monday", "ACME GmbH: Jane gold", 5},
		{Data{Now: morning.Add(24 * time.Hour), Contact: jane}, "Good morning, happy Tuesday", "ACME GmbH: Jane gold", 5},
	}
	for i, s := range steps {
		r := render(s.d)
		if r.Greeting != s.greeting || r.Display != s.display {
			t.Errorf("step %d: %q / %q, want %q / %q", i, r.Greeting, r.Display, s.greeting, s.display)
		}
		if n := len(h.displayCache.out); n != s.cached {
			t.Errorf("step %d: %d outputs cached, want %d", i, n, s.cached)
		}
	}
}

// TestRenderCacheDaypartInTheHotlinesZone: the part of the day that keys
// a cached greeting is the hotline's, as the template's is.
func TestRenderCacheDaypartInTheHotlinesZone(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skip(err)
	}
	set, err := CompileHotlines([]configs.Hotline{{Name: "acme", Greeting: "Good {{daypart .Now}}", Location: berlin}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	h := set.All()[0]
	for _, c := range []struct {
		utc  int
		want string
	}{{10, "Good morning"}, {11, "Good afternoon"}, {10, "Good morning"}} {
		r, err := h.Render(Data{Now: time.Date(2030, 3, 4, c.utc, 30, 0, 0, time.UTC)})
		if err != nil || r.Greeting != c.want {
			t.Errorf("%d:30 UTC: %q (%v), want %q", c.utc, r.Greeting, err, c.want)
		}
	}
}
