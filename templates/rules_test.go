package templates

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-sip/switchboard/configs"
)

func TestCompileRulesErrors(t *testing.T) {
	tests := []struct {
		name string
		when string
		want string
	}{
		{"undeclared variable", `calle.e164 == "+49"`, "rules[1].when: line 1, column 1: undeclared reference to 'calle'"},
		{"syntax", `caller.e164 ==`, "rules[1].when: line 1, column"},
		{"misspelt field", `"vip" in contact.tag`, "rules[1].when: line 1, column 17: contact has no field tag"},
		{"not a bool", `caller.e164 + "x"`, "rules[1].when: the condition is a string, want a bool"},
		{"type error", `1 + "a" == 2`, "rules[1].when: line 1, column 3: found no matching overload"},
		{"empty", `  `, "rules[1].when: empty condition"},
		{"null contact", `contact == null`, "the variables are never null: test contact.known"},
		{"second line", "true &&\n  nosuch", "rules[1].when: line 2, column 3: undeclared reference to 'nosuch'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := CompileRules([]configs.Rule{
				{Name: "ok", When: "true", Then: configs.Action{SkipNotify: true}},
				{Name: "bad", When: tt.when, Then: configs.Action{SkipNotify: true}},
			})
			if err == nil {
				t.Fatal("CompileRules succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestRulesEval(t *testing.T) {
	reject := &configs.Reject{Code: 486, Announcement: "busy.wav"}
	rules := []configs.Rule{
		{Name: "vip", When: `"vip" in contact.tags`, Then: configs.Action{Header: map[string]string{"X-Priority": "1"}, Tag: configs.Strings{"vip"}}},
		{Name: "broken", When: `contact.fields["customer"] == "42"`, Then: configs.Action{Tag: configs.Strings{"customer-42"}}},
		{Name: "spammer", When: `"spam" in contact.tags`, Then: configs.Action{Reject: reject}},
		{Name: "night", When: `now.getHours("Europe/Berlin") >= 22 && call.direction == "inbound"`, Then: configs.Action{Route: "sip:night@127.0.0.1"}},
		{Name: "closed", When: `hotline.name == "acme" && !hotline.open`, Then: configs.Action{Notify: []string{"boss@acme.example"}}},
		{Name: "anonymous", When: `caller.anonymous`, Then: configs.Action{SkipNotify: true}},
		{Name: "after end", When: `true`, Then: configs.Action{Tag: configs.Strings{"last"}}},
	}
	rs, err := CompileRules(rules)
	if err != nil {
		t.Fatal(err)
	}
	day := time.Date(2024, 1, 15, 10, 0, 0, 0, time.UTC)
	night := time.Date(2024, 1, 15, 22, 30, 0, 0, time.UTC) // 23:30 in Berlin
	call := Call{Direction: "inbound"}
	tests := []struct {
		name       string
		d          Data
		wantFired  []string
		wantErrors int
	}{
		{"no contact: tags safe, fields missing key errors and is skipped",
			Data{Now: day, Call: call}, []string{"after end"}, 1},
		{"vip contact", Data{Now: day, Call: call, Contact: &Contact{Tags: []string{"vip"}, Fields: map[string]string{"customer": "42"}}},
			[]string{"vip", "broken", "after end"}, 0},
		{"reject by contact tag ends evaluation", Data{Now: day, Call: call, Contact: &Contact{Tags: []string{"vip", "spam"}}},
			[]string{"vip", "spammer"}, 1},
		{"route ends evaluation", Data{Now: night, Call: call}, []string{"night"}, 1},
		{"hotline closed and anonymous", Data{Now: day, Call: call, Hotline: Hotline{Name: "acme"}, Caller: Party{Anonymous: true}},
			[]string{"closed", "anonymous", "after end"}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fired, errs := rs.Eval(tt.d)
			var names []string
			for _, f := range fired {
				names = append(names, f.Rule)
			}
			if strings.Join(names, ",") != strings.Join(tt.wantFired, ",") {
				t.Errorf("fired %v, want %v", names, tt.wantFired)
			}
			if len(errs) != tt.wantErrors {
				t.Errorf("errors %v, want %d", errs, tt.wantErrors)
			}
			for _, err := range errs {
				var re *RuleError
				if !errors.As(err, &re) || re.Rule != "broken" || !strings.HasPrefix(err.Error(), "rules[1] (broken): ") {
					t.Errorf("error %v does not name the rule", err)
				}
			}
			if n := len(fired); n > 0 && fired[n-1].Rule == "spammer" && fired[n-1].Then.Reject.Code != 486 {
				t.Errorf("reject action lost: %+v", fired[n-1])
			}
		})
	}
}

func TestRulesCostLimit(t *testing.T) {
	rs, err := CompileRules([]configs.Rule{
		{Name: "heavy", When: `[1,2,3,4,5,6,7,8,9,10].all(a, [1,2,3,4,5,6,7,8,9,10].all(b, [1,2,3,4,5,6,7,8,9,10].all(c, [1,2,3,4,5,6,7,8,9,10].all(d, [1,2,3,4,5,6,7,8,9,10].all(e, a+b+c+d+e > 0)))))`, Then: configs.Action{SkipNotify: true}},
	})
	if err != nil {
		t.Fatal(err)
	}
	fired, errs := rs.Eval(Data{})
	if len(fired) != 0 || len(errs) != 1 {
		t.Errorf("fired %v, errors %v: want the rule stopped by the cost limit", fired, errs)
	}
}

func BenchmarkRulesEval(b *testing.B) {
	rs, err := CompileRules([]configs.Rule{
		{Name: "vip", When: `"vip" in contact.tags`, Then: configs.Action{Tag: configs.Strings{"vip"}}},
		{Name: "night", When: `now.getHours() >= 22`, Then: configs.Action{SkipNotify: true}},
		{Name: "prefix", When: `caller.e164.startsWith("+4930")`, Then: configs.Action{Tag: configs.Strings{"berlin"}}},
	})
	if err != nil {
		b.Fatal(err)
	}
	d := Data{Now: time.Now(), Caller: Party{E164: "+4930123"}, Contact: &Contact{Tags: []string{"vip"}}}
	for b.Loop() {
		rs.Eval(d)
	}
}

// TestActivationMatchesVars: the variables rules read one by one are the
// ones Vars documents, with and without a contact.
func TestActivationMatchesVars(t *testing.T) {
	for _, d := range []Data{sampleData(true), sampleData(false)} {
		want := Vars(d)
		a := &activation{d: &d}
		for name, v := range want {
			got, ok := a.ResolveName(name)
			if !ok || !reflect.DeepEqual(got, v) {
				t.Errorf("%s: %#v (%v), want %#v", name, got, ok, v)
			}
		}
		if _, ok := a.ResolveName("callee"); ok {
			t.Error("an unknown variable resolved")
		}
	}
}
