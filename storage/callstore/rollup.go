package callstore

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/switchboard-sip/switchboard/cdr"
	"github.com/switchboard-sip/switchboard/stats"
)

// Rollups keep the front-desk figures (SPEC §10) per local day, so that a
// report over months reads a few thousand rows instead of every call:
//
//   - stats_days: per local day (in the rollup zone, the configured
//     timezone), hotline and campaign, the inbound calls, answered and
//     missed ones, and the calls of each local hour of the day (by_day and
//     by_hour of the week);
//   - stats_hist: per local day, hotline and campaign, histograms of ring
//     and talk times (for the percentiles), one compact blob each;
//   - stats_contacts: per contact, its inbound calls (all retained ones):
//     a long range's top callers are those totals less the few calls
//     outside the range.
//
// The record writer keeps them current in the transaction that writes the
// records (rollupBatch: the old version of a row out, the new one in), and
// the few other changes of call rows (retention, a contact's deletion or
// merge, a lost node's calls) do the same. Rebuild recomputes them from the
// calls, and runs by itself when the zone changed. Days that lie partly in
// a report's range, and reports of one contact, are read from the calls'
// indexes instead (stats.go).
var rollupMigrations = []string{
	`CREATE TABLE stats_days (
		day      TEXT    NOT NULL,
		hotline  TEXT    NOT NULL,
		campaign TEXT    NOT NULL,
		calls    INTEGER NOT NULL DEFAULT 0,
		answered INTEGER NOT NULL DEFAULT 0,
		missed   INTEGER NOT NULL DEFAULT 0,
		` + hourColumnsDDL() + `,
		PRIMARY KEY (day, hotline, campaign)
	);
	CREATE TABLE stats_hist (
		day      TEXT    NOT NULL,
		hotline  TEXT    NOT NULL,
		campaign TEXT    NOT NULL,
		kind     INTEGER NOT NULL,
		data     BYTEA   NOT NULL,
		PRIMARY KEY (day, hotline, campaign, kind)
	);
	CREATE TABLE stats_contacts (
		contact_id INTEGER NOT NULL PRIMARY KEY,
		calls      INTEGER NOT NULL DEFAULT 0
	);
	CREATE TABLE stats_meta (
		name  TEXT NOT NULL PRIMARY KEY,
		value TEXT NOT NULL
	);`,
	// The contacts with most calls first, for a long range's top callers.
	`CREATE INDEX stats_contacts_calls ON stats_contacts(calls);`,
}

// Histogram kinds of stats_hist.
const (
	histRing = 0
	histTalk = 1
)

func hourColumn(h int) string { return fmt.Sprintf("h%02d", h) }

func hourColumnsDDL() string {
	cols := make([]string, 24)
	for h := range cols {
		cols[h] = hourColumn(h) + " INTEGER NOT NULL DEFAULT 0"
	}
	return strings.Join(cols, ",\n\t\t")
}

func hourColumns() string {
	cols := make([]string, 24)
	for h := range cols {
		cols[h] = hourColumn(h)
	}
	return strings.Join(cols, ", ")
}

// timeBucket is the value a ring or talk time is counted under in the
// histograms: the time cut to two significant digits (at least 10 ms
// steps), so that a histogram has a few hundred buckets whatever the
// times, and a percentile is exact to 10 % or better. bucketSQL is the
// same in SQL, for the calls read from the index.
func timeBucket(ms int64) int64 {
	if ms < 0 {
		return 0
	}
	step := int64(10)
	for ms >= 100*step {
		step *= 10
	}
	return ms / step * step
}

func bucketSQL(col string) string {
	var b strings.Builder
	b.WriteString("CASE")
	step := int64(10)
	for range 8 {
		fmt.Fprintf(&b, " WHEN %s < %d THEN %s / %d * %d", col, 100*step, col, step, step)
		step *= 10
	}
	fmt.Fprintf(&b, " ELSE %s / %d * %d END", col, step, step)
	return b.String()
}

