package storetest

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"gatehouse/internal/store"
)

// RunAudit runs the conformance suite of store.AuditStore. open must
// return a fresh, empty store for the test it is given and close it when
// that test ends (t.Cleanup).
//
// Rules the suite pins down where the interface leaves room:
//   - seal sees the row with its Seq and PrevHash already set (PrevHash ==
//     prevHash) and its Time as it will be stored (UTC); a seal that
//     changes ID, Seq or PrevHash, or leaves Data or Hash empty, fails the
//     append like a seal error (nothing is stored);
//   - a record without an ID is an error;
//   - an ID repeated within one batch is appended once (the first);
//   - AppendAudit with nothing to append (no rows, or only stored IDs)
//     returns no rows and no error, and calls seal for no row;
//   - Data comes back byte for byte (no JSON normalisation);
//   - AuditHead survives PurgeAudit even when every record is purged, and
//     the next append continues from it;
//   - ListAudit's Limit is clamped: 0 or less means 100, more than 10000
//     means 10000; ListAuditCheckpoints' limit likewise;
//   - checkpoints are keyed by (Seq, KeyID): adding one twice is
//     ErrConflict; a checkpoint Time that is not a whole millisecond is an
//     error (its signature covers the time, and the store keeps
//     milliseconds); ListAuditCheckpoints orders by Seq, then KeyID;
//   - SetAuditCursor sets (it may move a cursor back, to replay); an
//     empty sink name is an error.
func RunAudit(t *testing.T, open func(t *testing.T) store.AuditStore) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.AuditStore)
	}{
		{"Empty", testAuditEmpty},
		{"Append", testAuditAppend},
		{"AppendSkip", testAuditAppendSkip},
		{"SealError", testAuditSealError},
		{"HasID", testAuditHasID},
		{"List", testAuditList},
		{"ListTimeRange", testAuditListTimeRange},
		{"ListPaging", testAuditListPaging},
		{"ListLimit", testAuditListLimit},
		{"Checkpoints", testAuditCheckpoints},
		{"Purge", testAuditPurge},
		{"Cursors", testAuditCursors},
		{"ConcurrentAppend", testAuditConcurrentAppend},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.fn(t, open(t))
		})
	}
}

// AuditAcrossStores checks the chain between processes: stores are
// several stores on one database, appending at once. Sequence numbers run
// 1, 2, 3… without gaps and every record's PrevHash is the previous one's
// Hash: the chain never forks.
func AuditAcrossStores(t *testing.T, stores []store.AuditStore) {
	t.Helper()
	auditRace(t, stores)
}

// SealHash is the Hash SimpleSeal gives a record: hex SHA-256 of the
// previous hash, a newline and the record's ID.
func SealHash(prev, id string) string {
	sum := sha256.Sum256([]byte(prev + "\n" + id))
	return hex.EncodeToString(sum[:])
}

// SimpleSeal is a simple seal for tests and benchmarks: Data is a small JSON
// object (its spacing and escapes deliberately not canonical, to catch a
// store that normalises it) and Hash is SealHash. It refuses a row whose
// Seq or PrevHash the store did not set.
func SimpleSeal(row *store.AuditRow, prevHash string) error {
	if row.Seq <= 0 || row.PrevHash != prevHash {
		return fmt.Errorf("seal called with Seq %d, PrevHash %q and prevHash %q", row.Seq, row.PrevHash, prevHash)
	}
	row.Data = fmt.Appendf(nil, `{"seq":%d,  "id":%q, "prev":%q, "note":"ünïcode \u00e9 \"q\""}`, row.Seq, row.ID, prevHash)
	row.Hash = SealHash(prevHash, row.ID)
	return nil
}

// auditRow returns a populated record with the given ID at t0 plus d.
func auditRow(id string, d time.Duration) store.AuditRow {
	return store.AuditRow{
		ID:        id,
		Time:      at(d),
		Kind:      "mcp.request",
		Action:    "tools/call",
		ActorID:   "agent:agt_1",
		AgentName: "triage-bot",
		Team:      "support",
		User:      "alice@example.com",
		Server:    "github",
		Tool:      "create_issue",
		Outcome:   "allowed",
	}
}

// auditRows returns n records "<prefix>-1"… a minute apart from t0.
func auditRows(prefix string, n int) []store.AuditRow {
	rows := make([]store.AuditRow, n)
	for i := range rows {
		rows[i] = auditRow(fmt.Sprintf("%s-%d", prefix, i+1), time.Duration(i)*time.Minute)
	}
	return rows
}

func appendAudit(t *testing.T, s store.AuditStore, rows []store.AuditRow) []store.AuditRow {
	t.Helper()
	got, err := s.AppendAudit(ctx(t), rows, SimpleSeal)
	must(t, err, "AppendAudit")
	return got
}

func listAudit(t *testing.T, s store.AuditStore, f store.AuditFilter) []store.AuditRow {
	t.Helper()
	got, err := s.ListAudit(ctx(t), f)
	must(t, err, fmt.Sprintf("ListAudit(%+v)", f))
	return got
}

func auditSeqs(rows []store.AuditRow) []int64 {
	var seqs []int64
	for _, r := range rows {
		seqs = append(seqs, r.Seq)
	}
	return seqs
}

func auditIDs(rows []store.AuditRow) []string {
	var ids []string
	for _, r := range rows {
		ids = append(ids, r.ID)
	}
	return ids
}

