// Package postgres is the store.Store on PostgreSQL (pgx/v5 with a
// connection pool), for running several Gatehouse processes on one
// database.
//
// Storage conventions (see migrations/0001_init.sql) match the SQLite
// store's so that both behave alike: times are TIMESTAMPTZ written
// truncated to the millisecond and read back in UTC; JSON values are JSON
// columns kept byte for byte, nil or empty being NULL (read back nil);
// string lists are TEXT[] (nil is NULL and reads back nil, an empty list
// reads back empty); optional byte strings are NULL when empty.
//
// The change feed is LISTEN/NOTIFY on the channel gatehouse_changes, the
// payload being the JSON of a store.Change. Publish sends a NOTIFY; the
// first Subscribe opens one dedicated connection (outside the pool) that
// LISTENs and fans what it receives out to this Store's subscribers, the
// publisher's own changes included. When that connection drops it is
// re-established with backoff, and subscribers then get a "resync" change:
// notifications sent while nobody listened are lost.
package postgres

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"gatehouse/internal/store"
	"gatehouse/internal/store/internal/feed"
	"gatehouse/internal/store/internal/migrate"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Channel is the LISTEN/NOTIFY channel of the change feed.
const Channel = "gatehouse_changes"

// ListenerApplicationName is the application_name of the LISTEN
// connection (unless the URL sets one), so operators can tell it apart in
// pg_stat_activity.
const ListenerApplicationName = "gatehouse-listener"

// migrationLock is the advisory lock key that serialises migrations
// between processes starting at the same time. Any fixed number works; this
// one is "gatehous" in ASCII.
const migrationLock int64 = 0x6761746568_6f7573

// Reconnection backoff of the LISTEN connection.
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 10 * time.Second
)

// Store is a store.Store on PostgreSQL. Safe for concurrent use.
type Store struct {
	pool   *pgxpool.Pool
	hub    *feed.Hub
	closed atomic.Bool

	// life ends the listener when the Store closes.
	life context.Context
	stop context.CancelFunc
	wg   sync.WaitGroup

	mu        sync.Mutex // guards listening and the setting of closed
	listening bool

	closeOnce sync.Once
}

var _ store.Store = (*Store)(nil)

// Open connects to the database at url (a postgres:// URL or key=value
// string, as pgx accepts) and applies any pending migrations.
func Open(ctx context.Context, url string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx's message may quote the URL, password included.
		return nil, errors.New("postgres: invalid connection URL")
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: connecting: %w", err)
	}
	life, stop := context.WithCancel(context.Background())
	s := &Store{pool: pool, hub: feed.New(0), life: life, stop: stop}
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("postgres: %w", err)
	}
	return s, nil
}

