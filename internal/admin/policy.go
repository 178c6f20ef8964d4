package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"gatehouse/internal/policy"
	"gatehouse/internal/store"
)

// PolicyAdmin is what the API needs of least-privilege policy: time-bounded
// grants, approvals of held calls, and explanations of decisions.
// *policy.Engine has the grant and approval methods; the composition root
// adds the running policy's bundles and explanations.
type PolicyAdmin interface {
	AddGrant(ctx context.Context, agentID, bundle, reason, by string, ttl time.Duration) (store.Grant, error)
	RevokeGrant(ctx context.Context, id, by string) error
	ListGrants(ctx context.Context, f store.GrantFilter) ([]store.Grant, error)
	ListApprovals(ctx context.Context, f store.ApprovalFilter) ([]store.Approval, error)
	GetApproval(ctx context.Context, id string) (store.Approval, error)
	DecideApproval(ctx context.Context, id string, approve bool, by, note string) (store.Approval, error)
	// HasBundle reports whether the running policy defines the bundle.
	HasBundle(name string) bool
	Explain(ctx context.Context, q policy.ExplainQuery) (policy.Explanation, error)
}

// Bounds of the policy routes' inputs.
const (
	// MinGrantTTL and MaxGrantTTL bound a grant's duration: grants are
	// for temporary needs; standing access belongs in the configuration.
	MinGrantTTL = time.Minute
	MaxGrantTTL = 90 * 24 * time.Hour
	// defaultBy names the actor when a request does not.
	defaultBy = "admin"

	maxReason          = 1000
	maxBy              = 200
	maxNote            = 1000
	maxApprovalsListed = 1000
)

// errNoPolicy answers the policy routes of a gateway without a policy.
func errNoPolicy() error {
	return notFound("no policy section is configured on this gateway (add policy: to the configuration; grants and approvals also need the store, i.e. an identity section)")
}

// Grant is a time-bounded grant of a bundle to an agent.
type Grant struct {
	ID string `json:"id"`
	// Agent is the agent's name; empty if the agent no longer exists.
	Agent     string     `json:"agent"`
	AgentID   string     `json:"agent_id"`
	Bundle    string     `json:"bundle"`
	Reason    string     `json:"reason"`
	CreatedBy string     `json:"created_by"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt time.Time  `json:"expires_at"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
	RevokedBy string     `json:"revoked_by,omitempty"`
	// Status is active, revoked or expired, at the time of the response.
	Status string `json:"status" enum:"active,revoked,expired"`
}

func grantFromStore(g store.Grant, agentName string, now time.Time) Grant {
	out := Grant{ID: g.ID, Agent: agentName, AgentID: g.AgentID, Bundle: g.Bundle, Reason: g.Reason, CreatedBy: g.CreatedBy,
		CreatedAt: g.CreatedAt, ExpiresAt: g.ExpiresAt, RevokedAt: g.RevokedAt, RevokedBy: g.RevokedBy, Status: "active"}
	switch {
	case g.RevokedAt != nil:
		out.Status = "revoked"
	case !now.Before(g.ExpiresAt):
		out.Status = "expired"
	}
	return out
}

// CreateGrantRequest grants a bundle to an agent for a bounded time.
type CreateGrantRequest struct {
	// Agent is the agent's name; the agent must be active.
	Agent string `json:"agent"`
	// Bundle is a bundle of the running policy.
	Bundle string `json:"bundle"`
	// For is the grant's duration as a Go duration ("2h", "30m"), from 1m
	// to 90 days (2160h). The grant expires by itself.
	For string `json:"for"`
	// Reason says why, for the audit log (e.g. a ticket number).
	Reason string `json:"reason"`
	// By names who grants it; default "admin".
	By string `json:"by,omitempty"`
}

// RevokeGrantRequest ends a grant early.
type RevokeGrantRequest struct {
	// By names who revokes it; default the query parameter by, else
	// "admin".
	By string `json:"by,omitempty"`
}