// wantHead fails the test unless the head is (seq, hash).
func wantHead(t *testing.T, s store.AuditStore, seq int64, hash, what string) {
	t.Helper()
	gotSeq, gotHash, err := s.AuditHead(ctx(t))
	must(t, err, "AuditHead "+what)
	if gotSeq != seq || gotHash != hash {
		t.Fatalf("AuditHead %s = (%d, %q), want (%d, %q)", what, gotSeq, gotHash, seq, hash)
	}
}

// checkChain fails the test unless rows continue the chain after (seq,
// prev): consecutive Seqs, each PrevHash the previous Hash, each Hash what
// SimpleSeal gives. It returns the new end.
func checkChain(t *testing.T, rows []store.AuditRow, seq int64, prev, what string) (int64, string) {
	t.Helper()
	for _, r := range rows {
		seq++
		switch {
		case r.Seq != seq:
			t.Fatalf("%s: record %q has Seq %d, want %d (a gap or a repeat)", what, r.ID, r.Seq, seq)
		case r.PrevHash != prev:
			t.Fatalf("%s: record %d has PrevHash %q, want the previous Hash %q (the chain forked)", what, r.Seq, r.PrevHash, prev)
		case r.Hash != SealHash(prev, r.ID):
			t.Fatalf("%s: record %d has Hash %q, want %q", what, r.Seq, r.Hash, SealHash(prev, r.ID))
		}
		prev = r.Hash
	}
	return seq, prev
}

func testAuditEmpty(t *testing.T, s store.AuditStore) {
	wantHead(t, s, 0, "", "of an empty store")
	if got := listAudit(t, s, store.AuditFilter{}); len(got) != 0 {
		t.Fatalf("ListAudit on an empty store = %v, want none", auditIDs(got))
	}
	if got := listAudit(t, s, store.AuditFilter{Desc: true, AgentName: "x"}); len(got) != 0 {
		t.Fatalf("ListAudit(desc, agent) on an empty store = %v, want none", auditIDs(got))
	}
	ok, err := s.HasAuditID(ctx(t), "aud_1")
	must(t, err, "HasAuditID")
	if ok {
		t.Fatal("HasAuditID on an empty store = true")
	}
	cps, err := s.ListAuditCheckpoints(ctx(t), 0, 0)
	must(t, err, "ListAuditCheckpoints")
	if len(cps) != 0 {
		t.Fatalf("ListAuditCheckpoints on an empty store = %v, want none", cps)
	}
	n, err := s.PurgeAudit(ctx(t), 100, at(time.Hour))
	must(t, err, "PurgeAudit")
	if n != 0 {
		t.Fatalf("PurgeAudit on an empty store = %d, want 0", n)
	}
	cur, err := s.GetAuditCursor(ctx(t), "siem")
	must(t, err, "GetAuditCursor")
	if cur != 0 {
		t.Fatalf("GetAuditCursor on an empty store = %d, want 0", cur)
	}
}

func testAuditAppend(t *testing.T, s store.AuditStore) {
	// The first batch: fully populated rows, one of them in another zone
	// (it comes back in UTC), one with every optional string empty.
	first := auditRows("aud_a", 3)
	first[1].Time = at(time.Minute).In(time.FixedZone("CEST", 2*60*60))
	first[2] = store.AuditRow{ID: "aud_a-3", Time: at(2 * time.Minute), Kind: "auth", Action: "token.issued", Outcome: "allowed"}
	type call struct {
		seq  int64
		prev string
	}
	var calls []call
	seal := func(row *store.AuditRow, prev string) error {
		calls = append(calls, call{row.Seq, prev})
		if row.Time.Location() != time.UTC {
			return fmt.Errorf("seal got Time %v, want it in UTC", row.Time)
		}
		return SimpleSeal(row, prev)
	}
	got, err := s.AppendAudit(ctx(t), first, seal)
	must(t, err, "AppendAudit")
	if len(got) != len(first) {
		t.Fatalf("AppendAudit returned %d rows, want %d", len(got), len(first))
	}
	end, hash := checkChain(t, got, 0, "", "first batch")
	if fmt.Sprint(calls) != fmt.Sprint([]call{{1, ""}, {2, got[0].Hash}, {3, got[1].Hash}}) {
		t.Fatalf("seal calls (seq, prevHash) = %v", calls)
	}
	for i, r := range got {
		want := first[i]
		want.Time = want.Time.UTC()
		want.Seq, want.PrevHash, want.Data, want.Hash = r.Seq, r.PrevHash, r.Data, r.Hash
		same(t, r, want, fmt.Sprintf("returned row %d", i))
		wantData := fmt.Sprintf(`{"seq":%d,  "id":%q, "prev":%q, "note":"ünïcode \u00e9 \"q\""}`, r.Seq, r.ID, r.PrevHash)
		if string(r.Data) != wantData {
			t.Fatalf("returned row %d has Data %q, want %q", i, r.Data, wantData)
		}
	}
	wantHead(t, s, end, hash, "after the first batch")

	// The second batch continues the chain.
	second := appendAudit(t, s, auditRows("aud_b", 2))
	end, hash = checkChain(t, second, end, hash, "second batch")
	wantHead(t, s, end, hash, "after the second batch")

	// What is stored is what was returned, Data byte for byte.
	all := append(append([]store.AuditRow{}, got...), second...)
	same(t, listAudit(t, s, store.AuditFilter{}), all, "ListAudit after two batches")

	// Nothing to append.
	calls = nil
	for _, rows := range [][]store.AuditRow{nil, {}} {
		got, err := s.AppendAudit(ctx(t), rows, seal)
		must(t, err, "AppendAudit of no rows")
		if len(got) != 0 || len(calls) != 0 {
			t.Fatalf("AppendAudit of no rows returned %v and called seal %d times", auditIDs(got), len(calls))
		}
	}
	wantHead(t, s, end, hash, "after appending nothing")
}

