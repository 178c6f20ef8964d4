package policy

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse/internal/identity"
	"gatehouse/internal/store"
	"gatehouse/internal/store/sqlite"
)

// fakeDir is an identity directory of fixed agents and users.
type fakeDir struct {
	agents map[string]store.Agent
	users  map[string]store.User
}

func (d fakeDir) Agent(id string) (store.Agent, bool) { a, ok := d.agents[id]; return a, ok }
func (d fakeDir) User(name string) (store.User, bool) { u, ok := d.users[name]; return u, ok }

func testDir() fakeDir {
	return fakeDir{
		agents: map[string]store.Agent{
			"agt_1": {ID: "agt_1", Name: "support-bot", Team: "support", Owner: "alice@example.com",
				Attributes: json.RawMessage(`{"queues":["billing","technical"],"level":3}`)},
			"agt_2": {ID: "agt_2", Name: "plain-bot", Team: "sales"},
		},
		users: map[string]store.User{
			"alice": {Username: "alice", Groups: []string{"oncall", "admins"}},
			"carol": {Username: "carol", Groups: []string{"staff"}},
		},
	}
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func agentPrincipal(id, actor string) *identity.Principal {
	return &identity.Principal{Kind: identity.KindAgent, Subject: id, AgentID: id, AgentName: "token-name-" + id,
		Team: "token-team", Owner: "token-owner", Actor: actor}
}

func userPrincipal(name string) *identity.Principal {
	return &identity.Principal{Kind: identity.KindUser, Subject: name, Username: name}
}

func TestEngineCaller(t *testing.T) {
	e := NewEngine(EngineOptions{Directory: testDir(), Logger: quietLog()})
	cases := []struct {
		name string
		p    *identity.Principal
		want *Caller
	}{
		{"anonymous", nil, &Caller{}},
		{"agent from the directory", agentPrincipal("agt_1", ""), &Caller{Kind: "agent", ID: "agent:agt_1", AgentID: "agt_1",
			AgentName: "support-bot", Team: "support", Owner: "alice@example.com",
			Attributes: map[string]any{"queues": []any{"billing", "technical"}, "level": float64(3)}}},
		{"agent driven by a person", agentPrincipal("agt_1", "alice"), &Caller{Kind: "agent", ID: "agent:agt_1", AgentID: "agt_1",
			AgentName: "support-bot", Team: "support", Owner: "alice@example.com",
			Attributes: map[string]any{"queues": []any{"billing", "technical"}, "level": float64(3)},
			User:       "alice", Groups: []string{"admins", "oncall"}}},
		{"agent without attributes", agentPrincipal("agt_2", "nobody"), &Caller{Kind: "agent", ID: "agent:agt_2", AgentID: "agt_2",
			AgentName: "plain-bot", Team: "sales", User: "nobody"}},
		{"agent unknown to the directory: token claims", agentPrincipal("agt_9", ""), &Caller{Kind: "agent", ID: "agent:agt_9",
			AgentID: "agt_9", AgentName: "token-name-agt_9", Team: "token-team", Owner: "token-owner"}},
		{"person", userPrincipal("carol"), &Caller{Kind: "user", ID: "user:carol", User: "carol", Groups: []string{"staff"}}},
		{"person unknown to the directory", userPrincipal("dave"), &Caller{Kind: "user", ID: "user:dave", User: "dave"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := e.Caller(c.p)
			if got.Kind != c.want.Kind || got.ID != c.want.ID || got.AgentID != c.want.AgentID || got.AgentName != c.want.AgentName ||
				got.Team != c.want.Team || got.Owner != c.want.Owner || got.User != c.want.User ||
				!slices.Equal(got.Groups, c.want.Groups) || !slices.Equal(got.Grants, c.want.Grants) {
				t.Fatalf("got %+v\nwant %+v", got, c.want)
			}
			gb, _ := json.Marshal(got.Attributes)
			wb, _ := json.Marshal(c.want.Attributes)
			if string(gb) != string(wb) {
				t.Fatalf("attributes %s, want %s", gb, wb)
			}
			if c.p != nil && e.Caller(c.p) != got {
				t.Error("not cached")
			}
		})
	}
	// A change to agents or users drops the cache.
	p := agentPrincipal("agt_1", "")
	before := e.Caller(p)
	e.Apply(context.Background(), store.Change{Kind: "agent", ID: "agt_1"})
	if e.Caller(p) == before {
		t.Error("cache kept after an agent change")
	}
	// The same agent driven by another person is another caller.
	if e.Caller(agentPrincipal("agt_1", "carol")).User != "carol" {
		t.Error("actor not part of the cache key")
	}
	// No directory: the token's claims.
	bare := NewEngine(EngineOptions{})
	if c := bare.Caller(agentPrincipal("agt_1", "alice")); c.AgentName != "token-name-agt_1" || c.User != "alice" || c.Groups != nil {
		t.Errorf("without a directory: %+v", c)
	}
}

// The engine's callers decide as the directory says.
func TestEngineCallerDecides(t *testing.T) {
	p := mustPolicy(t, `
policy:
  bundles:
    support:
      members: {teams: [support]}
      allow:
        - {name: own-queues, tools: ["tickets/*"], when: 'has(args.queue) && args.queue in agent.attributes.queues'}
    oncall:
      members: {groups: [oncall]}
      allow: [{name: web, tools: ["web/*"]}]
`)
	e := NewEngine(EngineOptions{Directory: testDir(), Logger: quietLog()})
	cases := []struct {
		p      *identity.Principal
		target *Target
		args   string
		want   Effect
	}{
		{agentPrincipal("agt_1", ""), tt("tickets", "create"), `{"queue":"billing"}`, Allow},
		{agentPrincipal("agt_1", ""), tt("tickets", "create"), `{"queue":"legal"}`, Deny},
		{agentPrincipal("agt_1", ""), tt("web", "fetch"), `{}`, Deny},
		{agentPrincipal("agt_1", "alice"), tt("web", "fetch"), `{}`, Allow},
		{agentPrincipal("agt_2", "carol"), tt("web", "fetch"), `{}`, Deny},
		{userPrincipal("alice"), tt("web", "fetch"), `{}`, Allow},
		{nil, tt("web", "fetch"), `{}`, Deny},
	}
	for i, c := range cases {
		d := p.Decide(&Input{Caller: e.Caller(c.p), Target: c.target, Args: json.RawMessage(c.args)}, false)
		if d.Effect != c.want {
			t.Errorf("case %d: got %s (%s), want %s", i, d.Effect, d.Reason, c.want)
		}
	}
}

func TestEngineWithoutStore(t *testing.T) {
	ctx := context.Background()
	e := NewEngine(EngineOptions{Directory: testDir(), Logger: quietLog()})
	if err := e.Load(ctx); err != nil {
		t.Fatalf("Load: %v", err)
	}
	done := make(chan struct{})
	go func() { e.Run(ctx); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run without a store does not return")
	}
	if e.Recorder() != nil {
		t.Error("Recorder without one")
	}
	c := e.Caller(agentPrincipal("agt_1", ""))
	checks := map[string]error{}
	_, checks["AddGrant"] = e.AddGrant(ctx, "agt_1", "b", "r", "admin", time.Hour)
	checks["RevokeGrant"] = e.RevokeGrant(ctx, "grt_x", "admin")
	_, checks["ListGrants"] = e.ListGrants(ctx, store.GrantFilter{})
	_, checks["Await"] = e.Await(ctx, HeldCall{Caller: c, Server: "s", Tool: "t"}, time.Millisecond, time.Hour, nil)
	_, checks["DecideApproval"] = e.DecideApproval(ctx, "apr_x", true, "admin", "")
	_, checks["ListApprovals"] = e.ListApprovals(ctx, store.ApprovalFilter{})
	_, checks["GetApproval"] = e.GetApproval(ctx, "apr_x")
	for name, err := range checks {
		if !errors.Is(err, ErrNoStore) {
			t.Errorf("%s: %v, want ErrNoStore", name, err)
		}
	}
	if c.Grants != nil {
		t.Errorf("grants without a store: %q", c.Grants)
	}
}

// openStore opens a SQLite store in a temporary directory.
func openStore(t *testing.T) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "gatehouse.db"))
	if err != nil {
		t.Fatalf("sqlite: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func storeEngine(t *testing.T) (*Engine, *sqlite.Store) {
	t.Helper()
	st := openStore(t)
	e := NewEngine(EngineOptions{Store: st, Directory: testDir(), Logger: quietLog()})
	if err := e.Load(context.Background()); err != nil {
		t.Fatalf("Load: %v", err)
	}
	return e, st
}

func TestEngineGrants(t *testing.T) {
	ctx := context.Background()
	e, _ := storeEngine(t)
	p := mustPolicy(t, `
policy:
  bundles:
    escalation: {version: 1, members: {}, allow: [{name: escalate, tools: ["web/escalate"]}]}
    other: {members: {}, allow: [{name: other, tools: ["web/other"]}]}
`)
	pr := agentPrincipal("agt_1", "")
	decide := func() Decision { return p.Decide(&Input{Caller: e.Caller(pr), Target: tt("web", "escalate")}, false) }
	if d := decide(); d.Effect != Deny {
		t.Fatalf("before the grant: %+v", d)
	}

	g, err := e.AddGrant(ctx, "agt_1", "escalation", "INC-1", "admin", time.Hour)
	if err != nil {
		t.Fatalf("AddGrant: %v", err)
	}
	if !strings.HasPrefix(g.ID, "grt_") || g.AgentID != "agt_1" || g.Bundle != "escalation" || g.Reason != "INC-1" ||
		g.CreatedBy != "admin" || !g.ExpiresAt.After(g.CreatedAt) {
		t.Fatalf("grant %+v", g)
	}
	if c := e.Caller(pr); !slices.Equal(c.Grants, []string{"escalation"}) {
		t.Fatalf("grants after AddGrant: %q", c.Grants)
	}
	if d := decide(); d.Effect != Allow || d.Rule != "escalate" || d.Origin != "bundle escalation (v1)" || !slices.Equal(d.Bundles, []string{"escalation"}) {
		t.Fatalf("with the grant: %+v", d)
	}
	// Other agents do not get it.
	if c := e.Caller(agentPrincipal("agt_2", "")); len(c.Grants) != 0 {
		t.Fatalf("other agent's grants: %q", c.Grants)
	}
	// A second grant of another bundle; grants are sorted.
	g2, err := e.AddGrant(ctx, "agt_1", "other", "INC-2", "admin", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if c := e.Caller(pr); !slices.Equal(c.Grants, []string{"escalation", "other"}) {
		t.Fatalf("two grants: %q", c.Grants)
	}
	// The same bundle twice is listed once.
	if _, err := e.AddGrant(ctx, "agt_1", "escalation", "INC-3", "admin", time.Hour); err != nil {
		t.Fatal(err)
	}
	if c := e.Caller(pr); !slices.Equal(c.Grants, []string{"escalation", "other"}) {
		t.Fatalf("duplicate grant: %q", c.Grants)
	}
	active, err := e.ListGrants(ctx, store.GrantFilter{ActiveAt: time.Now()})
	if err != nil || len(active) != 3 {
		t.Fatalf("ListGrants: %d, %v", len(active), err)
	}

	if err := e.RevokeGrant(ctx, g2.ID, "admin"); err != nil {
		t.Fatalf("RevokeGrant: %v", err)
	}
	if c := e.Caller(pr); !slices.Equal(c.Grants, []string{"escalation"}) {
		t.Fatalf("after revoking: %q", c.Grants)
	}
	if err := e.RevokeGrant(ctx, g2.ID, "admin"); err == nil {
		t.Fatal("revoking twice")
	}
	if err := e.RevokeGrant(ctx, "grt_nope", "admin"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("revoking an unknown grant: %v", err)
	}
	for _, gr := range active {
		if gr.Bundle == "escalation" {
			if err := e.RevokeGrant(ctx, gr.ID, "admin"); err != nil {
				t.Fatal(err)
			}
		}
	}
	if c := e.Caller(pr); len(c.Grants) != 0 {
		t.Fatalf("after revoking all: %q", c.Grants)
	}
	if d := decide(); d.Effect != Deny {
		t.Fatalf("after revoking: %+v", d)
	}

	// A grant that has already expired grants nothing.
	if _, err := e.AddGrant(ctx, "agt_1", "escalation", "late", "admin", -time.Minute); err != nil {
		t.Fatal(err)
	}
	if c := e.Caller(pr); len(c.Grants) != 0 {
		t.Fatalf("expired grant: %q", c.Grants)
	}
}

// Another engine on the same store learns of a grant through Apply.
func TestEngineGrantChangeFeed(t *testing.T) {
	ctx := context.Background()
	e1, st := storeEngine(t)
	e2 := NewEngine(EngineOptions{Store: st, Directory: testDir(), Logger: quietLog()})
	if err := e2.Load(ctx); err != nil {
		t.Fatal(err)
	}
	pr := agentPrincipal("agt_2", "")
	if len(e2.Caller(pr).Grants) != 0 {
		t.Fatal("grants before")
	}
	g, err := e1.AddGrant(ctx, "agt_2", "b", "r", "admin", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	e2.Apply(ctx, store.Change{Kind: "grant", ID: g.ID})
	if got := e2.Caller(pr).Grants; !slices.Equal(got, []string{"b"}) {
		t.Fatalf("after Apply: %q", got)
	}
	if err := e1.RevokeGrant(ctx, g.ID, "admin"); err != nil {
		t.Fatal(err)
	}
	e2.Apply(ctx, store.Change{Kind: "resync"})
	if got := e2.Caller(pr).Grants; len(got) != 0 {
		t.Fatalf("after resync: %q", got)
	}
}

func heldCall(c *Caller, args, version string) HeldCall {
	return HeldCall{Caller: c, Server: "support", Tool: "chat_post_message", Args: json.RawMessage(args), PolicyVersion: version,
		Decision: Decision{Effect: Approve, Rule: "fin-to-comms", Origin: "workflow", Reason: "needs a person's approval"}}
}

// notifications collects the approvals Await opened.
type notifications struct {
	mu  sync.Mutex
	got []store.Approval
}

func (n *notifications) add(a store.Approval) { n.mu.Lock(); n.got = append(n.got, a); n.mu.Unlock() }
func (n *notifications) list() []store.Approval {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.got)
}

const shortWait = 50 * time.Millisecond

func pending(t *testing.T, a store.Approval, err error) store.Approval {
	t.Helper()
	var pe *PendingError
	if !errors.As(err, &pe) {
		t.Fatalf("got %v (%T), want *PendingError", err, err)
	}
	if pe.Approval.ID != a.ID {
		t.Fatalf("PendingError names %s, returned %s", pe.Approval.ID, a.ID)
	}
	return pe.Approval
}

// waitForWatcher waits until a call is held on approval id.
func waitForWatcher(t *testing.T, e *Engine, id string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		e.waitMu.Lock()
		n := len(e.waiters[id])
		e.waitMu.Unlock()
		if n > 0 {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("no call held on %s", id)
}

func TestEngineApprovals(t *testing.T) {
	ctx := context.Background()
	e, _ := storeEngine(t)
	c := e.Caller(agentPrincipal("agt_1", ""))
	args := `{"channel":"#support","text":"hi"}`
	var n notifications

	// No decision in time: pending, and the caller is told once.
	a, err := e.Await(ctx, heldCall(c, args, "v1"), shortWait, time.Hour, n.add)
	first := pending(t, a, err)
	if got := n.list(); len(got) != 1 || got[0].ID != first.ID {
		t.Fatalf("notifications %+v", got)
	}
	if first.Status != store.ApprovalPending || !strings.HasPrefix(first.ID, "apr_") || first.Principal != "agent:agt_1" ||
		first.PrincipalName != "support-bot" || first.Server != "support" || first.Tool != "chat_post_message" ||
		first.Rule != "fin-to-comms" || first.Reason != "needs a person's approval" || first.PolicyVersion != "v1" ||
		first.ArgsHash != ArgsHash(json.RawMessage(args)) || !first.ExpiresAt.After(time.Now().Add(50*time.Minute)) {
		t.Fatalf("approval %+v", first)
	}
	var stored map[string]any
	if err := json.Unmarshal(first.Args, &stored); err != nil || stored["channel"] != "#support" {
		t.Fatalf("args kept for the approver: %s", first.Args)
	}
	msg := err.Error()
	if !strings.Contains(msg, first.ID) || !strings.Contains(msg, "gatehouse approvals approve "+first.ID) || !strings.Contains(msg, `"fin-to-comms"`) {
		t.Fatalf("PendingError message %q", msg)
	}

	// The same call again waits on the same request without a new notification.
	a, err = e.Await(ctx, heldCall(c, args, "v1"), shortWait, time.Hour, n.add)
	if again := pending(t, a, err); again.ID != first.ID || len(n.list()) != 1 {
		t.Fatalf("retry opened %s (notifications %d)", again.ID, len(n.list()))
	}

	// Approved while the call is held: it proceeds.
	type result struct {
		a   store.Approval
		err error
	}
	res := make(chan result, 1)
	go func() {
		a, err := e.Await(ctx, heldCall(c, args, "v1"), time.Minute, time.Hour, n.add)
		res <- result{a, err}
	}()
	waitForWatcher(t, e, first.ID)
	dec, err := e.DecideApproval(ctx, first.ID, true, "carol", "checked")
	if err != nil || dec.Status != store.ApprovalApproved || dec.DecidedBy != "carol" || dec.Note != "checked" {
		t.Fatalf("DecideApproval: %+v, %v", dec, err)
	}
	r := <-res
	if r.err != nil || r.a.ID != first.ID || r.a.Status != store.ApprovalUsed {
		t.Fatalf("held call after approval: %+v, %v", r.a, r.err)
	}
	if got, err := e.GetApproval(ctx, first.ID); err != nil || got.Status != store.ApprovalUsed || got.UsedAt == nil {
		t.Fatalf("GetApproval after use: %+v, %v", got, err)
	}
	// Deciding again is refused.
	if _, err := e.DecideApproval(ctx, first.ID, false, "carol", ""); err == nil {
		t.Fatal("decided twice")
	}
	if _, err := e.DecideApproval(ctx, "apr_nope", true, "carol", ""); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deciding an unknown approval: %v", err)
	}

	// Single use: the next identical call needs a new approval.
	a, err = e.Await(ctx, heldCall(c, args, "v1"), shortWait, time.Hour, n.add)
	second := pending(t, a, err)
	if second.ID == first.ID || len(n.list()) != 2 {
		t.Fatalf("after use: %s (first %s), notifications %d", second.ID, first.ID, len(n.list()))
	}

	// Denied while held.
	go func() {
		a, err := e.Await(ctx, heldCall(c, args, "v1"), time.Minute, time.Hour, n.add)
		res <- result{a, err}
	}()
	waitForWatcher(t, e, second.ID)
	if _, err := e.DecideApproval(ctx, second.ID, false, "carol", "not today"); err != nil {
		t.Fatal(err)
	}
	r = <-res
	var de *DeniedError
	if !errors.As(r.err, &de) || de.Approval.ID != second.ID || de.Approval.Status != store.ApprovalDenied {
		t.Fatalf("held call after denial: %+v, %v", r.a, r.err)
	}
	if msg := r.err.Error(); msg != "approval "+second.ID+" was denied by carol: not today" {
		t.Fatalf("DeniedError message %q", msg)
	}

	// A denied request is not reused: the next call opens another.
	a, err = e.Await(ctx, heldCall(c, args, "v1"), shortWait, time.Hour, n.add)
	if third := pending(t, a, err); third.ID == second.ID {
		t.Fatal("reused a denied approval")
	}

	list, err := e.ListApprovals(ctx, store.ApprovalFilter{Principal: "agent:agt_1"})
	if err != nil || len(list) != 3 {
		t.Fatalf("ListApprovals: %d, %v", len(list), err)
	}
}

// An approval is bound to the exact call: caller, server, tool, arguments
// (canonically) and policy version.
func TestApprovalBinding(t *testing.T) {
	ctx := context.Background()
	e, _ := storeEngine(t)
	c := e.Caller(agentPrincipal("agt_1", ""))
	args := `{"channel":"#support","text":"hi","n":[1,2,{"b":1,"a":2}]}`
	a, err := e.Await(ctx, heldCall(c, args, "v1"), shortWait, time.Hour, nil)
	open := pending(t, a, err)
	if _, err := e.DecideApproval(ctx, open.ID, true, "carol", ""); err != nil {
		t.Fatal(err)
	}
	other := func(h HeldCall) {
		t.Helper()
		a, err := e.Await(ctx, h, shortWait, time.Hour, nil)
		if p := pending(t, a, err); p.ID == open.ID {
			t.Fatalf("%+v reused the approval of another call", h)
		}
	}
	other(heldCall(c, `{"channel":"#support","text":"bye","n":[1,2,{"b":1,"a":2}]}`, "v1"))
	other(heldCall(c, args, "v2"))
	h := heldCall(c, args, "v1")
	h.Tool = "chat_other"
	other(h)
	h = heldCall(c, args, "v1")
	h.Server = "internal"
	other(h)
	other(heldCall(e.Caller(agentPrincipal("agt_2", "")), args, "v1"))

	// Key order and spacing do not matter: this call uses the approval.
	same := "{ \"n\" : [1, 2, {\"a\": 2, \"b\": 1}],\n \"text\":\"hi\", \"channel\": \"#support\" }"
	got, err := e.Await(ctx, heldCall(c, same, "v1"), shortWait, time.Hour, nil)
	if err != nil || got.ID != open.ID || got.Status != store.ApprovalUsed {
		t.Fatalf("reordered arguments: %+v, %v", got, err)
	}
}

func TestAwaitArgsKept(t *testing.T) {
	ctx := context.Background()
	e, _ := storeEngine(t)
	c := e.Caller(agentPrincipal("agt_1", ""))
	big := `{"text":"` + strings.Repeat("x", maxApprovalArgs) + `"}`
	a, err := e.Await(ctx, heldCall(c, big, "v1"), time.Millisecond, time.Hour, nil)
	p := pending(t, a, err)
	var s string
	if err := json.Unmarshal(p.Args, &s); err != nil || !strings.Contains(s, "bytes of arguments, not kept") {
		t.Fatalf("big arguments kept as %.80s", p.Args)
	}
	a, err = e.Await(ctx, heldCall(c, "", "v1"), time.Millisecond, time.Hour, nil)
	if p := pending(t, a, err); string(p.Args) != `{}` {
		t.Fatalf("no arguments kept as %s", p.Args)
	}
	// A person calling directly is named by user name.
	a, err = e.Await(ctx, heldCall(e.Caller(userPrincipal("carol")), `{}`, "v1"), time.Millisecond, time.Hour, nil)
	if p := pending(t, a, err); p.PrincipalName != "carol" || p.Principal != "user:carol" {
		t.Fatalf("person: %+v", p)
	}
}

func TestAwaitCancelled(t *testing.T) {
	e, _ := storeEngine(t)
	c := e.Caller(agentPrincipal("agt_1", ""))
	ctx, cancel := context.WithCancel(context.Background())
	var n notifications
	done := make(chan error, 1)
	go func() {
		_, err := e.Await(ctx, heldCall(c, `{}`, "v1"), time.Minute, time.Hour, n.add)
		done <- err
	}()
	deadline := time.Now().Add(10 * time.Second)
	for len(n.list()) == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if len(n.list()) == 0 {
		t.Fatal("no approval opened")
	}
	waitForWatcher(t, e, n.list()[0].ID)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	e.waitMu.Lock()
	defer e.waitMu.Unlock()
	if len(e.waiters) != 0 {
		t.Fatalf("waiters left: %v", e.waiters)
	}
}

// An expired approval request is not reused: the retry opens another.
func TestAwaitExpiry(t *testing.T) {
	e, _ := storeEngine(t)
	c := e.Caller(agentPrincipal("agt_1", ""))
	a, err := e.Await(context.Background(), heldCall(c, `{}`, "v1"), shortWait, 5*time.Millisecond, nil)
	first := pending(t, a, err)
	time.Sleep(20 * time.Millisecond)
	if _, err := e.DecideApproval(context.Background(), first.ID, true, "carol", ""); err == nil {
		t.Fatal("approved an expired request")
	}
	a, err = e.Await(context.Background(), heldCall(c, `{}`, "v1"), shortWait, time.Hour, nil)
	if again := pending(t, a, err); again.ID == first.ID {
		t.Fatal("an expired request was reused")
	}
}

func TestArgsHash(t *testing.T) {
	same := [][]string{
		{`{"a":1,"b":2}`, `{"b":2,"a":1}`, "{ \"a\" : 1 ,\n\t\"b\" : 2 }"},
		{`{"a":{"y":[1,{"q":1,"p":2}],"x":null}}`, `{"a":{"x":null,"y":[1,{"p":2,"q":1}]}}`},
		{`{"s":"\u00e9"}`, `{"s":"é"}`},
	}
	for _, group := range same {
		for _, a := range group[1:] {
			if ArgsHash(json.RawMessage(group[0])) != ArgsHash(json.RawMessage(a)) {
				t.Errorf("ArgsHash(%s) != ArgsHash(%s)", group[0], a)
			}
		}
	}
	different := [][2]string{
		{`{"a":1}`, `{"a":2}`},
		// Numbers are bound as written: an upstream may read 1.0 and 1
		// differently, so an approval of one is not one of the other.
		{`{"n":1}`, `{"n":1.0}`},
		{`{"a":1}`, `{"a":"1"}`},
		{`{"a":1}`, `{"A":1}`},
		{`{"a":[1,2]}`, `{"a":[2,1]}`},
		{`{}`, ``},
		{`{}`, `null`},
		{`{"a":null}`, `{}`},
		{`not json`, `{}`},
		{`not json`, `not json either`},
	}
	for _, d := range different {
		if ArgsHash(json.RawMessage(d[0])) == ArgsHash(json.RawMessage(d[1])) {
			t.Errorf("ArgsHash(%s) == ArgsHash(%s)", d[0], d[1])
		}
	}
	if h := ArgsHash(json.RawMessage(`{}`)); len(h) != 64 {
		t.Errorf("hash %q", h)
	}
	t.Run("large integers", func(t *testing.T) {
		// Integers above 2^53 that differ must not share a hash: an
		// approval of one account or amount is not one of another.
		a, b := `{"account":9007199254740993}`, `{"account":9007199254740992}`
		if ArgsHash(json.RawMessage(a)) == ArgsHash(json.RawMessage(b)) {
			t.Fatalf("ArgsHash(%s) == ArgsHash(%s)", a, b)
		}
	})
}
