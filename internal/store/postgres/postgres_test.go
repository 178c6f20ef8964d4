package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"gatehouse/internal/store"
	"gatehouse/internal/store/storetest"
)

// serverURL is the server the tests run against, from
// GATEHOUSE_TEST_POSTGRES (a postgres:// URL whose user may create
// databases). Without it the tests skip, except in CI (GATEHOUSE_CI=1),
// which must never skip them silently.
func serverURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("GATEHOUSE_TEST_POSTGRES")
	if u == "" {
		if os.Getenv("GATEHOUSE_CI") == "1" {
			t.Fatal("GATEHOUSE_TEST_POSTGRES not set, and GATEHOUSE_CI=1: CI must run the PostgreSQL tests")
		}
		t.Skip("GATEHOUSE_TEST_POSTGRES not set: PostgreSQL tests need a server")
	}
	return u
}

// newDatabase creates an empty database of its own for the test, dropped
// when the test ends, and returns its URL. A database rather than a schema
// keeps LISTEN/NOTIFY (which is per database) apart between tests and runs.
func newDatabase(t testing.TB) string {
	t.Helper()
	base := serverURL(t)
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Fatalf("GATEHOUSE_TEST_POSTGRES must be a postgres:// URL")
	}
	b := make([]byte, 8)
	rand.Read(b)
	name := "gatehouse_test_" + hex.EncodeToString(b)

	admin := func(ctx context.Context, sql string) {
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Fatalf("connecting to GATEHOUSE_TEST_POSTGRES: %v", err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	admin(t.Context(), "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	t.Cleanup(func() {
		// t.Context is done by now; FORCE ends connections a failed test
		// may have left open.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		admin(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
	})
	u.Path = "/" + name
	return u.String()
}

func openStore(t testing.TB, dbURL string) *Store {
	t.Helper()
	s, err := Open(t.Context(), dbURL)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	serverURL(t)
	storetest.Run(t, func(t *testing.T) store.Store {
		return openStore(t, newDatabase(t))
	})
}

// TestChangesAcrossStores checks that two Stores on one database (as two
// processes would be) see each other's changes.
func TestChangesAcrossStores(t *testing.T) {
	dbURL := newDatabase(t)
	a, b := openStore(t, dbURL), openStore(t, dbURL)
	fromA, err := a.Subscribe(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	fromB, err := b.Subscribe(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		pub  *Store
		c    store.Change
	}{
		{"a to b", a, store.Change{Kind: "agent", ID: "agt_1"}},
		{"b to a", b, store.Change{Kind: "signing_key", ID: "k1"}},
	}
	for _, tt := range tests {
		if err := tt.pub.Publish(t.Context(), tt.c); err != nil {
			t.Fatalf("%s: Publish: %v", tt.name, err)
		}
		for _, ch := range []<-chan store.Change{fromA, fromB} {
			if got := storetest.Next(t, ch); got != tt.c {
				t.Fatalf("%s: received %+v, want %+v", tt.name, got, tt.c)
			}
		}
	}
}

// TestListenerReconnects kills the LISTEN connection's backend: the store
// reconnects, tells subscribers to resync, and delivers changes again.
func TestListenerReconnects(t *testing.T) {
	dbURL := newDatabase(t)
	s := openStore(t, dbURL)
	ch, err := s.Subscribe(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	dbName := strings.TrimPrefix(mustParse(t, dbURL).Path, "/")
	admin, err := pgx.Connect(t.Context(), serverURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	var killed int
	if err := admin.QueryRow(t.Context(), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = $1 AND application_name = $2`, dbName, ListenerApplicationName).Scan(&killed); err != nil {
		t.Fatal(err)
	}
	if killed != 1 {
		t.Fatalf("terminated %d listener backends, want 1", killed)
	}

	timeout := time.After(storetest.Deadline)
	for resynced := false; !resynced; {
		select {
		case c, ok := <-ch:
			if !ok {
				t.Fatal("subscription closed after the connection was killed")
			}
			resynced = c.Kind == "resync"
		case <-timeout:
			t.Fatalf("no resync within %v of killing the listener", storetest.Deadline)
		}
	}
	want := store.Change{Kind: "user", ID: "alice@example.com"}
	if err := s.Publish(t.Context(), want); err != nil {
		t.Fatal(err)
	}
	if got := storetest.Next(t, ch); got != want {
		t.Fatalf("after reconnecting: received %+v, want %+v", got, want)
	}
}

func mustParse(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestReopen opens an existing database again: the migrations are not
// applied twice and the data is still there.
func TestReopen(t *testing.T) {
	dbURL := newDatabase(t)
	s, err := Open(t.Context(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.UpsertTeam(t.Context(), store.Team{Name: "kept"}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = openStore(t, dbURL)
	if _, err := s.GetTeam(t.Context(), "kept"); err != nil {
		t.Fatalf("GetTeam after reopening: %v", err)
	}
	var n int
	if err := s.pool.QueryRow(t.Context(), `SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	all, err := migrationFS.ReadDir("migrations")
	if err != nil {
		t.Fatal(err)
	}
	if n != len(all) {
		t.Fatalf("schema_migrations has %d rows, want %d", n, len(all))
	}
}

// TestConcurrentOpen opens one new database from several stores at once,
// as processes starting together would: the advisory lock lets one
// migrate while the others wait.
func TestConcurrentOpen(t *testing.T) {
	dbURL := newDatabase(t)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() {
			s, err := Open(t.Context(), dbURL)
			if err == nil {
				err = s.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("concurrent Open: %v", err)
		}
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	dbURL := newDatabase(t)
	s, err := Open(t.Context(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.pool.Exec(t.Context(), `INSERT INTO schema_migrations (version, name) VALUES (9999, 'future')`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err := Open(t.Context(), dbURL); err == nil || !strings.Contains(err.Error(), "newer") {
		if err == nil {
			s.Close()
		}
		t.Fatalf("Open of a database from a newer release: err = %v, want one saying it is newer", err)
	}
}

func TestOpenErrors(t *testing.T) {
	if _, err := Open(t.Context(), "postgres://user:hunter2@[::1"); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("Open of a malformed URL: err = %v, want an error without the password", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	// Port 1 on loopback: nothing listens there.
	if _, err := Open(ctx, "postgres://nobody@127.0.0.1:1/x?sslmode=disable&connect_timeout=2"); err == nil {
		t.Error("Open with no server succeeded")
	}
}