func testAuditAppendSkip(t *testing.T, s store.AuditStore) {
	// In order: each step sees the previous steps' records.
	steps := []struct {
		name string
		ids  []string
		want []string // appended, in order; seals are called for these only
	}{
		{"new", []string{"a", "b"}, []string{"a", "b"}},
		{"retry and new", []string{"b", "c", "a", "d"}, []string{"c", "d"}},
		{"repeated within the batch", []string{"e", "e", "c", "f", "e"}, []string{"e", "f"}},
		{"all stored", []string{"a", "f", "d"}, nil},
		{"after skipping", []string{"g"}, []string{"g"}},
	}
	var end int64
	var hash string
	for _, st := range steps {
		var rows []store.AuditRow
		for _, id := range st.ids {
			rows = append(rows, auditRow(id, 0))
		}
		var sealed []string
		got, err := s.AppendAudit(ctx(t), rows, func(row *store.AuditRow, prev string) error {
			sealed = append(sealed, row.ID)
			return SimpleSeal(row, prev)
		})
		must(t, err, "AppendAudit "+st.name)
		if fmt.Sprint(auditIDs(got)) != fmt.Sprint(st.want) || fmt.Sprint(sealed) != fmt.Sprint(st.want) {
			t.Fatalf("AppendAudit %s: appended %v, sealed %v; want %v", st.name, auditIDs(got), sealed, st.want)
		}
		// A skipped record uses up no sequence number.
		end, hash = checkChain(t, got, end, hash, st.name)
		wantHead(t, s, end, hash, "after "+st.name)
	}
	all := listAudit(t, s, store.AuditFilter{})
	checkChain(t, all, 0, "", "stored records")
	if fmt.Sprint(auditIDs(all)) != "[a b c d e f g]" {
		t.Fatalf("stored %v, want [a b c d e f g]", auditIDs(all))
	}
}

func testAuditSealError(t *testing.T, s store.AuditStore) {
	seed := appendAudit(t, s, auditRows("aud_seed", 1))
	end, hash := checkChain(t, seed, 0, "", "seed")
	errSeal := errors.New("sealing failed")

	// failAt returns a seal that fails at the n-th row it is called for.
	failAt := func(n int, fail func(row *store.AuditRow) error) func(*store.AuditRow, string) error {
		calls := 0
		return func(row *store.AuditRow, prev string) error {
			if err := SimpleSeal(row, prev); err != nil {
				return err
			}
			if calls++; calls == n {
				return fail(row)
			}
			return nil
		}
	}
	fails := func(*store.AuditRow) error { return errSeal }
	tests := []struct {
		name   string
		rows   []store.AuditRow
		seal   func(*store.AuditRow, string) error
		target error // nil: any error
	}{
		{"error at the first row", auditRows("aud_x", 3), failAt(1, fails), errSeal},
		{"error at the third of four rows", auditRows("aud_y", 4), failAt(3, fails), errSeal},
		{"error after a skipped row", append(seed[:1:1], auditRows("aud_z", 2)...), failAt(2, fails), errSeal},
		{"empty hash", auditRows("aud_h", 2), failAt(2, func(r *store.AuditRow) error { r.Hash = ""; return nil }), nil},
		{"empty data", auditRows("aud_d", 2), failAt(1, func(r *store.AuditRow) error { r.Data = nil; return nil }), nil},
		{"seq changed", auditRows("aud_s", 2), failAt(2, func(r *store.AuditRow) error { r.Seq += 10; return nil }), nil},
		{"prev hash changed", auditRows("aud_p", 2), failAt(1, func(r *store.AuditRow) error { r.PrevHash = "forged"; return nil }), nil},
		{"id changed", auditRows("aud_i", 2), failAt(1, func(r *store.AuditRow) error { r.ID = "aud_other"; return nil }), nil},
		{"no id", []store.AuditRow{auditRow("aud_ok", 0), auditRow("", 0)}, SimpleSeal, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.AppendAudit(ctx(t), tt.rows, tt.seal)
			if err == nil {
				t.Fatalf("AppendAudit succeeded with %v, want an error", auditIDs(got))
			}
			if tt.target != nil && !errors.Is(err, tt.target) {
				t.Fatalf("AppendAudit: err = %v, want %v", err, tt.target)
			}
			// Rolled back: nothing stored, the head unmoved.
			wantHead(t, s, end, hash, "after the failed append")
			same(t, listAudit(t, s, store.AuditFilter{}), seed, "records after the failed append")
			for _, r := range tt.rows {
				if r.ID == seed[0].ID || r.ID == "" {
					continue
				}
				ok, err := s.HasAuditID(ctx(t), r.ID)
				must(t, err, "HasAuditID")
				if ok {
					t.Fatalf("HasAuditID(%q) after the failed append = true", r.ID)
				}
			}
		})
	}

	// The chain goes on from where it was, and the failed IDs can be
	// appended now.
	got := appendAudit(t, s, auditRows("aud_x", 2))
	checkChain(t, got, end, hash, "append after the failures")
}

