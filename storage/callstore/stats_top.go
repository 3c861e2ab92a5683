package callstore

import (
	"context"
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
// busiest contacts in all are counted one by one instead (topByTotals).
func (s *Store) statsTopCallers(ctx context.Context, f stats.Filter, p statsPlan) ([]stats.TopCaller, error) {
	if p.fromDay != "" && f.Hotline == "" && f.Campaign == "" {
		inside, all, err := s.rollupShare(ctx, p)
		if err != nil {
			return nil, err
		}
		if 2*inside > all {
			top, ok, err := s.topByTotals(ctx, f)
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

// maxTopExamined bounds the contacts topByTotals looks at before it
// gives up for the direct count.
const maxTopExamined = 5000

// topByTotals walks the contacts in descending order of their calls in
// all (stats_contacts) and counts each one's calls in the range, until no
// contact left can reach the 20th place: a contact's total bounds its
// calls in any range. When the range holds most of the calls, the walk
// stops after the few hundred busiest contacts. ok is false when it would
// take more than maxTopExamined contacts.
func (s *Store) topByTotals(ctx context.Context, f stats.Filter) (top []stats.TopCaller, ok bool, err error) {
	const page = 500
	in := s.db.Rebind(`SELECT COUNT(*), COALESCE(MAX(started_at), 0) FROM calls` + s.indexed(f, "calls_contact_time") + `
		WHERE contact_id = ? AND started_at >= ? AND started_at < ? AND ` + statsSQL)
	for offset := 0; offset < maxTopExamined; offset += page {
		rows, err := s.db.QueryContext(ctx, s.db.Rebind(`SELECT contact_id, calls FROM stats_contacts
			WHERE calls > 0 ORDER BY calls DESC LIMIT ? OFFSET ?`), page, offset)
		if err != nil {
			return nil, false, err
		}
		var ids, totals []int64
		for rows.Next() {
			var id, n int64
			if err := rows.Scan(&id, &n); err != nil {
				rows.Close()
				return nil, false, err
			}
			ids, totals = append(ids, id), append(totals, n)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, false, err
		}
		for i, id := range ids {
			if len(top) >= topCallers && totals[i] < top[topCallers-1].Calls {
				return top, true, nil
			}
			var n, last int64
			if err := s.db.QueryRowContext(ctx, in, id, toMillis(f.Since), toMillis(f.Until)).Scan(&n, &last); err != nil {
				return nil, false, err
			}
			if n > 0 {
				top = insertTop(top, stats.TopCaller{ContactID: id, Calls: n, LastCallAt: fromMillis(last).In(f.Location)})
			}
		}
		if len(ids) < page {
			return top, true, nil // every contact seen
		}
	}
	return nil, false, nil
}

// insertTop puts t in its place among the top callers (most calls, then
// the latest last call, then the lowest id) and keeps the first 20.
func insertTop(top []stats.TopCaller, t stats.TopCaller) []stats.TopCaller {
	i := sort.Search(len(top), func(i int) bool {
		a := top[i]
		if a.Calls != t.Calls {
			return a.Calls < t.Calls
		}
		if !a.LastCallAt.Equal(t.LastCallAt) {
			return a.LastCallAt.Before(t.LastCallAt)
		}
		return a.ContactID > t.ContactID
	})
	top = append(top, stats.TopCaller{})
	copy(top[i+1:], top[i:])
	top[i] = t
	return top[:min(len(top), topCallers)]
}
