package cli

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse/internal/admin"
	"gatehouse/internal/admin/admintest"
	"gatehouse/internal/audit"
	"gatehouse/internal/audit/audittest"
	"gatehouse/internal/store"
)

// newAuditServer is a test server whose admin API serves the audit
// routes on its store.
func newAuditServer(t *testing.T) *admintest.Server {
	t.Helper()
	s := admintest.New(t)
	api := admin.New(admin.Config{Token: admintest.Token, Manager: s.Manager, Store: s.Store, Audit: s.Store,
		Logger: slog.New(slog.NewTextHandler(s.Logs, nil))})
	mux := http.NewServeMux()
	api.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	as := *s
	as.URL, as.API = srv.URL, api
	return &as
}

var auditEpoch = time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)

// genAuditRecord returns the i-th (from 0) generated record: agents,
// tools and outcomes vary; records are a minute apart from auditEpoch.
func genAuditRecord(i int) audit.Record {
	agents := []struct{ name, team, user string }{{"triage-bot", "support", ""}, {"billing-bot", "finance", "alice"}, {"ops-bot", "ops", ""}}
	tools := []string{"tickets_search", "crm_get_invoice", "chat_post_message", "tickets_close"}
	outcomes := []string{audit.OutcomeAllowed, audit.OutcomeDenied, audit.OutcomeAllowed, audit.OutcomeError, audit.OutcomeWouldDeny}
	ag := agents[i%len(agents)]
	at := auditEpoch.Add(time.Duration(i) * time.Minute)
	r := audit.Record{ID: audit.NewID(at), Time: at, Kind: audit.KindMCPRequest, Action: "tools/call",
		Actor:      audit.Actor{Kind: "agent", ID: "agent:agt_" + ag.name, AgentID: "agt_" + ag.name, AgentName: ag.name, Team: ag.team, User: ag.user},
		Target:     audit.Target{Server: "support", Upstream: "crm", Method: "tools/call", Tool: tools[i%len(tools)]},
		Outcome:    audit.Outcome{Status: outcomes[i%len(outcomes)]},
		Args:       json.RawMessage(fmt.Sprintf(`{"n":%d,"note":"<b>&</b>"}`, i)),
		DurationMS: float64(i%7)*100 + 0.25,
	}
	switch r.Outcome.Status {
	case audit.OutcomeDenied:
		r.Outcome.Rule, r.Outcome.Reason = "no-invoices", "invoices are off limits"
	case audit.OutcomeError:
		r.Outcome.ErrorCode, r.Outcome.Error = -32603, "upstream failed"
	}
	return r
}

// appendGenerated appends n generated records numbered from first.
func appendGenerated(t *testing.T, st store.AuditStore, first, n int) []audit.Record {
	t.Helper()
	recs := make([]audit.Record, n)
	for i := range recs {
		recs[i] = genAuditRecord(first + i)
	}
	return audittest.Append(t, st, recs...)
}

// signCheckpoint signs (seq, hash) with key and stores the checkpoint.
func signCheckpoint(t *testing.T, st store.AuditStore, key ed25519.PrivateKey, seq int64, hash string) {
	t.Helper()
	if _, err := audit.AddCheckpoint(context.Background(), st, key, "ed25519:test", seq, hash, auditEpoch.Add(time.Duration(seq)*time.Minute+time.Second)); err != nil {
		t.Fatal(err)
	}
}

func newEd25519Key(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func publicKeyB64(k ed25519.PrivateKey) string {
	return base64.StdEncoding.EncodeToString(k.Public().(ed25519.PublicKey))
}

// lines splits output into its non-empty lines.
func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return out
}

// jsonSeqs returns the seq of each JSON line.
func jsonSeqs(t *testing.T, out string) []int64 {
	t.Helper()
	var seqs []int64
	for _, l := range lines(out) {
		var r audit.Record
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		seqs = append(seqs, r.Seq)
	}
	return seqs
}

// tableSeqs returns the SEQ column of a table.
func tableSeqs(out string) []string {
	var seqs []string
	for _, l := range lines(out) {
		f := strings.Fields(l)
		if len(f) > 2 && regexp.MustCompile(`^\d{4}-\d\d-\d\d$`).MatchString(f[0]) {
			seqs = append(seqs, f[2])
		}
	}
	return seqs
}