func testAuditHasID(t *testing.T, s store.AuditStore) {
	appendAudit(t, s, auditRows("aud", 3))
	tests := []struct {
		id   string
		want bool
	}{
		{"aud-1", true},
		{"aud-3", true},
		{"aud-4", false},
		{"AUD-1", false},
		{"", false},
	}
	for _, tt := range tests {
		got, err := s.HasAuditID(ctx(t), tt.id)
		must(t, err, "HasAuditID")
		if got != tt.want {
			t.Errorf("HasAuditID(%q) = %v, want %v", tt.id, got, tt.want)
		}
	}
}

// auditFixture is the records the filter tests run on, Seq 1…9, a minute
// apart from t0.
func auditFixture() []store.AuditRow {
	rows := []store.AuditRow{
		{AgentName: "triage-bot", Team: "support", User: "alice", Server: "github", Tool: "create_issue", Kind: "mcp.request", Action: "tools/call", Outcome: "allowed"},
		{AgentName: "billing-bot", Team: "finance", Server: "stripe", Tool: "refund", Kind: "mcp.request", Action: "tools/call", Outcome: "denied"},
		{AgentName: "triage-bot", Team: "support", User: "bob", Server: "github", Tool: "search", Kind: "mcp.request", Action: "tools/call", Outcome: "allowed"},
		{User: "alice", Kind: "auth", Action: "token.issued", Outcome: "allowed"},
		{AgentName: "triage-bot", Team: "support", User: "alice", Server: "jira", Tool: "create_issue", Kind: "mcp.request", Action: "tools/call", Outcome: "error"},
		{AgentName: "billing-bot", Team: "finance", Server: "stripe", Tool: "charges", Kind: "mcp.request", Action: "resources/read", Outcome: "allowed"},
		{User: "admin", Kind: "admin", Action: "agent.created", Outcome: "allowed"},
		{AgentName: "triage-bot", Team: "support", Server: "github", Tool: "create_issue", Kind: "mcp.request", Action: "tools/call", Outcome: "would_deny"},
		{AgentName: "billing-bot", Team: "finance", User: "carol", Server: "stripe", Tool: "refund", Kind: "policy", Action: "approval.decided", Outcome: "denied"},
	}
	for i := range rows {
		rows[i].ID = fmt.Sprintf("aud_%02d", i+1)
		rows[i].Time = at(time.Duration(i) * time.Minute)
		if rows[i].AgentName != "" {
			rows[i].ActorID = "agent:agt_" + rows[i].AgentName
		}
	}
	return rows
}

func testAuditList(t *testing.T, s store.AuditStore) {
	stored := appendAudit(t, s, auditFixture())
	minute := func(n int) time.Time { return at(time.Duration(n) * time.Minute) }
	tests := []struct {
		name   string
		filter store.AuditFilter
		want   []int64
	}{
		{"all", store.AuditFilter{}, []int64{1, 2, 3, 4, 5, 6, 7, 8, 9}},
		{"agent", store.AuditFilter{AgentName: "triage-bot"}, []int64{1, 3, 5, 8}},
		{"team", store.AuditFilter{Team: "finance"}, []int64{2, 6, 9}},
		{"user", store.AuditFilter{User: "alice"}, []int64{1, 4, 5}},
		{"server", store.AuditFilter{Server: "github"}, []int64{1, 3, 8}},
		{"tool", store.AuditFilter{Tool: "create_issue"}, []int64{1, 5, 8}},
		{"kind", store.AuditFilter{Kind: "mcp.request"}, []int64{1, 2, 3, 5, 6, 8}},
		{"action", store.AuditFilter{Action: "tools/call"}, []int64{1, 2, 3, 5, 8}},
		{"outcome", store.AuditFilter{Outcome: "denied"}, []int64{2, 9}},
		{"unknown agent", store.AuditFilter{AgentName: "nobody"}, nil},
		{"agent and tool", store.AuditFilter{AgentName: "triage-bot", Tool: "create_issue"}, []int64{1, 5, 8}},
		{"agent and outcome", store.AuditFilter{AgentName: "triage-bot", Outcome: "error"}, []int64{5}},
		{"team and server, disjoint", store.AuditFilter{Team: "finance", Server: "github"}, nil},
		{"kind and action", store.AuditFilter{Kind: "mcp.request", Action: "resources/read"}, []int64{6}},
		{"every field", store.AuditFilter{AgentName: "billing-bot", Team: "finance", User: "carol", Server: "stripe",
			Tool: "refund", Kind: "policy", Action: "approval.decided", Outcome: "denied"}, []int64{9}},
		{"since", store.AuditFilter{Since: minute(3)}, []int64{4, 5, 6, 7, 8, 9}},
		// Time >= Since and Time < Until, to the nanosecond.
		{"since just after a record", store.AuditFilter{Since: minute(3).Add(time.Nanosecond)}, []int64{5, 6, 7, 8, 9}},
		{"until", store.AuditFilter{Until: minute(3)}, []int64{1, 2, 3}},
		{"until just after a record", store.AuditFilter{Until: minute(3).Add(time.Nanosecond)}, []int64{1, 2, 3, 4}},
		{"since and until", store.AuditFilter{Since: minute(2), Until: minute(5)}, []int64{3, 4, 5}},
		{"since equals until", store.AuditFilter{Since: minute(2), Until: minute(2)}, nil},
		{"time range in another zone", store.AuditFilter{Since: minute(2).In(time.FixedZone("X", -5*3600)), Until: minute(5).In(time.FixedZone("Y", 3600))}, []int64{3, 4, 5}},
		{"agent and time range", store.AuditFilter{AgentName: "triage-bot", Since: minute(2), Until: minute(8)}, []int64{3, 5, 8}},
		{"after seq", store.AuditFilter{AfterSeq: 6}, []int64{7, 8, 9}},
		{"before seq", store.AuditFilter{BeforeSeq: 4}, []int64{1, 2, 3}},
		{"after and before seq", store.AuditFilter{AfterSeq: 2, BeforeSeq: 6}, []int64{3, 4, 5}},
		{"after the last", store.AuditFilter{AfterSeq: 9}, nil},
		{"before the first", store.AuditFilter{BeforeSeq: 1}, nil},
		{"desc", store.AuditFilter{Desc: true}, []int64{9, 8, 7, 6, 5, 4, 3, 2, 1}},
		{"desc, agent", store.AuditFilter{Desc: true, AgentName: "triage-bot"}, []int64{8, 5, 3, 1}},
		{"desc, agent, before seq", store.AuditFilter{Desc: true, AgentName: "triage-bot", BeforeSeq: 5}, []int64{3, 1}},
		{"desc, outcome, after seq", store.AuditFilter{Desc: true, Outcome: "allowed", AfterSeq: 3}, []int64{7, 6, 4}},
		{"desc, time range", store.AuditFilter{Desc: true, Since: minute(2), Until: minute(5)}, []int64{5, 4, 3}},
		{"limit", store.AuditFilter{Limit: 2}, []int64{1, 2}},
		{"limit, desc", store.AuditFilter{Limit: 2, Desc: true}, []int64{9, 8}},
		{"limit, desc, agent and time range", store.AuditFilter{Limit: 1, Desc: true, AgentName: "triage-bot", Until: minute(7)}, []int64{5}},
		{"limit, kind, after seq", store.AuditFilter{Limit: 2, Kind: "mcp.request", AfterSeq: 2}, []int64{3, 5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := listAudit(t, s, tt.filter)
			if seqs := auditSeqs(got); fmt.Sprint(seqs) != fmt.Sprint(tt.want) {
				t.Fatalf("ListAudit(%+v) = %v, want %v", tt.filter, seqs, tt.want)
			}
			// Whole records.
			for _, r := range got {
				same(t, r, stored[r.Seq-1], fmt.Sprintf("record %d", r.Seq))
			}
		})
	}
}

