// Package notify delivers missed-call notifications (SPEC §4) by email,
// SMS and webhook through a durable outbox: rows are written in the
// transaction that creates the missed-call entry, a pool of workers claims
// the due ones, sends them and retries failures with exponential back-off
// and jitter until a limit, after which a row is marked failed. A row is
// unique per (entry, channel, recipient), so a notification is queued once
// ever, and pending rows are picked up again after a restart.
package notify

import (
	"context"
	crand "crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/switchboard-sip/switchboard/callctl"
	"github.com/switchboard-sip/switchboard/configs"
	"github.com/switchboard-sip/switchboard/metrics"
	"github.com/switchboard-sip/switchboard/missed"
	"github.com/switchboard-sip/switchboard/storage"
)

// Row statuses of the outbox.
const (
	StatusPending = "pending"
	StatusSent    = "sent"
	StatusFailed  = "failed"
)

// Defaults of Options.
const (
	defaultWorkers     = 4
	defaultMaxAttempts = 10
	defaultBaseDelay   = 2 * time.Second
	defaultMaxDelay    = 10 * time.Minute
	defaultLease       = 2 * time.Minute
	defaultPoll        = time.Second
	defaultSendTimeout = 30 * time.Second
	maxErrorText       = 500
)

// migrations are the schema steps of the "outbox" component. Append only.
// Times are unix milliseconds in UTC.
var migrations = []string{
	`CREATE TABLE outbox (
		id              TEXT    NOT NULL PRIMARY KEY,
		missed_id       TEXT    NOT NULL,
		channel         TEXT    NOT NULL,
		recipient       TEXT    NOT NULL,
		payload         TEXT    NOT NULL,
		status          TEXT    NOT NULL DEFAULT 'pending',
		attempts        INTEGER NOT NULL DEFAULT 0,
		next_attempt_at INTEGER NOT NULL,
		last_error      TEXT    NOT NULL DEFAULT '',
		sent_at         INTEGER,
		created_at      INTEGER NOT NULL,
		claim           TEXT    NOT NULL DEFAULT '',
		UNIQUE (missed_id, channel, recipient)
	);
	CREATE INDEX outbox_due ON outbox(status, next_attempt_at);`,
}

// Channel delivers one notification to one recipient. An error makes the
// row retry later unless it is Permanent.
type Channel interface {
	Send(ctx context.Context, d Delivery) error
}

// Delivery is one outbox row being sent.
type Delivery struct {
	ID        string // outbox row id; stable across retries (an idempotency key)
	MissedID  string
	Channel   string
	Recipient string
	Attempt   int    // 1 for the first try
	Body      []byte // the stored payload JSON
	Payload   *Payload
}

type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// Permanent marks a send error that no retry can fix (a template that does
// not render, a recipient the provider rejects for good): the row is marked
// failed at once.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// IsPermanent tells whether err was marked with Permanent.
func IsPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p)
}

// Options configure a Notifier. DB and Config are required.
type Options struct {
	DB     *storage.DB
	Config *configs.Config
	// Channels replaces the channels built from Config (tests); a channel
	// missing from the map is built from Config.
	Channels map[string]Channel
	Metrics  *metrics.Metrics
	Log      *zap.Logger
	// Workers is how many sends run at once (default 4).
	Workers int
	// MaxAttempts is how many tries a row gets before it is failed
	// (default 10).
	MaxAttempts int
	// BaseDelay and MaxDelay bound the back-off: the n-th retry waits about
	// BaseDelay·2^(n-1), at most MaxDelay, half of it jittered (defaults
	// 2s, 10m).
	BaseDelay, MaxDelay time.Duration
	// Lease is how long a claimed row belongs to this process: a node that
	// dies mid-send leaves its rows to others after it (default 2m).
	Lease time.Duration
	// Poll is how often the outbox is read when nothing woke the
	// dispatcher: rows queued by other nodes and retries (default 1s).
	Poll time.Duration
	// SendTimeout bounds one send (default 30s, less than Lease).
	SendTimeout time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// OnOutcome, when set, is told of every send's outcome after it is
	// recorded (tests, logs of a demo). It must not block.
	OnOutcome func(Outcome)
}

