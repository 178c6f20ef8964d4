package policy

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"gatehouse/internal/audit"
	"gatehouse/internal/identity"
	"gatehouse/internal/store"
)

// Store is the part of the store the engine uses: time-bounded grants,
// approvals, and the change feed that carries them to every replica.
type Store interface {
	CreateGrant(ctx context.Context, g store.Grant) error
	GetGrant(ctx context.Context, id string) (store.Grant, error)
	ListGrants(ctx context.Context, f store.GrantFilter) ([]store.Grant, error)
	RevokeGrant(ctx context.Context, id, by string, at time.Time) error
	MarkGrantExpired(ctx context.Context, id string, now time.Time) (bool, error)
	CreateApproval(ctx context.Context, a store.Approval) error
	GetApproval(ctx context.Context, id string) (store.Approval, error)
	ListApprovals(ctx context.Context, f store.ApprovalFilter) ([]store.Approval, error)
	DecideApproval(ctx context.Context, id, status, by, note string, at time.Time) (store.Approval, error)
	FindApproval(ctx context.Context, key string, now time.Time) (store.Approval, error)
	ConsumeApproval(ctx context.Context, id string, now time.Time) (store.Approval, error)
	Publish(ctx context.Context, c store.Change) error
}

// Directory resolves agents and users (the identity directory).
type Directory interface {
	Agent(id string) (store.Agent, bool)
	User(name string) (store.User, bool)
}

// ErrNoStore is returned for grants and approvals when the gateway runs
// without a store (authentication off and no identity section).
var ErrNoStore = errors.New("grants and approvals need the store (enable identity)")

// Engine holds the runtime state policy decisions need beyond the
// compiled configuration: who callers are (attributes, groups, grants),
// time-bounded grants, approvals of held calls, and the decision record.
// It is safe for concurrent use.
type Engine struct {
	st  Store // nil without a store
	dir Directory
	log *slog.Logger
	rec *Recorder
	aud func(audit.Record) error

	gen     atomic.Uint64 // bumped when agents, users or grants change
	callers sync.Map      // cacheKey -> *cachedCaller

	grantsMu sync.RWMutex
	grants   map[string][]string // agent id -> bundles granted now
	nextExp  time.Time           // earliest expiry among active grants

	waitMu  sync.Mutex
	waiters map[string][]chan struct{} // approval id -> held calls
}

type cachedCaller struct {
	gen uint64
	c   *Caller
}

// EngineOptions configure an Engine.
type EngineOptions struct {
	Store     Store // nil: no grants, no approvals
	Directory Directory
	Logger    *slog.Logger
	Recorder  *Recorder // nil: decisions are not recorded
	// Audit, when set, receives an audit record of every grant and
	// approval event (created, revoked, expired; requested, decided,
	// used).
	Audit func(audit.Record) error
}

// NewEngine returns an engine; call Load before serving when a store is set.
func NewEngine(o EngineOptions) *Engine {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Engine{st: o.Store, dir: o.Directory, log: o.Logger, rec: o.Recorder, aud: o.Audit, grants: map[string][]string{}, waiters: map[string][]chan struct{}{}}
}

// Recorder returns the decision recorder (nil when recording is off).
func (e *Engine) Recorder() *Recorder { return e.rec }

// Load reads the active grants.
func (e *Engine) Load(ctx context.Context) error {
	if e.st == nil {
		return nil
	}
	now := time.Now()
	gs, err := e.st.ListGrants(ctx, store.GrantFilter{ActiveAt: now})
	if err != nil {
		return fmt.Errorf("loading grants: %w", err)
	}
	m := map[string][]string{}
	var next time.Time
	for _, g := range gs {
		if !slices.Contains(m[g.AgentID], g.Bundle) {
			m[g.AgentID] = append(m[g.AgentID], g.Bundle)
		}
		if next.IsZero() || g.ExpiresAt.Before(next) {
			next = g.ExpiresAt
		}
	}
	for _, b := range m {
		sort.Strings(b)
	}
	e.grantsMu.Lock()
	e.grants, e.nextExp = m, next
	e.grantsMu.Unlock()
	e.gen.Add(1)
	return nil
}

// Apply handles a change from the store's feed.
func (e *Engine) Apply(ctx context.Context, c store.Change) {
	switch c.Kind {
	case "agent", "user":
		e.gen.Add(1)
	case "grant", "resync":
		if err := e.Load(ctx); err != nil {
			e.log.Warn("reloading grants", "error", err)
		}
	case "approval":
		e.wake(c.ID)
	}
}

// Run notes grant expiries until ctx ends: each expiry is recorded once
// across replicas, and callers lose the bundle at that moment.
func (e *Engine) Run(ctx context.Context) {
	if e.st == nil {
		return
	}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		e.grantsMu.RLock()
		due := !e.nextExp.IsZero() && !time.Now().Before(e.nextExp)
		e.grantsMu.RUnlock()
		if due {
			if err := e.Load(ctx); err != nil {
				e.log.Warn("reloading grants", "error", err)
			}
		}
		e.noteExpiries(ctx)
	}
}

func (e *Engine) noteExpiries(ctx context.Context) {
	now := time.Now()
	gs, err := e.st.ListGrants(ctx, store.GrantFilter{ActiveAt: now, ExpiredUnnoted: true})
	if err != nil {
		e.log.Warn("listing expired grants", "error", err)
		return
	}
	for _, g := range gs {
		ok, err := e.st.MarkGrantExpired(ctx, g.ID, now)
		if err != nil {
			e.log.Warn("noting a grant's expiry", "grant", g.ID, "error", err)
			continue
		}
		if ok {
			e.record("grant.expired", audit.Actor{Kind: "system"}, g.AgentID, "grant "+g.ID+" of bundle "+g.Bundle, g.Reason, "")
			e.log.Info("audit: grant expired", "event", "grant.expired", "grant", g.ID, "agent_id", g.AgentID,
				"bundle", g.Bundle, "reason", g.Reason, "created_by", g.CreatedBy, "expired_at", g.ExpiresAt)
			_ = e.st.Publish(ctx, store.Change{Kind: "grant", ID: g.ID})
		}
	}
}

