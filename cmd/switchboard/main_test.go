package main

import (
	"os"
	"testing"

	"github.com/switchboard-sip/switchboard/internal/pgtest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.StopShared()
	os.Exit(code)
}