func seqList(from, to int64) []int64 {
	var out []int64
	step := int64(1)
	if from > to {
		step = -1
	}
	for s := from; ; s += step {
		out = append(out, s)
		if s == to {
			return out
		}
	}
}

func smallPages(t *testing.T, n int) {
	old := auditPageSize
	auditPageSize = n
	t.Cleanup(func() { auditPageSize = old })
}

func TestAuditSearchCommand(t *testing.T) {
	s := newAuditServer(t)
	if out := ok(t, s, newAuditCmd, "", "search"); !strings.Contains(out, "No audit records match.") {
		t.Errorf("empty trail: %s", out)
	}
	recs := appendGenerated(t, s.Store, 0, 40)
	smallPages(t, 7) // searches follow several pages

	out := ok(t, s, newAuditCmd, "", "search")
	if !regexp.MustCompile(`TIME\s+SEQ\s+ACTOR\s+ACTION\s+TARGET\s+OUTCOME\s+RULE\s+DURATION`).MatchString(out) {
		t.Errorf("no header:\n%s", out)
	}
	if got := tableSeqs(out); len(got) != 40 || got[0] != "40" || got[39] != "1" {
		t.Errorf("search: seqs %v", got)
	}
	// Record 2 (seq 2): billing-bot driven by alice, denied by a rule.
	local := recs[1].Time.Local().Format("2006-01-02 15:04:05")
	if !regexp.MustCompile(regexp.QuoteMeta(local) + `\s+2\s+billing-bot \(alice\)\s+tools/call\s+support/crm_get_invoice\s+denied\s+no-invoices\s+100\.2ms`).MatchString(out) {
		t.Errorf("row of seq 2 not as expected:\n%s", out)
	}
	if !regexp.MustCompile(`\s4\s+triage-bot\s+tools/call\s+support/tickets_close\s+error -32603\s+-\s+300\.2ms`).MatchString(out) {
		t.Errorf("row of seq 4 not as expected:\n%s", out)
	}

	out = ok(t, s, newAuditCmd, "", "search", "--limit", "10")
	if got := tableSeqs(out); len(got) != 10 || got[0] != "40" || got[9] != "31" || !strings.Contains(out, "continue with --before 31") {
		t.Errorf("search --limit 10: %v\n%s", got, out)
	}
	out = ok(t, s, newAuditCmd, "", "search", "--limit", "10", "--before", "31")
	if got := tableSeqs(out); len(got) != 10 || got[0] != "30" {
		t.Errorf("search --before 31: %v", got)
	}

	// Filters.
	want := 0
	for _, r := range recs {
		if r.Actor.AgentName == "billing-bot" && r.Outcome.Status == audit.OutcomeDenied {
			want++
		}
	}
	out = ok(t, s, newAuditCmd, "", "search", "--agent", "billing-bot", "--decision", "deny", "--json")
	seqs := jsonSeqs(t, out)
	if len(seqs) != want || want == 0 {
		t.Fatalf("--agent billing-bot --decision deny: %d records, want %d", len(seqs), want)
	}
	for _, seq := range seqs {
		if r := recs[seq-1]; r.Actor.AgentName != "billing-bot" || r.Outcome.Status != audit.OutcomeDenied {
			t.Errorf("record %d does not match the filters", seq)
		}
	}
	out = ok(t, s, newAuditCmd, "", "search", "--since", "2025-03-01T09:10:00Z", "--until", "2025-03-01T09:20:00Z", "--json")
	if got := jsonSeqs(t, out); fmt.Sprint(got) != fmt.Sprint(seqList(20, 11)) {
		t.Errorf("--since --until: %v", got)
	}
	out = ok(t, s, newAuditCmd, "", "search", "--tool", "tickets_close", "--team", "support", "--user", "", "--server", "support", "--kind", "mcp.request", "--action", "tools/call", "--json")
	for _, seq := range jsonSeqs(t, out) {
		if r := recs[seq-1]; r.Target.Tool != "tickets_close" || r.Actor.Team != "support" {
			t.Errorf("record %d does not match the filters", seq)
		}
	}

	// --json prints the records exactly as stored, following pages.
	rows, err := s.Store.ListAudit(context.Background(), store.AuditFilter{Desc: true, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var stored bytes.Buffer
	for _, row := range rows {
		stored.Write(row.Data)
		stored.WriteByte('\n')
	}
	if out = ok(t, s, newAuditCmd, "", "search", "--json", "--limit", "1000"); out != stored.String() {
		t.Errorf("search --json is not the stored records:\n%s\nwant\n%s", out, stored.String())
	}
	r := run(t, s, newAuditCmd, "", "search", "--json", "--limit", "3")
	if len(lines(r.out)) != 3 || !strings.Contains(r.errOut, "continue with --before 38") {
		t.Errorf("search --json --limit 3: %q, stderr %q", r.out, r.errOut)
	}

	// Relative times.
	now := time.Now().UTC().Truncate(time.Millisecond)
	recent := []audit.Record{genAuditRecord(100), genAuditRecord(101)}
	recent[0].Time, recent[1].Time = now.Add(-3*time.Hour), now.Add(-30*time.Minute)
	audittest.Append(t, s.Store, recent...)
	if got := jsonSeqs(t, ok(t, s, newAuditCmd, "", "search", "--since", "1h", "--json")); fmt.Sprint(got) != "[42]" {
		t.Errorf("--since 1h: %v", got)
	}
	if got := jsonSeqs(t, ok(t, s, newAuditCmd, "", "search", "--since", "1d", "--until", "2h", "--json")); fmt.Sprint(got) != "[41]" {
		t.Errorf("--since 1d --until 2h: %v", got)
	}

	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"search", "--decision", "maybe"}, "--decision must be allowed, denied, error, would_deny or pending"},
		{[]string{"search", "--since", "yesterday"}, "--since must be an RFC 3339 time"},
		{[]string{"search", "--until", "-5m"}, "--until must be an RFC 3339 time"},
		{[]string{"search", "--since", "1h", "--until", "2h"}, "--since (1h) must be before --until (2h)"},
		{[]string{"search", "--limit", "0"}, "--limit must be 1 or more"},
		{[]string{"search", "--agent", "a\x01b"}, "agent must not contain control characters"},
		{[]string{"tail", "-n", "5000"}, "--lines must be from 0 to 1000"},
		{[]string{"export", "--decision", "nope"}, "--decision must be"},
	} {
		r := run(t, s, newAuditCmd, "", tt.args...)
		if r.err == nil || !strings.Contains(r.err.Error(), tt.want) || exitCode(r.err) != 1 {
			t.Errorf("%v: error %v, want one containing %q", tt.args, r.err, tt.want)
		}
	}
}

