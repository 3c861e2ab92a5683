package missed_test

import (
	"os"
	"testing"

	"github.com/switchboard-sip/switchboard/storage/storagetest"
)

// TestMain runs the tests that open a database on SQLite, then again on
// PostgreSQL (SPEC §11).
func TestMain(m *testing.M) { os.Exit(storagetest.Main(m)) }
