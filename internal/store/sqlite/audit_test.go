package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gatehouse/internal/store"
	"gatehouse/internal/store/storetest"
)

func TestAuditConformance(t *testing.T) {
	storetest.RunAudit(t, func(t *testing.T) store.AuditStore {
		return openTemp(t, filepath.Join(t.TempDir(), "gatehouse.db"))
	})
}

// TestAuditAcrossStores has Stores on one file append at once, as
// processes sharing it would: BEGIN IMMEDIATE serialises them and the
// chain never forks.
func TestAuditAcrossStores(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	storetest.AuditAcrossStores(t, []store.AuditStore{openTemp(t, path), openTemp(t, path), openTemp(t, path)})
}

// queryPlan returns SQLite's plan for ListAudit(f), one step a line.
func queryPlan(t testing.TB, s *Store, f store.AuditFilter) string {
	t.Helper()
	q, args := auditQuery(f)
	rows, err := s.r.QueryContext(context.Background(), `EXPLAIN QUERY PLAN `+q, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var steps []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		steps = append(steps, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return strings.Join(steps, "\n")
}

// TestAuditQueryPlans checks that every ListAudit filter is served by an
// index walked in seq order: an equality filter by its (column, seq)
// index, a cursor as a range of it, never a full scan that filters nor a
// sort of the matches. (The planner has no statistics: a database never
// ANALYZEd, as Gatehouse leaves it.)
func TestAuditQueryPlans(t *testing.T) {
	s := openTemp(t, filepath.Join(t.TempDir(), "gatehouse.db"))
	since, until := time.Now().Add(-time.Hour), time.Now()
	columns := []struct {
		index string
		set   func(f *store.AuditFilter)
	}{
		{"audit_records_agent", func(f *store.AuditFilter) { f.AgentName = "a" }},
		{"audit_records_team", func(f *store.AuditFilter) { f.Team = "a" }},
		{"audit_records_user", func(f *store.AuditFilter) { f.User = "a" }},
		{"audit_records_server", func(f *store.AuditFilter) { f.Server = "a" }},
		{"audit_records_tool", func(f *store.AuditFilter) { f.Tool = "a" }},
		{"audit_records_kind", func(f *store.AuditFilter) { f.Kind = "a" }},
		{"audit_records_action", func(f *store.AuditFilter) { f.Action = "a" }},
		{"audit_records_outcome", func(f *store.AuditFilter) { f.Outcome = "a" }},
	}
	variants := []struct {
		name string
		set  func(f *store.AuditFilter)
	}{
		{"plain", func(*store.AuditFilter) {}},
		{"time range", func(f *store.AuditFilter) { f.Since, f.Until = since, until }},
		{"since", func(f *store.AuditFilter) { f.Since = since }},
		{"until", func(f *store.AuditFilter) { f.Until = until }},
		{"after seq", func(f *store.AuditFilter) { f.AfterSeq = 10 }},
		{"before seq", func(f *store.AuditFilter) { f.BeforeSeq = 10 }},
		{"time range and cursor", func(f *store.AuditFilter) { f.Since, f.Until, f.BeforeSeq = since, until, 10 }},
	}
	for _, desc := range []bool{false, true} {
		for _, v := range variants {
			// Each equality filter alone: its own index.
			for _, c := range columns {
				f := store.AuditFilter{Desc: desc}
				c.set(&f)
				v.set(&f)
				plan := queryPlan(t, s, f)
				if !strings.Contains(plan, "USING INDEX "+c.index+" (") || strings.Contains(plan, "TEMP B-TREE") {
					t.Errorf("ListAudit(%+v): plan\n%s\nwant a search of %s without a sort", f, plan, c.index)
				}
			}
			// Two at once: one of their indexes.
			for i, a := range columns {
				for _, b := range columns[i+1:] {
					f := store.AuditFilter{Desc: desc}
					a.set(&f)
					b.set(&f)
					v.set(&f)
					plan := queryPlan(t, s, f)
					if !strings.Contains(plan, "USING INDEX audit_records_") || strings.Contains(plan, "TEMP B-TREE") {
						t.Errorf("ListAudit(%+v): plan\n%s\nwant a search of an index without a sort", f, plan)
					}
				}
			}
		}
		// No equality filter: the cursor, and the time range (through the
		// buckets), are a rowid range.
		for _, f := range []store.AuditFilter{
			{Desc: desc, AfterSeq: 10}, {Desc: desc, BeforeSeq: 10}, {Desc: desc, AfterSeq: 10, BeforeSeq: 20},
			{Desc: desc, Since: since, Until: until}, {Desc: desc, Since: since}, {Desc: desc, Until: until},
			{Desc: desc, Since: since, Until: until, AfterSeq: 10},
		} {
			plan := queryPlan(t, s, f)
			if !strings.Contains(plan, "SEARCH audit_records USING INTEGER PRIMARY KEY (rowid") || strings.Contains(plan, "TEMP B-TREE") {
				t.Errorf("ListAudit(%+v): plan\n%s\nwant a rowid range without a sort", f, plan)
			}
		}
	}
}

// generateAudit fills audit_records with n records as storetest's
// benchmark tables are described, by one INSERT … SELECT over a recursive
// CTE, its indexes built after the load, and audit_time_buckets to match.
func generateAudit(tb testing.TB, s *Store, n int64) {
	tb.Helper()
	ctx := context.Background()
	exec := func(q string, args ...any) {
		tb.Helper()
		if _, err := s.w.ExecContext(ctx, q, args...); err != nil {
			tb.Fatalf("%.60s…: %v", q, err)
		}
	}
	rows, err := s.w.QueryContext(ctx, `SELECT name, sql FROM sqlite_master
		WHERE type = 'index' AND tbl_name = 'audit_records' AND sql IS NOT NULL`)
	if err != nil {
		tb.Fatal(err)
	}
	var names, defs []string
	for rows.Next() {
		var name, def string
		if err := rows.Scan(&name, &def); err != nil {
			tb.Fatal(err)
		}
		names, defs = append(names, name), append(defs, def)
	}
	rows.Close()
	for _, name := range names {
		exec(`DROP INDEX ` + name)
	}
	exec(`WITH RECURSIVE g(seq) AS (SELECT 1 UNION ALL SELECT seq + 1 FROM g WHERE seq < ?1)
		INSERT INTO audit_records (`+auditCols+`)
		SELECT seq, printf('aud_%026d', seq), ?2 + (seq - 1) * ?3 / ?1,
			CASE WHEN seq % 20 = 0 THEN 'auth' ELSE 'mcp.request' END,
			CASE WHEN seq % 20 = 0 THEN 'token.issued' ELSE 'tools/call' END,
			'agent:agt_' || (seq % 100), 'agent-' || (seq % 100), 'team-' || (seq % 100 / 10),
			'user-' || (seq % 1000), 'server-' || (seq % 7), 'tool-' || (seq % 53),
			CASE WHEN seq % 97 = 0 THEN 'denied' ELSE 'allowed' END,
			CAST(printf('{"id":"aud_%026d","seq":%d,"kind":"mcp.request","action":"tools/call",'
				|| '"actor":{"kind":"agent","id":"agent:agt_%d","agent":"agent-%d","team":"team-%d","user":"user-%d"},'
				|| '"target":{"server":"server-%d","tool":"tool-%d"},"outcome":{"status":"allowed","rule":"support-read"},'
				|| '"context":{"session_id":"mcp-session-0123456789abcdef","request_id":"%d"},"args":{"title":"[masked]"},'
				|| '"duration_ms":12.5,"upstream_ms":9.75}',
				seq, seq, seq % 100, seq % 100, seq % 100 / 10, seq % 1000, seq % 7, seq % 53, seq) AS BLOB),
			printf('%064x', seq - 1), printf('%064x', seq)
		FROM g`, n, storetest.BenchStart.UnixMilli(), storetest.BenchSpan.Milliseconds())
	for _, def := range defs {
		exec(def)
	}
	exec(`INSERT INTO audit_time_buckets (bucket, min_seq, max_seq)
		SELECT time / ?, min(seq), max(seq) FROM audit_records GROUP BY 1`, bucketMillis)
	exec(`UPDATE audit_head SET seq = ?, hash = printf('%064x', ?) WHERE id = 1`, n, n)
}

func BenchmarkAuditAppend(b *testing.B) {
	s := openTemp(b, filepath.Join(b.TempDir(), "gatehouse.db"))
	storetest.BenchAuditAppend(b, s, 100)
}

// BenchmarkAuditList times ListAudit on a generated table of a million
// records (GATEHOUSE_AUDIT_BENCH_ROWS). Benchmarks run only with -bench.
func BenchmarkAuditList(b *testing.B) {
	n := storetest.BenchAuditRows(b)
	s := openTemp(b, filepath.Join(b.TempDir(), "gatehouse.db"))
	start := time.Now()
	generateAudit(b, s, n)
	b.Logf("generated %d records in %v", n, time.Since(start).Round(time.Millisecond))
	for _, q := range storetest.BenchAuditQueries(n) {
		b.Logf("%s:\n%s", q.Name, queryPlan(b, s, q.Filter))
	}
	b.Run(fmt.Sprintf("records=%d", n), func(b *testing.B) { storetest.BenchAuditList(b, s, n) })
}
