package templates

import (
	"bytes"
	"errors"
	"fmt"
	"html"
	"regexp"
	"strings"
	"text/template"
	"time"

	"github.com/switchboard-sip/switchboard/configs"
)

// maxOutput bounds what one template may produce: a greeting or display is
// a line of text, and a runaway {{range}} must not grow a SIP header or the
// board without limit.
const maxOutput = 4096

// Options tune template compilation.
type Options struct {
	// LinkPrefix is what `tel` puts before a number (missed.email.link_prefix);
	// tel: when empty.
	LinkPrefix string
}

// HotlineTemplates is one hotline with its compiled templates.
type HotlineTemplates struct {
	// Config is the hotline's config entry: route, hours, closed response,
	// recipients. Its OpeningHours and Location are already parsed.
	Config configs.Hotline
	// Index is the hotline's position in the config, for error paths.
	Index int

	company, greeting, display *template.Template // nil when not set
	// Their outputs by what they read (cache.go); nil when not cacheable.
	companyCache, greetingCache, displayCache *renderCache
}

// Name is the hotline's name.
func (h *HotlineTemplates) Name() string { return h.Config.Name }

// Open reports whether the hotline is open at t (no hours: always).
func (h *HotlineTemplates) Open(t time.Time) bool { return h.Config.Open(t) }

// Rendered is a hotline's templates rendered for one call, as plain text.
// Values go to SIP headers and the board after sanitising by the caller.
type Rendered struct {
	Company  string
	Greeting string
	Display  string
}

// HTML returns r with every value HTML-escaped, for the board.
func (r Rendered) HTML() Rendered {
	return Rendered{
		Company:  html.EscapeString(r.Company),
		Greeting: html.EscapeString(r.Greeting),
		Display:  html.EscapeString(r.Display),
	}
}

// Render executes the hotline's templates for d. d.Hotline is filled from
// the hotline when its name is empty. An error names the template; the
// values rendered before it are kept, so a caller may fall back to them.
func (h *HotlineTemplates) Render(d Data) (Rendered, error) {
	if d.Hotline.Name == "" {
		d.Hotline = Hotline{Name: h.Config.Name, Company: h.Config.Company, Open: h.Open(d.Now)}
	}
	r := Rendered{Company: h.Config.Company}
	var errs []error
	// Company renders first so that greeting and display see the rendered
	// company in .Hotline.Company.
	if h.company != nil {
		s, err := run(h.company, h.companyCache, &d)
		if err != nil {
			errs = append(errs, fmt.Errorf("hotline %s: company: %w", h.Config.Name, err))
		} else {
			r.Company = s
			d.Hotline.Company = s
		}
	}
	var err error
	if h.greeting != nil {
		if r.Greeting, err = run(h.greeting, h.greetingCache, &d); err != nil {
			errs = append(errs, fmt.Errorf("hotline %s: greeting: %w", h.Config.Name, err))
		}
	}
	if h.display != nil {
		if r.Display, err = run(h.display, h.displayCache, &d); err != nil {
			errs = append(errs, fmt.Errorf("hotline %s: display: %w", h.Config.Name, err))
		}
	}
	return r, errors.Join(errs...)
}

// limitWriter fails once more than maxOutput bytes were written, which
// stops the template execution.
type limitWriter struct{ bytes.Buffer }

var errTooLong = fmt.Errorf("output longer than %d bytes", maxOutput)

func (w *limitWriter) Write(p []byte) (int, error) {
	if w.Len()+len(p) > maxOutput {
		return 0, errTooLong
	}
	return w.Buffer.Write(p)
}

func execute(t *template.Template, d Data) (string, error) {
	var w limitWriter
	if err := t.Execute(&w, d); err != nil {
		return "", lineError(err)
	}
	return w.String(), nil
}

// Hotlines is the compiled hotline section with the index from called
// number to hotline. It is immutable; a reload compiles a new one.
type Hotlines struct {
	list   []*HotlineTemplates
	byName map[string]*HotlineTemplates
	exact  map[string]*HotlineTemplates
	prefix map[string]*HotlineTemplates
}