// Approval is a call held for a person's decision. It is bound to the
// exact call (caller, server, tool, hash of the arguments, policy
// version) and is single-use.
type Approval struct {
	ID     string `json:"id"`
	Status string `json:"status" enum:"pending,approved,denied,used"`
	// Expired is set once the approval can no longer be decided (when
	// pending) or used (when approved).
	Expired bool `json:"expired"`
	// Caller is the caller's identity ("agent:agt_…", "user:alice");
	// CallerName its agent or user name.
	Caller     string `json:"caller"`
	CallerName string `json:"caller_name"`
	Server     string `json:"server"`
	Tool       string `json:"tool"`
	// Args are the call's arguments as the approver sees them (large
	// arguments are replaced by a note).
	Args          anyJSON    `json:"args"`
	ArgsHash      string     `json:"args_hash"`
	PolicyVersion string     `json:"policy_version"`
	Rule          string     `json:"rule"`
	Reason        string     `json:"reason"`
	CreatedAt     time.Time  `json:"created_at"`
	ExpiresAt     time.Time  `json:"expires_at"`
	DecidedBy     string     `json:"decided_by,omitempty"`
	DecidedAt     *time.Time `json:"decided_at,omitempty"`
	Note          string     `json:"note,omitempty"`
	UsedAt        *time.Time `json:"used_at,omitempty"`
}

func approvalFromStore(a store.Approval, now time.Time) Approval {
	args := anyJSON(a.Args)
	if len(args) == 0 {
		args = anyJSON("{}")
	}
	return Approval{ID: a.ID, Status: a.Status,
		Expired: (a.Status == store.ApprovalPending || a.Status == store.ApprovalApproved) && !now.Before(a.ExpiresAt),
		Caller:  a.Principal, CallerName: a.PrincipalName, Server: a.Server, Tool: a.Tool, Args: args, ArgsHash: a.ArgsHash,
		PolicyVersion: a.PolicyVersion, Rule: a.Rule, Reason: a.Reason, CreatedAt: a.CreatedAt, ExpiresAt: a.ExpiresAt,
		DecidedBy: a.DecidedBy, DecidedAt: a.DecidedAt, Note: a.Note, UsedAt: a.UsedAt}
}

// DecideApprovalRequest approves or denies a held call.
type DecideApprovalRequest struct {
	// By names the approver; default "admin".
	By string `json:"by,omitempty"`
	// Note is shown to the caller with a denial, and kept with the
	// approval.
	Note string `json:"note,omitempty"`
}

// anyJSON is a JSON value passed through as it is.
type anyJSON json.RawMessage

// MarshalJSON returns the value itself.
func (v anyJSON) MarshalJSON() ([]byte, error) {
	if len(v) == 0 {
		return []byte("null"), nil
	}
	return v, nil
}

// UnmarshalJSON keeps a copy of the value.
func (v *anyJSON) UnmarshalJSON(b []byte) error {
	*v = append((*v)[:0], b...)
	return nil
}

func (anyJSON) openAPISchema() map[string]any {
	return map[string]any{"description": "Any JSON value: the call's arguments (an object), or a string saying they were too large to keep."}
}

// checkText validates a free-text field.
func checkText(field, s string, max int, required bool) error {
	switch {
	case required && strings.TrimSpace(s) == "":
		return badRequest("%s is required", field)
	case !utf8.ValidString(s):
		return badRequest("%s must be UTF-8 text", field)
	case utf8.RuneCountInString(s) > max:
		return badRequest("%s is longer than %d characters", field, max)
	}
	for _, r := range s {
		if r < 0x20 && r != '\t' || r == 0x7f {
			return badRequest("%s must not contain control characters", field)
		}
	}
	return nil
}

// actor returns who acts: the first non-empty of names, else "admin".
func actor(names ...string) (string, error) {
	for _, n := range names {
		if n = strings.TrimSpace(n); n != "" {
			if err := checkText("by", n, maxBy, false); err != nil {
				return "", err
			}
			return n, nil
		}
	}
	return defaultBy, nil
}