// Caller returns the policy view of an authenticated principal (nil: an
// anonymous caller, when authentication is off).
func (e *Engine) Caller(p *identity.Principal) *Caller {
	if p == nil {
		return &Caller{}
	}
	key := p.ID() + "\x00" + p.Actor
	gen := e.gen.Load()
	if v, ok := e.callers.Load(key); ok {
		if cc := v.(*cachedCaller); cc.gen == gen {
			return cc.c
		}
	}
	c := &Caller{Kind: p.Kind, ID: p.ID()}
	human := p.Actor
	if p.Kind == identity.KindAgent {
		c.AgentID, c.AgentName, c.Team, c.Owner = p.AgentID, p.AgentName, p.Team, p.Owner
		if e.dir != nil {
			if a, ok := e.dir.Agent(p.AgentID); ok {
				c.AgentName, c.Team, c.Owner = a.Name, a.Team, a.Owner
				if len(a.Attributes) > 0 {
					_ = json.Unmarshal(a.Attributes, &c.Attributes)
				}
			}
		}
		e.grantsMu.RLock()
		c.Grants = e.grants[p.AgentID]
		e.grantsMu.RUnlock()
	} else {
		human = p.Username
	}
	c.User = human
	if human != "" && e.dir != nil {
		if u, ok := e.dir.User(human); ok {
			c.Groups = slices.Clone(u.Groups)
			sort.Strings(c.Groups)
		}
	}
	e.callers.Store(key, &cachedCaller{gen: gen, c: c})
	return c
}

// AddGrant makes agent a member of bundle for ttl.
func (e *Engine) AddGrant(ctx context.Context, agentID, bundle, reason, by string, ttl time.Duration) (store.Grant, error) {
	if e.st == nil {
		return store.Grant{}, ErrNoStore
	}
	now := time.Now().UTC()
	g := store.Grant{ID: "grt_" + randomID(), AgentID: agentID, Bundle: bundle, Reason: reason, CreatedBy: by,
		CreatedAt: now, ExpiresAt: now.Add(ttl)}
	if err := e.st.CreateGrant(ctx, g); err != nil {
		return store.Grant{}, err
	}
	e.record("grant.created", audit.Actor{Kind: "admin", User: by}, agentID, "grant "+g.ID+" of bundle "+bundle, reason, "")
	e.log.Info("audit: grant created", "event", "grant.created", "grant", g.ID, "agent_id", agentID, "bundle", bundle,
		"reason", reason, "created_by", by, "expires_at", g.ExpiresAt)
	_ = e.st.Publish(ctx, store.Change{Kind: "grant", ID: g.ID})
	e.Apply(ctx, store.Change{Kind: "grant", ID: g.ID})
	return g, nil
}

// RevokeGrant ends a grant before its expiry.
func (e *Engine) RevokeGrant(ctx context.Context, id, by string) error {
	if e.st == nil {
		return ErrNoStore
	}
	if err := e.st.RevokeGrant(ctx, id, by, time.Now().UTC()); err != nil {
		return err
	}
	e.record("grant.revoked", audit.Actor{Kind: "admin", User: by}, "", "grant "+id, "", "")
	e.log.Info("audit: grant revoked", "event", "grant.revoked", "grant", id, "revoked_by", by)
	_ = e.st.Publish(ctx, store.Change{Kind: "grant", ID: id})
	e.Apply(ctx, store.Change{Kind: "grant", ID: id})
	return nil
}

// ListGrants lists grants (all, or those active now).
func (e *Engine) ListGrants(ctx context.Context, f store.GrantFilter) ([]store.Grant, error) {
	if e.st == nil {
		return nil, ErrNoStore
	}
	return e.st.ListGrants(ctx, f)
}

// record writes an audit record of a grant or approval event.
func (e *Engine) record(action string, actor audit.Actor, agentID, object, reason, approval string) {
	if e.aud == nil {
		return
	}
	if agentID != "" && actor.Kind == "system" {
		actor.AgentID = agentID
	}
	r := audit.Record{Kind: audit.KindPolicy, Action: action, Actor: actor,
		Target:  audit.Target{Object: object},
		Outcome: audit.Outcome{Status: audit.OutcomeAllowed, Reason: reason, Approval: approval}}
	if err := e.aud(r); err != nil {
		e.log.Error("audit: a policy event could not be recorded", "action", action, "error", err)
	}
}

func randomID() string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// ArgsHash is the digest approvals bind arguments with: SHA-256 of the
// arguments in canonical form (keys sorted, no insignificant space), so
// that re-encoding by a client does not break the binding.
func ArgsHash(args json.RawMessage) string {
	var v any
	dec := json.NewDecoder(bytes.NewReader(args))
	dec.UseNumber() // numbers keep every digit: 2^53+1 is not 2^53
	if len(args) == 0 || dec.Decode(&v) != nil {
		v = string(args)
	}
	b, _ := json.Marshal(v) // maps marshal with sorted keys
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// approvalKey binds an approval to the exact call.
func approvalKey(caller, server, tool, argsHash, version string) string {
	sum := sha256.Sum256([]byte(caller + "\x00" + server + "\x00" + tool + "\x00" + argsHash + "\x00" + version))
	return hex.EncodeToString(sum[:])
}