// testAuditListTimeRange checks time ranges over records that are not in
// time order: a late record, an early one, some around the epoch.
func testAuditListTimeRange(t *testing.T, s store.AuditStore) {
	epoch := time.UnixMilli(0).UTC()
	var rows []store.AuditRow
	for i, d := range []time.Duration{0, 30 * time.Minute, time.Hour, 2 * time.Hour, 3 * time.Hour, 4 * time.Hour} {
		r := auditRow(fmt.Sprintf("aud_%d", i+1), d)
		if i%2 == 1 {
			r.AgentName = "billing-bot"
		}
		rows = append(rows, r)
	}
	appendAudit(t, s, rows)
	// In the bucket of record 2 (the ten minutes from 15:30), after it.
	late := auditRow("aud_7_late", 25*time.Minute)
	early := auditRow("aud_8_early", -24*time.Hour)
	beforeEpoch, atEpoch := auditRow("aud_9", 0), auditRow("aud_10", 0)
	beforeEpoch.Time, atEpoch.Time = epoch.Add(-time.Millisecond), epoch
	appendAudit(t, s, []store.AuditRow{late, early})
	appendAudit(t, s, []store.AuditRow{beforeEpoch, atEpoch})

	tests := []struct {
		name   string
		filter store.AuditFilter
		want   []int64
	}{
		{"window with a late record", store.AuditFilter{Since: at(20 * time.Minute), Until: at(40 * time.Minute)}, []int64{2, 7}},
		{"window with a late record, desc", store.AuditFilter{Since: at(20 * time.Minute), Until: at(40 * time.Minute), Desc: true}, []int64{7, 2}},
		{"window with a late record, agent", store.AuditFilter{AgentName: "triage-bot", Since: at(20 * time.Minute), Until: at(40 * time.Minute)}, []int64{7}},
		{"window of the late record only", store.AuditFilter{Since: at(25 * time.Minute), Until: at(26 * time.Minute)}, []int64{7}},
		{"window of the early record", store.AuditFilter{Since: at(-25 * time.Hour), Until: at(-23 * time.Hour)}, []int64{8}},
		{"since", store.AuditFilter{Since: at(3 * time.Hour)}, []int64{5, 6}},
		{"since, late record first when desc", store.AuditFilter{Since: at(25 * time.Minute), Desc: true, Limit: 1}, []int64{7}},
		{"since, limit", store.AuditFilter{Since: at(25 * time.Minute), Limit: 1}, []int64{2}},
		{"until", store.AuditFilter{Until: at(time.Minute)}, []int64{1, 8, 9, 10}},
		{"until, desc, agent", store.AuditFilter{Until: at(time.Hour), Desc: true, AgentName: "triage-bot"}, []int64{10, 9, 8, 7, 1}},
		{"until the epoch", store.AuditFilter{Until: epoch}, []int64{9}},
		{"around the epoch", store.AuditFilter{Since: epoch.Add(-time.Millisecond), Until: epoch.Add(time.Millisecond)}, []int64{9, 10}},
		{"from the epoch", store.AuditFilter{Since: epoch, Until: at(-time.Hour)}, []int64{8, 10}},
		{"empty window after the last", store.AuditFilter{Since: at(5 * time.Hour), Until: at(6 * time.Hour)}, nil},
		{"empty window between", store.AuditFilter{Since: at(10 * time.Minute), Until: at(20 * time.Minute)}, nil},
		{"window, cursor, limit", store.AuditFilter{Since: at(0), Until: at(4*time.Hour + time.Minute), AfterSeq: 2, Limit: 2}, []int64{3, 4}},
		{"window, cursor, desc", store.AuditFilter{Since: at(0), Until: at(4 * time.Hour), BeforeSeq: 7, Desc: true}, []int64{5, 4, 3, 2, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := listAudit(t, s, tt.filter)
			if seqs := auditSeqs(got); fmt.Sprint(seqs) != fmt.Sprint(tt.want) {
				t.Fatalf("ListAudit(%+v) = %v, want %v", tt.filter, seqs, tt.want)
			}
		})
	}
}