// classifyPolicy is classify for the policy routes: a missing store is
// a configuration matter (404, like a missing vault).
func classifyPolicy(err error, subject string) error {
	if errors.Is(err, policy.ErrNoStore) {
		return &apiError{status: http.StatusNotFound, code: codeNotFound, msg: err.Error(), cause: err}
	}
	return classify(err, subject)
}

func grantSubject(id string) string    { return fmt.Sprintf("grant %q", id) }
func approvalSubject(id string) string { return fmt.Sprintf("approval %q", id) }
func conflict(format string, args ...any) *apiError {
	return &apiError{status: http.StatusConflict, code: codeConflict, msg: fmt.Sprintf(format, args...)}
}

func (a *API) createGrant(r *http.Request) (any, error) {
	if a.cfg.Policy == nil {
		return nil, errNoPolicy()
	}
	var req CreateGrantRequest
	if err := decodeBody(r, &req, false); err != nil {
		return nil, err
	}
	if req.Agent == "" {
		return nil, badRequest("agent is required: the name of the agent to grant the bundle to")
	}
	if req.Bundle == "" {
		return nil, badRequest("bundle is required")
	}
	if req.For == "" {
		return nil, badRequest("for is required: how long the grant lasts, e.g. \"2h\" (from 1m to 90 days)")
	}
	ttl, err := time.ParseDuration(req.For)
	if err != nil {
		return nil, badRequest("for %q is not a duration (use e.g. \"2h\", \"90m\")", req.For)
	}
	if ttl < MinGrantTTL || ttl > MaxGrantTTL {
		return nil, badRequest("for must be from 1m to 90 days (2160h), not %s", req.For)
	}
	if err := checkText("reason", req.Reason, maxReason, true); err != nil {
		return nil, err
	}
	by, err := actor(req.By)
	if err != nil {
		return nil, err
	}
	if !a.cfg.Policy.HasBundle(req.Bundle) {
		return nil, badRequest("unknown bundle %q: the running policy defines no such bundle (policy.bundles)", req.Bundle)
	}
	ag, err := a.cfg.Store.GetAgentByName(r.Context(), req.Agent)
	if err != nil {
		return nil, classify(err, agentSubject(req.Agent))
	}
	if ag.Status != store.AgentActive {
		return nil, conflict("agent %q is %s: only active agents can be granted a bundle", ag.Name, ag.Status)
	}
	g, err := a.cfg.Policy.AddGrant(r.Context(), ag.ID, req.Bundle, strings.TrimSpace(req.Reason), by, ttl)
	if err != nil {
		return nil, classifyPolicy(err, "the grant")
	}
	return grantFromStore(g, ag.Name, time.Now()), nil
}

func (a *API) listGrants(r *http.Request) (any, error) {
	if a.cfg.Policy == nil {
		return nil, errNoPolicy()
	}
	q := r.URL.Query()
	now := time.Now()
	f := store.GrantFilter{Bundle: q.Get("bundle")}
	if v := q.Get("active"); v != "" {
		active, err := strconv.ParseBool(v)
		if err != nil {
			return nil, badRequest("active must be true or false, not %q", v)
		}
		if active {
			f.ActiveAt = now
		}
	}
	names := map[string]string{}
	if name := q.Get("agent"); name != "" {
		ag, err := a.cfg.Store.GetAgentByName(r.Context(), name)
		if err != nil {
			return nil, classify(err, agentSubject(name))
		}
		f.AgentID = ag.ID
		names[ag.ID] = ag.Name
	}
	list, err := a.cfg.Policy.ListGrants(r.Context(), f)
	if err != nil {
		return nil, classifyPolicy(fmt.Errorf("listing grants: %w", err), "grants")
	}
	out := make([]Grant, 0, len(list))
	for _, g := range list {
		name, err := a.agentName(r.Context(), g.AgentID, names)
		if err != nil {
			return nil, err
		}
		out = append(out, grantFromStore(g, name, now))
	}
	return out, nil
}

