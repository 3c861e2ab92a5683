package templates

import (
	"errors"

	"github.com/switchboard-sip/switchboard/configs"
)

// Check compiles the hotline templates and rules of cfg and returns every
// error, each naming its key (`hotlines[0].greeting: …`, `rules[2].when:
// …`), for `switchboard check` and for refusing a bad reload.
func Check(cfg *configs.Config) error {
	_, herr := CompileHotlines(cfg.Hotlines, Options{LinkPrefix: cfg.Missed.Email.LinkPrefix})
	_, rerr := CompileRules(cfg.Rules)
	return errors.Join(herr, rerr)
}