func testAuditListPaging(t *testing.T, s store.AuditStore) {
	appendAudit(t, s, auditFixture())
	// More of the same, so that pages span batches: Seq 10…18.
	more := auditFixture()
	for i := range more {
		more[i].ID += "_2"
		more[i].Time = more[i].Time.Add(time.Hour)
	}
	appendAudit(t, s, more)

	tests := []struct {
		name   string
		filter store.AuditFilter
	}{
		{"all", store.AuditFilter{}},
		{"agent", store.AuditFilter{AgentName: "triage-bot"}},
		{"outcome", store.AuditFilter{Outcome: "denied"}},
		{"agent and time range", store.AuditFilter{AgentName: "triage-bot", Since: at(2 * time.Minute), Until: at(time.Hour + 6*time.Minute)}},
		{"no match", store.AuditFilter{Team: "nobody"}},
	}
	for _, tt := range tests {
		for _, limit := range []int{1, 2, 4, 100} {
			for _, desc := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/limit %d/desc %v", tt.name, limit, desc), func(t *testing.T) {
					f := tt.filter
					f.Desc = desc
					want := listAudit(t, s, f)
					f.Limit = limit
					var got []store.AuditRow
					for page := 0; ; page++ {
						if page > 100 {
							t.Fatal("paging does not end")
						}
						rows := listAudit(t, s, f)
						if len(rows) > limit {
							t.Fatalf("page %d has %d rows, limit %d", page, len(rows), limit)
						}
						if len(rows) == 0 {
							break
						}
						got = append(got, rows...)
						// The keyset cursor: the last Seq seen.
						if desc {
							f.BeforeSeq = rows[len(rows)-1].Seq
						} else {
							f.AfterSeq = rows[len(rows)-1].Seq
						}
					}
					if fmt.Sprint(auditSeqs(got)) != fmt.Sprint(auditSeqs(want)) {
						t.Fatalf("pages = %v, want %v", auditSeqs(got), auditSeqs(want))
					}
				})
			}
		}
	}
}

func testAuditListLimit(t *testing.T, s store.AuditStore) {
	const total = 10050
	rows := auditRows("aud", total)
	for i := 0; i < total; i += 1000 {
		appendAudit(t, s, rows[i:min(i+1000, total)])
	}
	tests := []struct {
		name        string
		filter      store.AuditFilter
		first, last int64
		n           int
	}{
		{"default", store.AuditFilter{}, 1, 100, 100},
		{"negative", store.AuditFilter{Limit: -1}, 1, 100, 100},
		{"explicit", store.AuditFilter{Limit: 250}, 1, 250, 250},
		{"maximum", store.AuditFilter{Limit: 10000}, 1, 10000, 10000},
		{"over the maximum", store.AuditFilter{Limit: 20000}, 1, 10000, 10000},
		{"over the maximum, desc", store.AuditFilter{Limit: 20000, Desc: true}, total, total - 9999, 10000},
		{"default, desc, filtered", store.AuditFilter{Desc: true, AgentName: "triage-bot"}, total, total - 99, 100},
		{"default, after seq", store.AuditFilter{AfterSeq: total - 30}, total - 29, total, 30},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := listAudit(t, s, tt.filter)
			if len(got) != tt.n || got[0].Seq != tt.first || got[len(got)-1].Seq != tt.last {
				t.Fatalf("ListAudit(%+v): %d rows from %d to %d, want %d from %d to %d", tt.filter,
					len(got), got[0].Seq, got[len(got)-1].Seq, tt.n, tt.first, tt.last)
			}
		})
	}
	// All of it is one chain.
	f := store.AuditFilter{Limit: 10000}
	var end int64
	var hash string
	for {
		page := listAudit(t, s, f)
		if len(page) == 0 {
			break
		}
		end, hash = checkChain(t, page, end, hash, "stored records")
		f.AfterSeq = end
	}
	if end != total {
		t.Fatalf("the chain ends at %d, want %d", end, total)
	}
}

