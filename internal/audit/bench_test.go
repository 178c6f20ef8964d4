package audit

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"gatehouse/internal/store/sqlite"
)

// cpuTime is the process's user+system CPU so far: the pipeline's work
// happens on background goroutines, so wall time per op would hide it.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// gatewayRecord is shaped like the record of an authenticated tools/call.
func gatewayRecord() Record {
	return Record{Kind: KindMCPRequest, Action: "tools/call",
		Actor: Actor{Kind: "agent", ID: "agent:agt_01JH4K2M3N4P5Q6R7S8T9V0W1X", AgentID: "agt_01JH4K2M3N4P5Q6R7S8T9V0W1X",
			AgentName: "bench-bot", Team: "bench", ClientName: "gatehouse-bench", ClientVersion: "1.0", Source: "127.0.0.1"},
		Target:     Target{Server: "echo", Upstream: "echo", Method: "tools/call", Tool: "echo"},
		Outcome:    Outcome{Status: OutcomeAllowed, Rule: "r3", Origin: "bundle b0"},
		Context:    Context{SessionID: "s_6f2c1d0e9b8a7f6e5d4c3b2a", RequestID: "42", Protocol: "2025-11-25"},
		Args:       json.RawMessage(`{"message":"hello from the load tool, nothing secret here"}`),
		Masking:    MaskMasked,
		Result:     &ResultSummary{Bytes: 120, ContentTypes: []string{"text"}, Items: 1},
		DurationMS: 0.412, UpstreamMS: 0.201, BytesIn: 160, BytesOut: 120}
}

// BenchmarkPipeline logs records the way the gateway does and commits them
// to a SQLite store; cpu-µs/record is what the whole trail costs per record
// (encoding, queue write, commit, seal, insert).
var flushEvery = 500 // the gateway commits every 200 ms: 500 records at 2500 calls/s

func BenchmarkPipeline(b *testing.B) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "g.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	q, err := OpenQueue(filepath.Join(b.TempDir(), "q"), QueueOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer q.Close()
	_, key, _ := ed25519.GenerateKey(nil)
	tr := New(Options{Queue: q, Store: st, Replica: "bench", Key: key, KeyID: "k1"})
	rec := gatewayRecord()
	b.ReportAllocs()
	b.ResetTimer()
	start := cpuTime()
	for i := 0; i < b.N; i++ {
		if err := tr.Log(rec); err != nil {
			b.Fatal(err)
		}
		if i%flushEvery == flushEvery-1 {
			if err := tr.Flush(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := tr.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64((cpuTime()-start).Microseconds())/float64(b.N), "cpu-µs/record")
}
