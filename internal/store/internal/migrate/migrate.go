// Package migrate reads the numbered SQL migrations a store embeds and works
// out which of them a database still needs. Applying them is the store's
// job: locking and transactions differ between SQLite and PostgreSQL.
package migrate

import (
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
)

// Migration is one schema change, read from a file named
// "<version>_<name>.sql" (e.g. "0001_init.sql").
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// Load reads every *.sql file in dir of fsys, ordered by version. Versions
// must start at 1 and have no gaps or duplicates, so a misnumbered file
// fails every test run instead of silently applying out of order.
func Load(fsys fs.FS, dir string) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("reading migrations: %w", err)
	}
	var ms []Migration
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		num, name, ok := strings.Cut(strings.TrimSuffix(e.Name(), ".sql"), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 || name == "" {
			return nil, fmt.Errorf("migration %q: want a name like 0001_init.sql", e.Name())
		}
		b, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("migration %q: %w", e.Name(), err)
		}
		ms = append(ms, Migration{Version: v, Name: name, SQL: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	for i, m := range ms {
		if m.Version != i+1 {
			return nil, fmt.Errorf("migration %d (%s): versions must run 1, 2, 3… without gaps or duplicates", m.Version, m.Name)
		}
	}
	return ms, nil
}

// Pending returns the migrations of all whose versions are not in applied.
// A database that records a version this binary does not know was migrated
// by a newer release; running an older binary against it could corrupt
// data, so that is an error.
func Pending(all []Migration, applied []int) ([]Migration, error) {
	done := make(map[int]bool, len(applied))
	for _, v := range applied {
		if v > len(all) {
			return nil, fmt.Errorf("database schema version %d is newer than this binary knows (%d): upgrade Gatehouse", v, len(all))
		}
		done[v] = true
	}
	var out []Migration
	for _, m := range all {
		if !done[m.Version] {
			out = append(out, m)
		}
	}
	return out, nil
}
