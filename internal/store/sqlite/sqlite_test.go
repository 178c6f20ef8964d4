package sqlite

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"gatehouse/internal/store"
	"gatehouse/internal/store/storetest"
)

func openTemp(t testing.TB, path string) *Store {
	t.Helper()
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return openTemp(t, filepath.Join(t.TempDir(), "gatehouse.db"))
	})
}

func TestFileMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	s := openTemp(t, path)
	// A write makes SQLite create the WAL file too.
	if err := s.UpsertTeam(t.Context(), store.Team{Name: "t"}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + "-wal"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if m := fi.Mode().Perm(); m != 0o600 {
			t.Errorf("%s has mode %v, want 0600", filepath.Base(p), m)
		}
	}
}

func TestPragmas(t *testing.T) {
	s := openTemp(t, filepath.Join(t.TempDir(), "gatehouse.db"))
	var mode string
	var fk, timeout int
	if err := s.w.QueryRowContext(t.Context(), `SELECT journal_mode FROM pragma_journal_mode`).Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if err := s.w.QueryRowContext(t.Context(), `SELECT foreign_keys FROM pragma_foreign_keys`).Scan(&fk); err != nil {
		t.Fatal(err)
	}
	if err := s.r.QueryRowContext(t.Context(), `SELECT timeout FROM pragma_busy_timeout`).Scan(&timeout); err != nil {
		t.Fatal(err)
	}
	if mode != "wal" || fk != 1 || timeout != int(busyTimeout.Milliseconds()) {
		t.Fatalf("journal_mode=%s foreign_keys=%d busy_timeout(reader)=%d; want wal, 1, %d", mode, fk, timeout, busyTimeout.Milliseconds())
	}
	// The reader pool cannot write.
	if _, err := s.r.ExecContext(t.Context(), `INSERT INTO teams (name, max_secret_age_ns, created_at) VALUES ('x', 0, 0)`); err == nil {
		t.Fatal("a write through the reader pool succeeded")
	}
}

// TestReopen opens an existing database again: the migrations are not
// applied twice and the data is still there.
func TestReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.UpsertTeam(t.Context(), store.Team{Name: "kept"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTemp(t, path)
	if _, err := s.GetTeam(t.Context(), "kept"); err != nil {
		t.Fatalf("GetTeam after reopening: %v", err)
	}
	var n int
	if err := s.r.QueryRowContext(t.Context(), `SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil {
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

// TestConcurrentOpen opens one new file from several stores at once (as
// several processes might): each waits for the others' migration.
func TestConcurrentOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() {
			s, err := Open(t.Context(), path)
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
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.w.ExecContext(t.Context(), `INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, 'future', 0)`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err := Open(t.Context(), path); err == nil || !strings.Contains(err.Error(), "newer") {
		if err == nil {
			s.Close()
		}
		t.Fatalf("Open of a database from a newer release: err = %v, want one saying it is newer", err)
	}
}

func TestOpenErrors(t *testing.T) {
	if _, err := Open(context.Background(), ""); err == nil {
		t.Error("Open(\"\") succeeded")
	}
	if _, err := Open(context.Background(), filepath.Join(t.TempDir(), "missing", "dir", "x.db")); err == nil {
		t.Error("Open in a missing directory succeeded")
	}
}

// TestOddPath checks that characters meaningful in a URI stay part of the
// file name.
func TestOddPath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a ?b#c%20d&_pragma=x.db")
	openTemp(t, path)
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("database not at %q: %v", path, err)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), filepath.Base(path)) {
			t.Errorf("unexpected file %q next to the database", e.Name())
		}
	}
}
