package storetest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"gatehouse/internal/store"
)

// Benchmark tables. A store's query benchmark fills audit_records with n
// generated records by bulk SQL (not through AppendAudit, which would take
// far too long), then runs BenchAuditList. Record seq (1…n) is:
//
//	id          "aud_" + seq zero-padded to 26 digits
//	time        BenchStart + (seq-1)*BenchSpan/n, in whole milliseconds
//	            (integer division of milliseconds)
//	agent_name  "agent-" + seq%100      actor_id "agent:agt_" + seq%100
//	team        "team-" + seq%100/10    user_name "user-" + seq%1000
//	server      "server-" + seq%7       tool "tool-" + seq%53
//	kind        "auth" when seq%20 = 0, else "mcp.request"
//	action      "token.issued" when seq%20 = 0, else "tools/call"
//	outcome     "denied" when seq%97 = 0, else "allowed"
//	data        a JSON object of about 400 bytes
//	prev_hash   seq-1 in hex, zero-padded to 64 digits; hash: seq likewise
//
// and the head is (n, hash of n).
var BenchStart = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// BenchSpan is the time the generated records cover.
const BenchSpan = 30 * 24 * time.Hour

// BenchAuditRows is the size of the generated table: 1,000,000, or
// GATEHOUSE_AUDIT_BENCH_ROWS.
func BenchAuditRows(b *testing.B) int64 {
	if v := os.Getenv("GATEHOUSE_AUDIT_BENCH_ROWS"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1000 {
			b.Fatalf("GATEHOUSE_AUDIT_BENCH_ROWS=%q: want a number of at least 1000", v)
		}
		return n
	}
	return 1_000_000
}

// BenchQuery is one ListAudit of the query benchmark; Want is how many
// records it must return.
type BenchQuery struct {
	Name   string
	Filter store.AuditFilter
	Want   int
}

// BenchAuditQueries are the queries BenchAuditList times on a generated
// table of n records.
func BenchAuditQueries(n int64) []BenchQuery {
	end := BenchStart.Add(BenchSpan)
	day := 24 * time.Hour
	mid := BenchStart.Add(BenchSpan / 2)
	return []BenchQuery{
		// The console: an agent's records of the last day, newest first.
		{"agent+last day,desc", store.AuditFilter{AgentName: "agent-42", Since: end.Add(-day), Until: end, Desc: true, Limit: 100}, 100},
		// Its next page, by keyset.
		{"agent+last day,desc,page 2", store.AuditFilter{AgentName: "agent-42", Since: end.Add(-day), Until: end, Desc: true, Limit: 100, BeforeSeq: n - 100*100}, 100},
		// An agent's records of a day in the middle of the table.
		{"agent+mid day,desc", store.AuditFilter{AgentName: "agent-42", Since: mid, Until: mid.Add(day), Desc: true, Limit: 100}, 100},
		// An agent's records of an hour long ago (fewer than a page).
		{"agent+old hour,desc", store.AuditFilter{AgentName: "agent-42", Since: BenchStart.Add(day), Until: BenchStart.Add(day + time.Hour), Desc: true, Limit: 100}, -1},
		{"agent,desc", store.AuditFilter{AgentName: "agent-42", Desc: true, Limit: 100}, 100},
		{"team+tool,desc", store.AuditFilter{Team: "team-4", Tool: "tool-7", Desc: true, Limit: 100}, 100},
		// A rare outcome.
		{"denied,desc", store.AuditFilter{Outcome: "denied", Desc: true, Limit: 100}, 100},
		// An export of a day, oldest first.
		{"day,asc", store.AuditFilter{Since: mid, Until: mid.Add(day), Limit: 100}, 100},
		{"newest,desc", store.AuditFilter{Desc: true, Limit: 100}, 100},
		// A sink reading from its cursor.
		{"sink cursor,asc,1000", store.AuditFilter{AfterSeq: n / 2, Limit: 1000}, 1000},
	}
}

// BenchAuditList times BenchAuditQueries on s, which holds the generated
// table of n records.
func BenchAuditList(b *testing.B, s store.AuditStore, n int64) {
	for _, q := range BenchAuditQueries(n) {
		b.Run(q.Name, func(b *testing.B) {
			ctx := context.Background()
			for b.Loop() {
				rows, err := s.ListAudit(ctx, q.Filter)
				if err != nil {
					b.Fatal(err)
				}
				if (q.Want >= 0 && len(rows) != q.Want) || (q.Want < 0 && len(rows) == 0) {
					b.Fatalf("ListAudit(%+v) returned %d records, want %d", q.Filter, len(rows), q.Want)
				}
			}
		})
	}
}

// BenchAuditAppend appends batches of size records to s and reports
// records per second. The seal hashes the previous hash and Data (about
// 400 bytes), as the real one does.
func BenchAuditAppend(b *testing.B, s store.AuditStore, size int) {
	ctx := context.Background()
	seal := func(row *store.AuditRow, prev string) error {
		row.Data = fmt.Appendf(nil, `{"id":%q,"seq":%d,"time":%q,"kind":"mcp.request","action":"tools/call",`+
			`"actor":{"kind":"agent","id":"agent:agt_01JABCDEFGHJKMNPQRSTVWXYZ","agent":%q,"team":"support","user":"alice@example.com"},`+
			`"target":{"server":"github","tool":"create_issue"},"outcome":{"status":"allowed","rule":"support-read"},`+
			`"context":{"session_id":"mcp-session-0123456789abcdef","request_id":"42"},"args":{"title":"[masked]","body":"[masked]"},`+
			`"duration_ms":12.5,"upstream_ms":9.75}`, row.ID, row.Seq, row.Time.Format(time.RFC3339Nano), row.AgentName)
		h := sha256.New()
		h.Write([]byte(prev))
		h.Write(row.Data)
		row.Hash = hex.EncodeToString(h.Sum(nil))
		return nil
	}
	batch := make([]store.AuditRow, size)
	total := 0
	for b.Loop() {
		for i := range batch {
			batch[i] = auditRow(fmt.Sprintf("aud_bench_%026d", total+i), time.Duration(total+i)*time.Millisecond)
			batch[i].AgentName = fmt.Sprintf("agent-%d", (total+i)%100)
		}
		got, err := s.AppendAudit(ctx, batch, seal)
		if err != nil {
			b.Fatal(err)
		}
		if len(got) != size {
			b.Fatalf("appended %d records, want %d", len(got), size)
		}
		total += size
	}
	b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "records/s")
}
