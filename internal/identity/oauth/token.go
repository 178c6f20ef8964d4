package oauth

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"gatehouse/internal/audit"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"gatehouse/internal/identity"
	"gatehouse/internal/store"
)

// Token endpoint limits and lifetimes.
const (
	maxFormBody     = 64 << 10
	refreshLifetime = 30 * 24 * time.Hour
)

// tokenResponse is a successful token response (RFC 6749 §5.1).
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	Scope        string `json:"scope,omitempty"`
	RefreshToken string `json:"refresh_token,omitempty"`
}

// handleToken is the token endpoint.
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	if preflight(w, r) {
		return
	}
	allowCORS(w)
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST, OPTIONS")
		e := newError(errInvalidRequest, "the token endpoint accepts only POST")
		e.Status = http.StatusMethodNotAllowed
		s.writeError(w, r, e)
		return
	}
	form, e := readForm(w, r, maxFormBody)
	if e == nil {
		e = noRepeats(form, "resource")
	}
	if e != nil {
		s.writeError(w, r, e)
		return
	}
	var resp *tokenResponse
	switch grant := form.Get("grant_type"); grant {
	case grantClientCredentials:
		resp, e = s.clientCredentialsGrant(r, form)
	case grantAuthorizationCode:
		resp, e = s.authorizationCodeGrant(r, form)
	case grantRefreshToken:
		resp, e = s.refreshTokenGrant(r, form)
	case "":
		e = newError(errInvalidRequest, "grant_type is missing")
	default:
		e = newError(errUnsupportedGrantType, "grant_type %s is not supported; use one of %s", quote(grant), strings.Join(grantTypes, ", "))
	}
	if e != nil {
		s.writeError(w, r, e)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// readForm reads an application/x-www-form-urlencoded body of at most
// limit bytes. Parameters in the URL query are not read.
func readForm(w http.ResponseWriter, r *http.Request, limit int64) (url.Values, *oauthError) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return nil, newError(errInvalidRequest, "the request body must be application/x-www-form-urlencoded")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
			e := newError(errInvalidRequest, "the request body is larger than %d bytes", limit)
			e.Status = http.StatusRequestEntityTooLarge
			return nil, e
		}
		return nil, newError(errInvalidRequest, "reading the request body failed")
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, newError(errInvalidRequest, "malformed form body")
	}
	return form, nil
}

// noRepeats refuses parameters sent more than once (RFC 6749 §3.1, §3.2),
// except the ones named.
func noRepeats(form url.Values, except ...string) *oauthError {
	for k, v := range form {
		if len(v) > 1 && !slices.Contains(except, k) {
			return newError(errInvalidRequest, "parameter %s is repeated", quote(k))
		}
	}
	return nil
}

// clientCredentialsGrant issues a token to an agent for itself.
func (s *Server) clientCredentialsGrant(r *http.Request, form url.Values) (*tokenResponse, *oauthError) {
	cr, e := clientCredentialsOf(r, form)
	if e != nil {
		return nil, e
	}
	if cr.method == authNone {
		e := newError(errInvalidClient, "client_credentials requires client authentication (client_secret_basic, client_secret_post or private_key_jwt)")
		e.basic = cr.header
		return nil, e
	}
	c, e := s.authenticateClient(r.Context(), cr)
	if e != nil {
		return nil, e
	}
	if e := requireGrant(c, grantClientCredentials); e != nil {
		return nil, e
	}
	a := c.Agent
	aud, scopes, e := s.agentTargets(a, form["resource"], form.Get("scope"))
	if e != nil {
		return nil, e
	}
	g := identity.Grant{Kind: identity.KindAgent, Subject: a.ID, ClientID: a.ClientID,
		Audience: s.resourcesFor(aud), Scopes: scopesFor(scopes)}
	resp, e := s.issue(g)
	if e != nil {
		return nil, e
	}
	s.log.Info("token issued", "grant", grantClientCredentials, "client_id", c.ID, "agent", a.Name, "scope", resp.Scope)
	return resp, nil
}

