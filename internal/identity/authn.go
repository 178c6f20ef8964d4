package identity

import (
	"net/http"
	"strings"
	"sync"
	"time"
)

// Authenticator verifies the credential of an MCP request: an access token
// issued by this gateway or a static API key. Verified tokens are cached by
// hash until they expire, so the signature is checked once per token; the
// agent's status is looked up on every request (an in-memory map kept
// current by the change feed), so revocation and disabling take effect at
// once. It is safe for concurrent use.
type Authenticator struct {
	keys   *KeyManager
	dir    *Directory
	issuer string
	now    func() time.Time

	mu    sync.RWMutex
	cache map[[32]byte]*cached
}

type cached struct {
	p   *Principal
	exp time.Time
}

// maxCached bounds the token cache; beyond it expired entries are swept
// and, if still full, the cache is emptied.
const maxCached = 100_000

// NewAuthenticator returns an authenticator for tokens of issuer.
func NewAuthenticator(keys *KeyManager, dir *Directory, issuer string) *Authenticator {
	return &Authenticator{keys: keys, dir: dir, issuer: issuer, now: time.Now, cache: map[[32]byte]*cached{}}
}

// Authenticate checks the request's credential for virtual server server,
// whose resource URL (the token audience) is resource.
func (a *Authenticator) Authenticate(r *http.Request, server, resource string) (*Principal, *AuthError) {
	raw, aerr := bearer(r)
	if aerr != nil {
		return nil, aerr
	}
	now := a.now()
	var p *Principal
	if isAPIKey(raw) {
		ag, aerr := a.dir.checkAPIKey(raw, now)
		if aerr != nil {
			return nil, aerr
		}
		servers := a.dir.AgentServers(ag)
		scopes := make([]string, 0, len(servers))
		for _, s := range servers {
			scopes = append(scopes, ServerScope(s))
		}
		p = &Principal{Kind: KindAgent, Subject: ag.ID, AgentID: ag.ID, AgentName: ag.Name, Team: ag.Team, Owner: ag.Owner,
			ClientID: ag.ClientID, Scopes: scopes, Method: "api_key"}
	} else {
		var err *AuthError
		if p, err = a.verifyToken(raw, resource, now); err != nil {
			return nil, err
		}
	}
	return p, a.authorize(p, server)
}

// verifyToken returns the principal of a token, from the cache when it was
// verified before.
func (a *Authenticator) verifyToken(raw, resource string, now time.Time) (*Principal, *AuthError) {
	h := tokenHash(raw)
	a.mu.RLock()
	c := a.cache[h]
	a.mu.RUnlock()
	if c != nil {
		if now.Add(-clockSkew).After(c.exp) {
			return nil, invalidToken("token expired at %s", c.exp.UTC().Format(time.RFC3339))
		}
		if !containsString(c.p.Audience, resource) {
			return nil, invalidToken("token audience %q does not include this server (%s)", c.p.Audience, resource)
		}
		return a.current(c.p)
	}
	claims, aerr := parseToken(raw, a.keys)
	if aerr != nil {
		return nil, aerr
	}
	if aerr := checkClaims(claims, a.issuer, resource, now); aerr != nil {
		return nil, aerr
	}
	p := &Principal{
		Kind: claims.Kind, Subject: claims.Subject, ClientID: claims.ClientID,
		Scopes: strings.Fields(claims.Scope), Audience: claims.Audience,
		TokenID: claims.ID, ExpiresAt: claims.Expiry.Time(), Method: "jwt",
	}
	if claims.Act != nil {
		p.Actor = claims.Act.Sub
	}
	switch p.Kind {
	case KindAgent:
		p.AgentID = p.Subject
	case KindUser:
		p.Username = p.Subject
	default:
		return nil, invalidToken("token subject kind %q is unknown", claims.Kind)
	}
	a.mu.Lock()
	if len(a.cache) >= maxCached {
		a.sweepLocked(now)
	}
	a.cache[h] = &cached{p: p, exp: p.ExpiresAt}
	a.mu.Unlock()
	return a.current(p)
}

// current completes a principal with the agent's or user's current state
// and refuses it when it may no longer act.
func (a *Authenticator) current(p *Principal) (*Principal, *AuthError) {
	switch p.Kind {
	case KindAgent:
		ag, ok := a.dir.Agent(p.AgentID)
		if !ok {
			return nil, invalidToken("unknown agent %q", p.AgentID)
		}
		if why := agentStatus(ag); why != "" {
			return nil, invalidToken("%s", why)
		}
		if ag.Name == p.AgentName && ag.Team == p.Team && ag.Owner == p.Owner {
			return p, nil
		}
		q := *p
		q.AgentName, q.Team, q.Owner = ag.Name, ag.Team, ag.Owner
		return &q, nil
	case KindUser:
		u, ok := a.dir.User(p.Username)
		if !ok {
			return nil, invalidToken("unknown user %q", p.Username)
		}
		if u.Disabled {
			return nil, invalidToken("user %s is disabled", u.Username)
		}
	}
	return p, nil
}

// authorize checks that the principal may use the virtual server: its
// token carries the server's scope and its team or groups still grant it.
func (a *Authenticator) authorize(p *Principal, server string) *AuthError {
	scope := ServerScope(server)
	if !p.HasScope(scope) {
		return &AuthError{Status: 403, Code: "insufficient_scope", Scope: scope, Description: "the token lacks scope " + scope}
	}
	var servers []string
	switch p.Kind {
	case KindAgent:
		ag, _ := a.dir.Agent(p.AgentID)
		servers = a.dir.AgentServers(ag)
	case KindUser:
		u, _ := a.dir.User(p.Username)
		servers = a.dir.UserServers(u)
	}
	if !serverAllowed(servers, server) {
		return &AuthError{Status: 403, Code: "insufficient_scope", Scope: scope, Description: "no longer granted access to " + server}
	}
	return nil
}

// Forget drops cached tokens of a subject (used when revoking).
func (a *Authenticator) Forget(subject string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for h, c := range a.cache {
		if c.p.Subject == subject {
			delete(a.cache, h)
		}
	}
}

func (a *Authenticator) sweepLocked(now time.Time) {
	for h, c := range a.cache {
		if now.After(c.exp) {
			delete(a.cache, h)
		}
	}
	if len(a.cache) >= maxCached {
		clear(a.cache)
	}
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// bearer extracts the credential from "Authorization: Bearer …".
func bearer(r *http.Request) (string, *AuthError) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", &AuthError{Status: 401, Description: "authentication required"}
	}
	scheme, cred, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(cred) == "" {
		return "", &AuthError{Status: 401, Code: "invalid_request", Description: "use Authorization: Bearer <access token or API key>"}
	}
	return strings.TrimSpace(cred), nil
}