// Outcome is the result of one send attempt, once recorded in the outbox.
type Outcome struct {
	ID        string
	MissedID  string
	Channel   string
	Recipient string
	Attempt   int
	// Status is sent, failed (for good), retry, or released (cut short by
	// Close; due again at once).
	Status string
	Err    error
}

// Notifier owns the outbox: Enqueue writes rows, the dispatcher sends them.
// It implements missed.Notifier.
type Notifier struct {
	db       *storage.DB
	cfg      atomic.Pointer[configs.Config]
	chans    map[string]Channel
	met      *metrics.Metrics
	log      *zap.Logger
	opts     Options
	now      func() time.Time
	claimTag string

	wake     chan struct{}
	stop     context.CancelFunc
	sendCtx  context.Context // cancelled only when Close gives up waiting
	cancelSd context.CancelFunc
	done     chan struct{}
	inflight sync.WaitGroup
	closed   atomic.Bool
}

// New migrates the outbox, builds the channels from the config and starts
// the dispatcher, which resumes rows left pending by an earlier run.
func New(ctx context.Context, o Options) (*Notifier, error) {
	if o.DB == nil {
		return nil, errors.New("notify: no database")
	}
	if o.Config == nil {
		return nil, errors.New("notify: no config")
	}
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Workers <= 0 {
		o.Workers = defaultWorkers
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = defaultMaxAttempts
	}
	if o.BaseDelay <= 0 {
		o.BaseDelay = defaultBaseDelay
	}
	if o.MaxDelay <= 0 {
		o.MaxDelay = defaultMaxDelay
	}
	o.MaxDelay = max(o.MaxDelay, o.BaseDelay)
	if o.Lease <= 0 {
		o.Lease = defaultLease
	}
	if o.Poll <= 0 {
		o.Poll = defaultPoll
	}
	if o.SendTimeout <= 0 {
		o.SendTimeout = defaultSendTimeout
	}
	o.SendTimeout = min(o.SendTimeout, o.Lease/2)
	if err := o.DB.Migrate(ctx, "outbox", migrations); err != nil {
		return nil, fmt.Errorf("notify: %w", err)
	}
	chans, err := buildChannels(o.Config, o.Channels)
	if err != nil {
		return nil, err
	}
	var tag [8]byte
	if _, err := crand.Read(tag[:]); err != nil {
		return nil, fmt.Errorf("notify: claim tag: %w", err)
	}
	dctx, stop := context.WithCancel(context.Background())
	sctx, cancelSd := context.WithCancel(context.Background())
	n := &Notifier{
		db: o.DB, chans: chans, met: o.Metrics, log: o.Log, opts: o, now: o.Now,
		claimTag: hex.EncodeToString(tag[:]),
		wake:     make(chan struct{}, 1),
		stop:     stop, sendCtx: sctx, cancelSd: cancelSd,
		done: make(chan struct{}),
	}
	n.cfg.Store(o.Config)
	go n.run(dctx)
	return n, nil
}

// buildChannels makes the configured channels, with overrides taking the
// place of built ones.
func buildChannels(cfg *configs.Config, over map[string]Channel) (map[string]Channel, error) {
	chans := map[string]Channel{}
	for name, c := range over {
		chans[name] = c
	}
	m := cfg.Missed
	if _, ok := chans[ChannelEmail]; !ok && m.Email.SMTP != "" {
		c, err := NewEmail(m.Email)
		if err != nil {
			return nil, err
		}
		chans[ChannelEmail] = c
	}
	if _, ok := chans[ChannelSMS]; !ok && m.SMS.URL != "" {
		c, err := NewSMS(m.SMS)
		if err != nil {
			return nil, err
		}
		chans[ChannelSMS] = c
	}
	if _, ok := chans[ChannelWebhook]; !ok && (m.Webhook.URL != "" || cfg.Emergency.Notify.Webhook != "") {
		chans[ChannelWebhook] = NewWebhook(m.Webhook)
	}
	return chans, nil
}

