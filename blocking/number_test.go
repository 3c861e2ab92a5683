package blocking_test

import (
	"errors"
	"testing"

	"github.com/switchboard-sip/switchboard/blocking"
)

// exact stands in for the contacts normaliser: it knows a few numbers.
func exact(raw string) (string, error) {
	known := map[string]string{
		"030 1234567":     "+49301234567",
		"+49 30 1234567":  "+49301234567",
		"0049301234567":   "+49301234567",
		"110":             "110",
		"+4915112345678":  "+4915112345678",
		"(030) 1234-5678": "+49301234567",
	}
	if n, ok := known[raw]; ok {
		return n, nil
	}
	return "", errors.New("not a number")
}

func TestNormalizeNumber(t *testing.T) {
	tests := []struct {
		raw, region, want string
		wantErr           bool
	}{
		{"030 1234567", "DE", "+49301234567", false},
		{"+49 30 1234567", "DE", "+49301234567", false},
		{"110", "DE", "110", false},
		{"nonsense", "DE", "", true},
		{"+49 110", "DE", "+49110", false},
		{"112", "DE", "112", false},
		{"12ab", "DE", "", true},
		{"+49900*", "DE", "+49900*", false},
		{"+49 900*", "", "+49900*", false},
		{"0049900*", "", "+49900*", false},
		{"0900*", "DE", "+49900*", false},
		{"020 7*", "GB", "+44207*", false},
		{"0900*", "", "0900*", false},
		{"1*", "US", "+1*", false},
		{"12*", "DE", "12*", false},
		{"+*", "", "+*", false},
		{"*", "DE", "", true},
		{"+49x*", "DE", "", true},
		{"", "DE", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.raw+"/"+tt.region, func(t *testing.T) {
			got, err := blocking.NormalizeNumber(tt.raw, tt.region, exact)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("NormalizeNumber(%q, %q) = %q, %v; want %q, error %v", tt.raw, tt.region, got, err, tt.want, tt.wantErr)
			}
		})
	}
}
