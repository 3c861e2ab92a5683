package agent

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/switchboard-sip/switchboard/blocking"
	"github.com/switchboard-sip/switchboard/configs"
	"github.com/switchboard-sip/switchboard/contacts"
	"github.com/switchboard-sip/switchboard/missed"
	"github.com/switchboard-sip/switchboard/stats"
	"github.com/switchboard-sip/switchboard/storage"
	"github.com/switchboard-sip/switchboard/storage/callstore"
)

// Access says whether a command may change the database.
type Access int

const (
	// ReadOnly opens an existing database for reading: nothing is
	// created, no schema step runs, and PostgreSQL sessions are read-only,
	// so a command pointed at the wrong DSN says so instead of leaving an
	// empty database behind.
	ReadOnly Access = iota
	// ReadWrite opens an existing database and migrates it, for commands
	// that change what is there (delete a contact, rebuild rollups).
	ReadWrite
	// Create opens the database, creating it if needed, and migrates it,
	// as the running agent does: for commands that bring data in.
	Create
)

// Stores are the stores of the config's database, wired to each other the
// way New wires them for the running agent: the one front door of the
// commands that work on the database without running the agent.
type Stores struct {
	// DB is the database every store below uses.
	DB *storage.DB
	// Calls holds call records, messages and the statistics' rollups.
	Calls *callstore.Store
	// Contacts reaches calls, messages and missed-call entries through
	// their owners, for history, trace, export and deletion.
	Contacts *contacts.Store
	// Numbers reads numbers as numbers.region and numbers.internal say.
	Numbers *contacts.Numbers
	// Region is numbers.region, the region of numbers without a prefix.
	Region string
	// Location is the configured time zone.
	Location *time.Location
	// InProgress is why the calls in progress of a running node (in its
	// journal beside a SQLite database) could not be read; nil when they
	// were, or when there is no journal.
	InProgress error

	cfg    *configs.Config
	blocks *blocking.Store
}

// OpenStores opens the config's database and its stores with the given
// access. Close releases them.
func OpenStores(ctx context.Context, cfg *configs.Config, access Access) (_ *Stores, err error) {
	loc, err := Location(cfg)
	if err != nil {
		return nil, fmt.Errorf("timezone: %w", err)
	}
	numbers, err := contacts.NewNumbers(cfg.Numbers.Region, cfg.Numbers.Internal)
	if err != nil {
		return nil, fmt.Errorf("numbers: %w", err)
	}
	s := &Stores{Numbers: numbers, Region: cfg.Numbers.Region, Location: loc, cfg: cfg}
	if s.DB, err = openDB(cfg, access); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if s.Calls, err = callstore.New(ctx, s.DB, zap.NewNop()); err != nil {
		return nil, err
	}
	// A running node's calls in progress are in its journal, not yet in
	// the database: they are shown, never written from here.
	if p := callstore.JournalPath(cfg.Storage.Driver, cfg.Storage.DSN); p != "" {
		s.InProgress = s.Calls.ReadJournal(ctx, p)
	}
	if s.Contacts, err = contacts.NewStore(ctx, s.DB); err != nil {
		return nil, err
	}
	// As in New: a contact's history, trace, export and deletion reach the
	// calls and the missed-call entries through their owners.
	s.Contacts.UseCalls(s.Calls)
	s.Contacts.UseMessages(s.Calls)
	missedLog, err := missed.NewContactLog(ctx, s.DB)
	if err != nil {
		return nil, err
	}
	s.Contacts.UseMissed(missedLog)
	return s, nil
}

// openDB opens the database with the access asked for. An in-memory SQLite
// database has nothing to protect and is opened as usual.
func openDB(cfg *configs.Config, access Access) (*storage.DB, error) {
	driver, dsn := cfg.Storage.Driver, cfg.Storage.DSN
	file := sqliteFile(driver, dsn)
	if access != Create && file != "" {
		if _, err := os.Stat(file); err != nil {
			return nil, fmt.Errorf("database %s (storage.dsn): %w", file, err)
		}
	}
	if access != ReadOnly || driver == storage.SQLite && file == "" {
		return storage.Open(driver, dsn)
	}
	return storage.OpenReadOnly(driver, dsn)
}

// sqliteFile is the file of a SQLite DSN, "" for other drivers and for an
// in-memory database.
func sqliteFile(driver, dsn string) string {
	if driver != storage.SQLite {
		return ""
	}
	path, _, _ := strings.Cut(strings.TrimPrefix(dsn, "file:"), "?")
	if path == ":memory:" {
		return ""
	}
	return path
}

// Blocks opens the block list on first use, with the config's entries, as
// New does; only the block command needs it.
func (s *Stores) Blocks(ctx context.Context) (*blocking.Store, error) {
	if s.blocks != nil {
		return s.blocks, nil
	}
	config, err := BlockEntries(s.cfg)
	if err != nil {
		return nil, err
	}
	if s.blocks, err = blocking.Open(ctx, s.DB, config); err != nil {
		return nil, err
	}
	return s.blocks, nil
}

// MissedEntries are the missed-call entries with the given ids, by id.
func (s *Stores) MissedEntries(ctx context.Context, ids []string) (map[string]missed.Entry, error) {
	return missed.Lookup(ctx, s.DB, ids)
}

// CompleteStats adds to figures what the call store does not know, as
// GET /api/stats does: each hotline's company and the top callers' names.
func (s *Stores) CompleteStats(ctx context.Context, r *stats.Report) {
	r.Complete(companies(s.cfg.Hotlines), contactCaller(ctx, s.Contacts))
}

// companies maps hotline names to their company.
func companies(hotlines []configs.Hotline) map[string]string {
	m := make(map[string]string, len(hotlines))
	for _, h := range hotlines {
		m[h.Name] = h.Company
	}
	return m
}

// contactCaller describes top callers from the contact store: name, first
// number and open missed calls.
func contactCaller(ctx context.Context, store *contacts.Store) stats.Caller {
	if store == nil {
		return nil
	}
	return func(id int64) (string, string, int64, bool) {
		c, err := store.Get(ctx, id)
		if err != nil {
			return "", "", 0, false
		}
		number := ""
		if len(c.Numbers) > 0 {
			number = c.Numbers[0].E164
		}
		return c.Name, number, c.OpenMissed, true
	}
}

// Close flushes and closes the stores and the database.
func (s *Stores) Close() {
	if s.Calls != nil {
		s.Calls.Close(context.Background())
	}
	s.DB.Close()
}

// Location is the configured time zone; configs may have loaded it
// already.
func Location(cfg *configs.Config) (*time.Location, error) {
	if cfg.Location != nil {
		return cfg.Location, nil
	}
	if cfg.Timezone == "" {
		return time.UTC, nil
	}
	return time.LoadLocation(cfg.Timezone)
}
