package stats

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard-sip/switchboard/storage"
)

// ParseFilter reads the range and filters of a stats request: the API's
// query parameters, or the command line's flags, through get. since and
// until take a duration back from now (30m, 168h) or an RFC 3339 time; an
// error names the parameter ("since: ...").
func ParseFilter(get func(string) string, now time.Time, loc *time.Location) (Filter, error) {
	f := Filter{Location: loc, Hotline: strings.TrimSpace(get("hotline")), Campaign: strings.TrimSpace(get("campaign"))}
	for _, p := range []struct {
		name string
		t    *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if v := strings.TrimSpace(get(p.name)); v != "" {
			t, err := storage.ParseSince(v, now)
			if err != nil {
				return f, fmt.Errorf("%s: %s", p.name, err.Error())
			}
			*p.t = t
		}
	}
	if v := strings.TrimSpace(get("contact")); v != "" {
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil || id <= 0 {
			return f, fmt.Errorf("contact: %q is not a contact id", v)
		}
		f.ContactID = id
	}
	f = Range(f, now)
	if !f.Until.After(f.Since) {
		return f, fmt.Errorf("until: %s is not after since %s", f.Until.In(loc).Format(time.RFC3339), f.Since.In(loc).Format(time.RFC3339))
	}
	return f, nil
}
