package callstore

import (
	"context"
	"database/sql"
	"fmt"
	"sort"

	"github.com/switchboard-sip/switchboard/stats"
)

// maxTopCandidates bounds the contacts whose last call the complement
// method looks up (those tied at the 20th place included); beyond it the
// direct count is used.
const maxTopCandidates = 200

// statsTopCallers lists the contacts with the most calls in the range.
// Counting them means grouping every call of the range by contact, which
// for a range of months is most of the table. When the rollups hold the
// per-contact totals and the range holds more than half of the calls, the
// calls outside it are counted instead and taken from the totals.
func (s *Store) statsTopCallers(ctx context.Context, f stats.Filter, p statsPlan) ([]stats.TopCaller, error) {
	if p.fromDay != "" && f.Hotline == "" && f.Campaign == "" {
		inside, all, err := s.rollupShare(ctx, p)
		if err != nil {
			return nil, err
		}
		if 2*inside > all {
			top, ok, err := s.topByComplement(ctx, f)
			if err != nil || ok {
				return top, err
			}
		}
	}
	return s.topDirect(ctx, f)
}

// rollupShare is how many calls the plan's whole days hold, and how many
// the rollups hold in all.
func (s *Store) rollupShare(ctx context.Context, p statsPlan) (inside, all int64, err error) {
	err = s.db.QueryRowContext(ctx, s.db.Rebind(`SELECT COALESCE(SUM(CASE WHEN day >= ? AND day < ? THEN calls ELSE 0 END), 0),
		COALESCE(SUM(calls), 0) FROM stats_days`), p.fromDay, p.toDay).Scan(&inside, &all)
	return inside, all, err
}

// topDirect groups the range's calls by contact.
func (s *Store) topDirect(ctx context.Context, f stats.Filter) ([]stats.TopCaller, error) {
	cond, args := statsWhere(f, statsSQL)
	rows, err := s.db.QueryContext(ctx, s.db.Rebind(`SELECT contact_id, COUNT(*) AS n, MAX(started_at) AS last
		FROM calls`+s.indexed(f, "calls_stats")+` WHERE `+cond+` AND contact_id IS NOT NULL
		GROUP BY contact_id ORDER BY n DESC, last DESC, contact_id LIMIT `+fmt.Sprint(topCallers)), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []stats.TopCaller
	for rows.Next() {
		var t stats.TopCaller
		var last int64
		if err := rows.Scan(&t.ContactID, &t.Calls, &last); err != nil {
			return nil, err
		}
		t.LastCallAt = fromMillis(last).In(f.Location)
		out = append(out, t)
	}
	return out, rows.Err()
}

// topByComplement counts each contact's calls in the range as its total
// (stats_contacts) less its calls before and after the range, then looks
// up the last call of the leaders. ok is false when too many contacts tie
// for the last places.
func (s *Store) topByComplement(ctx context.Context, f stats.Filter) (top []stats.TopCaller, ok bool, err error) {
	outside := map[int64]int64{}
	for _, part := range []string{`started_at < ?`, `started_at >= ?`} {
		at := toMillis(f.Since)
		if part == `started_at >= ?` {
			at = toMillis(f.Until)
		}
		rows, err := s.db.QueryContext(ctx, s.db.Rebind(`SELECT contact_id, COUNT(*) FROM calls`+s.indexed(f, "calls_stats")+`
			WHERE `+statsSQL+` AND `+part+` AND contact_id IS NOT NULL GROUP BY contact_id`), at)
		if err != nil {
			return nil, false, err
		}
		if err := scanCounts(rows, outside); err != nil {
			return nil, false, err
		}
	}
	rows, err := s.db.QueryContext(ctx, `SELECT contact_id, calls FROM stats_contacts WHERE calls > 0`)
	if err != nil {
		return nil, false, err
	}
	type count struct{ id, n int64 }
	var counts []count
	defer rows.Close()
	for rows.Next() {
		var c count
		if err := rows.Scan(&c.id, &c.n); err != nil {
			return nil, false, err
		}
		if c.n -= outside[c.id]; c.n > 0 {
			counts = append(counts, c)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, false, err
	}
	sort.Slice(counts, func(i, j int) bool { return counts[i].n > counts[j].n })
	if len(counts) > topCallers {
		// Everyone tied with the last place competes on the last call.
		cut := topCallers
		for cut < len(counts) && counts[cut].n == counts[topCallers-1].n {
			cut++
		}
		if cut > maxTopCandidates {
			return nil, false, nil
		}
		counts = counts[:cut]
	}
	for _, c := range counts {
		var last sql.NullInt64
		if err := s.db.QueryRowContext(ctx, s.db.Rebind(`SELECT MAX(started_at) FROM calls WHERE contact_id = ?
			AND started_at >= ? AND started_at < ? AND `+statsSQL), c.id, toMillis(f.Since), toMillis(f.Until)).Scan(&last); err != nil {
			return nil, false, err
		}
		top = append(top, stats.TopCaller{ContactID: c.id, Calls: c.n, LastCallAt: fromMillis(last.Int64).In(f.Location)})
	}
	sort.Slice(top, func(i, j int) bool {
		a, b := top[i], top[j]
		if a.Calls != b.Calls {
			return a.Calls > b.Calls
		}
		if !a.LastCallAt.Equal(b.LastCallAt) {
			return a.LastCallAt.After(b.LastCallAt)
		}
		return a.ContactID < b.ContactID
	})
	return top[:min(len(top), topCallers)], true, nil
}

func scanCounts(rows *sql.Rows, into map[int64]int64) error {
	defer rows.Close()
	for rows.Next() {
		var id, n int64
		if err := rows.Scan(&id, &n); err != nil {
			return err
		}
		into[id] += n
	}
	return rows.Err()
}