// agentTargets decides the audience and scopes of an agent's token: the
// requested resources (RFC 8707) and scopes, each of which the agent's team
// must be granted; nothing requested means everything granted.
func (s *Server) agentTargets(a *store.Agent, resources []string, scope string) (aud, scopes []string, e *oauthError) {
	allowed := s.expandServers(s.cfg.Directory.AgentServers(*a))
	for _, res := range resources {
		name, ok := s.serverForResource(res)
		if !ok {
			return nil, nil, newError(errInvalidTarget, "resource %s is not a virtual server of this gateway (want %s)", quote(res), ResourceURL(s.cfg.Issuer, "{server}"))
		}
		if !slices.Contains(allowed, name) {
			return nil, nil, newError(errInvalidTarget, "agent %s (team %s) may not use server %s", a.Name, a.Team, name)
		}
		if !slices.Contains(aud, name) {
			aud = append(aud, name)
		}
	}
	for _, sc := range strings.Fields(scope) {
		name, ok := s.serverForScope(sc)
		if !ok {
			return nil, nil, newError(errInvalidScope, "unknown scope %s (scopes are mcp:{server} for a virtual server)", quote(sc))
		}
		if !slices.Contains(allowed, name) {
			return nil, nil, newError(errInvalidScope, "agent %s (team %s) may not use server %s (scope %s)", a.Name, a.Team, name, sc)
		}
		if len(resources) > 0 && !slices.Contains(aud, name) {
			return nil, nil, newError(errInvalidScope, "scope %s is for a server not among the requested resources", sc)
		}
		if !slices.Contains(scopes, name) {
			scopes = append(scopes, name)
		}
	}
	switch {
	case len(aud) == 0 && len(scopes) > 0:
		aud = scopes
	case len(aud) == 0:
		aud = allowed
	}
	if len(scopes) == 0 {
		scopes = aud
	}
	if len(aud) == 0 {
		return nil, nil, newError(errInvalidScope, "agent %s (team %s) is not granted any virtual server", a.Name, a.Team)
	}
	return aud, scopes, nil
}

// authorizationCodeGrant exchanges an authorization code (with PKCE).
func (s *Server) authorizationCodeGrant(r *http.Request, form url.Values) (*tokenResponse, *oauthError) {
	ctx := r.Context()
	cr, e := clientCredentialsOf(r, form)
	if e != nil {
		return nil, e
	}
	c, e := s.authenticateClient(ctx, cr)
	if e != nil {
		return nil, e
	}
	if e := requireGrant(c, grantAuthorizationCode); e != nil {
		return nil, e
	}
	code, verifier, redirect := form.Get("code"), form.Get("code_verifier"), form.Get("redirect_uri")
	switch {
	case code == "":
		return nil, newError(errInvalidRequest, "code is missing")
	case verifier == "":
		return nil, newError(errInvalidRequest, "code_verifier is missing (PKCE is required)")
	case redirect == "":
		return nil, newError(errInvalidRequest, "redirect_uri is missing")
	}
	hash := hashSecret(code)
	rec, err := s.cfg.Store.ConsumeAuthCode(ctx, hash, s.now().UTC())
	switch {
	case errors.Is(err, store.ErrUsed):
		// A code used twice may have been stolen: revoke what the first
		// use obtained (OAuth 2.1 §4.1.3).
		if err := s.cfg.Store.RevokeRefreshFamily(ctx, familyOfCode(hash), s.now().UTC()); err != nil && !errors.Is(err, store.ErrNotFound) {
			s.log.Error("revoking the grant of a reused authorization code", "client_id", c.ID, "error", err)
		}
		s.log.Warn("authorization code used twice or expired", "client_id", c.ID)
		return nil, newError(errInvalidGrant, "the authorization code was already used or has expired")
	case errors.Is(err, store.ErrNotFound):
		return nil, newError(errInvalidGrant, "unknown authorization code")
	case err != nil:
		return nil, serverError(fmt.Errorf("consuming authorization code: %w", err))
	}
	if rec.ClientID != c.ID {
		return nil, newError(errInvalidGrant, "the authorization code was issued to another client")
	}
	if rec.RedirectURI != redirect {
		return nil, newError(errInvalidGrant, "redirect_uri does not match the one of the authorization request")
	}
	if !verifyPKCE(verifier, rec.CodeChallenge) {
		return nil, newError(errInvalidGrant, "code_verifier does not match the code_challenge (PKCE)")
	}
	server, e := s.grantedServer(rec.Resource, form["resource"])
	if e != nil {
		return nil, e
	}
	scopes, e := narrowScope(rec.Scope, form.Get("scope"))
	if e != nil {
		return nil, e
	}
	g, e := s.delegatedGrant(ctx, c.ID, rec.Username, rec.AgentID, server)
	if e != nil {
		return nil, e
	}
	g.Audience, g.Scopes = []string{rec.Resource}, scopes
	resp, e := s.issue(g)
	if e != nil {
		return nil, e
	}
	if c.allows(grantRefreshToken) {
		rt := store.RefreshToken{Family: familyOfCode(hash), ClientID: c.ID, Username: rec.Username,
			AgentID: rec.AgentID, Resource: rec.Resource, Scope: rec.Scope}
		if resp.RefreshToken, e = s.newRefreshToken(ctx, rt); e != nil {
			return nil, e
		}
	}
	s.log.Info("token issued", "grant", grantAuthorizationCode, "client_id", c.ID, "user", rec.Username, "agent_id", rec.AgentID, "scope", resp.Scope)
	return resp, nil
}

