package postgres

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"gatehouse/internal/store"
	"gatehouse/internal/store/storetest"
)

func TestAuditConformance(t *testing.T) {
	serverURL(t)
	storetest.RunAudit(t, func(t *testing.T) store.AuditStore {
		return openStore(t, newDatabase(t))
	})
}

// TestAuditAcrossStores has Stores on one database append at once, as
// Gatehouse replicas would: the head row's lock serialises them and the
// chain never forks.
func TestAuditAcrossStores(t *testing.T) {
	dbURL := newDatabase(t)
	storetest.AuditAcrossStores(t, []store.AuditStore{openStore(t, dbURL), openStore(t, dbURL), openStore(t, dbURL)})
}

// TestAuditDataBytes stores Data that is not even UTF-8: BYTEA keeps any
// bytes, so nothing can alter what the hash covers.
func TestAuditDataBytes(t *testing.T) {
	s := openStore(t, newDatabase(t))
	data := []byte("{\"a\":\"\x00\xff\xfe\"  ,\"b\" : 1}")
	_, err := s.AppendAudit(t.Context(), []store.AuditRow{{ID: "aud_1", Time: time.Now()}}, func(r *store.AuditRow, prev string) error {
		r.Data, r.Hash = data, "h1"
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	rows, err := s.ListAudit(t.Context(), store.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || string(rows[0].Data) != string(data) {
		t.Fatalf("ListAudit = %+v, want Data %q", rows, data)
	}
}

// generateAudit fills audit_records with n records as storetest's
// benchmark tables are described, by one INSERT … SELECT over
// generate_series, its secondary indexes built after the load, and
// audit_time_buckets to match, then VACUUM ANALYZE.
func generateAudit(tb testing.TB, s *Store, n int64) {
	tb.Helper()
	ctx := context.Background()
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Release()
	exec := func(q string, args ...any) {
		tb.Helper()
		if _, err := conn.Exec(ctx, q, args...); err != nil {
			tb.Fatalf("%.60s…: %v", q, err)
		}
	}
	exec(`SET maintenance_work_mem = '512MB'`)
	rows, err := conn.Query(ctx, `SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x
		JOIN pg_class i ON i.oid = x.indexrelid
		WHERE x.indrelid = 'audit_records'::regclass AND NOT x.indisprimary AND NOT x.indisunique`)
	if err != nil {
		tb.Fatal(err)
	}
	type index struct{ Name, Def string }
	indexes, err := pgx.CollectRows(rows, pgx.RowToStructByPos[index])
	if err != nil {
		tb.Fatal(err)
	}
	for _, ix := range indexes {
		exec(`DROP INDEX ` + pgx.Identifier{ix.Name}.Sanitize())
	}
	exec(`INSERT INTO audit_records (`+auditCols+`)
		SELECT g, 'aud_' || lpad(g::text, 26, '0'),
			timestamptz 'epoch' + ($2::bigint + (g - 1) * $3::bigint / $1::bigint) * interval '1 millisecond',
			CASE WHEN g % 20 = 0 THEN 'auth' ELSE 'mcp.request' END,
			CASE WHEN g % 20 = 0 THEN 'token.issued' ELSE 'tools/call' END,
			'agent:agt_' || g % 100, 'agent-' || g % 100, 'team-' || g % 100 / 10,
			'user-' || g % 1000, 'server-' || g % 7, 'tool-' || g % 53,
			CASE WHEN g % 97 = 0 THEN 'denied' ELSE 'allowed' END,
			convert_to(format('{"id":"aud_%s","seq":%s,"kind":"mcp.request","action":"tools/call",'
				|| '"actor":{"kind":"agent","id":"agent:agt_%s","agent":"agent-%s","team":"team-%s","user":"user-%s"},'
				|| '"target":{"server":"server-%s","tool":"tool-%s"},"outcome":{"status":"allowed","rule":"support-read"},'
				|| '"context":{"session_id":"mcp-session-0123456789abcdef","request_id":"%s"},"args":{"title":"[masked]"},'
				|| '"duration_ms":12.5,"upstream_ms":9.75}',
				lpad(g::text, 26, '0'), g, g % 100, g % 100, g % 100 / 10, g % 1000, g % 7, g % 53, g), 'UTF8'),
			lpad(to_hex(g - 1), 64, '0'), lpad(to_hex(g), 64, '0')
		FROM generate_series(1, $1::bigint) g`,
		n, storetest.BenchStart.UnixMilli(), storetest.BenchSpan.Milliseconds())
	for _, ix := range indexes {
		exec(ix.Def)
	}
	exec(`INSERT INTO audit_time_buckets (bucket, min_seq, max_seq)
		SELECT (extract(epoch FROM time) * 1000)::bigint / $1, min(seq), max(seq) FROM audit_records GROUP BY 1`, bucketMillis)
	exec(`UPDATE audit_head SET seq = $1, hash = lpad(to_hex($1::bigint), 64, '0') WHERE id = 1`, n)
	exec(`VACUUM ANALYZE audit_records`)
}

// queryPlan returns PostgreSQL's plan for ListAudit(f), as run.
func queryPlan(tb testing.TB, s *Store, f store.AuditFilter) string {
	tb.Helper()
	q, args := auditQuery(f)
	rows, err := s.pool.Query(context.Background(), `EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) `+q, args...)
	if err != nil {
		tb.Fatal(err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		tb.Fatal(err)
	}
	return strings.Join(lines, "\n")
}

func BenchmarkAuditAppend(b *testing.B) {
	s := openStore(b, newDatabase(b))
	storetest.BenchAuditAppend(b, s, 100)
}

// BenchmarkAuditList times ListAudit on a generated table of a million
// records (GATEHOUSE_AUDIT_BENCH_ROWS). Benchmarks run only with -bench.
func BenchmarkAuditList(b *testing.B) {
	n := storetest.BenchAuditRows(b)
	s := openStore(b, newDatabase(b))
	start := time.Now()
	generateAudit(b, s, n)
	b.Logf("generated %d records in %v", n, time.Since(start).Round(time.Millisecond))
	for _, q := range storetest.BenchAuditQueries(n) {
		b.Logf("%s:\n%s", q.Name, queryPlan(b, s, q.Filter))
	}
	b.Run(fmt.Sprintf("records=%d", n), func(b *testing.B) { storetest.BenchAuditList(b, s, n) })
}
