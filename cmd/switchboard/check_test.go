package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.yaml", "sip: {listen: [udp://127.0.0.1:5060], pbx: sip:127.0.0.1:5080, trunks: [{name: c, match: [127.0.0.1/32]}]}\n")
	bad := write("bad.yaml", `sip:
  listen: [udp://127.0.0.1:5060]
  pbx: sip:127.0.0.1:5080
  trunks: [{name: c, match: [not-an-ip]}]
hotlines:
  - name: a
    numbers: ["+4930"]
    greeting: "{{.Nope}"
colour: blue
`)
	badWav := write("wav.yaml", "sip: {listen: [udp://127.0.0.1:5060], pbx: sip:127.0.0.1:5080, trunks: [{name: c, match: [127.0.0.1/32]}]}\nblocking: {announcement: /nonexistent/a.wav}\n")
	badRule := write("rule.yaml", "sip: {listen: [udp://127.0.0.1:5060], pbx: sip:127.0.0.1:5080, trunks: [{name: c, match: [127.0.0.1/32]}]}\nrules: [{name: r, when: 'contact.nope == 1', then: {tag: x}}]\n")
	tests := []struct {
		name  string
		args  []string
		code  int
		wants []string
	}{
		{"good", []string{"-c", good}, 0, []string{"ok"}},
		{"every error with its key", []string{"-c", bad}, 1, []string{"sip.trunks[0].match[0]", "colour"}},
		{"rule that does not compile", []string{"-c", badRule}, 1, []string{"rules[0].when"}},
		{"announcement that cannot be read", []string{"-c", badWav}, 1, []string{"blocking.announcement", "a.wav"}},
		{"missing file", []string{"-c", filepath.Join(dir, "none.yaml")}, 1, []string{"none.yaml"}},
		{"no -c", nil, 2, []string{"-c FILE"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := dispatch(append([]string{"check"}, tc.args...), &out, &errb)
			if code != tc.code {
				t.Fatalf("exit %d, want %d; out %q err %q", code, tc.code, out.String(), errb.String())
			}
			all := out.String() + errb.String()
			for _, w := range tc.wants {
				if !strings.Contains(all, w) {
					t.Errorf("output lacks %q:\n%s", w, all)
				}
			}
		})
	}
}

// TestExampleConfigsCheck runs the shipped configs through everything
// `switchboard check` does, templates and rules included.
func TestExampleConfigsCheck(t *testing.T) {
	for _, p := range []string{"../../configs/example.yaml", "../../configs/default.yaml"} {
		var out, errb bytes.Buffer
		if code := dispatch([]string{"check", "-c", p}, &out, &errb); code != 0 {
			t.Errorf("%s: exit %d: %s", p, code, errb.String())
		}
	}
}