// Enqueue writes one outbox row per (channel, recipient) of the notice in
// tx, the transaction that creates the entry (missed.Notifier). Rows that
// exist already are left alone, so a notification is queued once ever. It
// returns how many rows it added.
func (n *Notifier) Enqueue(ctx context.Context, tx *sql.Tx, nt missed.Notice) (int, error) {
	cfg := n.cfg.Load()
	body, err := json.Marshal(newPayload(nt, cfg.Location))
	if err != nil {
		return 0, fmt.Errorf("notify: payload of %s: %w", nt.Entry.ID, err)
	}
	now := n.now().UTC()
	added := 0
	for _, ch := range []string{ChannelEmail, ChannelSMS, ChannelWebhook} {
		for _, to := range recipients(&cfg.Missed, nt.Hotline, nt.Extra)[ch] {
			res, err := tx.ExecContext(ctx, n.db.Rebind(`INSERT INTO outbox
				(id, missed_id, channel, recipient, payload, status, attempts, next_attempt_at, created_at)
				VALUES (?, ?, ?, ?, ?, 'pending', 0, ?, ?)
				ON CONFLICT (missed_id, channel, recipient) DO NOTHING`),
				callctl.NewID(now), nt.Entry.ID, ch, to, string(body), now.UnixMilli(), now.UnixMilli())
			if err != nil {
				return 0, fmt.Errorf("notify: queue %s to %s for %s: %w", ch, to, nt.Entry.ID, err)
			}
			if k, err := res.RowsAffected(); err == nil {
				added += int(k)
			}
		}
	}
	return added, nil
}

