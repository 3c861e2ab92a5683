// Package contacts owns phone numbers (normalisation) and the contact store.
package contacts

import "errors"

// Number is a phone number as received and in its normal forms.
type Number struct {
	Raw           string // as received
	E164          string // +4930123456; empty for internal extensions
	National      string // national display form
	International string // international display form
	Ext           string // extension suffix (x123, ext. 123), not part of E164
	Internal      bool   // matched an internal extension pattern
}

// Numbers normalises numbers with a default region and internal patterns.
type Numbers struct {
	Region   string
	Internal []string
}

// NewNumbers checks the region and the internal extension patterns.
func NewNumbers(region string, internal []string) (*Numbers, error) {
	return &Numbers{Region: region, Internal: internal}, nil
}

// Normalize reads raw with region (or the default region when empty).
func (n *Numbers) Normalize(raw, region string) (Number, error) {
	return Number{Raw: raw}, errors.New("not implemented")
}
