// Package layers holds the test that keeps the package map pointing down:
// it reads the imports with `go list`, as docs/architecture.md draws them.
package layers

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/switchboard-sip/switchboard/"

// imports maps each package of the module (without the module prefix) to
// the packages it imports: the module's without the prefix, others whole.
func imports(t *testing.T) map[string][]string {
	t.Helper()
	cmd := exec.Command("go", "list", "-f", "{{.ImportPath}}{{range .Imports}} {{.}}{{end}}", "../../...")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	m := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		pkg := strings.TrimPrefix(f[0], module)
		m[pkg] = nil
		for _, imp := range f[1:] {
			m[pkg] = append(m[pkg], strings.TrimPrefix(imp, module))
		}
	}
	return m
}

// own are the module's packages among imps: those go list listed itself.
func own(m map[string][]string, imps []string) []string {
	var out []string
	for _, i := range imps {
		if _, ok := m[i]; ok {
			out = append(out, i)
		}
	}
	return out
}

// The floors of the house: each package may import only those listed for
// it from the module. A new arrow up (or sideways into the domain) fails
// here with the package and the import.
func TestLayersPointDown(t *testing.T) {
	m := imports(t)
	allowed := map[string][]string{
		"cdr":               {},
		"configs":           {},
		"metrics":           {},
		"storage":           {},
		"stats":             {"storage"},
		"storage/callstore": {"cdr", "stats", "storage"},
		"contacts":          {"cdr", "storage"},
		"blocking":          {"storage"},
		"emergency":         {"storage"},
		"wire":              {"blocking", "cdr", "contacts", "missed"},
	}
	for pkg, ok := range allowed {
		imps, found := m[pkg]
		if !found {
			t.Errorf("package %s not listed by go list", pkg)
			continue
		}
		for _, imp := range own(m, imps) {
			if !slices.Contains(ok, imp) {
				t.Errorf("%s imports %s: only %v may be imported there", pkg, imp, ok)
			}
		}
	}
	if slices.Contains(m["cmd/switchboard"], "web") {
		t.Error("cmd/switchboard imports web: the commands reach the stores through agent")
	}
}

// Only the SIP layer (and the SIP simulator of the demo and the tests)
// speaks SIP (STYLE §2).
func TestOnlySIPImportsSipgo(t *testing.T) {
	m := imports(t)
	var sipgo []string
	for pkg, imps := range m {
		for _, imp := range imps {
			if strings.HasPrefix(imp, "github.com/emiago/sipgo") {
				sipgo = append(sipgo, pkg)
				break
			}
		}
	}
	slices.Sort(sipgo)
	if want := []string{"internal/simsip", "sip"}; !slices.Equal(sipgo, want) {
		t.Errorf("packages importing sipgo: %v, want %v", sipgo, want)
	}
}
