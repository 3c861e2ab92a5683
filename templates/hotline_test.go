package templates

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-sip/switchboard/configs"
)

func berlin(t testing.TB) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func TestCompileHotlinesErrors(t *testing.T) {
	tests := []struct {
		name string
		h    configs.Hotline
		want []string // substrings of the error, in order
	}{
		{"unknown function", configs.Hotline{Name: "a", Greeting: "Hello {{foo .Now}}"},
			[]string{`hotlines[0].greeting: template: line 1: function "foo" not defined`}},
		{"syntax on line 2", configs.Hotline{Name: "a", Display: "x\n{{if}}"},
			[]string{"hotlines[0].display: template: line 2: missing value for if"}},
		{"unclosed action", configs.Hotline{Name: "a", Greeting: "{{.Caller.Name"},
			[]string{"hotlines[0].greeting: template: line 1:"}},
		{"unknown field", configs.Hotline{Name: "a", Display: "{{.Caller.Nmae}}"},
			[]string{"hotlines[0].display: template: line 1, column 9: <.Caller.Nmae>: can't evaluate field Nmae"}},
		{"contact without with", configs.Hotline{Name: "a", Display: "{{.Contact.Name}}"},
			[]string{"hotlines[0].display: template: line 1", "nil pointer", "no contact"}},
		{"wrong argument", configs.Hotline{Name: "a", Greeting: `{{daypart "x"}}`},
			[]string{"hotlines[0].greeting: template: line 1"}},
		{"company template", configs.Hotline{Name: "a", Company: "{{end}}"},
			[]string{"hotlines[0].company: template: line 1"}},
		{"runaway output", configs.Hotline{Name: "a", Greeting: `{{range $i := .Call.Tags}}{{printf "%5000d" 1}}{{end}}`},
			[]string{"hotlines[0].greeting: template: output longer than"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok := configs.Hotline{Name: "ok", Greeting: "fine"}
			_, err := CompileHotlines([]configs.Hotline{tt.h, ok}, Options{})
			if err == nil {
				t.Fatal("CompileHotlines succeeded")
			}
			msg := err.Error()
			rest := msg
			for _, w := range tt.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("error %q does not contain %q", msg, w)
				}
				rest = rest[i+len(w):]
			}
		})
	}

	t.Run("every error at once", func(t *testing.T) {
		_, err := CompileHotlines([]configs.Hotline{
			{Name: "a", Greeting: "{{foo}}"},
			{Name: "b", Display: "{{bar}}", Numbers: []string{"+49301"}},
			{Name: "c", Numbers: []string{"+49301"}},
		}, Options{})
		for _, w := range []string{"hotlines[0].greeting", "hotlines[1].display", "hotlines[2].numbers[0]"} {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("error %v does not name %s", err, w)
			}
		}
	})
}

