package admin_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"gatehouse/internal/admin"
	"gatehouse/internal/admin/admintest"
	"gatehouse/internal/identity"
	"gatehouse/internal/policy"
	"gatehouse/internal/store"
)

// testExplain stands for the composition root's explanations: it knows
// the agent "bot" and the tool "crm_get_invoice".
func testExplain(_ context.Context, q policy.ExplainQuery) (policy.Explanation, error) {
	if q.Agent != "" && q.Agent != "bot" {
		return policy.Explanation{}, fmt.Errorf("unknown agent %q", q.Agent)
	}
	if q.Tool != "crm_get_invoice" {
		return policy.Explanation{}, fmt.Errorf("unknown tool %q on server support", q.Tool)
	}
	return policy.Explanation{Decision: "deny", Rule: "no-invoices", Origin: "organisation", Reason: "invoices are off limits",
		Visible: false, Bundles: []string{"support"}, Labels: []string{"customer_financial"},
		Target:        policy.RecordedTarget{Kind: "tool", Server: "support", Upstream: "crm", Name: "get_invoice", Visible: q.Tool},
		PolicyVersion: "abc123",
		Steps:         []policy.Step{{Origin: "organisation", Rule: "no-invoices", Kind: "deny", Result: "matched", Mode: "enforce"}}}, nil
}

func newPolicyServer(t *testing.T) (*admintest.Server, client) {
	t.Helper()
	s := admintest.New(t, admintest.WithPolicy(admintest.PolicyOptions{Bundles: []string{"support", "oncall"}, Explain: testExplain}))
	return s, newClient(t, s)
}

func TestPolicyRoutesWithoutPolicy(t *testing.T) {
	s := admintest.New(t)
	c := newClient(t, s)
	for _, r := range []struct{ method, path, body string }{
		{"GET", "/admin/v1/grants", ""},
		{"POST", "/admin/v1/grants", `{"agent":"bot","bundle":"b","for":"1h","reason":"r"}`},
		{"DELETE", "/admin/v1/grants/grt_x", ""},
		{"GET", "/admin/v1/approvals", ""},
		{"GET", "/admin/v1/approvals/apr_x", ""},
		{"POST", "/admin/v1/approvals/apr_x/approve", ""},
		{"POST", "/admin/v1/approvals/apr_x/deny", ""},
		{"POST", "/admin/v1/policy/explain", `{"tool":"t"}`},
	} {
		var body any
		if r.body != "" {
			body = r.body
		}
		got, raw := c.do(r.method, r.path, body)
		if got != http.StatusNotFound || !strings.Contains(string(raw), "no policy section is configured") {
			t.Errorf("%s %s without a policy: %d %s", r.method, r.path, got, raw)
		}
	}
}

func TestCreateGrantErrors(t *testing.T) {
	_, c := newPolicyServer(t)
	c.createAgent("bot", "support")
	c.createAgent("off", "support")
	c.call("POST", "/admin/v1/agents/off/disable", nil, http.StatusOK, nil)

	tests := []struct {
		name   string
		body   string
		status int
		want   string
	}{
		{"no body", "", http.StatusBadRequest, "request body is required"},
		{"unknown field", `{"agent":"bot","bundle":"support","for":"1h","reason":"r","extra":1}`, http.StatusBadRequest, `unknown field "extra"`},
		{"no agent", `{"bundle":"support","for":"1h","reason":"r"}`, http.StatusBadRequest, "agent is required"},
		{"no bundle", `{"agent":"bot","for":"1h","reason":"r"}`, http.StatusBadRequest, "bundle is required"},
		{"no duration", `{"agent":"bot","bundle":"support","reason":"r"}`, http.StatusBadRequest, "for is required"},
		{"bad duration", `{"agent":"bot","bundle":"support","for":"2 days","reason":"r"}`, http.StatusBadRequest, "is not a duration"},
		{"too short", `{"agent":"bot","bundle":"support","for":"30s","reason":"r"}`, http.StatusBadRequest, "from 1m to 90 days"},
		{"too long", `{"agent":"bot","bundle":"support","for":"2161h","reason":"r"}`, http.StatusBadRequest, "from 1m to 90 days"},
		{"negative", `{"agent":"bot","bundle":"support","for":"-1h","reason":"r"}`, http.StatusBadRequest, "from 1m to 90 days"},
		{"no reason", `{"agent":"bot","bundle":"support","for":"1h"}`, http.StatusBadRequest, "reason is required"},
		{"blank reason", `{"agent":"bot","bundle":"support","for":"1h","reason":"  "}`, http.StatusBadRequest, "reason is required"},
		{"long reason", `{"agent":"bot","bundle":"support","for":"1h","reason":"` + strings.Repeat("x", 1001) + `"}`, http.StatusBadRequest, "longer than 1000"},
		{"control characters", `{"agent":"bot","bundle":"support","for":"1h","reason":"a\u001b[31m"}`, http.StatusBadRequest, "control characters"},
		{"unknown bundle", `{"agent":"bot","bundle":"root","for":"1h","reason":"r"}`, http.StatusBadRequest, `unknown bundle "root"`},
		{"unknown agent", `{"agent":"ghost","bundle":"support","for":"1h","reason":"r"}`, http.StatusNotFound, `agent "ghost" not found`},
		{"disabled agent", `{"agent":"off","bundle":"support","for":"1h","reason":"r"}`, http.StatusConflict, `agent "off" is disabled`},
		{"wrong type", `{"agent":"bot","bundle":"support","for":7200,"reason":"r"}`, http.StatusBadRequest, `field "for" must be a string`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body any
			if tt.body != "" {
				body = tt.body
			}
			got, raw := c.do("POST", "/admin/v1/grants", body)
			if got != tt.status || !strings.Contains(errMessage(raw), tt.want) {
				t.Fatalf("status %d %s, want %d with %q", got, raw, tt.status, tt.want)
			}
			errorCode(t, raw)
		})
	}
}

