// Package templates compiles the policy written in the config file when it
// loads: hotline templates (Go text/template, SPEC §5) with the index that
// picks a hotline by called number, and call-control rules (CEL). Nothing is
// parsed on the call path; a config with a bad template or rule is refused
// at load with the key path and line of each error.
package templates

import "time"

// Data is what a template sees and what rules are evaluated over. The call
// pipeline fills it from the call; this package knows nothing of calls so
// that it can be used by `switchboard check` and `explain` alike.
type Data struct {
	Call    Call
	Caller  Party
	Called  Party
	Hotline Hotline
	// Contact is the remote party's contact; nil when none is known.
	Contact *Contact
	// Now is the time of the call; templates see it in the hotline's zone.
	Now time.Time
	// Lookup is each lookup's JSON answer by name (.Lookup.crm.tier); an
	// empty object when the lookup failed (SPEC §5).
	Lookup map[string]any
}

// Party is a call party in templates (.Caller, .Called) and rules
// (caller, called).
type Party struct {
	E164          string // +4930123456; empty when not a readable public number
	National      string // national display form
	International string // international display form
	Raw           string // as received
	Name          string // display name as received
	Anonymous     bool
	Internal      bool
}

// Call is the call in templates (.Call) and rules (call).
type Call struct {
	ID        string
	CallID    string
	Direction string // inbound or outbound
	Trunk     string
	Hotline   string // name of the hotline, empty when none
	Tags      []string
}

// Hotline is the called hotline in templates (.Hotline) and rules
// (hotline); the zero value when the call has none.
type Hotline struct {
	Name    string
	Company string
	Open    bool
}

// Contact is the remote party's contact in templates (.Contact) and rules
// (contact).
type Contact struct {
	ID      int64
	Name    string
	Company string
	Email   string
	Tags    []string
	Fields  map[string]string
	Calls   int64 // calls in the contact's history
}

// sampleData is used to execute every template once at load, so that a
// misspelt field (.Caller.Nmae) is an error when the config loads, not
// during a call. One sample has a contact and one has none, so a template
// that uses .Contact without {{with}} fails at load too.
func sampleData(withContact bool) Data {
	d := Data{
		Call:    Call{ID: "sample", CallID: "sample@switchboard", Direction: "inbound", Trunk: "carrier", Hotline: "sample", Tags: []string{"sample"}},
		Caller:  Party{E164: "+49301234567", National: "030 1234567", International: "+49 30 1234567", Raw: "0301234567", Name: "Jane Doe"},
		Called:  Party{E164: "+49301234560", National: "030 1234560", International: "+49 30 1234560", Raw: "+49301234560"},
		Hotline: Hotline{Name: "sample", Company: "Sample GmbH", Open: true},
		Now:     time.Date(2024, 1, 15, 9, 30, 0, 0, time.UTC),
	}
	if withContact {
		d.Contact = &Contact{ID: 1, Name: "Jane Doe", Company: "Doe Ltd", Email: "jane@example.com", Tags: []string{"vip"}, Fields: map[string]string{"customer": "42"}, Calls: 3}
	}
	return d
}