func newCheckpoint(seq int64, key string, d time.Duration) store.AuditCheckpoint {
	return store.AuditCheckpoint{
		Seq:       seq,
		Hash:      SealHash("", fmt.Sprint(seq)),
		Time:      at(d),
		KeyID:     key,
		PublicKey: append([]byte("pk-"+key+"\x00\xff"), make([]byte, 24)...),
		Signature: append([]byte("sig\x00\xff"), make([]byte, 59)...),
	}
}

func testAuditCheckpoints(t *testing.T, s store.AuditStore) {
	// Added out of order; one in another zone (it comes back in UTC).
	c10 := newCheckpoint(10, "k1", 3*time.Minute)
	c7b := newCheckpoint(7, "k2", 2*time.Minute)
	c7b.Time = c7b.Time.In(time.FixedZone("CEST", 2*3600))
	c3 := newCheckpoint(3, "k1", time.Minute)
	c7a := newCheckpoint(7, "k1", 2*time.Minute)
	for _, c := range []store.AuditCheckpoint{c10, c7b, c3, c7a} {
		must(t, s.AddAuditCheckpoint(ctx(t), c), fmt.Sprintf("AddAuditCheckpoint %d %s", c.Seq, c.KeyID))
	}
	c7b.Time = c7b.Time.UTC()

	tests := []struct {
		name    string
		fromSeq int64
		limit   int
		want    []store.AuditCheckpoint
	}{
		{"all", 0, 0, []store.AuditCheckpoint{c3, c7a, c7b, c10}},
		{"negative from", -5, 0, []store.AuditCheckpoint{c3, c7a, c7b, c10}},
		{"from an exact seq", 7, 0, []store.AuditCheckpoint{c7a, c7b, c10}},
		{"from between", 8, 0, []store.AuditCheckpoint{c10}},
		{"from the last", 10, 0, []store.AuditCheckpoint{c10}},
		{"from after the last", 11, 0, nil},
		{"limit", 0, 2, []store.AuditCheckpoint{c3, c7a}},
		{"from and limit", 4, 1, []store.AuditCheckpoint{c7a}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.ListAuditCheckpoints(ctx(t), tt.fromSeq, tt.limit)
			must(t, err, "ListAuditCheckpoints")
			if len(got) == 0 {
				got = nil // none may be nil or empty
			}
			same(t, got, tt.want, fmt.Sprintf("ListAuditCheckpoints(%d, %d)", tt.fromSeq, tt.limit))
		})
	}

	dup := newCheckpoint(7, "k1", time.Hour)
	wantErr(t, s.AddAuditCheckpoint(ctx(t), dup), store.ErrConflict, "", "AddAuditCheckpoint twice")
	odd := newCheckpoint(20, "k1", time.Hour+time.Microsecond)
	if err := s.AddAuditCheckpoint(ctx(t), odd); err == nil || errors.Is(err, store.ErrConflict) {
		t.Fatalf("AddAuditCheckpoint with a time of sub-millisecond precision: err = %v, want an error", err)
	}
	got, err := s.ListAuditCheckpoints(ctx(t), 0, 0)
	must(t, err, "ListAuditCheckpoints")
	same(t, got, []store.AuditCheckpoint{c3, c7a, c7b, c10}, "checkpoints after the refused ones")
}

