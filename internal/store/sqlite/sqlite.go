// Package sqlite is the embedded store.Store: one SQLite file, opened with
// modernc.org/sqlite (pure Go, no cgo).
//
// SQLite serialises writers, so the Store writes through exactly one
// connection: concurrent writers queue in database/sql instead of failing
// with SQLITE_BUSY, and every write transaction begins IMMEDIATE so a
// second process on the same file waits (busy_timeout) instead of failing
// to upgrade a read lock. Reads go through a small pool of read-only
// connections, which WAL mode lets run alongside the writer.
//
// Storage conventions (see migrations/0001_init.sql):
//   - times are INTEGER milliseconds since the Unix epoch and come back in
//     UTC, truncated to the millisecond; a nil *time.Time is NULL;
//   - JSON values (Agent.Attributes, JWKs, OAuthClient.Metadata) are TEXT,
//     kept byte for byte; nil or empty is NULL and comes back nil;
//   - string lists (User.Groups, OAuthClient.RedirectURIs) are JSON arrays;
//     nil is NULL and comes back nil, an empty list comes back empty;
//   - optional byte strings (Credential.Hash, OAuthClient.SecretHash) are
//     NULL when empty and come back nil.
//
// The change feed is in-process only: Publish reaches the subscribers of
// this *Store and nobody else. A SQLite database is meant to be used by one
// Gatehouse process; run PostgreSQL for several.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"gatehouse/internal/store"
	"gatehouse/internal/store/internal/feed"
	"gatehouse/internal/store/internal/migrate"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// busyTimeout is how long a connection waits for another process's lock.
// Writes are rare and short; a long wait beats a spurious failure.
const busyTimeout = 10 * time.Second

// readers is the size of the read-only connection pool.
const readers = 4

// Store is a store.Store on a SQLite file. Safe for concurrent use.
type Store struct {
	w      *sql.DB // exactly one connection: all writes
	r      *sql.DB // read-only connections
	hub    *feed.Hub
	closed atomic.Bool

	closeOnce sync.Once
	closeErr  error
}

var _ store.Store = (*Store)(nil)

// Open opens (creating if needed) the database file at path, with mode 0600
// when it creates it, and applies any pending migrations.
func Open(ctx context.Context, path string) (*Store, error) {
	if path == "" {
		return nil, errors.New("sqlite: empty database path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	// Create the file ourselves: SQLite would create it world-readable
	// (0644 less the umask), and it holds password hashes and sealed keys.
	// SQLite gives the -wal and -shm files the database file's mode.
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sqlite: creating database file: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("sqlite: creating database file: %w", err)
	}

	// A file: URI, so that any character in the path is escaped rather than
	// read as the start of connection parameters.
	base := (&url.URL{Scheme: "file", Path: filepath.ToSlash(abs)}).String()
	busy := fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds())

	wq := url.Values{}
	wq.Add("_pragma", busy)
	wq.Add("_pragma", "foreign_keys(1)")
	wq.Add("_pragma", "journal_mode(WAL)")
	// synchronous stays at its default, FULL: a revocation or a used
	// refresh token must survive a power cut, and writes are rare.
	wq.Set("_txlock", "immediate")
	w, err := sql.Open("sqlite", base+"?"+wq.Encode())
	if err != nil {
		return nil, fmt.Errorf("sqlite: opening %s: %w", abs, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)

	rq := url.Values{}
	rq.Add("_pragma", busy)
	rq.Add("_pragma", "query_only(1)")
	r, err := sql.Open("sqlite", base+"?"+rq.Encode())
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: opening %s: %w", abs, err)
	}
	r.SetMaxOpenConns(readers)
	r.SetMaxIdleConns(readers)

	s := &Store{w: w, r: r, hub: feed.New(0)}
	if err := s.migrateRetrying(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("sqlite: %s: %w", abs, err)
	}
	return s, nil
}

