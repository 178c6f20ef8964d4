package admin_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"gatehouse/internal/admin"
	"gatehouse/internal/admin/admintest"
	"gatehouse/internal/audit"
	"gatehouse/internal/audit/audittest"
	"gatehouse/internal/store"
)

// newAuditServer serves the admin API of a test server with the audit
// routes on its store.
func newAuditServer(t *testing.T) (*admintest.Server, client) {
	t.Helper()
	s := admintest.New(t)
	api := admin.New(admin.Config{Token: admintest.Token, Manager: s.Manager, Store: s.Store, Audit: s.Store,
		Logger: slog.New(slog.NewTextHandler(s.Logs, nil))})
	mux := http.NewServeMux()
	api.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return s, client{t: t, base: srv.URL, token: admintest.Token}
}

var auditEpoch = time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)

// genRecord returns the i-th (from 0) generated record: agents, teams,
// tools and outcomes vary, a minute apart from auditEpoch.
func genRecord(i int) audit.Record {
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
		DurationMS: float64(i%7) + 0.25,
	}
	if r.Outcome.Status == audit.OutcomeDenied {
		r.Outcome.Rule, r.Outcome.Reason = "no-invoices", "invoices are off limits"
	}
	if i%10 == 9 {
		r.Kind, r.Action, r.Target = audit.KindAdmin, "agent.created", audit.Target{Object: "agent new-bot"}
	}
	return r
}

// appendGenerated appends n generated records, numbered from first.
func appendGenerated(t *testing.T, st store.AuditStore, first, n int) []audit.Record {
	t.Helper()
	recs := make([]audit.Record, n)
	for i := range recs {
		recs[i] = genRecord(first + i)
	}
	return audittest.Append(t, st, recs...)
}