func testAuditPurge(t *testing.T, s store.AuditStore) {
	// Seq 1…10 a minute apart, but record 3 is an hour late (a queue that
	// drained late): it is not old enough when its neighbours are.
	rows := auditRows("aud", 10)
	rows[2].Time = at(time.Hour)
	stored := appendAudit(t, s, rows)
	headSeq, headHash := stored[9].Seq, stored[9].Hash
	cp := newCheckpoint(4, "k1", 0)
	must(t, s.AddAuditCheckpoint(ctx(t), cp), "AddAuditCheckpoint")

	// In order: each step sees the previous steps' deletions.
	steps := []struct {
		name      string
		beforeSeq int64
		olderThan time.Time
		want      int64
		left      []int64
	}{
		{"before the first seq", 1, at(100 * time.Hour), 0, []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
		{"nothing old enough", 6, at(0), 0, []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
		{"both conditions", 6, at(30 * time.Minute), 4, []int64{3, 6, 7, 8, 9, 10}},
		{"again", 6, at(30 * time.Minute), 0, []int64{3, 6, 7, 8, 9, 10}},
		// Time < olderThan, strictly (record 7 is at 6 minutes).
		{"at a record's time", 100, at(6 * time.Minute), 1, []int64{3, 7, 8, 9, 10}},
		{"everything", 100, at(100 * time.Hour), 5, nil},
	}
	for _, st := range steps {
		n, err := s.PurgeAudit(ctx(t), st.beforeSeq, st.olderThan)
		must(t, err, "PurgeAudit "+st.name)
		if n != st.want {
			t.Fatalf("PurgeAudit %s = %d, want %d", st.name, n, st.want)
		}
		left := listAudit(t, s, store.AuditFilter{})
		if fmt.Sprint(auditSeqs(left)) != fmt.Sprint(st.left) {
			t.Fatalf("after PurgeAudit %s: records %v, want %v", st.name, auditSeqs(left), st.left)
		}
		for _, r := range left {
			same(t, r, stored[r.Seq-1], fmt.Sprintf("record %d after PurgeAudit %s", r.Seq, st.name))
			// Still found by its time.
			f := store.AuditFilter{Since: r.Time, Until: r.Time.Add(time.Millisecond)}
			if got := listAudit(t, s, f); fmt.Sprint(auditSeqs(got)) != fmt.Sprint([]int64{r.Seq}) {
				t.Fatalf("after PurgeAudit %s: ListAudit(%+v) = %v, want [%d]", st.name, f, auditSeqs(got), r.Seq)
			}
		}
		// The head stays, even with every record gone.
		wantHead(t, s, headSeq, headHash, "after PurgeAudit "+st.name)
	}
	ok, err := s.HasAuditID(ctx(t), stored[0].ID)
	must(t, err, "HasAuditID")
	if ok {
		t.Fatal("HasAuditID of a purged record = true")
	}
	cps, err := s.ListAuditCheckpoints(ctx(t), 0, 0)
	must(t, err, "ListAuditCheckpoints")
	same(t, cps, []store.AuditCheckpoint{cp}, "checkpoints after purging")

	// The chain goes on from the head, and time ranges find the new
	// records, a late one included.
	after := auditRows("aud_after", 3)
	after[2].Time = at(-time.Hour)
	got := appendAudit(t, s, after)
	end, hash := checkChain(t, got, headSeq, headHash, "append after purging everything")
	wantHead(t, s, end, hash, "after appending again")
	for _, f := range []store.AuditFilter{{Since: at(-2 * time.Hour), Until: at(time.Hour)}, {Until: at(time.Hour), Desc: true}, {Since: at(-time.Hour)}} {
		if got := listAudit(t, s, f); len(got) != 3 {
			t.Fatalf("after purging and appending: ListAudit(%+v) = %v, want the 3 new records", f, auditSeqs(got))
		}
	}
}

func testAuditCursors(t *testing.T, s store.AuditStore) {
	// In order: each step sees the previous steps' cursors.
	steps := []struct {
		name string
		set  map[string]int64
		want map[string]int64
	}{
		{"unknown", nil, map[string]int64{"siem": 0, "s3": 0}},
		{"first", map[string]int64{"siem": 5}, map[string]int64{"siem": 5, "s3": 0}},
		{"forward", map[string]int64{"siem": 42}, map[string]int64{"siem": 42, "s3": 0}},
		{"back (replay)", map[string]int64{"siem": 7}, map[string]int64{"siem": 7, "s3": 0}},
		{"another sink", map[string]int64{"s3": 1}, map[string]int64{"siem": 7, "s3": 1, "SIEM": 0}},
	}
	for _, st := range steps {
		for sink, seq := range st.set {
			must(t, s.SetAuditCursor(ctx(t), sink, seq), "SetAuditCursor "+st.name)
		}
		for sink, want := range st.want {
			got, err := s.GetAuditCursor(ctx(t), sink)
			must(t, err, "GetAuditCursor "+st.name)
			if got != want {
				t.Fatalf("after %s: GetAuditCursor(%q) = %d, want %d", st.name, sink, got, want)
			}
		}
	}
	if err := s.SetAuditCursor(ctx(t), "", 3); err == nil {
		t.Fatal("SetAuditCursor with an empty sink name succeeded")
	}
}

func testAuditConcurrentAppend(t *testing.T, s store.AuditStore) {
	auditRace(t, []store.AuditStore{s})
}

// auditRace has workers append batches at once, worker i through
// stores[i % len(stores)]. Pairs of workers also append one record in
// common per batch, as a retry racing the original would. The stored
// chain must be one: Seq 1…N without gaps, each PrevHash the Hash before;
// every record stored once and reported appended by exactly one call;
// each call's records consecutive (one transaction).
func auditRace(t *testing.T, stores []store.AuditStore) {
	t.Helper()
	const workers, batches, size = 8, 6, 10
	results := make([][][]store.AuditRow, workers)
	errs := make([]error, workers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			<-start
			s := stores[w%len(stores)]
			for b := range batches {
				rows := auditRows(fmt.Sprintf("aud_w%d_b%d", w, b), size)
				rows = append(rows, auditRow(fmt.Sprintf("aud_shared_b%d_p%d", b, w/2), 0))
				got, err := s.AppendAudit(ctx(t), rows, SimpleSeal)
				if err != nil {
					errs[w] = err
					return
				}
				results[w] = append(results[w], got)
			}
		})
	}
	close(start)
	wg.Wait()
	for w, err := range errs {
		must(t, err, fmt.Sprintf("worker %d: AppendAudit", w))
	}

	all := listAudit(t, stores[0], store.AuditFilter{Limit: 10000})
	wantN := workers*batches*size + batches*((workers+1)/2)
	if len(all) != wantN {
		t.Fatalf("%d records stored, want %d", len(all), wantN)
	}
	end, hash := checkChain(t, all, 0, "", "concurrently appended records")
	for _, s := range stores {
		wantHead(t, s, end, hash, "after the concurrent appends")
	}
	reported := 0
	for w := range results {
		for _, got := range results[w] {
			if len(got) == 0 {
				t.Fatalf("worker %d: a batch appended nothing", w)
			}
			checkChain(t, got, got[0].Seq-1, got[0].PrevHash, fmt.Sprintf("worker %d: one call's records", w))
			for _, r := range got {
				same(t, r, all[r.Seq-1], fmt.Sprintf("record %d as returned and as stored", r.Seq))
			}
			reported += len(got)
		}
	}
	if reported != wantN {
		t.Fatalf("the calls reported %d records appended, %d are stored", reported, wantN)
	}
}