func TestGrants(t *testing.T) {
	s, c := newPolicyServer(t)
	ctx := context.Background()
	bot := c.createAgent("bot", "support")
	other := c.createAgent("other", "sales")

	var g admin.Grant
	before := time.Now()
	raw := c.call("POST", "/admin/v1/grants", admin.CreateGrantRequest{Agent: "bot", Bundle: "oncall", For: "2h", Reason: "INC-42", By: "alice"}, http.StatusCreated, &g)
	if !strings.HasPrefix(g.ID, "grt_") || g.Agent != "bot" || g.AgentID != bot.Agent.ID || g.Bundle != "oncall" || g.Reason != "INC-42" ||
		g.CreatedBy != "alice" || g.Status != "active" || g.RevokedAt != nil {
		t.Fatalf("created %+v", g)
	}
	if d := g.ExpiresAt.Sub(before); d < 2*time.Hour-time.Second || d > 2*time.Hour+5*time.Second {
		t.Errorf("expires in %s, want 2h", d)
	}
	checkSchema(t, c, "Grant", raw)
	// Times are RFC 3339.
	var rawGrant map[string]any
	_ = json.Unmarshal(raw, &rawGrant)
	if _, err := time.Parse(time.RFC3339, rawGrant["expires_at"].(string)); err != nil {
		t.Errorf("expires_at: %v", err)
	}
	// The engine gives the agent the bundle at once.
	p := &identity.Principal{Kind: identity.KindAgent, Subject: bot.Agent.ID, AgentID: bot.Agent.ID, AgentName: "bot", Team: "support"}
	if got := s.Policy.Caller(p).Grants; !slices.Equal(got, []string{"oncall"}) {
		t.Errorf("caller's grants %v", got)
	}
	if !strings.Contains(s.Logs.String(), "event=grant.created") {
		t.Error("the grant's creation is not audited")
	}

	// Default by; a second grant for the other agent.
	var g2 admin.Grant
	c.call("POST", "/admin/v1/grants", admin.CreateGrantRequest{Agent: "other", Bundle: "support", For: "1m", Reason: "test"}, http.StatusCreated, &g2)
	if g2.CreatedBy != "admin" || g2.AgentID != other.Agent.ID {
		t.Errorf("second grant %+v", g2)
	}
	// An expired grant, straight in the store.
	past := time.Now().Add(-time.Hour).UTC()
	if err := s.Store.CreateGrant(ctx, store.Grant{ID: "grt_old", AgentID: bot.Agent.ID, Bundle: "support", Reason: "old", CreatedBy: "bob",
		CreatedAt: past.Add(-time.Hour), ExpiresAt: past}); err != nil {
		t.Fatal(err)
	}

	listTests := []struct {
		query string
		want  []string // grant ids
	}{
		{"", []string{"grt_old", g.ID, g2.ID}},
		{"?agent=bot", []string{"grt_old", g.ID}},
		{"?agent=bot&active=true", []string{g.ID}},
		{"?active=true", []string{g.ID, g2.ID}},
		{"?active=false", []string{"grt_old", g.ID, g2.ID}},
		{"?bundle=support", []string{"grt_old", g2.ID}},
	}
	for _, tt := range listTests {
		var list []admin.Grant
		raw := c.call("GET", "/admin/v1/grants"+tt.query, nil, http.StatusOK, &list)
		var ids []string
		for _, x := range list {
			ids = append(ids, x.ID)
			if x.Agent == "" {
				t.Errorf("list%s: grant %s without its agent's name", tt.query, x.ID)
			}
			if x.ID == "grt_old" && x.Status != "expired" {
				t.Errorf("old grant's status %q", x.Status)
			}
		}
		slices.Sort(ids)
		want := slices.Clone(tt.want)
		slices.Sort(want)
		if !slices.Equal(ids, want) {
			t.Errorf("list%s: %v, want %v (%s)", tt.query, ids, want, raw)
		}
	}
	for _, q := range []struct {
		query  string
		status int
		want   string
	}{
		{"?active=maybe", http.StatusBadRequest, "active must be true or false"},
		{"?agent=ghost", http.StatusNotFound, `agent "ghost" not found`},
	} {
		if got, raw := c.do("GET", "/admin/v1/grants"+q.query, nil); got != q.status || !strings.Contains(errMessage(raw), q.want) {
			t.Errorf("list%s: %d %s", q.query, got, raw)
		}
	}

	// Revoke: by from the body or the query.
	var revoked admin.Grant
	raw = c.call("DELETE", "/admin/v1/grants/"+g.ID+"?by=carol", nil, http.StatusOK, &revoked)
	if revoked.Status != "revoked" || revoked.RevokedBy != "carol" || revoked.RevokedAt == nil || revoked.Agent != "bot" {
		t.Errorf("revoked %+v", revoked)
	}
	checkSchema(t, c, "Grant", raw)
	if got := s.Policy.Caller(p).Grants; len(got) != 0 {
		t.Errorf("grants after revocation: %v", got)
	}
	c.call("DELETE", "/admin/v1/grants/"+g2.ID, `{"by":"dave"}`, http.StatusOK, &revoked)
	if revoked.RevokedBy != "dave" {
		t.Errorf("revoked by %q, want dave", revoked.RevokedBy)
	}
	if !strings.Contains(s.Logs.String(), "event=grant.revoked") {
		t.Error("the revocation is not audited")
	}

	revokeErrs := []struct {
		name, path string
		body       any
		status     int
		want       string
	}{
		{"again", "/admin/v1/grants/" + g.ID, nil, http.StatusConflict, "was already revoked by carol"},
		{"expired", "/admin/v1/grants/grt_old", nil, http.StatusConflict, "expired at"},
		{"unknown", "/admin/v1/grants/grt_nope", nil, http.StatusNotFound, `grant "grt_nope" not found`},
		{"bad body", "/admin/v1/grants/grt_old", `{"who":"x"}`, http.StatusBadRequest, "unknown field"},
	}
	for _, tt := range revokeErrs {
		t.Run("revoke "+tt.name, func(t *testing.T) {
			got, raw := c.do("DELETE", tt.path, tt.body)
			if got != tt.status || !strings.Contains(errMessage(raw), tt.want) {
				t.Fatalf("%d %s, want %d with %q", got, raw, tt.status, tt.want)
			}
		})
	}
}