// addCheckpoint signs (seq, hash) with key and stores the checkpoint.
func addCheckpoint(t *testing.T, st store.AuditStore, key ed25519.PrivateKey, seq int64, hash string) audit.Checkpoint {
	t.Helper()
	c, err := audit.AddCheckpoint(context.Background(), st, key, "ed25519:test", seq, hash, auditEpoch.Add(time.Duration(seq)*time.Minute+time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func newKey(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// recordsPage is a page as the client sees it.
type recordsPage struct {
	Records []json.RawMessage `json:"records"`
	Next    *int64            `json:"next"`
}

func (p recordsPage) seqs(t *testing.T) []int64 {
	t.Helper()
	var out []int64
	for _, raw := range p.Records {
		var r audit.Record
		if err := json.Unmarshal(raw, &r); err != nil {
			t.Fatalf("record %s: %v", raw, err)
		}
		out = append(out, r.Seq)
	}
	return out
}

func (c client) records(query string) recordsPage {
	c.t.Helper()
	var p recordsPage
	c.call("GET", "/admin/v1/audit/records"+query, nil, http.StatusOK, &p)
	return p
}

func seqRange(from, to int64) []int64 {
	var out []int64
	if from <= to {
		for s := from; s <= to; s++ {
			out = append(out, s)
		}
	} else {
		for s := from; s >= to; s-- {
			out = append(out, s)
		}
	}
	return out
}

func equalSeqs(a, b []int64) bool {
	return fmt.Sprint(a) == fmt.Sprint(b)
}

func nextIs(p recordsPage, want int64) bool {
	if want == 0 {
		return p.Next == nil
	}
	return p.Next != nil && *p.Next == want
}

func TestAuditRoutesOff(t *testing.T) {
	s := admintest.New(t)
	c := newClient(t, s)
	for _, path := range []string{"/admin/v1/audit/records", "/admin/v1/audit/checkpoints", "/admin/v1/audit/head"} {
		got, raw := c.do("GET", path, nil)
		if got != http.StatusNotFound || !strings.Contains(string(raw), "the audit trail is off") || errorCode(t, raw) != "not_found" {
			t.Errorf("GET %s without the trail: %d %s", path, got, raw)
		}
	}
}

func TestAuditRecordsAsStored(t *testing.T) {
	s, c := newAuditServer(t)
	if p := c.records(""); len(p.Records) != 0 || p.Next != nil {
		t.Fatalf("empty trail: %+v", p)
	}
	appendGenerated(t, s.Store, 0, 25)
	rows, err := s.Store.ListAudit(context.Background(), store.AuditFilter{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}

	raw := c.call("GET", "/admin/v1/audit/records", nil, http.StatusOK, nil)
	// Every stored record is in the body byte for byte (HTML characters
	// in the arguments stay as the store has them).
	for _, row := range rows {
		if !bytes.Contains(raw, row.Data) {
			t.Fatalf("the response does not hold record %d as stored:\n%s", row.Seq, row.Data)
		}
	}
	var p recordsPage
	if err := json.Unmarshal(raw, &p); err != nil {
		t.Fatal(err)
	}
	if got := p.seqs(t); !equalSeqs(got, seqRange(25, 1)) || p.Next != nil {
		t.Fatalf("default page: seqs %v next %v, want 25..1 newest first and no next", got, p.Next)
	}
	for i, rec := range p.Records {
		if !bytes.Equal(rec, rows[len(rows)-1-i].Data) {
			t.Fatalf("record %d differs from the stored bytes", i)
		}
	}

	// What the API returns verifies.
	v := &audit.Verifier{}
	for i := len(p.Records) - 1; i >= 0; i-- {
		if prob := v.Add(p.Records[i]); prob != nil {
			t.Fatalf("verifying the served records: %v", prob)
		}
	}
	if v.Records != 25 {
		t.Errorf("verified %d records", v.Records)
	}
}

func TestAuditRecordsPaging(t *testing.T) {
	s, c := newAuditServer(t)
	appendGenerated(t, s.Store, 0, 25)

	// Descending: next is the before of the next page.
	var got []int64
	q := "?limit=10"
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatal("paging does not end")
		}
		p := c.records(q)
		got = append(got, p.seqs(t)...)
		if p.Next == nil {
			break
		}
		q = fmt.Sprintf("?limit=10&before=%d", *p.Next)
	}
	if !equalSeqs(got, seqRange(25, 1)) {
		t.Fatalf("descending pages: %v", got)
	}

	// Ascending: next is the after of the next page.
	got = nil
	q = "?order=asc&limit=7"
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatal("paging does not end")
		}
		p := c.records(q)
		got = append(got, p.seqs(t)...)
		if p.Next == nil {
			break
		}
		q = fmt.Sprintf("?order=asc&limit=7&after=%d", *p.Next)
	}
	if !equalSeqs(got, seqRange(1, 25)) {
		t.Fatalf("ascending pages: %v", got)
	}

	tests := []struct {
		query string
		seqs  []int64
		next  int64 // 0: none
	}{
		{"?limit=10", seqRange(25, 16), 16},
		{"?limit=5&before=6", seqRange(5, 1), 0}, // exactly the rest: no next page
		{"?limit=25", seqRange(25, 1), 0},
		{"?limit=24", seqRange(25, 2), 2},
		{"?order=asc&after=20", seqRange(21, 25), 0},
		{"?order=asc&after=20&limit=4", seqRange(21, 24), 24},
		{"?order=asc&after=5&before=9", seqRange(6, 8), 0},
		{"?before=1", nil, 0},
		{"?order=asc&after=25", nil, 0},
	}
	for _, tt := range tests {
		p := c.records(tt.query)
		if got := p.seqs(t); !equalSeqs(got, tt.seqs) || !nextIs(p, tt.next) {
			t.Errorf("%s: seqs %v next %v, want %v next %d", tt.query, got, p.Next, tt.seqs, tt.next)
		}
	}
}

func TestAuditRecordsFilters(t *testing.T) {
	s, c := newAuditServer(t)
	recs := appendGenerated(t, s.Store, 0, 40)
	count := func(keep func(audit.Record) bool) int {
		n := 0
		for _, r := range recs {
			if keep(r) {
				n++
			}
		}
		return n
	}
	at := func(i int) string {
		return url.QueryEscape(auditEpoch.Add(time.Duration(i) * time.Minute).Format(time.RFC3339))
	}
	tests := []struct {
		query string
		keep  func(audit.Record) bool
	}{
		{"agent=billing-bot", func(r audit.Record) bool { return r.Actor.AgentName == "billing-bot" }},
		{"team=ops", func(r audit.Record) bool { return r.Actor.Team == "ops" }},
		{"user=alice", func(r audit.Record) bool { return r.Actor.User == "alice" }},
		{"server=support", func(r audit.Record) bool { return r.Target.Server == "support" }},
		{"tool=crm_get_invoice", func(r audit.Record) bool { return r.Target.Tool == "crm_get_invoice" }},
		{"kind=admin", func(r audit.Record) bool { return r.Kind == audit.KindAdmin }},
		{"action=agent.created", func(r audit.Record) bool { return r.Action == "agent.created" }},
		{"outcome=denied", func(r audit.Record) bool { return r.Outcome.Status == audit.OutcomeDenied }},
		{"outcome=would_deny&agent=triage-bot", func(r audit.Record) bool {
			return r.Outcome.Status == audit.OutcomeWouldDeny && r.Actor.AgentName == "triage-bot"
		}},
		{"since=" + at(30), func(r audit.Record) bool { return r.Seq >= 31 }},
		{"until=" + at(5), func(r audit.Record) bool { return r.Seq <= 5 }},
		{"since=" + at(10) + "&until=" + at(20) + "&outcome=allowed", func(r audit.Record) bool {
			return r.Seq >= 11 && r.Seq <= 20 && r.Outcome.Status == audit.OutcomeAllowed
		}},
		{"agent=nobody", func(audit.Record) bool { return false }},
	}
	for _, tt := range tests {
		want := count(tt.keep)
		p := c.records("?limit=1000&" + tt.query)
		if len(p.Records) != want {
			t.Errorf("%s: %d records, want %d", tt.query, len(p.Records), want)
		}
		for _, raw := range p.Records {
			var r audit.Record
			_ = json.Unmarshal(raw, &r)
			if !tt.keep(r) {
				t.Errorf("%s: record %d does not match: %s", tt.query, r.Seq, raw)
			}
		}
	}
	// A filtered search pages too.
	p := c.records("?agent=triage-bot&limit=3")
	if len(p.Records) != 3 || p.Next == nil {
		t.Fatalf("filtered page: %+v", p)
	}
	rest := c.records(fmt.Sprintf("?agent=triage-bot&before=%d&limit=1000", *p.Next))
	if len(p.Records)+len(rest.Records) != count(func(r audit.Record) bool { return r.Actor.AgentName == "triage-bot" }) || rest.Next != nil {
		t.Errorf("filtered pages: %d + %d records", len(p.Records), len(rest.Records))
	}
}

func TestAuditBadInputs(t *testing.T) {
	_, c := newAuditServer(t)
	tests := []struct {
		path string
		want string
	}{
		{"/admin/v1/audit/records?limit=0", "limit must be a number from 1 to 1000"},
		{"/admin/v1/audit/records?limit=1001", "limit must be a number from 1 to 1000"},
		{"/admin/v1/audit/records?limit=ten", `not "ten"`},
		{"/admin/v1/audit/records?order=up", `order must be asc or desc, not "up"`},
		{"/admin/v1/audit/records?after=-1", "after must be a sequence number"},
		{"/admin/v1/audit/records?before=x", "before must be a sequence number"},
		{"/admin/v1/audit/records?after=9&before=9", "after (9) must be less than before (9)"},
		{"/admin/v1/audit/records?since=yesterday", "since must be an RFC 3339 time"},
		{"/admin/v1/audit/records?until=2026-13-01T00:00:00Z", "until must be an RFC 3339 time"},
		{"/admin/v1/audit/records?since=2026-11-25T10:00:00Z&until=2026-11-25T09:00:00Z", "since (2026-11-25T10:00:00Z) must be before until"},
		{"/admin/v1/audit/records?outcome=deny", "outcome must be one of allowed, denied, error, would_deny, pending"},
		{"/admin/v1/audit/records?decision=denied", `unknown query parameter "decision" (known: agent, team`},
		{"/admin/v1/audit/records?agent=a&agent=b", `query parameter "agent" is given 2 times`},
		{"/admin/v1/audit/records?tool=a%1bb", "tool must not contain control characters"},
		{"/admin/v1/audit/records?agent=" + strings.Repeat("a", 501), "agent is longer than 500 characters"},
		{"/admin/v1/audit/checkpoints?from=-3", "from must be a sequence number"},
		{"/admin/v1/audit/checkpoints?limit=5000", "limit must be a number from 1 to 1000"},
		{"/admin/v1/audit/checkpoints?after=3", `unknown query parameter "after" (known: from, limit)`},
		{"/admin/v1/audit/head?seq=1", "takes no query parameters"},
	}
	for _, tt := range tests {
		got, raw := c.do("GET", tt.path, nil)
		var e admin.ErrorBody
		_ = json.Unmarshal(raw, &e)
		if got != http.StatusBadRequest || e.Error.Code != "invalid" || !strings.Contains(e.Error.Message, tt.want) {
			t.Errorf("GET %s: %d %s, want 400 with %q", tt.path, got, raw, tt.want)
		}
	}
	if got, _ := c.do("POST", "/admin/v1/audit/records", nil); got != http.StatusMethodNotAllowed {
		t.Errorf("POST records: %d, want 405", got)
	}
}

func TestAuditCheckpointsAndHead(t *testing.T) {
	s, c := newAuditServer(t)
	var head admin.AuditHead
	c.call("GET", "/admin/v1/audit/head", nil, http.StatusOK, &head)
	if head.Seq != 0 || head.Hash != "" {
		t.Fatalf("head of an empty chain: %+v", head)
	}
	var list []admin.AuditCheckpoint
	if raw := c.call("GET", "/admin/v1/audit/checkpoints", nil, http.StatusOK, &list); strings.TrimSpace(string(raw)) != "[]" {
		t.Fatalf("no checkpoints: %s", raw)
	}

	recs := appendGenerated(t, s.Store, 0, 25)
	key := newKey(t)
	want10 := addCheckpoint(t, s.Store, key, 10, recs[9].Hash)
	want25 := addCheckpoint(t, s.Store, key, 25, recs[24].Hash)

	c.call("GET", "/admin/v1/audit/head", nil, http.StatusOK, &head)
	if head.Seq != 25 || head.Hash != recs[24].Hash {
		t.Fatalf("head %+v, want 25 %s", head, recs[24].Hash)
	}
	c.call("GET", "/admin/v1/audit/checkpoints", nil, http.StatusOK, &list)
	if len(list) != 2 {
		t.Fatalf("checkpoints: %+v", list)
	}
	for i, want := range []audit.Checkpoint{want10, want25} {
		got := audit.Checkpoint(list[i])
		if !got.Time.Equal(want.Time) {
			t.Errorf("checkpoint %d time %v, want %v", i, got.Time, want.Time)
		}
		got.Time = want.Time
		if got != want {
			t.Errorf("checkpoint %d:\n got %+v\nwant %+v", i, got, want)
		}
		// What the API returns verifies against the served records.
		v := &audit.Verifier{Trusted: []ed25519.PublicKey{key.Public().(ed25519.PublicKey)}}
		if prob := v.CheckCheckpoint(got, func(seq int64) (string, bool) { return recs[seq-1].Hash, true }); prob != nil {
			t.Errorf("checkpoint %d does not verify: %v", i, prob)
		}
	}
	c.call("GET", "/admin/v1/audit/checkpoints?from=11", nil, http.StatusOK, &list)
	if len(list) != 1 || list[0].Seq != 25 {
		t.Errorf("from=11: %+v", list)
	}
	c.call("GET", "/admin/v1/audit/checkpoints?from=0&limit=1", nil, http.StatusOK, &list)
	if len(list) != 1 || list[0].Seq != 10 {
		t.Errorf("limit=1: %+v", list)
	}
}

// TestAuditDamagedRecord: bytes in the store that are not JSON still
// make a readable page; the record comes out as a string.
func TestAuditDamagedRecord(t *testing.T) {
	s, c := newAuditServer(t)
	appendGenerated(t, s.Store, 0, 2)
	_, err := s.Store.AppendAudit(context.Background(), []store.AuditRow{{ID: "aud_damaged", Time: auditEpoch, Kind: "admin"}},
		func(row *store.AuditRow, prev string) error {
			row.Data, row.Hash = []byte(`{"id":"aud_damaged", trunc`), "0000"
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	p := c.records("")
	if len(p.Records) != 3 || string(p.Records[0]) != `"{\"id\":\"aud_damaged\", trunc"` {
		t.Fatalf("page with a damaged record: %+v", p)
	}
	if prob := (&audit.Verifier{}).Add(p.Records[0]); prob == nil || !strings.Contains(prob.Reason, "not a record") {
		t.Errorf("the damaged record verifies: %v", prob)
	}
}

// TestAuditPageBytes: a page ends early once its records are large; next
// continues after the last one sent.
func TestAuditPageBytes(t *testing.T) {
	s, c := newAuditServer(t)
	big := make([]audit.Record, 3)
	for i := range big {
		big[i] = genRecord(i)
		big[i].Args = json.RawMessage(`{"blob":"` + strings.Repeat("x", 3<<20) + `"}`)
	}
	audittest.Append(t, s.Store, big...)
	p := c.records("?order=asc")
	if got := p.seqs(t); !equalSeqs(got, []int64{1, 2}) || !nextIs(p, 2) {
		t.Fatalf("first page: %v next %v", got, p.Next)
	}
	p = c.records("?order=asc&after=2")
	if got := p.seqs(t); !equalSeqs(got, []int64{3}) || p.Next != nil {
		t.Fatalf("second page: %v next %v", got, p.Next)
	}
}

func TestAuditOpenAPI(t *testing.T) {
	_, c := newAuditServer(t)
	var doc struct {
		Paths map[string]map[string]struct {
			Parameters []struct{ Name string } `json:"parameters"`
			Responses  map[string]struct {
				Content map[string]struct {
					Schema map[string]any `json:"schema"`
				} `json:"content"`
			} `json:"responses"`
		} `json:"paths"`
	}
	c.call("GET", "/admin/v1/openapi.json", nil, http.StatusOK, &doc)
	rec, ok := doc.Paths["/admin/v1/audit/records"]["get"]
	if !ok {
		t.Fatal("GET /admin/v1/audit/records is not documented")
	}
	var names []string
	for _, p := range rec.Parameters {
		names = append(names, p.Name)
	}
	if got := strings.Join(names, ","); got != "agent,team,user,server,tool,kind,action,outcome,since,until,after,before,order,limit" {
		t.Errorf("records parameters: %s", got)
	}
	schema := rec.Responses["200"].Content["application/json"].Schema
	props, _ := schema["properties"].(map[string]any)
	if props["records"] == nil || props["next"] == nil {
		t.Errorf("records response schema: %v", schema)
	}
	for _, p := range []string{"/admin/v1/audit/checkpoints", "/admin/v1/audit/head"} {
		if _, ok := doc.Paths[p]["get"]; !ok {
			t.Errorf("GET %s is not documented", p)
		}
	}
}
