package storage

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// busChannel is the one PostgreSQL notification channel of switchboard.
// A notice's payload is "topic origin data": origin tells a node its own
// notices apart, data is the topic's own (often empty).
const busChannel = "switchboard"

// maxNotice is PostgreSQL's bound on a NOTIFY payload, less room for the
// topic and origin.
const maxNotice = 7900

// Execer is what both *sql.DB and *sql.Tx offer for a statement.
type Execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// Bus carries change notices between the nodes that share a PostgreSQL
// database (SPEC §11: a change made on one node takes effect on every
// node's next call, pushed, not polled). On SQLite, where one node owns the
// file, it carries nothing and stores keep their polling for the command
// line's changes.
//
// Handlers run on the bus's own goroutine, one at a time; they are called
// with nil data after the listening connection was lost and is back, since
// notices may have been missed meanwhile: a handler then reloads.
type Bus struct {
	db     *DB
	origin string

	mu      sync.Mutex
	subs    map[string]map[int]func(data []byte)
	nextSub int
	started bool
	out     chan string
	stop    context.CancelFunc
	done    chan struct{}
	ready   chan struct{} // closed once the first LISTEN is in force
}

// Bus returns the database's bus, made on first use.
func (db *DB) Bus() *Bus {
	db.busOnce.Do(func() {
		var b [6]byte
		rand.Read(b[:])
		db.bus = &Bus{db: db, origin: hex.EncodeToString(b[:]), subs: map[string]map[int]func([]byte){},
			out: make(chan string, 1024), done: make(chan struct{}), ready: make(chan struct{})}
	})
	return db.bus
}

// NotifyTx queues a notice of topic in tx: PostgreSQL delivers it to every
// node when (and only if) tx commits.
func (db *DB) NotifyTx(ctx context.Context, tx Execer, topic string) error {
	if db.Driver != Postgres {
		return nil
	}
	_, err := tx.ExecContext(ctx, `SELECT pg_notify($1, $2)`, busChannel, topic+" "+db.Bus().origin+" ")
	return err
}

// NotifyTxData is NotifyTx with data for the subscribers (at most
// maxNotice bytes; a longer notice fails the transaction's statement).
func (db *DB) NotifyTxData(ctx context.Context, tx Execer, topic, data string) error {
	if db.Driver != Postgres {
		return nil
	}
	if len(data) > maxNotice {
		return fmt.Errorf("storage: notice of %s: %d bytes of data, at most %d", topic, len(data), maxNotice)
	}
	_, err := tx.ExecContext(ctx, `SELECT pg_notify($1, $2)`, busChannel, topic+" "+db.Bus().origin+" "+data)
	return err
}

// Subscribe calls fn for every notice of topic from another node (and with
// nil after a reconnection); the returned function ends the subscription.
func (b *Bus) Subscribe(topic string, fn func(data []byte)) func() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.subs[topic] == nil {
		b.subs[topic] = map[int]func([]byte){}
	}
	b.nextSub++
	id := b.nextSub
	b.subs[topic][id] = fn
	b.startLocked()
	return func() {
		b.mu.Lock()
		delete(b.subs[topic], id)
		b.mu.Unlock()
	}
}

// Publish sends data to the other nodes' subscribers of topic. It never
// blocks: it is called on the SIP path's side lines (the board's events),
// so when the send queue is full the notice is dropped and false returned.
func (b *Bus) Publish(topic string, data []byte) bool {
	if b.db.Driver != Postgres {
		return true
	}
	if len(data) > maxNotice {
		return false
	}
	b.mu.Lock()
	b.startLocked()
	b.mu.Unlock()
	select {
	case b.out <- topic + " " + b.origin + " " + string(data):
		return true
	default:
		return false
	}
}

// Ready is closed once the bus listens, so that a test (or a node starting)
// knows notices from now on reach it.
func (b *Bus) Ready() <-chan struct{} { return b.ready }

func (b *Bus) startLocked() {
	if b.started || b.db.Driver != Postgres {
		return
	}
	b.started = true
	ctx, cancel := context.WithCancel(context.Background())
	b.stop = cancel
	go b.run(ctx)
}

// close stops the bus; DB.Close calls it.
func (b *Bus) close() {
	b.mu.Lock()
	stop := b.stop
	b.mu.Unlock()
	if stop != nil {
		stop()
		<-b.done
	}
}

// run keeps one connection listening, reconnecting with a growing pause,
// and sends queued notices through the pool.
func (b *Bus) run(ctx context.Context) {
	defer close(b.done)
	go b.send(ctx)
	pause := 100 * time.Millisecond
	first := true
	for ctx.Err() == nil {
		// A lost connection is made good by the resync after the next
		// LISTEN; while the database is away there is nothing to hear.
		b.listen(ctx, first)
		if ctx.Err() != nil {
			return
		}
		first = false
		select {
		case <-ctx.Done():
			return
		case <-time.After(pause):
		}
		pause = min(2*pause, 5*time.Second)
	}
}

func (b *Bus) listen(ctx context.Context, first bool) error {
	cfg, err := pgx.ParseConfig(b.db.dsn)
	if err != nil {
		return err
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = pgConnectTimeout
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, `LISTEN `+busChannel); err != nil {
		return err
	}
	if first {
		close(b.ready)
	} else {
		b.deliverAll(nil) // notices may have passed while we were away
	}
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		topic, rest, _ := strings.Cut(n.Payload, " ")
		origin, data, _ := strings.Cut(rest, " ")
		if origin == b.origin {
			continue
		}
		b.deliver(topic, []byte(data))
	}
}

func (b *Bus) handlers(topic string) []func([]byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var fns []func([]byte)
	for t, subs := range b.subs {
		if topic == "" || t == topic {
			for _, fn := range subs {
				fns = append(fns, fn)
			}
		}
	}
	return fns
}

func (b *Bus) deliver(topic string, data []byte) {
	if data == nil {
		data = []byte{}
	}
	for _, fn := range b.handlers(topic) {
		fn(data)
	}
}

func (b *Bus) deliverAll(data []byte) {
	for _, fn := range b.handlers("") {
		fn(data)
	}
}

// send writes queued notices; one that fails is dropped (the board loses
// an event of another node, which its next list reload shows).
func (b *Bus) send(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case p := <-b.out:
			sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			b.db.ExecContext(sctx, `SELECT pg_notify($1, $2)`, busChannel, p)
			cancel()
		}
	}
}
