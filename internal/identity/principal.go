// Package identity answers "who is calling": it issues and verifies the
// gateway's access tokens (signed JWTs, RFC 9068 profile), manages the
// signing keys, checks static API keys, and keeps an in-memory directory of
// agents so that a revocation takes effect on the next request without a
// database read on the hot path. The OAuth endpoints that hand out tokens
// live in internal/identity/oauth.
package identity

import (
	"context"
	"slices"
	"time"
)

// Principal kinds.
const (
	KindAgent = "agent"
	KindUser  = "user"
)

// Principal is a verified caller. It is immutable once built.
type Principal struct {
	Kind    string // KindAgent or KindUser
	Subject string // the token's sub: an agent id, or a username

	// Set for agents.
	AgentID   string
	AgentName string
	Team      string
	Owner     string

	// Username is set for people (KindUser).
	Username string

	// Actor is the human driving the agent (the token's act claim), when
	// a person started the agent through the authorization-code flow.
	Actor string

	ClientID  string
	Scopes    []string
	Audience  []string
	TokenID   string
	ExpiresAt time.Time
	Method    string // "jwt" or "api_key"
}

// HasScope reports whether the principal holds scope s.
func (p *Principal) HasScope(s string) bool { return slices.Contains(p.Scopes, s) }

// ID is the identity a session is bound to: the same for every token of
// one agent or user.
func (p *Principal) ID() string { return p.Kind + ":" + p.Subject }

// ServerScope is the scope that grants access to a virtual server.
func ServerScope(server string) string { return "mcp:" + server }

type principalKey struct{}

// WithPrincipal returns a context carrying p.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the principal of the request, if any.
func FromContext(ctx context.Context) (*Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(*Principal)
	return p, ok && p != nil
}
