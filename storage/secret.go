package storage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
)

// Secret returns the named random key, creating it on first use. Keys live
// in the database so that every node sharing it, and every restart, agrees
// on them (the SIP layer signs its Record-Route with one).
func (db *DB) Secret(ctx context.Context, name string) ([]byte, error) {
	if err := db.Migrate(ctx, "secrets", []string{
		`CREATE TABLE secrets (name TEXT NOT NULL PRIMARY KEY, value TEXT NOT NULL)`,
	}); err != nil {
		return nil, err
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("storage: secret %s: %w", name, err)
	}
	if _, err := db.ExecContext(ctx, db.Rebind(`INSERT INTO secrets(name, value) VALUES(?, ?) ON CONFLICT(name) DO NOTHING`),
		name, hex.EncodeToString(b)); err != nil {
		return nil, fmt.Errorf("storage: secret %s: %w", name, err)
	}
	var v string
	if err := db.QueryRowContext(ctx, db.Rebind(`SELECT value FROM secrets WHERE name = ?`), name).Scan(&v); err != nil {
		return nil, fmt.Errorf("storage: secret %s: %w", name, err)
	}
	key, err := hex.DecodeString(v)
	if err != nil {
		return nil, fmt.Errorf("storage: secret %s: %w", name, err)
	}
	return key, nil
}