// agentName resolves an agent id to its name through cache; an agent that
// is gone has no name.
func (a *API) agentName(ctx context.Context, id string, cache map[string]string) (string, error) {
	if name, ok := cache[id]; ok {
		return name, nil
	}
	ag, err := a.cfg.Store.GetAgent(ctx, id)
	switch {
	case err == nil:
		cache[id] = ag.Name
		return ag.Name, nil
	case errors.Is(err, store.ErrNotFound):
		cache[id] = ""
		return "", nil
	}
	return "", classify(fmt.Errorf("looking up agent %s: %w", id, err), "agent")
}

func (a *API) revokeGrant(r *http.Request) (any, error) {
	if a.cfg.Policy == nil {
		return nil, errNoPolicy()
	}
	id := r.PathValue("id")
	var req RevokeGrantRequest
	if err := decodeBody(r, &req, true); err != nil {
		return nil, err
	}
	by, err := actor(req.By, r.URL.Query().Get("by"))
	if err != nil {
		return nil, err
	}
	ctx := r.Context()
	if err := a.cfg.Policy.RevokeGrant(ctx, id, by); err != nil {
		if errors.Is(err, store.ErrUsed) {
			return nil, a.grantGone(ctx, id, err)
		}
		return nil, classifyPolicy(err, grantSubject(id))
	}
	now := time.Now()
	g, err := a.cfg.Store.GetGrant(ctx, id)
	if err != nil {
		// Revoked, but unreadable right after: say what is known.
		a.log.Warn("reading a grant after revoking it", "grant", id, "error", err)
		return Grant{ID: id, RevokedAt: &now, RevokedBy: by, Status: "revoked"}, nil
	}
	names := map[string]string{}
	name, err := a.agentName(ctx, g.AgentID, names)
	if err != nil {
		return nil, err
	}
	return grantFromStore(g, name, now), nil
}

// grantGone explains why a grant cannot be revoked.
func (a *API) grantGone(ctx context.Context, id string, cause error) error {
	g, err := a.cfg.Store.GetGrant(ctx, id)
	if err != nil {
		return &apiError{status: http.StatusConflict, code: codeConflict, msg: grantSubject(id) + " is already revoked or expired", cause: cause}
	}
	msg := fmt.Sprintf("%s expired at %s: nothing to revoke", grantSubject(id), g.ExpiresAt.UTC().Format(time.RFC3339))
	if g.RevokedAt != nil {
		msg = fmt.Sprintf("%s was already revoked by %s at %s", grantSubject(id), g.RevokedBy, g.RevokedAt.UTC().Format(time.RFC3339))
	}
	return &apiError{status: http.StatusConflict, code: codeConflict, msg: msg, cause: cause}
}

func (a *API) listApprovals(r *http.Request) (any, error) {
	if a.cfg.Policy == nil {
		return nil, errNoPolicy()
	}
	q := r.URL.Query()
	var f store.ApprovalFilter
	switch s := q.Get("status"); s {
	case "", "all":
	case store.ApprovalPending, store.ApprovalApproved, store.ApprovalDenied, store.ApprovalUsed:
		f.Status = s
	default:
		return nil, badRequest("status must be pending, approved, denied, used or all, not %q", s)
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxApprovalsListed {
			return nil, badRequest("limit must be a number from 1 to %d, not %q", maxApprovalsListed, v)
		}
		f.Limit = n
	}
	list, err := a.cfg.Policy.ListApprovals(r.Context(), f)
	if err != nil {
		return nil, classifyPolicy(fmt.Errorf("listing approvals: %w", err), "approvals")
	}
	now := time.Now()
	out := make([]Approval, 0, len(list))
	for _, ap := range list {
		out = append(out, approvalFromStore(ap, now))
	}
	return out, nil
}