// Kick wakes the dispatcher: rows were just committed.
func (n *Notifier) Kick() {
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// SetConfig applies a reloaded config to the notifications queued from now
// on (recipients). The channels keep the config they were built with.
func (n *Notifier) SetConfig(cfg *configs.Config) {
	if cfg != nil {
		n.cfg.Store(cfg)
	}
}

// Close stops claiming rows and waits for the sends in flight until ctx
// ends; sends still running then are cancelled and their rows released for
// the next run.
func (n *Notifier) Close(ctx context.Context) error {
	if n.closed.Swap(true) {
		<-n.done
		return nil
	}
	n.stop()
	<-n.done
	waited := make(chan struct{})
	go func() {
		n.inflight.Wait()
		close(waited)
	}()
	select {
	case <-waited:
		n.cancelSd()
		return nil
	case <-ctx.Done():
		n.cancelSd()
		<-waited
		return fmt.Errorf("notify: close: sends cut short: %w", ctx.Err())
	}
}

// row is a claimed outbox row.
type row struct {
	id, missedID, channel, recipient string
	payload                          []byte
	attempts                         int
}

// run is the dispatcher: it claims due rows while workers are free and
// sleeps until a wake, a free worker, the next due row or the poll tick.
func (n *Notifier) run(ctx context.Context) {
	defer close(n.done)
	slots := make(chan struct{}, n.opts.Workers)
	freed := make(chan struct{}, 1)
	for {
		free := cap(slots) - len(slots)
		var claimed []row
		if free > 0 {
			var err error
			claimed, err = n.claim(ctx, free)
			if err != nil && ctx.Err() == nil {
				n.log.Error("outbox: claim", zap.Error(err))
			}
		}
		for _, r := range claimed {
			slots <- struct{}{}
			n.inflight.Add(1)
			go func(r row) {
				defer n.inflight.Done()
				n.deliver(r)
				<-slots
				select {
				case freed <- struct{}{}:
				default:
				}
			}(r)
		}
		n.updateDepth(ctx)
		if len(claimed) == free && free > 0 {
			continue // there may be more due rows
		}
		wait := n.opts.Poll
		if free > 0 {
			if next, ok := n.nextDue(ctx); ok {
				wait = min(wait, max(next.Sub(n.now()), 0))
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-n.wake:
		case <-freed:
		case <-t.C:
		}
		t.Stop()
	}
}

// claim takes up to limit due rows for this process: attempts goes up and
// next_attempt_at moves to the end of the lease, so another node (or this
// one after a crash) only takes the row again when the lease ran out. The
// outer conditions repeat the inner ones so that PostgreSQL rechecks them
// on rows another node updated meanwhile, and on PostgreSQL the inner
// select skips rows another node is claiming right now (SPEC §11).
func (n *Notifier) claim(ctx context.Context, limit int) ([]row, error) {
	now := n.now().UTC().UnixMilli()
	lease := now + n.opts.Lease.Milliseconds()
	rows, err := n.db.QueryContext(ctx, n.db.Rebind(`UPDATE outbox
		SET attempts = attempts + 1, next_attempt_at = ?, claim = ?
		WHERE status = 'pending' AND next_attempt_at <= ? AND id IN (
			SELECT id FROM outbox WHERE status = 'pending' AND next_attempt_at <= ?
			ORDER BY next_attempt_at LIMIT ?`+n.db.SkipLocked()+`)
		RETURNING id, missed_id, channel, recipient, payload, attempts`),
		lease, n.claimTag, now, now, limit)
	if err != nil {
		return nil, fmt.Errorf("notify: claim: %w", err)
	}
	defer rows.Close()
	var out []row
	for rows.Next() {
		var r row
		var payload string
		if err := rows.Scan(&r.id, &r.missedID, &r.channel, &r.recipient, &payload, &r.attempts); err != nil {
			return nil, fmt.Errorf("notify: claim: %w", err)
		}
		r.payload = []byte(payload)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("notify: claim: %w", err)
	}
	return out, nil
}

func (n *Notifier) nextDue(ctx context.Context) (time.Time, bool) {
	var ms sql.NullInt64
	err := n.db.QueryRowContext(ctx, `SELECT MIN(next_attempt_at) FROM outbox WHERE status = 'pending'`).Scan(&ms)
	if err != nil || !ms.Valid {
		return time.Time{}, false
	}
	return time.UnixMilli(ms.Int64), true
}

func (n *Notifier) updateDepth(ctx context.Context) {
	if n.met == nil {
		return
	}
	var depth int64
	if err := n.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM outbox WHERE status = 'pending'`).Scan(&depth); err == nil {
		n.met.OutboxDepth.Set(float64(depth))
	}
}

// deliver sends one claimed row and records the outcome.
func (n *Notifier) deliver(r row) {
	ch := n.chans[r.channel]
	var err error
	p, derr := decodePayload(r.payload)
	switch {
	case ch == nil:
		err = Permanent(fmt.Errorf("channel %s is not configured", r.channel))
	case derr != nil:
		err = Permanent(derr)
	default:
		ctx, cancel := context.WithTimeout(n.sendCtx, n.opts.SendTimeout)
		err = ch.Send(ctx, Delivery{ID: r.id, MissedID: r.missedID, Channel: r.channel, Recipient: r.recipient,
			Attempt: r.attempts, Body: r.payload, Payload: p})
		cancel()
	}
	n.finish(r, err)
}

// finish writes a send's outcome. The write is retried a few times: a send
// that succeeded must not be repeated because the database was busy.
func (n *Notifier) finish(r row, sendErr error) {
	now := n.now().UTC()
	var (
		query  string
		args   []any
		status string
	)
	switch {
	case sendErr == nil:
		status = StatusSent
		query = `UPDATE outbox SET status = 'sent', sent_at = ?, last_error = '' WHERE id = ? AND claim = ?`
		args = []any{now.UnixMilli(), r.id, n.claimTag}
	case n.sendCtx.Err() != nil:
		// Cut short by our own shutdown: not the channel's fault, so the try
		// does not count and the row is due again at once.
		status = "released"
		query = `UPDATE outbox SET attempts = attempts - 1, next_attempt_at = ?, claim = '' WHERE id = ? AND claim = ?`
		args = []any{now.UnixMilli(), r.id, n.claimTag}
	case IsPermanent(sendErr) || r.attempts >= n.opts.MaxAttempts:
		status = StatusFailed
		query = `UPDATE outbox SET status = 'failed', last_error = ? WHERE id = ? AND claim = ?`
		args = []any{errorText(sendErr), r.id, n.claimTag}
	default:
		status = "retry"
		next := now.Add(n.backoff(r.attempts))
		query = `UPDATE outbox SET next_attempt_at = ?, last_error = ? WHERE id = ? AND claim = ?`
		args = []any{next.UnixMilli(), errorText(sendErr), r.id, n.claimTag}
	}
	var err error
	for try := 0; try < 5; try++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err = n.db.ExecContext(ctx, n.db.Rebind(query), args...)
		cancel()
		if err == nil {
			break
		}
		time.Sleep(time.Duration(try+1) * 100 * time.Millisecond) // the database is busy: nothing to await
	}
	if err != nil {
		n.log.Error("outbox: record outcome", zap.String("id", r.id), zap.String("outcome", status), zap.Error(err))
	}
	if n.met != nil && status != "released" {
		n.met.Notifications.WithLabelValues(r.channel, status).Inc()
	}
	n.updateDepth(context.Background())
	fields := []zap.Field{zap.String("id", r.id), zap.String("missed", r.missedID), zap.String("channel", r.channel),
		zap.String("recipient", r.recipient), zap.Int("attempt", r.attempts), zap.String("outcome", status)}
	switch status {
	case StatusSent:
		n.log.Info("notification sent", fields...)
	case StatusFailed:
		n.log.Error("notification failed", append(fields, zap.Error(sendErr))...)
	default:
		n.log.Warn("notification not sent", append(fields, zap.Error(sendErr))...)
	}
	if n.opts.OnOutcome != nil {
		n.opts.OnOutcome(Outcome{ID: r.id, MissedID: r.missedID, Channel: r.channel, Recipient: r.recipient,
			Attempt: r.attempts, Status: status, Err: sendErr})
	}
	n.Kick()
}

// backoff is the wait before retry number attempts+1: exponential, capped,
// with the upper half jittered so that rows failed together do not retry
// together.
func (n *Notifier) backoff(attempts int) time.Duration {
	d := n.opts.BaseDelay
	for i := 1; i < attempts && d < n.opts.MaxDelay; i++ {
		d *= 2
	}
	d = min(d, n.opts.MaxDelay)
	half := d / 2
	return half + time.Duration(rand.Int64N(int64(half)+1))
}

func errorText(err error) string {
	s := strings.ToValidUTF8(err.Error(), "?")
	if len(s) > maxErrorText {
		s = s[:maxErrorText]
	}
	return s
}

// Row is an outbox row as Rows reports it, for tests, the board and the
// command line.
type Row struct {
	ID            string
	MissedID      string
	Channel       string
	Recipient     string
	Status        string
	Attempts      int
	NextAttemptAt time.Time
	LastError     string
	SentAt        *time.Time
}

// Rows lists the outbox rows of one entry (all rows when missedID is
// empty), oldest first.
func (n *Notifier) Rows(ctx context.Context, missedID string) ([]Row, error) {
	query := `SELECT id, missed_id, channel, recipient, status, attempts, next_attempt_at, last_error, sent_at FROM outbox`
	var args []any
	if missedID != "" {
		query += ` WHERE missed_id = ?`
		args = append(args, missedID)
	}
	query += ` ORDER BY created_at, id`
	rows, err := n.db.QueryContext(ctx, n.db.Rebind(query), args...)
	if err != nil {
		return nil, fmt.Errorf("notify: rows: %w", err)
	}
	defer rows.Close()
	var out []Row
	for rows.Next() {
		var r Row
		var next int64
		var sent sql.NullInt64
		if err := rows.Scan(&r.ID, &r.MissedID, &r.Channel, &r.Recipient, &r.Status, &r.Attempts, &next, &r.LastError, &sent); err != nil {
			return nil, fmt.Errorf("notify: rows: %w", err)
		}
		r.NextAttemptAt = time.UnixMilli(next).UTC()
		if sent.Valid {
			t := time.UnixMilli(sent.Int64).UTC()
			r.SentAt = &t
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("notify: rows: %w", err)
	}
	return out, nil
}
