package sip

import "fmt"

func errorf(format string, args ...any) error { return fmt.Errorf("sip: "+format, args...) }
