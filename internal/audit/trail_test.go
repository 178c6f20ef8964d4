package audit

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse/internal/config"
	"gatehouse/internal/inspect"
	"gatehouse/internal/inspect/detectors"
	"gatehouse/internal/store"
	"gatehouse/internal/store/sqlite"
)

func openStore(t *testing.T) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "g.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func newTrail(t *testing.T, st store.AuditStore, dir string, sinks ...Sink) *Trail {
	t.Helper()
	q, err := OpenQueue(dir, QueueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	_, key, _ := ed25519.GenerateKey(nil)
	return New(Options{Queue: q, Store: st, Replica: "test", Key: key, KeyID: "k1", Sinks: sinks, CheckpointEvery: 10})
}

func sample(i int) Record {
	return Record{Kind: KindMCPRequest, Action: "tools/call",
		Actor:   Actor{Kind: "agent", ID: fmt.Sprintf("agent:agt_%d", i%3), AgentName: fmt.Sprintf("bot%d", i%3), Team: "support"},
		Target:  Target{Server: "work", Upstream: "crm", Method: "tools/call", Tool: "crm_get_invoice"},
		Outcome: Outcome{Status: OutcomeAllowed},
		Args:    json.RawMessage(fmt.Sprintf(`{"n":%d}`, i))}
}

// verifyStore walks the stored chain with a Verifier.
func verifyStore(t *testing.T, st store.AuditStore) (*Verifier, *Problem) {
	t.Helper()
	v := &Verifier{}
	v.Start(0, "")
	after := int64(0)
	for {
		rows, err := st.ListAudit(context.Background(), store.AuditFilter{AfterSeq: after, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) == 0 {
			return v, nil
		}
		for _, r := range rows {
			if p := v.Add(r.Data); p != nil {
				return v, p
			}
			after = r.Seq
		}
	}
}

func TestTrailChainAndTamper(t *testing.T) {
	st := openStore(t)
	tr := newTrail(t, st, t.TempDir())
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 25; i++ {
				if err := tr.Log(sample(g*100 + i)); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	ctx := context.Background()
	if err := tr.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	v, p := verifyStore(t, st)
	if p != nil || v.Records != 200 {
		t.Fatalf("verify: %v after %d records", p, v.Records)
	}
	if err := tr.checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	cps, err := st.ListAuditCheckpoints(ctx, 0, 10)
	if err != nil || len(cps) != 1 || cps[0].Seq != 200 {
		t.Fatalf("checkpoints %+v %v", cps, err)
	}

	// Tampering is found at the record it touched.
	rows, _ := st.ListAudit(ctx, store.AuditFilter{AfterSeq: 0, Limit: 1000})
	cases := []struct {
		name string
		edit func([]store.AuditRow) []store.AuditRow
		seq  int64
		want string
	}{
		{"changed field", func(rs []store.AuditRow) []store.AuditRow {
			rs[41].Data = []byte(strings.Replace(string(rs[41].Data), `"allowed"`, `"denied"`, 1))
			return rs
		}, 42, "content does not match"},
		{"deleted record", func(rs []store.AuditRow) []store.AuditRow { return append(rs[:99:99], rs[100:]...) }, 100, "missing"},
		{"swapped records", func(rs []store.AuditRow) []store.AuditRow {
			rs[10], rs[11] = rs[11], rs[10]
			return rs
		}, 11, "missing"},
		{"rehashed after a change", func(rs []store.AuditRow) []store.AuditRow {
			var r Record
			_ = json.Unmarshal(rs[5].Data, &r)
			r.Outcome.Status = OutcomeDenied
			rs[5].Data, _ = Seal(&r, r.Seq, r.PrevHash)
			return rs
		}, 7, "prev_hash"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cp := make([]store.AuditRow, len(rows))
			copy(cp, rows)
			v := &Verifier{}
			v.Start(0, "")
			var got *Problem
			for _, r := range c.edit(cp) {
				if got = v.Add(r.Data); got != nil {
					break
				}
			}
			if got == nil || got.Seq != c.seq || !strings.Contains(got.Reason, c.want) {
				t.Fatalf("got %v, want seq %d: %s", got, c.seq, c.want)
			}
		})
	}
	t.Run("checkpoint over a rewritten chain", func(t *testing.T) {
		c := cps[0]
		cp := Checkpoint{Seq: c.Seq, Hash: c.Hash, Time: c.Time, KeyID: c.KeyID,
			PublicKey: b64(c.PublicKey), Signature: b64(c.Signature)}
		v := &Verifier{}
		if p := v.CheckCheckpoint(cp, func(int64) (string, bool) { return c.Hash, true }); p != nil {
			t.Fatalf("intact checkpoint: %v", p)
		}
		if p := v.CheckCheckpoint(cp, func(int64) (string, bool) { return "other", true }); p == nil {
			t.Fatal("a checkpoint over another hash verified")
		}
		cp.Hash = "x"
		if p := v.CheckCheckpoint(cp, func(int64) (string, bool) { return "", false }); p == nil || !strings.Contains(p.Reason, "signature") {
			t.Fatalf("forged checkpoint: %v", p)
		}
	})
}

// A record in the queue survives the process stopping before the
// committer ran: the next trail commits it, once. Both write modes: a
// plain write in the caller, and fsync with concurrent callers sharing
// writes (group commit).
func TestQueueSurvivesRestart(t *testing.T) {
	for _, fsync := range []bool{false, true} {
		t.Run(fmt.Sprintf("fsync=%v", fsync), func(t *testing.T) {
			st := openStore(t)
			dir := t.TempDir()
			q, err := OpenQueue(dir, QueueOptions{Sync: fsync})
			if err != nil {
				t.Fatal(err)
			}
			tr := New(Options{Queue: q, Store: st})
			var wg sync.WaitGroup
			for i := 0; i < 30; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := tr.Log(sample(i)); err != nil {
						t.Error(err)
					}
				}()
			}
			wg.Wait()
			q.Close() // no commit: as if killed
			// A torn record at the end of the old segment, as a crash
			// mid-write leaves it: it was never acknowledged, and must be
			// skipped.
			segs, _ := filepath.Glob(filepath.Join(dir, "segment-*.jsonl"))
			f, _ := os.OpenFile(segs[len(segs)-1], os.O_APPEND|os.O_WRONLY, 0)
			_, _ = f.WriteString(`{"id":"aud_torn","kind":"mcp.req`)
			f.Close()

			tr2 := newTrail(t, st, dir)
			if err := tr2.Log(sample(99)); err != nil {
				t.Fatal(err)
			}
			if err := tr2.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
			if err := tr2.Flush(context.Background()); err != nil { // idempotent
				t.Fatal(err)
			}
			v, p := verifyStore(t, st)
			if p != nil || v.Records != 31 {
				t.Fatalf("verify: %v, %d records (want 31)", p, v.Records)
			}
			if n := tr2.Queue().Backlog(); n != 0 {
				t.Fatalf("backlog %d after commit", n)
			}
		})
	}
}

