package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"gatehouse/internal/config"
	"gatehouse/internal/gateway"
	"gatehouse/internal/identity"
	"gatehouse/internal/policy"
	"gatehouse/internal/store"
)

// policySystem is the policy engine and what runs beside it: the decision
// record and the grant-expiry loop.
type policySystem struct {
	*policy.Engine
	rec  *policy.Recorder
	stop context.CancelFunc
	wg   sync.WaitGroup
}

// startPolicy builds the policy engine: over the store (grants,
// approvals, the identity directory) when there is one.
func startPolicy(ctx context.Context, cfg *config.Config, ids *identitySystem, log *slog.Logger) (*policySystem, error) {
	ps := &policySystem{}
	opts := policy.EngineOptions{Logger: log.With("component", "policy")}
	if cfg.Policy != nil && cfg.Policy.Record != "" {
		rec, err := policy.OpenRecorder(cfg.Policy.Record, log)
		if err != nil {
			return nil, err
		}
		ps.rec = rec
		opts.Recorder = rec
		log.Info("recording policy decisions (arguments included)", "path", cfg.Policy.Record)
	}
	if ids != nil {
		opts.Store, opts.Directory, opts.Audit = ids.st, ids.dir, ids.audit.Log
	}
	ps.Engine = policy.NewEngine(opts)
	if err := ps.Load(ctx); err != nil {
		if ps.rec != nil {
			ps.rec.Close()
		}
		return nil, err
	}
	if ids != nil {
		ids.setPolicy(ps.Engine)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	ps.stop = cancel
	ps.wg.Add(1)
	go func() {
		defer ps.wg.Done()
		ps.Run(runCtx)
	}()
	return ps, nil
}

func (ps *policySystem) close() {
	ps.stop()
	ps.wg.Wait()
	if ps.rec != nil {
		ps.rec.Close()
	}
}

// policyAdmin serves the admin API's policy routes. The admin API is
// mounted before the gateway and the engine exist, so they are bound late;
// until then (never, in practice: Run binds them before listening) the
// routes answer that policy is not ready.
type policyAdmin struct {
	st     store.Store
	dir    *identity.Directory
	engine atomic.Pointer[policy.Engine]
	gw     atomic.Pointer[gateway.Gateway]
}

var errPolicyNotReady = errors.New("the policy engine is not running yet")

func (a *policyAdmin) bind(e *policy.Engine, gw *gateway.Gateway) {
	a.engine.Store(e)
	a.gw.Store(gw)
}

func (a *policyAdmin) eng() (*policy.Engine, error) {
	if e := a.engine.Load(); e != nil {
		return e, nil
	}
	return nil, errPolicyNotReady
}

func (a *policyAdmin) AddGrant(ctx context.Context, agentID, bundle, reason, by string, ttl time.Duration) (store.Grant, error) {
	e, err := a.eng()
	if err != nil {
		return store.Grant{}, err
	}
	return e.AddGrant(ctx, agentID, bundle, reason, by, ttl)
}

func (a *policyAdmin) RevokeGrant(ctx context.Context, id, by string) error {
	e, err := a.eng()
	if err != nil {
		return err
	}
	return e.RevokeGrant(ctx, id, by)
}

func (a *policyAdmin) ListGrants(ctx context.Context, f store.GrantFilter) ([]store.Grant, error) {
	e, err := a.eng()
	if err != nil {
		return nil, err
	}
	return e.ListGrants(ctx, f)
}

func (a *policyAdmin) ListApprovals(ctx context.Context, f store.ApprovalFilter) ([]store.Approval, error) {
	e, err := a.eng()
	if err != nil {
		return nil, err
	}
	return e.ListApprovals(ctx, f)
}

func (a *policyAdmin) GetApproval(ctx context.Context, id string) (store.Approval, error) {
	e, err := a.eng()
	if err != nil {
		return store.Approval{}, err
	}
	return e.GetApproval(ctx, id)
}

func (a *policyAdmin) DecideApproval(ctx context.Context, id string, approve bool, by, note string) (store.Approval, error) {
	e, err := a.eng()
	if err != nil {
		return store.Approval{}, err
	}
	return e.DecideApproval(ctx, id, approve, by, note)
}

// HasBundle reports whether the running policy defines the bundle.
func (a *policyAdmin) HasBundle(name string) bool {
	gw := a.gw.Load()
	if gw == nil {
		return false
	}
	p := gw.Policy()
	return p != nil && p.HasBundle(name)
}

// Explain decides a hypothetical call the way the running gateway would.
func (a *policyAdmin) Explain(ctx context.Context, q policy.ExplainQuery) (policy.Explanation, error) {
	e, err := a.eng()
	gw := a.gw.Load()
	if err != nil || gw == nil {
		return policy.Explanation{}, errPolicyNotReady
	}
	var p *identity.Principal
	var servers []string
	switch {
	case q.Agent != "":
		ag, err := a.st.GetAgentByName(ctx, q.Agent)
		if err != nil {
			return policy.Explanation{}, fmt.Errorf("unknown agent %q", q.Agent)
		}
		p = &identity.Principal{Kind: identity.KindAgent, Subject: ag.ID, AgentID: ag.ID, AgentName: ag.Name,
			Team: ag.Team, Owner: ag.Owner, Actor: q.User}
		servers = a.dir.AgentServers(ag)
	case q.User != "":
		u, ok := a.dir.User(q.User)
		if !ok {
			return policy.Explanation{}, fmt.Errorf("unknown user %q", q.User)
		}
		p = &identity.Principal{Kind: identity.KindUser, Subject: u.Username, Username: u.Username}
		servers = a.dir.UserServers(u)
	default:
		return policy.Explanation{}, errors.New("name the caller: an agent (agent), a person (user), or both (a person driving an agent)")
	}
	server := q.Server
	if server == "" {
		var usable []string
		for _, s := range gw.Servers() {
			if slices.Contains(servers, "*") || slices.Contains(servers, s) {
				usable = append(usable, s)
			}
		}
		if len(usable) != 1 {
			return policy.Explanation{}, fmt.Errorf("name the virtual server (server): the caller may use %d (%s)", len(usable), strings.Join(usable, ", "))
		}
		server = usable[0]
	}
	at := time.Now()
	if q.Time != nil {
		at = *q.Time
	}
	return gw.Explain(ctx, e.Caller(p), server, q.Tool, q.Args, q.SessionLabels, q.Source, at)
}