func TestRender(t *testing.T) {
	loc := berlin(t)
	hours, err := configs.ParseHours([]string{"mon-fri 08:00-18:00"}, loc)
	if err != nil {
		t.Fatal(err)
	}
	h := configs.Hotline{
		Name:         "acme",
		Company:      "ACME GmbH",
		Greeting:     "Good {{daypart .Now}}, {{.Hotline.Company}}, how can I help?",
		Display:      "{{.Hotline.Company}}: {{with .Contact}}{{.Name}}{{else}}{{.Caller.National}}{{end}}",
		Location:     loc,
		OpeningHours: hours,
	}
	set, err := CompileHotlines([]configs.Hotline{h}, Options{LinkPrefix: "callto:"})
	if err != nil {
		t.Fatal(err)
	}
	acme := set.All()[0]
	// 07:30 UTC in January is 08:30 in Berlin: morning there, whatever
	// the zone of the machine.
	morning := time.Date(2024, 1, 15, 7, 30, 0, 0, time.UTC)
	jane := &Contact{ID: 7, Name: "Jane <Doe>", Tags: []string{"vip"}}
	caller := Party{E164: "+4930111", National: "030 111"}

	tests := []struct {
		name         string
		d            Data
		wantGreeting string
		wantDisplay  string
	}{
		{"morning with contact", Data{Now: morning, Caller: caller, Contact: jane},
			"Good morning, ACME GmbH, how can I help?", "ACME GmbH: Jane <Doe>"},
		{"afternoon without contact", Data{Now: morning.Add(5 * time.Hour), Caller: caller},
			"Good afternoon, ACME GmbH, how can I help?", "ACME GmbH: 030 111"},
		{"evening in berlin", Data{Now: time.Date(2024, 1, 15, 17, 30, 0, 0, time.UTC), Caller: caller},
			"Good evening, ACME GmbH, how can I help?", "ACME GmbH: 030 111"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := acme.Render(tt.d)
			if err != nil {
				t.Fatal(err)
			}
			if r.Greeting != tt.wantGreeting || r.Display != tt.wantDisplay || r.Company != "ACME GmbH" {
				t.Errorf("Render = %+v, want greeting %q display %q", r, tt.wantGreeting, tt.wantDisplay)
			}
		})
	}

	t.Run("html variant escapes", func(t *testing.T) {
		r, err := acme.Render(Data{Now: morning, Contact: jane})
		if err != nil {
			t.Fatal(err)
		}
		if got := r.HTML().Display; got != "ACME GmbH: Jane &lt;Doe&gt;" {
			t.Errorf("HTML display = %q", got)
		}
	})
	t.Run("open", func(t *testing.T) {
		if !acme.Open(morning) || acme.Open(morning.Add(-2*time.Hour)) {
			t.Error("opening hours not applied in the hotline's zone")
		}
	})
}

func TestFuncs(t *testing.T) {
	loc := berlin(t)
	now := time.Date(2024, 7, 1, 10, 0, 0, 0, time.UTC) // 12:00 in Berlin (summer time)
	tests := []struct {
		name, tmpl, want string
		d                Data
	}{
		{"daypart in zone", "{{daypart .Now}}", "afternoon", Data{Now: now}},
		{"tel with prefix", "{{tel .Caller.E164}}", "phone:+4930111", Data{Caller: Party{E164: "+4930111"}}},
		{"tel strips spaces", "{{tel .Caller.International}}", "phone:+4930111", Data{Caller: Party{International: "+49 30 111"}}},
		{"tel empty", "{{tel .Caller.E164}}", "", Data{}},
		{"upper lower", "{{upper .Caller.Name}} {{lower .Caller.Name}}", "JANE jane", Data{Caller: Party{Name: "Jane"}}},
		{"default empty", `{{.Caller.Name | default "unknown"}}`, "unknown", Data{}},
		{"default set", `{{.Caller.Name | default "unknown"}}`, "Jane", Data{Caller: Party{Name: "Jane"}}},
		{"date in zone", `{{date "15:04" .Now}}`, "12:00", Data{Now: now}},
		{"weekday", `{{weekday .Now}}`, "Monday", Data{Now: now}},
		{"hasTag nil contact", `{{if hasTag .Contact "vip"}}VIP{{end}}`, "", Data{}},
		{"hasTag", `{{if hasTag .Contact "vip"}}VIP{{end}}`, "VIP", Data{Contact: &Contact{Tags: []string{"vip"}}}},
		{"field", `{{field .Contact "customer"}}`, "42", Data{Contact: &Contact{Fields: map[string]string{"customer": "42"}}}},
		{"join tags", `{{join ", " .Call.Tags}}`, "a, b", Data{Call: Call{Tags: []string{"a", "b"}}}},
		{"truncate", `{{truncate 3 .Caller.Name}}`, "Jür", Data{Caller: Party{Name: "Jürgen"}}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set, err := CompileHotlines([]configs.Hotline{{Name: fmt.Sprint(i), Greeting: tt.tmpl, Location: loc}}, Options{LinkPrefix: "phone:"})
			if err != nil {
				t.Fatal(err)
			}
			r, err := set.All()[0].Render(tt.d)
			if err != nil {
				t.Fatal(err)
			}
			if r.Greeting != tt.want {
				t.Errorf("%s = %q, want %q", tt.tmpl, r.Greeting, tt.want)
			}
		})
	}
}