func TestQueueFull(t *testing.T) {
	for _, drop := range []bool{false, true} {
		q, err := OpenQueue(t.TempDir(), QueueOptions{MaxBytes: 2000, DropWhenFull: drop})
		if err != nil {
			t.Fatal(err)
		}
		tr := New(Options{Queue: q, Store: openStore(t)})
		var full error
		for i := 0; i < 100 && full == nil; i++ {
			full = tr.Log(sample(i))
		}
		switch {
		case !drop && full != ErrQueueFull:
			t.Fatalf("reject mode: %v", full)
		case !drop && !tr.Full():
			t.Fatal("reject mode: Full() false")
		case drop && (full != nil || q.Dropped() == 0):
			t.Fatalf("drop mode: %v, dropped %d", full, q.Dropped())
		}
		q.Close()
	}
}

// fakeSink records batches and fails the first n sends.
type fakeSink struct {
	mu    sync.Mutex
	fail  int
	got   []string
	calls int
}

func (f *fakeSink) Name() string { return "fake" }
func (f *fakeSink) Close() error { return nil }
func (f *fakeSink) Send(_ context.Context, recs []Record) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.calls <= f.fail {
		return fmt.Errorf("down")
	}
	for _, r := range recs {
		f.got = append(f.got, r.ID)
	}
	return nil
}