func TestAuditCommandsTrailOff(t *testing.T) {
	s := admintest.New(t)
	for _, args := range [][]string{{"search"}, {"tail"}, {"export"}, {"verify"}} {
		r := run(t, s, newAuditCmd, "", args...)
		if r.err == nil || !strings.Contains(r.err.Error(), "the audit trail is off") || exitCode(r.err) != 1 {
			t.Errorf("%v without the trail: %v", args, r.err)
		}
	}
}

func TestAuditTailCommand(t *testing.T) {
	s := newAuditServer(t)
	out := ok(t, s, newAuditCmd, "", "tail")
	if l := lines(out); len(l) != 1 || !strings.HasPrefix(l[0], "TIME") {
		t.Errorf("tail of an empty trail: %q", out)
	}
	recs := appendGenerated(t, s.Store, 0, 30)
	out = ok(t, s, newAuditCmd, "", "tail")
	if got := tableSeqs(out); len(got) != 20 || got[0] != "11" || got[19] != "30" {
		t.Errorf("tail: %v\n%s", got, out)
	}
	last := regexp.QuoteMeta(recs[29].Time.Local().Format("2006-01-02 15:04:05"))
	if strings.Contains(out, "…") || !regexp.MustCompile(`(?m)^`+last+`\s+30\s+ops-bot\s+tools/call\s+support/crm_get_invoice\s+would_deny\s+-\s+100\.2ms$`).MatchString(out) {
		t.Errorf("tail's last row:\n%s", out)
	}
	out = ok(t, s, newAuditCmd, "", "tail", "-n", "3", "--json")
	if got := jsonSeqs(t, out); fmt.Sprint(got) != "[28 29 30]" {
		t.Errorf("tail -n 3 --json: %v", got)
	}
	if l := lines(out); l[2] != string(mustData(t, s, 30)) {
		t.Errorf("tail --json is not the stored record:\n%s", l[2])
	}
	out = ok(t, s, newAuditCmd, "", "tail", "-n", "2", "--agent", "ops-bot", "--json")
	if got := jsonSeqs(t, out); fmt.Sprint(got) != "[27 30]" {
		t.Errorf("tail --agent ops-bot: %v", got)
	}
}