// refreshTokenGrant rotates a refresh token.
func (s *Server) refreshTokenGrant(r *http.Request, form url.Values) (*tokenResponse, *oauthError) {
	ctx := r.Context()
	cr, e := clientCredentialsOf(r, form)
	if e != nil {
		return nil, e
	}
	c, e := s.authenticateClient(ctx, cr)
	if e != nil {
		return nil, e
	}
	if e := requireGrant(c, grantRefreshToken); e != nil {
		return nil, e
	}
	raw := form.Get("refresh_token")
	if raw == "" {
		return nil, newError(errInvalidRequest, "refresh_token is missing")
	}
	now := s.now().UTC()
	rec, err := s.cfg.Store.ConsumeRefreshToken(ctx, hashSecret(raw), now)
	switch {
	case errors.Is(err, store.ErrUsed):
		s.log.Warn("refresh token reused, revoked or expired; its grant is revoked", "client_id", c.ID)
		return nil, newError(errInvalidGrant, "the refresh token was already used, was revoked or has expired; sign in again")
	case errors.Is(err, store.ErrNotFound):
		return nil, newError(errInvalidGrant, "unknown refresh token")
	case err != nil:
		return nil, serverError(fmt.Errorf("consuming refresh token: %w", err))
	}
	revoke := func(why string) {
		if err := s.cfg.Store.RevokeRefreshFamily(ctx, rec.Family, now); err != nil {
			s.log.Error("revoking a refresh token family", "client_id", c.ID, "error", err)
		}
		s.log.Warn("refresh token grant revoked", "client_id", c.ID, "user", rec.Username, "reason", why)
	}
	if rec.ClientID != c.ID {
		revoke("presented by another client")
		return nil, newError(errInvalidGrant, "the refresh token was issued to another client")
	}
	server, e := s.grantedServer(rec.Resource, form["resource"])
	if e != nil {
		return nil, e
	}
	scopes, e := narrowScope(rec.Scope, form.Get("scope"))
	if e != nil {
		return nil, e
	}
	g, e := s.delegatedGrant(ctx, c.ID, rec.Username, rec.AgentID, server)
	if e != nil {
		if e.Code == errInvalidGrant {
			revoke(e.Description)
		}
		return nil, e
	}
	g.Audience, g.Scopes = []string{rec.Resource}, scopes
	resp, e := s.issue(g)
	if e != nil {
		return nil, e
	}
	next := rec
	if resp.RefreshToken, e = s.newRefreshToken(ctx, next); e != nil {
		return nil, e
	}
	s.log.Info("token issued", "grant", grantRefreshToken, "client_id", c.ID, "user", rec.Username, "agent_id", rec.AgentID, "scope", resp.Scope)
	return resp, nil
}

// grantedServer checks the resource parameters of a token request against
// the resource of the grant (all must name it) and that its server still
// exists.
func (s *Server) grantedServer(granted string, requested []string) (string, *oauthError) {
	name, ok := s.serverForResource(granted)
	if !ok {
		return "", newError(errInvalidGrant, "the server this grant is for (%s) no longer exists", granted)
	}
	for _, res := range requested {
		if n, ok := s.serverForResource(res); !ok || n != name {
			return "", newError(errInvalidTarget, "resource %s differs from the one authorized (%s)", quote(res), granted)
		}
	}
	return name, nil
}