func TestSinkDeliveryAfterOutage(t *testing.T) {
	st := openStore(t)
	sink := &fakeSink{fail: 2}
	tr := newTrail(t, st, t.TempDir(), sink)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { tr.Run(ctx); close(done) }()
	var ids []string
	for i := 0; i < 50; i++ {
		r := sample(i)
		r.ID = NewID(time.Now())
		ids = append(ids, r.ID)
		if err := tr.Log(r); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		sink.mu.Lock()
		n := len(sink.got)
		sink.mu.Unlock()
		if n >= 50 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	<-done
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if len(sink.got) != 50 || sink.calls < 3 {
		t.Fatalf("delivered %d records in %d calls", len(sink.got), sink.calls)
	}
	for i, id := range ids {
		if sink.got[i] != id {
			t.Fatalf("record %d: got %s, want %s (order)", i, sink.got[i], id)
		}
	}
}

func TestMasking(t *testing.T) {
	m := NewMasker([]string{"account_pin"})
	eng, err := detectors.New(config.Inspect{})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct{ mode, in, want string }{
		{MaskMasked, `{"password":"hunter2","note":"mail me at a.b@example.com","card":"4111 1111 1111 1111","n":3}`,
			`{"password":"[masked:secret]","note":"mail me at [masked:email]","card":"[masked:card]","n":3}`},
		{MaskMasked, `{"Account-PIN":1234,"nested":{"api_key":"k","list":["ghp_8Kq2Lm4Np6Rs8Tv0Wx2Yz4Ab6Cd8Ef0Gh2Ij"]}}`,
			`{"Account-PIN":"[masked:secret]","nested":{"api_key":"[masked:secret]","list":["[masked:github-pat]"]}}`},
		{MaskMasked, `{"id":"1234 5678 9012 3456"}`, `{"id":"1234 5678 9012 3456"}`}, // fails Luhn: not a card
		{MaskFull, `{"password":"x"}`, `{"password":"x"}`},
		{MaskOmitted, `{"password":"x"}`, ``},
	}
	for _, c := range cases {
		got, _ := m.Apply(json.RawMessage(c.in), c.mode, eng, true)
		if string(got) != c.want {
			t.Errorf("%s %s: got %s, want %s", c.mode, c.in, got, c.want)
		}
	}
	// Without detectors (scan false, or no engine): field names only.
	for _, e := range []*inspect.Engine{nil, eng} {
		got, _ := m.Apply(json.RawMessage(`{"pin":7,"note":"a.b@example.com"}`), MaskMasked, e, false)
		if string(got) != `{"pin":"[masked:secret]","note":"a.b@example.com"}` {
			t.Errorf("field names only: got %s", got)
		}
	}
	h1, _ := m.Apply(json.RawMessage(`{"a":1, "b":2}`), MaskHashed, eng, true)
	h2, _ := m.Apply(json.RawMessage(`{"a":1,"b":2}`), MaskHashed, eng, true)
	if string(h1) != string(h2) || !strings.HasPrefix(string(h1), `{"sha256":"`) {
		t.Fatalf("hashed: %s %s", h1, h2)
	}
}

func TestNewIDSorts(t *testing.T) {
	a := NewID(time.UnixMilli(1_700_000_000_000))
	b := NewID(time.UnixMilli(1_700_000_000_001))
	if len(a) != 30 || !(a < b) {
		t.Fatalf("%s %s", a, b)
	}
}

// Retention deletes old records up to a checkpoint; what remains verifies
// from that checkpoint.
func TestRetentionKeepsVerifiable(t *testing.T) {
	st := openStore(t)
	tr := newTrail(t, st, t.TempDir())
	tr.retention = time.Hour
	ctx := context.Background()
	for i := 0; i < 20; i++ {
		_ = tr.Log(sample(i))
	}
	if err := tr.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := tr.checkpoint(ctx); err != nil { // at seq 20
		t.Fatal(err)
	}
	for i := 20; i < 30; i++ {
		_ = tr.Log(sample(i))
	}
	if err := tr.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	n, err := tr.Purge(ctx, time.Now().Add(2*time.Hour))
	if err != nil || n != 20 {
		t.Fatalf("purged %d (%v), want 20", n, err)
	}
	cps, _ := st.ListAuditCheckpoints(ctx, 0, 10)
	v := &Verifier{}
	v.Start(cps[0].Seq, cps[0].Hash)
	rows, _ := st.ListAudit(ctx, store.AuditFilter{Limit: 100})
	for _, r := range rows {
		if p := v.Add(r.Data); p != nil {
			t.Fatalf("after retention: %v", p)
		}
	}
	if v.Records != 10 {
		t.Fatalf("%d records remain", v.Records)
	}
	if head, _, _ := st.AuditHead(ctx); head != 30 {
		t.Fatalf("head %d after retention", head)
	}
}

// TestSealQueuedMatchesSeal holds the committer's splice to the decoded
// path: the bytes and hash must be the same, or verify would fail.
func TestSealQueuedMatchesSeal(t *testing.T) {
	recs := []Record{
		sample(1),
		gatewayRecord(),
		{ID: "aud_X", Time: time.Unix(0, 0).UTC(), Kind: KindAdmin, Action: "agent.created",
			Actor: Actor{Kind: "admin", ID: `admin:"quoted" <b>&amp;`}, Target: Target{Object: "agent é ☃ \u2028"},
			Outcome: Outcome{Status: OutcomeAllowed}},
		{ID: "aud_Y", Time: time.Date(2026, 11, 26, 1, 2, 3, 4000000, time.UTC), Kind: KindMCPRequest, Action: "tools/call",
			Args:    json.RawMessage(`{ "hash": "x", "prev_hash" : 1, "seq":0,"time":2 }`),
			Context: Context{Conversation: json.RawMessage(`{"seq":0,"time":"x"}`)}, DurationMS: 1e-7, UpstreamMS: 123456.789},
	}
	for i, r := range recs {
		if r.ID == "" {
			r.ID = NewID(time.Now())
		}
		r.Time = r.Time.UTC().Truncate(time.Millisecond)
		if r.Time.IsZero() {
			r.Time = time.Now().UTC().Truncate(time.Millisecond)
		}
		data, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		q, err := parseQueued(data)
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if q.row.ID != r.ID || !q.row.Time.Equal(r.Time) || q.row.Kind != r.Kind || q.row.Team != r.Actor.Team {
			t.Errorf("record %d: columns %+v", i, q.row)
		}
		for _, prev := range []string{"", strings.Repeat("ab", 32)} {
			got, hash, err := sealQueued(data, int64(1000+i), prev)
			if err != nil {
				t.Fatal(err)
			}
			want, err := Seal(&r, int64(1000+i), prev)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != string(want) || hash != r.Hash {
				t.Errorf("record %d prev %q:\n got %s\nwant %s", i, prev, got, want)
			}
		}
	}
}