func mustData(t *testing.T, s *admintest.Server, seq int64) []byte {
	t.Helper()
	rows, err := s.Store.ListAudit(context.Background(), store.AuditFilter{AfterSeq: seq - 1, Limit: 1})
	if err != nil || len(rows) != 1 {
		t.Fatalf("record %d: %v", seq, err)
	}
	return rows[0].Data
}

// syncBuffer is a bytes.Buffer safe for a command writing while the test
// reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestAuditTailFollow(t *testing.T) {
	s := newAuditServer(t)
	appendGenerated(t, s.Store, 0, 5)
	old := tailInterval
	tailInterval = 10 * time.Millisecond
	t.Cleanup(func() { tailInterval = old })
	smallPages(t, 2)

	cmd := newAuditCmd()
	var out, errOut syncBuffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	cmd.SetArgs([]string{"tail", "-f", "-n", "2", "--json", "--agent", "triage-bot", "--admin-url", s.URL, "--admin-token", admintest.Token})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()

	waitFor := func(want string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			if got := fmt.Sprint(jsonSeqs(t, out.String())); got == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("tail -f printed seqs %v, want %s (stderr %s)", jsonSeqs(t, out.String()), want, errOut.String())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitFor("[1 4]") // triage-bot's records are every third
	appendGenerated(t, s.Store, 5, 10)
	waitFor("[1 4 7 10 13]")
	appendGenerated(t, s.Store, 15, 1)
	waitFor("[1 4 7 10 13 16]")
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("tail -f after cancellation: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("tail -f does not stop when cancelled")
	}
}