// migrateRetrying is migrate, tried again while the file is busy for
// longer than the busy handler covers: when several processes open a new
// file at once, one converting it to WAL mode makes the others' first
// statements fail with SQLITE_BUSY without waiting (seen about once in 30
// concurrent opens). Other errors are returned at once.
func (s *Store) migrateRetrying(ctx context.Context) error {
	deadline := time.Now().Add(busyTimeout)
	for {
		err := s.migrate(ctx)
		var se *sqlite.Error
		if err == nil || !errors.As(err, &se) || se.Code()&0xff != sqlite3.SQLITE_BUSY || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// migrate applies the pending migrations in one IMMEDIATE transaction: it
// holds the write lock from the start, so a second process opening the same
// file waits and then finds them applied.
func (s *Store) migrate(ctx context.Context) error {
	all, err := migrate.Load(migrationFS, "migrations")
	if err != nil {
		return err
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrating: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER NOT NULL PRIMARY KEY,
		name       TEXT NOT NULL,
		applied_at INTEGER NOT NULL
	) STRICT`); err != nil {
		return fmt.Errorf("migrating: %w", err)
	}
	rows, err := tx.QueryContext(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return fmt.Errorf("migrating: %w", err)
	}
	var applied []int
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return fmt.Errorf("migrating: %w", err)
		}
		applied = append(applied, v)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("migrating: %w", err)
	}
	rows.Close()
	pending, err := migrate.Pending(all, applied)
	if err != nil {
		return err
	}
	for _, m := range pending {
		if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
			return fmt.Errorf("migration %d (%s): %w", m.Version, m.Name, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
			m.Version, m.Name, time.Now().UnixMilli()); err != nil {
			return fmt.Errorf("migration %d (%s): %w", m.Version, m.Name, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrating: %w", err)
	}
	return nil
}

// Close ends every subscription and closes the database. Later calls return
// the first call's result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		s.hub.Close()
		s.closeErr = errors.Join(s.r.Close(), s.w.Close())
	})
	return s.closeErr
}

// Publish delivers c to this Store's subscribers (SQLite has no other
// process to tell).
func (s *Store) Publish(ctx context.Context, c store.Change) error {
	if s.closed.Load() {
		return errors.New("sqlite: publish on a closed store")
	}
	s.hub.Broadcast(c)
	return nil
}

// Subscribe returns the changes published on this Store from now on, until
// ctx ends or the Store closes.
func (s *Store) Subscribe(ctx context.Context) (<-chan store.Change, error) {
	ch, err := s.hub.Subscribe(ctx)
	if err != nil {
		return nil, fmt.Errorf("sqlite: subscribe: %w", err)
	}
	return ch, nil
}

// wrap gives err the context what and maps SQLite's errors onto the
// store's: no row is ErrNotFound, a unique or primary key violation is
// ErrConflict, a foreign key violation (a missing referenced row) is
// ErrNotFound. The driver's error stays in the chain for logs.
func wrap(err error, what string) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%s: %w", what, store.ErrNotFound)
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return fmt.Errorf("%s: %w: %w", what, store.ErrConflict, err)
		case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
			return fmt.Errorf("%s: %w: %w", what, store.ErrNotFound, err)
		}
	}
	return fmt.Errorf("%s: %w", what, err)
}

// mustAffect turns an UPDATE or DELETE that matched no row into
// ErrNotFound.
func mustAffect(res sql.Result, err error, what string) error {
	if err != nil {
		return wrap(err, what)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return wrap(err, what)
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", what, store.ErrNotFound)
	}
	return nil
}

// scanner is a *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

// Arguments: Go values to column values.

func millis(t time.Time) int64 { return t.UnixMilli() }

func millisPtr(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UnixMilli()
}

// jsonArg stores nil or empty JSON as NULL and anything else as given.
func jsonArg(raw json.RawMessage) any {
	if len(raw) == 0 {
		return nil
	}
	return string(raw)
}

func listArg(l []string) (any, error) {
	if l == nil {
		return nil, nil
	}
	b, err := json.Marshal(l)
	if err != nil {
		return nil, err
	}
	return string(b), nil
}

// optBlob stores an empty optional byte string as NULL.
func optBlob(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

// blob stores a required byte string; empty is an empty BLOB, not NULL.
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

// Scan destinations: column values to Go values.

type timeDest struct{ p *time.Time }

func (d timeDest) Scan(v any) error {
	n, ok := v.(int64)
	if !ok {
		return fmt.Errorf("time column holds %T, want INTEGER milliseconds", v)
	}
	*d.p = time.UnixMilli(n).UTC()
	return nil
}

type timePtrDest struct{ p **time.Time }

func (d timePtrDest) Scan(v any) error {
	if v == nil {
		*d.p = nil
		return nil
	}
	var t time.Time
	if err := (timeDest{&t}).Scan(v); err != nil {
		return err
	}
	*d.p = &t
	return nil
}

type jsonDest struct{ p *json.RawMessage }

func (d jsonDest) Scan(v any) error {
	switch v := v.(type) {
	case nil:
		*d.p = nil
	case string:
		*d.p = json.RawMessage(v)
	case []byte:
		*d.p = json.RawMessage(append([]byte(nil), v...))
	default:
		return fmt.Errorf("JSON column holds %T", v)
	}
	return nil
}

type listDest struct{ p *[]string }

func (d listDest) Scan(v any) error {
	var raw json.RawMessage
	if err := (jsonDest{&raw}).Scan(v); err != nil {
		return err
	}
	if raw == nil {
		*d.p = nil
		return nil
	}
	l := []string{}
	if err := json.Unmarshal(raw, &l); err != nil {
		return fmt.Errorf("list column: %w", err)
	}
	*d.p = l
	return nil
}

type optTextDest struct{ p *string }

func (d optTextDest) Scan(v any) error {
	switch v := v.(type) {
	case nil:
		*d.p = ""
	case string:
		*d.p = v
	default:
		return fmt.Errorf("text column holds %T", v)
	}
	return nil
}