// hold opens an approval request for a call of the agent bot, as the
// gateway does when a workflow rule holds it, and returns it once the
// short wait has passed (the request stays pending).
func hold(t *testing.T, s *admintest.Server, args string) store.Approval {
	t.Helper()
	h := policy.HeldCall{Caller: &policy.Caller{Kind: "agent", ID: "agent:agt_bot", AgentID: "agt_bot", AgentName: "bot"},
		Server: "support", Tool: "chat_post_message", Args: json.RawMessage(args), PolicyVersion: "v1",
		Decision: policy.Decision{Effect: policy.Approve, Rule: "no-exfiltration", Origin: "workflow", Reason: "needs a person"}}
	a, err := s.Policy.Await(context.Background(), h, 10*time.Millisecond, time.Hour, nil)
	var pe *policy.PendingError
	if !errors.As(err, &pe) {
		t.Fatalf("await: %v", err)
	}
	return a
}

func TestApprovals(t *testing.T) {
	s, c := newPolicyServer(t)
	ctx := context.Background()
	first := hold(t, s, `{"text":"one"}`)
	second := hold(t, s, `{"text":"two"}`)
	third := hold(t, s, `{"text":"three"}`)
	now := time.Now().UTC()
	if err := s.Store.CreateApproval(ctx, store.Approval{ID: "apr_stale", Key: "k", Status: store.ApprovalPending, Principal: "agent:agt_bot",
		PrincipalName: "bot", Server: "support", Tool: "chat_post_message", ArgsHash: "h", Args: json.RawMessage(`{}`), PolicyVersion: "v1",
		Rule: "no-exfiltration", CreatedAt: now.Add(-2 * time.Hour), ExpiresAt: now.Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}

	var list []admin.Approval
	raw := c.call("GET", "/admin/v1/approvals?status=pending", nil, http.StatusOK, &list)
	if len(list) != 4 {
		t.Fatalf("pending: %s", raw)
	}
	for _, a := range list {
		if a.ID == "apr_stale" != a.Expired {
			t.Errorf("%s: expired %v", a.ID, a.Expired)
		}
	}
	var one json.RawMessage
	_ = json.Unmarshal(raw, &[]*json.RawMessage{&one})
	checkSchema(t, c, "Approval", one)

	var shown admin.Approval
	raw = c.call("GET", "/admin/v1/approvals/"+first.ID, nil, http.StatusOK, &shown)
	if shown.Status != "pending" || shown.CallerName != "bot" || shown.Caller != "agent:agt_bot" || shown.Tool != "chat_post_message" ||
		shown.Rule != "no-exfiltration" || string(shown.Args) != `{"text":"one"}` || shown.ArgsHash == "" || shown.PolicyVersion != "v1" {
		t.Errorf("shown %+v (%s)", shown, raw)
	}
	checkSchema(t, c, "Approval", raw)

	// A call held right now is released by the approval.
	released := make(chan error, 1)
	opened := make(chan store.Approval, 1)
	go func() {
		h := policy.HeldCall{Caller: &policy.Caller{Kind: "agent", ID: "agent:agt_bot", AgentName: "bot"}, Server: "support",
			Tool: "chat_post_message", Args: json.RawMessage(`{"text":"live"}`), PolicyVersion: "v1",
			Decision: policy.Decision{Effect: policy.Approve, Rule: "no-exfiltration"}}
		_, err := s.Policy.Await(ctx, h, 30*time.Second, time.Hour, func(a store.Approval) { opened <- a })
		released <- err
	}()
	live := <-opened
	var decided admin.Approval
	raw = c.call("POST", "/admin/v1/approvals/"+live.ID+"/approve", admin.DecideApprovalRequest{By: "alice", Note: "ok"}, http.StatusOK, &decided)
	if decided.Status != "approved" || decided.DecidedBy != "alice" || decided.Note != "ok" || decided.DecidedAt == nil {
		t.Errorf("approved %+v", decided)
	}
	checkSchema(t, c, "Approval", raw)
	select {
	case err := <-released:
		if err != nil {
			t.Errorf("the held call: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the approval did not release the held call")
	}

	c.call("POST", "/admin/v1/approvals/"+first.ID+"/approve", nil, http.StatusOK, &decided)
	if decided.DecidedBy != "admin" || decided.Status != "approved" {
		t.Errorf("default approver: %+v", decided)
	}
	c.call("POST", "/admin/v1/approvals/"+second.ID+"/deny", `{"note":"not to customers"}`, http.StatusOK, &decided)
	if decided.Status != "denied" || decided.Note != "not to customers" {
		t.Errorf("denied %+v", decided)
	}

	tests := []struct {
		name, path string
		body       any
		status     int
		want       string
	}{
		{"approve twice", "/admin/v1/approvals/" + first.ID + "/approve", nil, http.StatusConflict, "was already approved by admin"},
		{"deny an approved one", "/admin/v1/approvals/" + first.ID + "/deny", nil, http.StatusConflict, "was already approved"},
		{"approve a denied one", "/admin/v1/approvals/" + second.ID + "/approve", nil, http.StatusConflict, "was already denied by admin"},
		{"used", "/admin/v1/approvals/" + live.ID + "/deny", nil, http.StatusConflict, "has been used"},
		{"expired", "/admin/v1/approvals/apr_stale/approve", nil, http.StatusConflict, "expired at"},
		{"unknown", "/admin/v1/approvals/apr_nope/approve", nil, http.StatusNotFound, `approval "apr_nope" not found`},
		{"unknown field", "/admin/v1/approvals/" + third.ID + "/approve", `{"comment":"x"}`, http.StatusBadRequest, "unknown field"},
		{"long note", "/admin/v1/approvals/" + third.ID + "/deny", admin.DecideApprovalRequest{Note: strings.Repeat("n", 1001)}, http.StatusBadRequest, "note is longer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, raw := c.do("POST", tt.path, tt.body)
			if got != tt.status || !strings.Contains(errMessage(raw), tt.want) {
				t.Fatalf("%d %s, want %d with %q", got, raw, tt.status, tt.want)
			}
		})
	}
	if got, raw := c.do("GET", "/admin/v1/approvals/apr_nope", nil); got != http.StatusNotFound {
		t.Errorf("show unknown: %d %s", got, raw)
	}

	listTests := []struct {
		query  string
		status int
		n      int
		want   string
	}{
		{"", http.StatusOK, 5, ""},
		{"?status=all", http.StatusOK, 5, ""},
		{"?status=pending", http.StatusOK, 2, ""},
		{"?status=approved", http.StatusOK, 1, ""},
		{"?status=denied", http.StatusOK, 1, ""},
		{"?status=used", http.StatusOK, 1, ""},
		{"?limit=2", http.StatusOK, 2, ""},
		{"?status=open", http.StatusBadRequest, 0, "status must be pending, approved, denied, used or all"},
		{"?limit=0", http.StatusBadRequest, 0, "limit must be a number from 1 to 1000"},
		{"?limit=many", http.StatusBadRequest, 0, "limit must be"},
	}
	for _, tt := range listTests {
		got, raw := c.do("GET", "/admin/v1/approvals"+tt.query, nil)
		if got != tt.status || !strings.Contains(errMessage(raw), tt.want) {
			t.Errorf("list%s: %d %s", tt.query, got, raw)
			continue
		}
		if got == http.StatusOK {
			var l []admin.Approval
			if err := json.Unmarshal(raw, &l); err != nil || len(l) != tt.n {
				t.Errorf("list%s: %d approvals, want %d: %s", tt.query, len(l), tt.n, raw)
			}
		}
	}
	if !strings.Contains(s.Logs.String(), "event=approval.decided") {
		t.Error("decisions are not audited")
	}
}

func TestExplain(t *testing.T) {
	_, c := newPolicyServer(t)
	var ex policy.Explanation
	raw := c.call("POST", "/admin/v1/policy/explain", policy.ExplainQuery{Agent: "bot", Tool: "crm_get_invoice", Args: json.RawMessage(`{"id":"INV-1"}`)}, http.StatusOK, &ex)
	if ex.Decision != "deny" || ex.Rule != "no-invoices" || len(ex.Steps) != 1 || ex.Target.Visible != "crm_get_invoice" {
		t.Errorf("explanation %+v", ex)
	}
	checkSchema(t, c, "Explanation", raw)

	tests := []struct {
		name string
		body string
		want string
	}{
		{"no body", "", "request body is required"},
		{"no tool", `{"agent":"bot"}`, "tool is required"},
		{"args not an object", `{"agent":"bot","tool":"crm_get_invoice","args":[1]}`, "args must be a JSON object"},
		{"unknown field", `{"agent":"bot","tool":"crm_get_invoice","arguments":{}}`, `unknown field "arguments"`},
		{"bad time", `{"agent":"bot","tool":"crm_get_invoice","time":"tomorrow"}`, "bad request body"},
		{"empty label", `{"agent":"bot","tool":"crm_get_invoice","session_labels":[""]}`, "empty labels"},
		{"bad source", `{"agent":"bot","tool":"crm_get_invoice","source":"10.0.0"}`, "source must be an IP address"},
		{"unknown agent", `{"agent":"ghost","tool":"crm_get_invoice"}`, `unknown agent "ghost"`},
		{"unknown tool", `{"agent":"bot","tool":"nothing"}`, `unknown tool "nothing"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body any
			if tt.body != "" {
				body = tt.body
			}
			got, raw := c.do("POST", "/admin/v1/policy/explain", body)
			if got != http.StatusBadRequest || !strings.Contains(errMessage(raw), tt.want) || errorCode(t, raw) != "invalid" {
				t.Fatalf("%d %s, want 400 with %q", got, raw, tt.want)
			}
		})
	}
	// null args are no args.
	c.call("POST", "/admin/v1/policy/explain", `{"agent":"bot","tool":"crm_get_invoice","args":null}`, http.StatusOK, nil)
}

// errMessage returns the message of an error body (else the body).
func errMessage(raw []byte) string {
	var e admin.ErrorBody
	if json.Unmarshal(raw, &e) == nil && e.Error.Message != "" {
		return e.Error.Message
	}
	return string(raw)
}