// CompileHotlines parses and checks every hotline's company, greeting and
// display templates. Errors name the key and the template line
// (`hotlines[0].greeting: template: line 1: function "foo" not defined`),
// all of them at once.
func CompileHotlines(hs []configs.Hotline, opts Options) (*Hotlines, error) {
	set := &Hotlines{
		byName: map[string]*HotlineTemplates{},
		exact:  map[string]*HotlineTemplates{},
		prefix: map[string]*HotlineTemplates{},
	}
	var errs []error
	for i, cfg := range hs {
		h := &HotlineTemplates{Config: cfg, Index: i}
		fm := funcs(cfg.Location, opts.LinkPrefix)
		for _, f := range []struct {
			key, text string
			dst       **template.Template
		}{
			{"company", cfg.Company, &h.company},
			{"greeting", cfg.Greeting, &h.greeting},
			{"display", cfg.Display, &h.display},
		} {
			t, err := compile(f.key, f.text, fm)
			if err != nil {
				errs = append(errs, fmt.Errorf("hotlines[%d].%s: %w", i, f.key, err))
				continue
			}
			*f.dst = t
		}
		h.companyCache = newRenderCache(h.company, cfg.Location)
		h.greetingCache = newRenderCache(h.greeting, cfg.Location)
		h.displayCache = newRenderCache(h.display, cfg.Location)
		set.list = append(set.list, h)
		set.byName[cfg.Name] = h
		for j, n := range cfg.Numbers {
			m, key := set.exact, n
			if strings.HasSuffix(n, "*") {
				m, key = set.prefix, strings.TrimSuffix(n, "*")
			}
			if other, dup := m[key]; dup {
				errs = append(errs, fmt.Errorf("hotlines[%d].numbers[%d]: %q is already claimed by hotline %s", i, j, n, other.Config.Name))
				continue
			}
			m[key] = h
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return set, nil
}

// compile parses one template and runs it over sample data, with and
// without a contact, so that unknown fields and functions used with wrong
// arguments are found now. A template without actions is kept as nil
// when empty: the caller then uses its default.
func compile(name, text string, fm template.FuncMap) (*template.Template, error) {
	if text == "" {
		return nil, nil
	}
	t, err := template.New(name).Funcs(fm).Option("missingkey=zero").Parse(text)
	if err != nil {
		return nil, lineError(err)
	}
	for _, withContact := range []bool{true, false} {
		if _, err := execute(t, sampleData(withContact)); err != nil {
			if !withContact {
				return nil, fmt.Errorf("%w (when the caller has no contact; use {{with .Contact}}…{{end}})", err)
			}
			return nil, err
		}
	}
	return t, nil
}

// templateErr matches text/template's error texts:
// `template: NAME:LINE: msg` (parse) and
// `template: NAME:LINE:COL: executing "NAME" at <ACTION>: msg` (execution).
var templateErr = regexp.MustCompile(`^template: [^:]*:(\d+)(?::(\d+))?: (?:executing "[^"]*" at (<.*?>): )?(?s)(.*)$`)

// lineError rewrites a text/template error as `template: line N: msg`, so
// that with the key path in front it points at the template's line without
// repeating the template's internal name.
func lineError(err error) error {
	if errors.Is(err, errTooLong) {
		return fmt.Errorf("template: %w", errTooLong)
	}
	m := templateErr.FindStringSubmatch(err.Error())
	if m == nil {
		return err
	}
	msg := "template: line " + m[1]
	if m[2] != "" {
		msg += ", column " + m[2]
	}
	if m[3] != "" {
		msg += ": " + m[3]
	}
	return errors.New(msg + ": " + m[4])
}

// Len is the number of hotlines.
func (s *Hotlines) Len() int {
	if s == nil {
		return 0
	}
	return len(s.list)
}

// All returns the hotlines in config order.
func (s *Hotlines) All() []*HotlineTemplates {
	if s == nil {
		return nil
	}
	return s.list
}

// ByName returns the hotline with the given name, or nil.
func (s *Hotlines) ByName(name string) *HotlineTemplates {
	if s == nil {
		return nil
	}
	return s.byName[name]
}

// Match returns the hotline for a called number (E.164): an exact number
// first, else the longest matching prefix; nil when none. It probes one map
// entry per prefix length, so its cost does not grow with the number of
// hotlines.
func (s *Hotlines) Match(number string) *HotlineTemplates {
	if s == nil || number == "" {
		return nil
	}
	if h := s.exact[number]; h != nil {
		return h
	}
	for l := len(number); l >= 1; l-- {
		if h := s.prefix[number[:l]]; h != nil {
			return h
		}
	}
	return nil
}