// rollupRow is what one call contributes to the rollups.
type rollupRow struct {
	id                             string
	startedAt                      int64
	inbound                        bool
	hotline, campaign, disposition string
	ring, talk                     int64
	contact                        int64
}

func rowOf(r cdr.Record) rollupRow {
	return rollupRow{id: r.ID, startedAt: toMillis(r.StartedAt), inbound: r.Direction == cdr.Inbound,
		hotline: r.Hotline, campaign: r.Campaign, disposition: string(r.Disposition),
		ring: r.RingMS, talk: r.TalkMS, contact: r.ContactID}
}

type dayKey struct{ day, hotline, campaign string }

type dayCounts struct {
	calls, answered, missed int64
	hours                   [24]int64
}

type histKey struct {
	day, hotline, campaign string
	kind                   int
}

// rollupDelta is a change of the rollups: counts to add (negative to
// take away).
type rollupDelta struct {
	loc      *time.Location
	days     map[dayKey]*dayCounts
	hist     map[histKey]map[int64]int64
	contacts map[int64]int64
}

func newDelta(loc *time.Location) *rollupDelta {
	return &rollupDelta{loc: loc, days: map[dayKey]*dayCounts{}, hist: map[histKey]map[int64]int64{}, contacts: map[int64]int64{}}
}

func (d *rollupDelta) empty() bool {
	return len(d.days) == 0 && len(d.hist) == 0 && len(d.contacts) == 0
}

// add counts r in (sign 1) or out (sign -1), as the statistics count it:
// inbound calls only; missed are no answer and busy (SPEC §3); ring time
// over answered and missed calls, talk time over answered ones.
func (d *rollupDelta) add(r rollupRow, sign int64) {
	if !r.inbound || r.startedAt == 0 {
		return
	}
	l := time.UnixMilli(r.startedAt).In(d.loc)
	day := l.Format(time.DateOnly)
	k := dayKey{day, r.hotline, r.campaign}
	c := d.days[k]
	if c == nil {
		c = &dayCounts{}
		d.days[k] = c
	}
	c.calls += sign
	c.hours[l.Hour()] += sign
	answered := r.disposition == string(cdr.Answered)
	missed := r.disposition == string(cdr.NoAnswer) || r.disposition == string(cdr.Busy)
	if answered {
		c.answered += sign
		d.histAdd(histKey{day, r.hotline, r.campaign, histTalk}, timeBucket(r.talk), sign)
	}
	if missed {
		c.missed += sign
	}
	if answered || missed {
		d.histAdd(histKey{day, r.hotline, r.campaign, histRing}, timeBucket(r.ring), sign)
	}
	if r.contact != 0 {
		d.contacts[r.contact] += sign
	}
}

func (d *rollupDelta) histAdd(k histKey, v, n int64) {
	h := d.hist[k]
	if h == nil {
		h = map[int64]int64{}
		d.hist[k] = h
	}
	h[v] += n
}

// encodeHist writes a histogram as ascending (value delta, count) pairs
// of varints; buckets with no calls are left out.
func encodeHist(h map[int64]int64) []byte {
	vals := make([]int64, 0, len(h))
	for v, n := range h {
		if n != 0 {
			vals = append(vals, v)
		}
	}
	sort.Slice(vals, func(i, j int) bool { return vals[i] < vals[j] })
	out := make([]byte, 0, 4*len(vals))
	prev := int64(0)
	for _, v := range vals {
		out = binary.AppendUvarint(out, uint64(v-prev))
		out = binary.AppendVarint(out, h[v])
		prev = v
	}
	return out
}

// decodeHist adds the histogram in b to h.
func decodeHist(b []byte, h map[int64]int64) error {
	return walkHist(b, func(v, n int64) { h[v] += n })
}

