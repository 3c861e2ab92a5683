package blocking

import (
	"context"
	"fmt"
)

// Load reads the stored entries together with config into an index,
// without migrating or writing anything: the block list of a dry run
// (`switchboard explain`). A nil db gives the config entries alone.
func Load(ctx context.Context, db DB, config []Entry) (*Index, error) {
	if db == nil {
		return NewIndex(config), nil
	}
	rows, err := queryEntries(ctx, db, `SELECT id, number, action, direction, reason, source, created_at FROM blocks ORDER BY id`)
	if err != nil {
		return NewIndex(config), fmt.Errorf("blocking: load: %w", err)
	}
	return NewIndex(append(append([]Entry(nil), config...), rows...)), nil
}