// migrate applies the pending migrations in one transaction that first
// takes an advisory lock, so that of several processes starting at once
// one migrates and the others wait and then find nothing to do.
func (s *Store) migrate(ctx context.Context) error {
	all, err := migrate.Load(migrationFS, "migrations")
	if err != nil {
		return err
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("migrating: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLock); err != nil {
		return fmt.Errorf("migrating: taking the lock: %w", err)
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		name       TEXT NOT NULL,
		applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
	)`); err != nil {
		return fmt.Errorf("migrating: %w", err)
	}
	rows, err := tx.Query(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return fmt.Errorf("migrating: %w", err)
	}
	applied, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		return fmt.Errorf("migrating: %w", err)
	}
	pending, err := migrate.Pending(all, applied)
	if err != nil {
		return err
	}
	for _, m := range pending {
		// Without arguments pgx uses the simple protocol, which runs a
		// file of several statements.
		if _, err := tx.Exec(ctx, m.SQL); err != nil {
			return fmt.Errorf("migration %d (%s): %w", m.Version, m.Name, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.Version, m.Name); err != nil {
			return fmt.Errorf("migration %d (%s): %w", m.Version, m.Name, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("migrating: %w", err)
	}
	return nil
}

// Close stops the listener, ends every subscription and closes the pool.
// Later calls do nothing.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.stop() // also aborts a listener connection being set up
		// Under mu: once closed is set, startListening starts nothing, so
		// no wg.Add can race the Wait below.
		s.mu.Lock()
		s.closed.Store(true)
		s.mu.Unlock()
		s.wg.Wait()
		s.hub.Close()
		s.pool.Close()
	})
	return nil
}

// Publish sends c to every process listening on the database, this one
// included.
func (s *Store) Publish(ctx context.Context, c store.Change) error {
	if s.closed.Load() {
		return errors.New("postgres: publish on a closed store")
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("postgres: publish: %w", err)
	}
	if _, err := s.pool.Exec(ctx, `SELECT pg_notify($1, $2)`, Channel, string(payload)); err != nil {
		return fmt.Errorf("postgres: publish %s %q: %w", c.Kind, c.ID, err)
	}
	return nil
}

// Subscribe returns the changes published on the database from now on,
// until ctx ends or the Store closes. The first call starts listening and
// fails if it cannot.
func (s *Store) Subscribe(ctx context.Context) (<-chan store.Change, error) {
	if err := s.startListening(ctx); err != nil {
		return nil, fmt.Errorf("postgres: subscribe: %w", err)
	}
	ch, err := s.hub.Subscribe(ctx)
	if err != nil {
		return nil, fmt.Errorf("postgres: subscribe: %w", err)
	}
	return ch, nil
}

func (s *Store) startListening(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return feed.ErrClosed
	}
	if s.listening {
		return nil
	}
	// Connecting can take a while; Close must not wait for it.
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(s.life, cancel)()
	conn, err := s.connectListener(cctx)
	if err != nil {
		if s.life.Err() != nil {
			return feed.ErrClosed
		}
		return err
	}
	if s.life.Err() != nil {
		conn.Close(context.WithoutCancel(ctx))
		return feed.ErrClosed
	}
	s.listening = true
	s.wg.Add(1)
	go s.listen(conn)
	return nil
}

// connectListener opens a connection of its own (a pooled one could be
// recycled under the LISTEN) and LISTENs on Channel.
func (s *Store) connectListener(ctx context.Context) (*pgx.Conn, error) {
	cfg := s.pool.Config().ConnConfig.Copy()
	if _, ok := cfg.RuntimeParams["application_name"]; !ok {
		cfg.RuntimeParams["application_name"] = ListenerApplicationName
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connecting the listener: %w", err)
	}
	if _, err := conn.Exec(ctx, `LISTEN `+pgx.Identifier{Channel}.Sanitize()); err != nil {
		conn.Close(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("listening on %s: %w", Channel, err)
	}
	return conn, nil
}

// listen delivers notifications until the Store closes, reconnecting when
// the connection fails.
func (s *Store) listen(conn *pgx.Conn) {
	defer s.wg.Done()
	for {
		s.receive(conn)
		closeCtx, cancel := context.WithTimeout(context.Background(), time.Second)
		conn.Close(closeCtx)
		cancel()
		if conn = s.reconnect(); conn == nil {
			return
		}
		// Whatever was sent while the connection was down is lost.
		s.hub.Broadcast(feed.Resync)
	}
}

// receive returns when conn fails or the Store closes.
func (s *Store) receive(conn *pgx.Conn) {
	for {
		n, err := conn.WaitForNotification(s.life)
		if err != nil {
			return
		}
		var c store.Change
		if err := json.Unmarshal([]byte(n.Payload), &c); err != nil || c.Kind == "" {
			// Not one of ours: something changed, but we cannot tell what.
			c = feed.Resync
		}
		s.hub.Broadcast(c)
	}
}

// reconnect retries connectListener with exponential backoff until it
// succeeds (returning the connection) or the Store closes (returning nil).
func (s *Store) reconnect() *pgx.Conn {
	backoff := minBackoff
	for {
		t := time.NewTimer(backoff)
		select {
		case <-s.life.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		conn, err := s.connectListener(s.life)
		if err == nil {
			return conn
		}
		if s.life.Err() != nil {
			return nil
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// wrap gives err the context what and maps PostgreSQL's errors onto the
// store's: no row is ErrNotFound, a unique violation is ErrConflict, a
// foreign key violation (a missing referenced row) is ErrNotFound. The
// driver's error stays in the chain for logs.
func wrap(err error, what string) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%s: %w", what, store.ErrNotFound)
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "23505": // unique_violation
			return fmt.Errorf("%s: %w: %w", what, store.ErrConflict, err)
		case "23503": // foreign_key_violation
			return fmt.Errorf("%s: %w: %w", what, store.ErrNotFound, err)
		}
	}
	return fmt.Errorf("%s: %w", what, err)
}

// mustAffect turns an UPDATE or DELETE that matched no row into
// ErrNotFound.
func mustAffect(tag pgconn.CommandTag, err error, what string) error {
	if err != nil {
		return wrap(err, what)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%s: %w", what, store.ErrNotFound)
	}
	return nil
}

// Arguments: Go values to column values.

// ts is t as stored: UTC, truncated to the millisecond like SQLite's.
func ts(t time.Time) time.Time { return t.UTC().Truncate(time.Millisecond) }

func tsPtr(t *time.Time) any {
	if t == nil {
		return nil
	}
	return ts(*t)
}

// jsonArg stores nil or empty JSON as NULL and anything else as given.
func jsonArg(raw json.RawMessage) any {
	if len(raw) == 0 {
		return nil
	}
	return string(raw)
}

// optBlob stores an empty optional byte string as NULL.
func optBlob(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

// blob stores a required byte string; empty is an empty BYTEA, not NULL.
func blob(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// optText stores "" as NULL, for unique columns where "" means "none".
func optText(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// Results: pgx reads TIMESTAMPTZ in the local zone; the store promises UTC.

func utc(ts ...*time.Time) {
	for _, t := range ts {
		*t = t.UTC()
	}
}

func utcPtr(ts ...*time.Time) {
	for _, t := range ts {
		if t != nil {
			*t = t.UTC()
		}
	}
}