// exportFile runs audit export and writes its output to a file.
func exportFile(t *testing.T, s *admintest.Server, args ...string) (string, []string) {
	t.Helper()
	r := run(t, s, newAuditCmd, "", append([]string{"export"}, args...)...)
	if r.err != nil {
		t.Fatalf("export: %v\n%s", r.err, r.errOut)
	}
	path := filepath.Join(t.TempDir(), "trail.jsonl")
	if err := os.WriteFile(path, []byte(r.out), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, strings.Split(strings.TrimSuffix(r.out, "\n"), "\n")
}

func writeLines(t *testing.T, ls []string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tampered.jsonl")
	if err := os.WriteFile(path, []byte(strings.Join(ls, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// verify runs audit verify and returns its output and exit code.
func verify(t *testing.T, s *admintest.Server, args ...string) (string, int) {
	t.Helper()
	r := run(t, s, newAuditCmd, "", append([]string{"verify"}, args...)...)
	if code := exitCode(r.err); code != 0 && code != exitBroken {
		t.Fatalf("verify %v: %v\n%s", args, r.err, r.out)
	}
	return r.out, exitCode(r.err)
}

func TestAuditExportAndVerify(t *testing.T) {
	s := newAuditServer(t)
	recs := appendGenerated(t, s.Store, 0, 25)
	key := newEd25519Key(t)
	signCheckpoint(t, s.Store, key, 10, recs[9].Hash)
	signCheckpoint(t, s.Store, key, 25, recs[24].Hash)
	smallPages(t, 4)

	r := run(t, s, newAuditCmd, "", "export")
	if r.err != nil || !strings.Contains(r.errOut, "Exported 25 records (seq 1 to 25) and 2 checkpoints.") {
		t.Fatalf("export: %v\n%s", r.err, r.errOut)
	}
	path, exported := exportFile(t, s)
	if len(exported) != 27 {
		t.Fatalf("export has %d lines, want 25 records and 2 checkpoints", len(exported))
	}
	for i := range 25 {
		if exported[i] != string(mustData(t, s, int64(i+1))) {
			t.Fatalf("line %d is not record %d as stored: %s", i+1, i+1, exported[i])
		}
	}
	for i, seq := range []int64{10, 25} {
		var cl struct {
			Checkpoint admin.AuditCheckpoint `json:"checkpoint"`
		}
		if err := json.Unmarshal([]byte(exported[25+i]), &cl); err != nil || cl.Checkpoint.Seq != seq || cl.Checkpoint.PublicKey != publicKeyB64(key) {
			t.Fatalf("checkpoint line %s: %v", exported[25+i], err)
		}
	}

	wantOK := fmt.Sprintf("OK: 25 records, 2 checkpoints verified, head seq 25 hash %s\n", recs[24].Hash)
	out, code := verify(t, s, "--file", path)
	if code != 0 || !strings.HasPrefix(out, wantOK) || !strings.Contains(out, "pass --trust-key") || !strings.Contains(out, publicKeyB64(key)) {
		t.Errorf("verify an intact export: exit %d\n%s", code, out)
	}
	out, code = verify(t, s, "--file", path, "--trust-key", publicKeyB64(key))
	if code != 0 || !strings.HasPrefix(out, wantOK) || strings.Contains(out, "pass --trust-key") {
		t.Errorf("verify with the right --trust-key: exit %d\n%s", code, out)
	}
	out, code = verify(t, s, "--trust-key", base64.RawURLEncoding.EncodeToString(key.Public().(ed25519.PublicKey)))
	if code != 0 || !strings.HasPrefix(out, wantOK) {
		t.Errorf("verify through the API: exit %d\n%s", code, out)
	}
	out, code = verify(t, s, "--file", path, "--json")
	var res verifyResult
	if err := json.Unmarshal([]byte(out), &res); err != nil || code != 0 || !res.OK || res.Records != 25 || res.Checkpoints != 2 || res.Head.Hash != recs[24].Hash {
		t.Errorf("verify --json: exit %d %v\n%s", code, err, out)
	}

	idOf := func(seq int) string { return recs[seq-1].ID }
	// reseal re-seals record seq (changed by change) with its prev_hash,
	// as someone would who knows how hashes are computed.
	reseal := func(seq int, prev string, change func(*audit.Record)) (string, string) {
		var r audit.Record
		if err := json.Unmarshal([]byte(exported[seq-1]), &r); err != nil {
			t.Fatal(err)
		}
		change(&r)
		data, err := audit.Seal(&r, int64(seq), prev)
		if err != nil {
			t.Fatal(err)
		}
		return string(data), r.Hash
	}
	edit := func(f func(ls []string) []string) string {
		return writeLines(t, f(append([]string(nil), exported...)))
	}
	otherKey := newEd25519Key(t)

	tests := []struct {
		name  string
		file  string
		extra []string
		want  string // the first line of the output
	}{
		{"a changed field", edit(func(ls []string) []string {
			ls[6] = strings.Replace(ls[6], `"agent":"triage-bot"`, `"agent":"mallory"`, 1)
			return ls
		}), nil, fmt.Sprintf("BROKEN at seq 7 (%s): its content does not match its hash", idOf(7))},
		{"a changed argument", edit(func(ls []string) []string {
			ls[11] = strings.Replace(ls[11], `"n":11`, `"n":99`, 1)
			return ls
		}), nil, fmt.Sprintf("BROKEN at seq 12 (%s): its content does not match its hash", idOf(12))},
		{"a field added", edit(func(ls []string) []string {
			ls[8] = strings.Replace(ls[8], `{"id"`, `{"note":"approved by the CISO","id"`, 1)
			return ls
		}), nil, fmt.Sprintf("BROKEN at seq 9 (%s): its JSON is not as sealed", idOf(9))},
		{"a key given twice", edit(func(ls []string) []string {
			// A reader taking the first "outcome" sees it allowed; the
			// hash covers the last.
			ls[1] = strings.Replace(ls[1], `"outcome":{`, `"outcome":{"status":"allowed"},"outcome":{`, 1)
			return ls
		}), nil, fmt.Sprintf("BROKEN at seq 2 (%s): its JSON is not as sealed", idOf(2))},
		{"the first record chained to something", edit(func(ls []string) []string {
			ls[0], _ = reseal(1, recs[5].Hash, func(*audit.Record) {})
			return ls
		}), nil, fmt.Sprintf("BROKEN at seq 1 (%s): its prev_hash is not the previous record's hash", idOf(1))},
		{"a deleted line", edit(func(ls []string) []string { return append(ls[:11], ls[12:]...) }),
			nil, fmt.Sprintf("BROKEN at seq 12 (%s): missing: the next record has sequence 13", idOf(13))},
		{"the last record deleted", edit(func(ls []string) []string { return append(ls[:24], ls[25:]...) }),
			nil, "BROKEN at seq 25: missing: a signed checkpoint vouches for seq 25, but the records end at seq 24"},
		{"two lines swapped", edit(func(ls []string) []string {
			ls[14], ls[15] = ls[15], ls[14]
			return ls
		}), nil, fmt.Sprintf("BROKEN at seq 15 (%s): missing: the next record has sequence 16", idOf(16))},
		{"a record re-hashed after a change", edit(func(ls []string) []string {
			ls[6], _ = reseal(7, recs[5].Hash, func(r *audit.Record) { r.Outcome.Status = audit.OutcomeAllowed; r.Outcome.Rule = "" })
			return ls
		}), nil, fmt.Sprintf("BROKEN at seq 8 (%s): its prev_hash is not the previous record's hash", idOf(8))},
		{"the chain rewritten from a record on", edit(func(ls []string) []string {
			prev := recs[5].Hash
			for seq := 7; seq <= 25; seq++ {
				ls[seq-1], prev = reseal(seq, prev, func(r *audit.Record) {
					if seq == 7 {
						r.Actor.AgentName = "someone-else"
					}
				})
			}
			return ls
		}), nil, "BROKEN at seq 10: checkpoint: the record at this sequence has another hash (the chain was rewritten)"},
		{"a checkpoint with a bad signature", edit(func(ls []string) []string {
			var cl checkpointLine
			_ = json.Unmarshal([]byte(ls[25]), &cl)
			sig, _ := base64.StdEncoding.DecodeString(cl.Checkpoint.Signature)
			sig[0] ^= 0xff
			cl.Checkpoint.Signature = base64.StdEncoding.EncodeToString(sig)
			b, _ := json.Marshal(cl)
			ls[25] = string(b)
			return ls
		}), nil, "BROKEN at seq 10: checkpoint: bad signature"},
		{"a checkpoint's hash changed", edit(func(ls []string) []string {
			ls[26] = strings.Replace(ls[26], recs[24].Hash, recs[23].Hash, 1)
			return ls
		}), nil, "BROKEN at seq 25: checkpoint: bad signature"},
		{"a checkpoint re-signed by another key", edit(func(ls []string) []string {
			c := audit.SignCheckpoint(otherKey, "ed25519:other", 10, recs[9].Hash, auditEpoch)
			ac := admin.AuditCheckpoint(c)
			b, _ := json.Marshal(checkpointLine{Checkpoint: &ac})
			ls[25] = string(b)
			return ls
		}), []string{"--trust-key", publicKeyB64(key)}, "BROKEN at seq 10: checkpoint: signed by a key that is not trusted (ed25519:other)"},
		{"a --trust-key that does not match", path, []string{"--trust-key", publicKeyB64(otherKey)},
			"BROKEN at seq 10: checkpoint: signed by a key that is not trusted (ed25519:test)"},
		{"a line that is not JSON", edit(func(ls []string) []string {
			ls[3] = "garbage"
			return ls
		}), nil, "BROKEN at seq 4: not a record"},
		{"a checkpoint line that is not one", edit(func(ls []string) []string {
			ls[25] = `{"checkpoint": "forged"}`
			return ls
		}), nil, "BROKEN: line 26 is neither a record nor a checkpoint"},
		{"--trust-key without checkpoints", edit(func(ls []string) []string { return ls[:25] }),
			[]string{"--trust-key", publicKeyB64(key)}, "NOT VERIFIED: --trust-key was given, but no checkpoint covers these records"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, code := verify(t, s, append([]string{"--file", tt.file}, tt.extra...)...)
			if code != exitBroken || !strings.HasPrefix(out, tt.want) {
				t.Errorf("exit %d, want 5; output:\n%s\nwant it to start with:\n%s", code, out, tt.want)
			}
		})
	}

	// Without --trust-key, a file without checkpoints is consistent but
	// vouched for by nothing: OK, with a note.
	out, code = verify(t, s, "--file", edit(func(ls []string) []string { return ls[:25] }))
	if code != 0 || !strings.Contains(out, "OK: 25 records, 0 checkpoints verified") || !strings.Contains(out, "nothing signed vouches for them") {
		t.Errorf("verify without checkpoints: exit %d\n%s", code, out)
	}
	// Without the first record, the walk starts at the second: an export
	// that starts later (or retention) looks the same, and verify says so.
	out, code = verify(t, s, "--file", edit(func(ls []string) []string { return ls[1:] }))
	if code != 0 || !strings.Contains(out, "OK: 24 records, 2 checkpoints verified") || !strings.Contains(out, "The records start at seq 2, not 1") ||
		!strings.Contains(out, "no checkpoint vouches for that anchor") {
		t.Errorf("verify without the first record: exit %d\n%s", code, out)
	}
	// An empty file is an empty chain.
	out, code = verify(t, s, "--file", writeLines(t, nil))
	if code != 0 || !strings.HasPrefix(out, "OK: 0 records, 0 checkpoints verified, head seq 0") {
		t.Errorf("verify an empty file: exit %d\n%s", code, out)
	}
	if r := run(t, s, newAuditCmd, "", "verify", "--file", filepath.Join(t.TempDir(), "nope.jsonl")); exitCode(r.err) != 1 {
		t.Errorf("verify a missing file: %v", r.err)
	}
	if r := run(t, s, newAuditCmd, "", "verify", "--file", path, "--trust-key", "bm90IGEga2V5"); exitCode(r.err) != 1 || !strings.Contains(r.err.Error(), "not a base64 Ed25519 public key") {
		t.Errorf("verify with a bad --trust-key: %v", r.err)
	}
}

func TestAuditExportRange(t *testing.T) {
	s := newAuditServer(t)
	recs := appendGenerated(t, s.Store, 0, 25)
	key := newEd25519Key(t)
	for _, seq := range []int64{5, 10, 25} {
		signCheckpoint(t, s.Store, key, seq, recs[seq-1].Hash)
	}

	// Record i (seq i+1) is at 09:00 + i minutes: 09:10 to 09:20 is
	// seqs 11 to 20, and the checkpoint at 10 anchors them.
	r := run(t, s, newAuditCmd, "", "export", "--since", "2025-03-01T09:10:00Z", "--until", "2025-03-01T09:20:00Z")
	if r.err != nil || !strings.Contains(r.errOut, "Exported 10 records (seq 11 to 20) and 1 checkpoints.") {
		t.Fatalf("export a range: %v\n%s", r.err, r.errOut)
	}
	path := writeLines(t, lines(r.out))
	if got := jsonSeqs(t, strings.Join(lines(r.out)[:10], "\n")); fmt.Sprint(got) != fmt.Sprint(seqList(11, 20)) {
		t.Errorf("range: %v", got)
	}
	out, code := verify(t, s, "--file", path, "--trust-key", publicKeyB64(key))
	if code != 0 || !strings.HasPrefix(out, fmt.Sprintf("OK: 10 records, 1 checkpoints verified, head seq 20 hash %s", recs[19].Hash)) ||
		!strings.Contains(out, "The records start at seq 11, not 1") || !strings.Contains(out, "a signed checkpoint at seq 10 vouches for that anchor") {
		t.Errorf("verify a range: exit %d\n%s", code, out)
	}

	// A filtered export says it cannot be verified as a chain.
	r = run(t, s, newAuditCmd, "", "export", "--agent", "ops-bot")
	if r.err != nil || !strings.Contains(r.errOut, "a filtered export holds a subset of the chain") {
		t.Errorf("filtered export: %v\n%s", r.err, r.errOut)
	}
	if got := jsonSeqs(t, strings.Join(lines(r.out)[:8], "\n")); fmt.Sprint(got) != "[3 6 9 12 15 18 21 24]" {
		t.Errorf("filtered export: %v", got)
	}
	// Nothing in range.
	r = run(t, s, newAuditCmd, "", "export", "--since", "2030-01-01T00:00:00Z")
	if r.err != nil || r.out != "" || !strings.Contains(r.errOut, "No audit records to export.") {
		t.Errorf("empty export: %v %q %q", r.err, r.out, r.errOut)
	}
}

// TestAuditVerifyAfterRetention: records purged from the start; the walk
// starts at the first one left, anchored by a checkpoint when there is
// one.
func TestAuditVerifyAfterRetention(t *testing.T) {
	s := newAuditServer(t)
	recs := appendGenerated(t, s.Store, 0, 20)
	key := newEd25519Key(t)
	signCheckpoint(t, s.Store, key, 5, recs[4].Hash)
	signCheckpoint(t, s.Store, key, 20, recs[19].Hash)
	ctx := context.Background()
	if n, err := s.Store.PurgeAudit(ctx, 6, time.Now().Add(time.Hour)); err != nil || n != 5 {
		t.Fatalf("purge: %d %v", n, err)
	}
	path, exported := exportFile(t, s)
	if len(exported) != 17 || recordSeq([]byte(exported[0])) != 6 {
		t.Fatalf("export after retention: %d lines, first %s", len(exported), exported[0])
	}
	wantOK := fmt.Sprintf("OK: 15 records, 2 checkpoints verified, head seq 20 hash %s", recs[19].Hash)
	for _, args := range [][]string{{"--file", path}, nil} {
		out, code := verify(t, s, append(args, "--trust-key", publicKeyB64(key))...)
		if code != 0 || !strings.HasPrefix(out, wantOK) || !strings.Contains(out, "The records start at seq 6, not 1") ||
			!strings.Contains(out, "a signed checkpoint at seq 5 vouches for that anchor") {
			t.Errorf("verify %v after retention: exit %d\n%s", args, code, out)
		}
	}
	// Without the anchor's checkpoint, the first record is taken as it is.
	out, code := verify(t, s, "--file", writeLines(t, append(append([]string(nil), exported[:15]...), exported[16])))
	if code != 0 || !strings.Contains(out, "OK: 15 records, 1 checkpoints verified") || !strings.Contains(out, "no checkpoint vouches for that anchor") {
		t.Errorf("verify without the anchor's checkpoint: exit %d\n%s", code, out)
	}
	// A first record whose prev_hash is not the anchor's.
	ls := append([]string(nil), exported...)
	var r audit.Record
	_ = json.Unmarshal([]byte(ls[0]), &r)
	data, _ := audit.Seal(&r, 6, recs[3].Hash)
	ls[0] = string(data)
	out, code = verify(t, s, "--file", writeLines(t, ls))
	if code != exitBroken || !strings.HasPrefix(out, "BROKEN at seq 5: checkpoint: the record at this sequence has another hash") {
		t.Errorf("re-anchored first record: exit %d\n%s", code, out)
	}

	// Everything purged: no records, the head and its checkpoint remain.
	if _, err := s.Store.PurgeAudit(ctx, 21, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	out, code = verify(t, s)
	if code != 0 || !strings.Contains(out, "OK: 0 records, 2 checkpoints verified, head seq 20") || !strings.Contains(out, "No records are stored") {
		t.Errorf("verify with every record purged: exit %d\n%s", code, out)
	}
}

// TestAuditVerifyAPIDamage: verify through the API finds a record changed
// in the store.
func TestAuditVerifyAPIDamage(t *testing.T) {
	s := newAuditServer(t)
	appendGenerated(t, s.Store, 0, 8)
	smallPages(t, 3)
	r := genAuditRecord(8)
	_, err := s.Store.AppendAudit(context.Background(), []store.AuditRow{{ID: r.ID, Time: r.Time, Kind: r.Kind, Action: r.Action, Outcome: "denied"}},
		func(row *store.AuditRow, prev string) error {
			data, err := audit.Seal(&r, row.Seq, prev)
			row.Data, row.Hash = bytes.Replace(data, []byte(`"n":8,`), []byte(`"n":80,`), 1), r.Hash
			return err
		})
	if err != nil {
		t.Fatal(err)
	}
	appendGenerated(t, s.Store, 9, 3)
	out, code := verify(t, s)
	if code != exitBroken || !strings.HasPrefix(out, fmt.Sprintf("BROKEN at seq 9 (%s): its content does not match its hash", r.ID)) ||
		!strings.Contains(out, "8 records and 0 checkpoints verified before it") {
		t.Errorf("verify a damaged trail: exit %d\n%s", code, out)
	}
}