// narrowScope returns the scopes of a token: the granted ones, or the
// requested subset of them (RFC 6749 §6).
func narrowScope(granted, requested string) ([]string, *oauthError) {
	have := strings.Fields(granted)
	if requested == "" {
		return have, nil
	}
	want := strings.Fields(requested)
	for _, sc := range want {
		if !slices.Contains(have, sc) {
			return nil, newError(errInvalidScope, "scope %s was not granted (granted: %s)", quote(sc), granted)
		}
	}
	return want, nil
}

// delegatedGrant re-checks, at every token issued from a user's
// authorization, that the user (and the agent they drive, if any) may still
// act and still use the server.
func (s *Server) delegatedGrant(ctx context.Context, clientID, username, agentID, server string) (identity.Grant, *oauthError) {
	u, err := s.cfg.Store.GetUser(ctx, username)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return identity.Grant{}, newError(errInvalidGrant, "user %s no longer exists", username)
	case err != nil:
		return identity.Grant{}, serverError(fmt.Errorf("looking up user: %w", err))
	case u.Disabled:
		return identity.Grant{}, newError(errInvalidGrant, "user %s is disabled", username)
	}
	if !slices.Contains(s.expandServers(s.cfg.Directory.UserServers(u)), server) {
		return identity.Grant{}, newError(errInvalidGrant, "user %s may no longer use server %s", username, server)
	}
	if agentID == "" {
		return identity.Grant{Kind: identity.KindUser, Subject: username, ClientID: clientID}, nil
	}
	a, err := s.cfg.Store.GetAgent(ctx, agentID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return identity.Grant{}, newError(errInvalidGrant, "the agent of this grant no longer exists")
	case err != nil:
		return identity.Grant{}, serverError(fmt.Errorf("looking up agent: %w", err))
	}
	if why := agentInactive(&a); why != "" {
		return identity.Grant{}, newError(errInvalidGrant, "%s", why)
	}
	if !slices.Contains(s.expandServers(s.cfg.Directory.AgentServers(a)), server) {
		return identity.Grant{}, newError(errInvalidGrant, "agent %s (team %s) may no longer use server %s", a.Name, a.Team, server)
	}
	return identity.Grant{Kind: identity.KindAgent, Subject: a.ID, ClientID: clientID, Actor: username}, nil
}

// issue signs an access token.
func (s *Server) issue(g identity.Grant) (*tokenResponse, *oauthError) {
	tok, _, err := s.cfg.Tokens.Issue(g)
	if err != nil {
		return nil, serverError(fmt.Errorf("issuing access token: %w", err))
	}
	if s.cfg.Record != nil {
		a := audit.Actor{Kind: g.Kind, ID: g.Kind + ":" + g.Subject, ClientName: g.ClientID}
		if g.Kind == identity.KindAgent {
			a.AgentID = g.Subject
		} else {
			a.User = g.Subject
		}
		if g.Actor != "" {
			a.User, a.Chain = g.Actor, []string{"user:" + g.Actor, a.ID}
		}
		if err := s.cfg.Record(audit.Record{Kind: audit.KindAuth, Action: "token.issued", Actor: a,
			Target:  audit.Target{Object: strings.Join(g.Audience, " ")},
			Outcome: audit.Outcome{Status: audit.OutcomeAllowed, Reason: "scopes: " + strings.Join(g.Scopes, " ")}}); err != nil {
			s.log.Error("audit: a token issuance could not be recorded", "error", err)
		}
	}
	return &tokenResponse{AccessToken: tok, TokenType: "Bearer",
		ExpiresIn: int64(s.cfg.Tokens.TTL() / time.Second), Scope: strings.Join(g.Scopes, " ")}, nil
}

// newRefreshToken stores a new refresh token of the family of t and returns
// it; only its hash is stored.
func (s *Server) newRefreshToken(ctx context.Context, t store.RefreshToken) (string, *oauthError) {
	raw := randomToken("ghr_", 32)
	now := s.now().UTC()
	t.Hash, t.CreatedAt, t.ExpiresAt = hashSecret(raw), now, now.Add(refreshLifetime)
	if err := s.cfg.Store.CreateRefreshToken(ctx, t); err != nil {
		return "", serverError(fmt.Errorf("storing refresh token: %w", err))
	}
	return raw, nil
}

// familyOfCode names the refresh-token family started by an authorization
// code, so that a second use of the code can revoke it.
func familyOfCode(codeHash []byte) string {
	h := sha256.Sum256(append([]byte("gatehouse/refresh-family/"), codeHash...))
	return "fam_" + base64.RawURLEncoding.EncodeToString(h[:18])
}