// walkHist calls fn with each (time bucket, count) of the histogram in b.
func walkHist(b []byte, fn func(v, n int64)) error {
	v := int64(0)
	for len(b) > 0 {
		dv, n := binary.Uvarint(b)
		if n <= 0 {
			return errors.New("callstore: a stats_hist blob is corrupt")
		}
		b = b[n:]
		c, m := binary.Varint(b)
		if m <= 0 {
			return errors.New("callstore: a stats_hist blob is corrupt")
		}
		b = b[m:]
		v += int64(dv)
		fn(v, c)
	}
	return nil
}

// maxBuckets is the number of time buckets: 100 of 10 ms below a second,
// then 90 per decade (two significant digits) up to 10^12 ms.
const maxBuckets = 100 + 9*90

// bucketIndex numbers the time bucket v (a timeBucket value) from 0 in
// ascending order; bucketValue is its inverse.
func bucketIndex(v int64) int {
	if v < 1000 {
		return int(max(v, 0) / 10)
	}
	k, step := 0, int64(10)
	for v >= 1000*step && k < 8 {
		k++
		step *= 10
	}
	// v lies in [10^(k+3), 10^(k+4)); its buckets are step*10 … step*99.
	return min(100+k*90+int(v/(step*10))-10, maxBuckets-1)
}

func bucketValue(i int) int64 {
	if i < 100 {
		return int64(i) * 10
	}
	k, j := (i-100)/90, (i-100)%90
	step := int64(100)
	for range k {
		step *= 10
	}
	return int64(j+10) * step
}

// rollupZone is the zone the rollups are kept in; nil while they are off.
func (s *Store) rollupZone() *time.Location {
	return s.rollLoc.Load()
}

// EnableRollups keeps the statistics' per-day rollups in loc (the
// configured timezone) from now on, and rebuilds them first when they were
// kept in another zone or never. Call it before the first Save: records
// written before it are only counted by that rebuild.
func (s *Store) EnableRollups(ctx context.Context, loc *time.Location) error {
	if loc == nil {
		loc = time.UTC
	}
	if err := s.db.Migrate(ctx, "rollups", rollupMigrations); err != nil {
		return fmt.Errorf("callstore: %w", err)
	}
	var zone string
	err := s.db.QueryRowContext(ctx, `SELECT value FROM stats_meta WHERE name = 'zone'`).Scan(&zone)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("callstore: rollups: %w", err)
	}
	s.rollLoc.Store(loc)
	if zone == loc.String() {
		return nil
	}
	t0 := time.Now()
	n, err := s.RebuildRollups(ctx)
	if err != nil {
		s.rollLoc.Store(nil)
		return err
	}
	log := s.log.Info
	if zone == "" && n == 0 {
		log = s.log.Debug // a new database: nothing to tell
	}
	log("statistics rollups rebuilt", zap.String("zone", loc.String()), zap.String("was", zone),
		zap.Int64("calls", n), zap.Duration("took", time.Since(t0)))
	return nil
}

