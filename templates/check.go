package templates

import (
	"errors"

	"github.com/switchboard-sip/switchboard/configs"
)

// Compiled is a config's hotline templates and rules, compiled once when
// the config loads and handed to the stages that run them.
type Compiled struct {
	Hotlines *Hotlines
	Rules    *Rules
}

// Compile compiles the hotline templates and rules of cfg and returns
// every error, each naming its key (`hotlines[0].greeting: …`,
// `rules[2].when: …`).
func Compile(cfg *configs.Config) (*Compiled, error) {
	h, herr := CompileHotlines(cfg.Hotlines, Options{LinkPrefix: cfg.Missed.Email.LinkPrefix})
	r, rerr := CompileRules(cfg.Rules)
	if err := errors.Join(herr, rerr); err != nil {
		return nil, err
	}
	return &Compiled{Hotlines: h, Rules: r}, nil
}

// Check compiles cfg as Compile does, for `switchboard check` and for
// refusing a bad reload.
func Check(cfg *configs.Config) error {
	_, err := Compile(cfg)
	return err
}
