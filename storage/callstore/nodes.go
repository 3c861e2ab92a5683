package callstore

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/switchboard-sip/switchboard/cdr"
)

// nodeMigrations are the schema steps of the "nodes" component: one row
// per node sharing the database, with its last heartbeat (SPEC §11).
var nodeMigrations = []string{
	`CREATE TABLE nodes (
		name         TEXT    NOT NULL PRIMARY KEY,
		heartbeat_at INTEGER NOT NULL
	);`,
}

// ReasonNodeLost is the end reason of a call whose node died and whose BYE
// never passed another node (SPEC §11).
const ReasonNodeLost = cdr.ReasonNodeLost

// Beat records that node is alive at now.
func (s *Store) Beat(ctx context.Context, node string, now time.Time) error {
	_, err := s.db.ExecContext(ctx, s.db.Rebind(`INSERT INTO nodes(name, heartbeat_at) VALUES(?, ?)
		ON CONFLICT(name) DO UPDATE SET heartbeat_at = excluded.heartbeat_at`), node, toMillis(now))
	if err != nil {
		return fmt.Errorf("callstore: heartbeat of %s: %w", node, err)
	}
	return nil
}

// CloseLost finishes the records of the nodes other than self whose last
// heartbeat is older than timeout: calls still open are ended as failed,
// reason "node lost", at the node's last heartbeat; calls whose BYE passed
// another node were ended there and are left alone. The node is then
// forgotten until it beats again. It returns how many records it closed.
func (s *Store) CloseLost(ctx context.Context, self string, timeout time.Duration, now time.Time) (int64, error) {
	rows, err := s.db.QueryContext(ctx, s.db.Rebind(`SELECT name, heartbeat_at FROM nodes WHERE name <> ? AND heartbeat_at < ?`),
		self, toMillis(now.Add(-timeout)))
	if err != nil {
		return 0, fmt.Errorf("callstore: lost nodes: %w", err)
	}
	type lost struct {
		name string
		at   int64
	}
	var dead []lost
	for rows.Next() {
		var l lost
		if err := rows.Scan(&l.name, &l.at); err != nil {
			rows.Close()
			return 0, fmt.Errorf("callstore: lost nodes: %w", err)
		}
		dead = append(dead, l)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("callstore: lost nodes: %w", err)
	}
	var total int64
	for _, l := range dead {
		n, err := s.closeNode(ctx, l.name, l.at)
		if err != nil {
			return total, err
		}
		total += n
		if n > 0 {
			s.log.Warn("calls of a lost node closed", zap.String("node", l.name),
				zap.Time("last_heartbeat", fromMillis(l.at)), zap.Int64("calls", n))
		}
	}
	return total, nil
}

// closeNode ends one dead node's open calls and forgets the node, in one
// transaction: a node that beats again meanwhile keeps its calls.
func (s *Store) closeNode(ctx context.Context, node string, at int64) (int64, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("callstore: close calls of %s: %w", node, err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, s.db.Rebind(`DELETE FROM nodes WHERE name = ? AND heartbeat_at = ?`), node, at)
	if err != nil {
		return 0, fmt.Errorf("callstore: close calls of %s: %w", node, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return 0, nil // it beat again, or another survivor did the work
	}
	err = s.rollupChange(ctx, tx, `node = ? AND ended_at IS NULL`, []any{node}, false, func() (err error) {
		res, err = tx.ExecContext(ctx, s.db.Rebind(`UPDATE calls SET
			ended_at = CASE WHEN started_at > ? THEN started_at ELSE ? END,
			talk_ms = CASE WHEN answered_at IS NULL OR answered_at > ? THEN 0 ELSE ? - answered_at END,
			disposition = ?, end_reason = ?
		WHERE node = ? AND ended_at IS NULL`), at, at, at, at, string(cdr.Failed), ReasonNodeLost, node)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("callstore: close calls of %s: %w", node, err)
	}
	n, _ := res.RowsAffected()
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("callstore: close calls of %s: %w", node, err)
	}
	return n, nil
}

// WatchNodes beats for node every timeout/5 and closes the calls of nodes
// that stopped beating for timeout, until ctx ends. Errors are logged: a
// database away for a while only delays both.
func (s *Store) WatchNodes(ctx context.Context, node string, timeout time.Duration) {
	every := max(timeout/5, 100*time.Millisecond)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		now := time.Now()
		if err := s.Beat(ctx, node, now); err != nil && ctx.Err() == nil {
			s.log.Warn("heartbeat", zap.Error(err))
		} else if _, err := s.CloseLost(ctx, node, timeout, now); err != nil && ctx.Err() == nil {
			s.log.Warn("closing calls of lost nodes", zap.Error(err))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