func TestMatch(t *testing.T) {
	set, err := CompileHotlines([]configs.Hotline{
		{Name: "acme", Numbers: []string{"+49301234560", "+4930123457*"}},
		{Name: "berlin", Numbers: []string{"+4930*"}},
		{Name: "special", Numbers: []string{"+493012345799"}},
		{Name: "long", Numbers: []string{"+49301234578*"}},
	}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		number, want string
	}{
		{"+49301234560", "acme"},
		{"+49301234571", "acme"},
		{"+4930123457", "acme"}, // a prefix matches its own digits
		{"+493012345799", "special"},
		{"+493012345781", "long"},
		{"+49301234561", "berlin"},
		{"+4940123", ""},
		{"", ""},
	}
	for _, tt := range tests {
		t.Run(tt.number, func(t *testing.T) {
			h := set.Match(tt.number)
			got := ""
			if h != nil {
				got = h.Name()
			}
			if got != tt.want {
				t.Errorf("Match(%q) = %q, want %q", tt.number, got, tt.want)
			}
		})
	}
}

func BenchmarkMatch1000(b *testing.B) {
	hs := make([]configs.Hotline, 1000)
	for i := range hs {
		hs[i] = configs.Hotline{Name: fmt.Sprint(i), Numbers: []string{fmt.Sprintf("+4930%06d", i*97), fmt.Sprintf("+4940%05d*", i*89)}}
	}
	set, err := CompileHotlines(hs, Options{})
	if err != nil {
		b.Fatal(err)
	}
	numbers := []string{"+4930000097", "+494000089123", "+4989123456", "+4940088911"}
	for i := 0; b.Loop(); i++ {
		set.Match(numbers[i%len(numbers)])
	}
}

func BenchmarkRender(b *testing.B) {
	set, err := CompileHotlines([]configs.Hotline{{
		Name: "acme", Company: "ACME GmbH",
		Greeting: "Good {{daypart .Now}}, ACME GmbH, how can I help?",
		Display:  "{{.Hotline.Company}}: {{with .Contact}}{{.Name}}{{else}}{{.Caller.National}}{{end}}",
	}}, Options{})
	if err != nil {
		b.Fatal(err)
	}
	h := set.All()[0]
	d := Data{Now: time.Now(), Caller: Party{National: "030 111"}}
	for b.Loop() {
		if _, err := h.Render(d); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRenderContact renders a hotline whose greeting and display read
// the contact and the caller, for a caller seen before: the common case of
// the cache.
func BenchmarkRenderContact(b *testing.B) {
	set, err := CompileHotlines([]configs.Hotline{{
		Name: "acme", Company: "ACME GmbH",
		Greeting: "{{with .Contact}}Hello {{.Name}}{{if hasTag . \"vip\"}} (VIP){{end}}{{else}}Hello{{end}}, ACME GmbH",
		Display:  "{{.Hotline.Company}}: {{with .Contact}}{{.Name}}{{else}}{{.Caller.National}}{{end}}",
	}}, Options{})
	if err != nil {
		b.Fatal(err)
	}
	h := set.All()[0]
	d := Data{Now: time.Now(), Caller: Party{E164: "+4930111", National: "030 111"},
		Contact: &Contact{ID: 7, Name: "Jane Doe", Tags: []string{"vip"}, Fields: map[string]string{"tier": "gold"}, Calls: 3}}
	for b.Loop() {
		if _, err := h.Render(d); err != nil {
			b.Fatal(err)
		}
	}
}