func (a *API) getApproval(r *http.Request) (any, error) {
	if a.cfg.Policy == nil {
		return nil, errNoPolicy()
	}
	id := r.PathValue("id")
	ap, err := a.cfg.Policy.GetApproval(r.Context(), id)
	if err != nil {
		return nil, classifyPolicy(err, approvalSubject(id))
	}
	return approvalFromStore(ap, time.Now()), nil
}

// decideApproval returns the handler that approves or denies.
func (a *API) decideApproval(approve bool) func(*http.Request) (any, error) {
	return func(r *http.Request) (any, error) {
		if a.cfg.Policy == nil {
			return nil, errNoPolicy()
		}
		id := r.PathValue("id")
		var req DecideApprovalRequest
		if err := decodeBody(r, &req, true); err != nil {
			return nil, err
		}
		by, err := actor(req.By)
		if err != nil {
			return nil, err
		}
		if err := checkText("note", req.Note, maxNote, false); err != nil {
			return nil, err
		}
		ctx := r.Context()
		ap, err := a.cfg.Policy.DecideApproval(ctx, id, approve, by, strings.TrimSpace(req.Note))
		if err != nil {
			if errors.Is(err, store.ErrUsed) {
				return nil, a.approvalClosed(ctx, id, err)
			}
			return nil, classifyPolicy(err, approvalSubject(id))
		}
		return approvalFromStore(ap, time.Now()), nil
	}
}

// approvalClosed explains why an approval can no longer be decided.
func (a *API) approvalClosed(ctx context.Context, id string, cause error) error {
	ap, err := a.cfg.Policy.GetApproval(ctx, id)
	if err != nil {
		return &apiError{status: http.StatusConflict, code: codeConflict, msg: approvalSubject(id) + " is no longer pending or has expired", cause: cause}
	}
	var msg string
	switch ap.Status {
	case store.ApprovalPending:
		msg = fmt.Sprintf("%s expired at %s and can no longer be decided; the caller must retry the call to ask again",
			approvalSubject(id), ap.ExpiresAt.UTC().Format(time.RFC3339))
	case store.ApprovalUsed:
		msg = fmt.Sprintf("%s was approved by %s and has been used", approvalSubject(id), ap.DecidedBy)
	default:
		msg = fmt.Sprintf("%s was already %s by %s", approvalSubject(id), ap.Status, ap.DecidedBy)
		if ap.DecidedAt != nil {
			msg += " at " + ap.DecidedAt.UTC().Format(time.RFC3339)
		}
	}
	return &apiError{status: http.StatusConflict, code: codeConflict, msg: msg, cause: cause}
}

func (a *API) explain(r *http.Request) (any, error) {
	if a.cfg.Policy == nil {
		return nil, errNoPolicy()
	}
	var q policy.ExplainQuery
	if err := decodeBody(r, &q, false); err != nil {
		return nil, err
	}
	if q.Tool == "" {
		return nil, badRequest("tool is required: the tool's name as the client sees it")
	}
	if args := strings.TrimSpace(string(q.Args)); args == "null" {
		q.Args = nil
	} else if args != "" && !strings.HasPrefix(args, "{") {
		return nil, badRequest("args must be a JSON object (the tool's arguments)")
	}
	for _, l := range q.SessionLabels {
		if strings.TrimSpace(l) == "" {
			return nil, badRequest("session_labels must not hold empty labels")
		}
	}
	if q.Source != "" && net.ParseIP(q.Source) == nil {
		return nil, badRequest("source must be an IP address, not %q", q.Source)
	}
	ex, err := a.cfg.Policy.Explain(r.Context(), q)
	if err != nil {
		if ctxErr := r.Context().Err(); ctxErr != nil {
			return nil, classify(err, "the explanation")
		}
		if errors.Is(err, policy.ErrNoStore) {
			return nil, classifyPolicy(err, "the explanation")
		}
		return nil, &apiError{status: http.StatusBadRequest, code: codeInvalid, msg: err.Error(), cause: err}
	}
	return ex, nil
}