// RebuildRollups recomputes the rollups from the calls, in the zone of
// EnableRollups, in one transaction (`switchboard stats --rebuild`), and
// returns how many inbound calls they count.
func (s *Store) RebuildRollups(ctx context.Context) (int64, error) {
	loc := s.rollupZone()
	if loc == nil {
		return 0, errors.New("callstore: rollups are not enabled")
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("callstore: rebuild rollups: %w", err)
	}
	defer tx.Rollback()
	// Deleting first takes the write lock (SQLite), so that no record is
	// written between the read of the calls and the commit.
	for _, t := range []string{"stats_days", "stats_hist", "stats_contacts", "stats_meta"} {
		if _, err := tx.ExecContext(ctx, `DELETE FROM `+t); err != nil {
			return 0, fmt.Errorf("callstore: rebuild rollups: %w", err)
		}
	}
	d := newDelta(loc)
	rows, err := tx.QueryContext(ctx, `SELECT id, started_at, direction, hotline, campaign, disposition, ring_ms, talk_ms, contact_id
		FROM calls`+s.indexed(statsAll, "calls_stats")+` WHERE `+statsSQL)
	if err != nil {
		return 0, fmt.Errorf("callstore: rebuild rollups: %w", err)
	}
	n, err := scanRollupRows(rows, func(r rollupRow) { d.add(r, 1) })
	if err != nil {
		return 0, fmt.Errorf("callstore: rebuild rollups: %w", err)
	}
	if err := s.applyDelta(ctx, tx, d); err != nil {
		return 0, err
	}
	if _, err := tx.ExecContext(ctx, s.db.Rebind(`INSERT INTO stats_meta (name, value) VALUES ('zone', ?)`), loc.String()); err != nil {
		return 0, fmt.Errorf("callstore: rebuild rollups: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("callstore: rebuild rollups: %w", err)
	}
	return n, nil
}

const rollupColumns = `id, started_at, direction, hotline, campaign, disposition, ring_ms, talk_ms, contact_id`

func scanRollupRows(rows *sql.Rows, each func(rollupRow)) (int64, error) {
	defer rows.Close()
	var n int64
	for rows.Next() {
		var r rollupRow
		var dir string
		var contact sql.NullInt64
		if err := rows.Scan(&r.id, &r.startedAt, &dir, &r.hotline, &r.campaign, &r.disposition, &r.ring, &r.talk, &contact); err != nil {
			return n, err
		}
		r.inbound = dir == string(cdr.Inbound)
		r.contact = contact.Int64
		each(r)
		n++
	}
	return n, rows.Err()
}

// rollupBatch is the record writer's hook: inside the batch's
// transaction, before the batch is written, it takes the stored versions
// of the batch's records out of the rollups and puts the new ones in.
func (s *Store) rollupBatch(ctx context.Context, tx *sql.Tx, batch []pendingRecord) error {
	loc := s.rollupZone()
	if loc == nil || len(batch) == 0 {
		return nil
	}
	d := newDelta(loc)
	ids := make([]any, len(batch))
	for i, p := range batch {
		ids[i] = p.rec.ID
		d.add(rowOf(p.rec), 1)
	}
	rows, err := tx.QueryContext(ctx, s.db.Rebind(`SELECT `+rollupColumns+` FROM calls WHERE id IN (`+placeholders(len(ids))+`)`), ids...)
	if err != nil {
		return fmt.Errorf("callstore: rollups: %w", err)
	}
	if _, err := scanRollupRows(rows, func(r rollupRow) { d.add(r, -1) }); err != nil {
		return fmt.Errorf("callstore: rollups: %w", err)
	}
	return s.applyDelta(ctx, tx, d)
}

// rollupChange keeps the rollups right across a change of the calls that
// match cond (a deletion or an update in tx): their rows are taken out
// before change runs and, unless it deleted them, put back after it.
func (s *Store) rollupChange(ctx context.Context, tx *sql.Tx, cond string, args []any, deletes bool, change func() error) error {
	loc := s.rollupZone()
	if loc == nil {
		return change()
	}
	d := newDelta(loc)
	var ids []any
	rows, err := tx.QueryContext(ctx, s.db.Rebind(`SELECT `+rollupColumns+` FROM calls WHERE `+cond), args...)
	if err != nil {
		return fmt.Errorf("callstore: rollups: %w", err)
	}
	if _, err := scanRollupRows(rows, func(r rollupRow) { d.add(r, -1); ids = append(ids, r.id) }); err != nil {
		return fmt.Errorf("callstore: rollups: %w", err)
	}
	if err := change(); err != nil {
		return err
	}
	for !deletes && len(ids) > 0 {
		part := ids[:min(len(ids), 500)]
		ids = ids[len(part):]
		rows, err := tx.QueryContext(ctx, s.db.Rebind(`SELECT `+rollupColumns+` FROM calls WHERE id IN (`+placeholders(len(part))+`)`), part...)
		if err != nil {
			return fmt.Errorf("callstore: rollups: %w", err)
		}
		if _, err := scanRollupRows(rows, func(r rollupRow) { d.add(r, 1) }); err != nil {
			return fmt.Errorf("callstore: rollups: %w", err)
		}
	}
	return s.applyDelta(ctx, tx, d)
}

// applyDelta adds d to the rollup tables.
func (s *Store) applyDelta(ctx context.Context, tx *sql.Tx, d *rollupDelta) error {
	if d.empty() {
		return nil
	}
	if err := s.applyDays(ctx, tx, d); err != nil {
		return fmt.Errorf("callstore: rollups: %w", err)
	}
	if err := s.applyHist(ctx, tx, d); err != nil {
		return fmt.Errorf("callstore: rollups: %w", err)
	}
	if err := s.applyContacts(ctx, tx, d); err != nil {
		return fmt.Errorf("callstore: rollups: %w", err)
	}
	return nil
}

func (s *Store) applyDays(ctx context.Context, tx *sql.Tx, d *rollupDelta) error {
	set := []string{"calls = stats_days.calls + excluded.calls", "answered = stats_days.answered + excluded.answered",
		"missed = stats_days.missed + excluded.missed"}
	for h := range 24 {
		c := hourColumn(h)
		set = append(set, c+" = stats_days."+c+" + excluded."+c)
	}
	stmt, err := tx.PrepareContext(ctx, s.db.Rebind(`INSERT INTO stats_days (day, hotline, campaign, calls, answered, missed, `+hourColumns()+`)
		VALUES (?, ?, ?, ?, ?, ?, `+placeholders(24)+`)
		ON CONFLICT (day, hotline, campaign) DO UPDATE SET `+strings.Join(set, ", ")))
	if err != nil {
		return err
	}
	defer stmt.Close()
	args := make([]any, 0, 30)
	for k, c := range d.days {
		if *c == (dayCounts{}) {
			continue
		}
		args = append(args[:0], k.day, k.hotline, k.campaign, c.calls, c.answered, c.missed)
		for _, n := range c.hours {
			args = append(args, n)
		}
		if _, err := stmt.ExecContext(ctx, args...); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) applyHist(ctx context.Context, tx *sql.Tx, d *rollupDelta) error {
	get, err := tx.PrepareContext(ctx, s.db.Rebind(`SELECT data FROM stats_hist WHERE day = ? AND hotline = ? AND campaign = ? AND kind = ?`))
	if err != nil {
		return err
	}
	defer get.Close()
	put, err := tx.PrepareContext(ctx, s.db.Rebind(`INSERT INTO stats_hist (day, hotline, campaign, kind, data) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (day, hotline, campaign, kind) DO UPDATE SET data = excluded.data`))
	if err != nil {
		return err
	}
	defer put.Close()
	for k, delta := range d.hist {
		h := map[int64]int64{}
		var b []byte
		switch err := get.QueryRowContext(ctx, k.day, k.hotline, k.campaign, k.kind).Scan(&b); {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return err
		default:
			if err := decodeHist(b, h); err != nil {
				return err
			}
		}
		for v, n := range delta {
			h[v] += n
		}
		if _, err := put.ExecContext(ctx, k.day, k.hotline, k.campaign, k.kind, encodeHist(h)); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) applyContacts(ctx context.Context, tx *sql.Tx, d *rollupDelta) error {
	stmt, err := tx.PrepareContext(ctx, s.db.Rebind(`INSERT INTO stats_contacts (contact_id, calls) VALUES (?, ?)
		ON CONFLICT (contact_id) DO UPDATE SET calls = stats_contacts.calls + excluded.calls`))
	if err != nil {
		return err
	}
	defer stmt.Close()
	for id, n := range d.contacts {
		if n == 0 {
			continue
		}
		if _, err := stmt.ExecContext(ctx, id, n); err != nil {
			return err
		}
	}
	return nil
}

// statsAll is the filter of every inbound call.
var statsAll = stats.Filter{}

// inTx runs fn in a transaction and commits it when fn succeeds.
func (s *Store) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}
