package oauth

import (
	"context"
	"crypto/rsa"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"gatehouse/internal/identity"
	"gatehouse/internal/store"
)

// assertionType is the client_assertion_type of private_key_jwt (RFC 7523 §2.2).
const assertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// Limits on client assertions.
const (
	maxAssertionLifetime = 5 * time.Minute
	assertionSkew        = 30 * time.Second
	maxAssertionLen      = 16 << 10
	maxJTILen            = 256
	minRSABits           = 2048
)

// credentials is what a token request presents to authenticate its client.
type credentials struct {
	method    string // authNone, authSecretBasic, authSecretPost, authPrivateKeyJWT
	clientID  string
	secret    string
	assertion string
	// header is set when the client used the Authorization header: a
	// failure then answers WWW-Authenticate (RFC 6749 §5.2).
	header bool
}

// clientCredentialsOf extracts the client authentication of a token request;
// using more than one method is an error (RFC 6749 §2.3).
func clientCredentialsOf(r *http.Request, form url.Values) (credentials, *oauthError) {
	var c credentials
	formID := form.Get("client_id")
	methods := 0
	if user, pass, ok := r.BasicAuth(); ok {
		methods++
		id, err1 := url.QueryUnescape(user)
		secret, err2 := url.QueryUnescape(pass)
		if err1 != nil || err2 != nil || id == "" {
			e := newError(errInvalidClient, "malformed HTTP Basic client credentials")
			e.basic = true
			return c, e
		}
		c = credentials{method: authSecretBasic, clientID: id, secret: secret, header: true}
		if secret == "" {
			// An empty password identifies a public client (some libraries
			// send one); it authenticates nothing.
			c.method = authNone
		}
		if formID != "" && formID != id {
			return c, newError(errInvalidRequest, "client_id in the body differs from the one in the Authorization header")
		}
	} else if r.Header.Get("Authorization") != "" {
		e := newError(errInvalidClient, "unsupported Authorization scheme; use HTTP Basic, client_secret_post or private_key_jwt")
		e.basic = true
		return c, e
	}
	if secret := form.Get("client_secret"); secret != "" {
		methods++
		c = credentials{method: authSecretPost, clientID: formID, secret: secret}
		if formID == "" {
			return c, newError(errInvalidRequest, "client_secret without client_id")
		}
	}
	if at, a := form.Get("client_assertion_type"), form.Get("client_assertion"); at != "" || a != "" {
		methods++
		if at != assertionType {
			return c, newError(errInvalidClient, "unsupported client_assertion_type %s; want %s", quote(at), assertionType)
		}
		if a == "" {
			return c, newError(errInvalidRequest, "client_assertion is missing")
		}
		c = credentials{method: authPrivateKeyJWT, clientID: formID, assertion: a}
	}
	if methods > 1 {
		return credentials{}, newError(errInvalidRequest, "more than one client authentication method used; use exactly one")
	}
	if methods == 0 {
		if formID == "" {
			return c, newError(errInvalidClient, "no client authentication: send client_id (public clients) or client credentials")
		}
		c = credentials{method: authNone, clientID: formID}
	}
	return c, nil
}

// authenticateClient checks the credentials and returns the client. An
// agent must authenticate (secret or key) and be active; a public client
// only names itself.
func (s *Server) authenticateClient(ctx context.Context, cr credentials) (*client, *oauthError) {
	c, e := s.authenticate(ctx, cr)
	if e != nil && e.Code == errInvalidClient && cr.header {
		e.basic = true
	}
	return c, e
}

func (s *Server) authenticate(ctx context.Context, cr credentials) (*client, *oauthError) {
	if cr.method == authPrivateKeyJWT {
		return s.verifyAssertion(ctx, cr)
	}
	c, e := s.lookupClient(ctx, cr.clientID, false)
	if e != nil {
		return nil, e
	}
	switch {
	case cr.method == authNone:
		if !c.public() {
			if c.Kind == kindAgent {
				return nil, newError(errInvalidClient, "agent clients must authenticate (client_secret_basic, client_secret_post or private_key_jwt)")
			}
			return nil, newError(errInvalidClient, "this client is confidential: authenticate with its client secret")
		}
		return c, nil
	case c.Kind == kindAgent:
		if e := s.verifyAgentSecret(ctx, c.Agent, cr.secret); e != nil {
			return nil, e
		}
		if why := agentInactive(c.Agent); why != "" {
			return nil, newError(errInvalidClient, "%s", why)
		}
		return c, nil
	case c.public():
		return nil, newError(errInvalidClient, "this client is public and has no secret; send only client_id")
	default:
		h := hashSecret(cr.secret)
		if len(c.SecretHash) == 0 || subtle.ConstantTimeCompare(h, c.SecretHash) != 1 {
			return nil, newError(errInvalidClient, "invalid client secret")
		}
		return c, nil
	}
}

// verifyAgentSecret checks a client secret of an agent. Several secrets
// may be valid at once (rotation overlap); each is found by its prefix.
func (s *Server) verifyAgentSecret(ctx context.Context, a *store.Agent, secret string) *oauthError {
	h := hashSecret(secret)
	cred, err := s.cfg.Store.GetCredentialByPrefix(ctx, identity.CredentialPrefix(secret))
	switch {
	case errors.Is(err, store.ErrNotFound):
		return newError(errInvalidClient, "invalid client secret")
	case err != nil:
		return serverError(fmt.Errorf("looking up client secret: %w", err))
	}
	match := subtle.ConstantTimeCompare(h, cred.Hash) == 1
	if !match || cred.Kind != store.CredSecret || cred.AgentID != a.ID {
		return newError(errInvalidClient, "invalid client secret")
	}
	now := s.now()
	if cred.RevokedAt != nil {
		return newError(errInvalidClient, "client secret %s… is revoked", cred.Prefix)
	}
	if cred.ExpiresAt != nil && !now.Before(*cred.ExpiresAt) {
		return newError(errInvalidClient, "client secret %s… expired at %s", cred.Prefix, cred.ExpiresAt.UTC().Format(time.RFC3339))
	}
	return nil
}

// verifyAssertion authenticates an agent by a JWT signed with one of its
// registered keys (private_key_jwt, RFC 7523 §2.2 and §3).
func (s *Server) verifyAssertion(ctx context.Context, cr credentials) (*client, *oauthError) {
	if len(cr.assertion) > maxAssertionLen {
		return nil, newError(errInvalidClient, "client assertion is too large")
	}
	algs := make([]jose.SignatureAlgorithm, len(assertionAlgs))
	for i, a := range assertionAlgs {
		algs[i] = jose.SignatureAlgorithm(a)
	}
	tok, err := jwt.ParseSigned(cr.assertion, algs)
	if err != nil {
		return nil, newError(errInvalidClient, "malformed client assertion (a JWS signed with ES256, EdDSA or RS256 is required)")
	}
	var claimed jwt.Claims
	if err := tok.UnsafeClaimsWithoutVerification(&claimed); err != nil {
		return nil, newError(errInvalidClient, "malformed client assertion claims")
	}
	clientID := claimed.Subject
	if clientID == "" || claimed.Issuer != clientID {
		return nil, newError(errInvalidClient, "client assertion iss and sub must both be the client_id")
	}
	if cr.clientID != "" && cr.clientID != clientID {
		return nil, newError(errInvalidClient, "client_id does not match the client assertion's subject")
	}
	a, err := s.cfg.Store.GetAgentByClientID(ctx, clientID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, newError(errInvalidClient, "unknown client %s (private_key_jwt is for agents)", quote(clientID))
	}
	if err != nil {
		return nil, serverError(fmt.Errorf("looking up agent client: %w", err))
	}
	creds, err := s.cfg.Store.ListCredentials(ctx, a.ID)
	if err != nil {
		return nil, serverError(fmt.Errorf("listing keys of agent %s: %w", a.Name, err))
	}
	now := s.now()
	hdr := tok.Headers[0]
	var claims jwt.Claims
	verified := false
	for _, c := range creds {
		if c.Kind != store.CredJWK || c.RevokedAt != nil || (c.ExpiresAt != nil && !now.Before(*c.ExpiresAt)) {
			continue
		}
		var jwk jose.JSONWebKey
		if err := jwk.UnmarshalJSON(c.PublicJWK); err != nil || !jwk.IsPublic() {
			s.log.Warn("ignoring an unusable client key", "agent", a.Name, "credential", c.Prefix)
			continue
		}
		if hdr.KeyID != "" && jwk.KeyID != "" && hdr.KeyID != jwk.KeyID {
			continue
		}
		if jwk.Algorithm != "" && jwk.Algorithm != hdr.Algorithm {
			continue
		}
		if k, ok := jwk.Key.(*rsa.PublicKey); ok && k.N.BitLen() < minRSABits {
			continue
		}
		if tok.Claims(jwk.Key, &claims) == nil {
			verified = true
			break
		}
	}
	if !verified {
		return nil, newError(errInvalidClient, "client assertion is not signed by a registered, valid key of this client")
	}
	if claims.Issuer != clientID || claims.Subject != clientID {
		return nil, newError(errInvalidClient, "client assertion iss and sub must both be the client_id")
	}
	if !claims.Audience.Contains(s.endpoint(pathToken)) && !claims.Audience.Contains(s.cfg.Issuer) {
		return nil, newError(errInvalidClient, "client assertion audience must include %s or %s", s.endpoint(pathToken), s.cfg.Issuer)
	}
	if claims.Expiry == nil {
		return nil, newError(errInvalidClient, "client assertion has no exp")
	}
	exp := claims.Expiry.Time()
	if !now.Before(exp.Add(assertionSkew)) {
		return nil, newError(errInvalidClient, "client assertion expired at %s", exp.UTC().Format(time.RFC3339))
	}
	if exp.Sub(now) > maxAssertionLifetime+assertionSkew {
		return nil, newError(errInvalidClient, "client assertion exp is more than %s away", maxAssertionLifetime)
	}
	if claims.NotBefore != nil && now.Add(assertionSkew).Before(claims.NotBefore.Time()) {
		return nil, newError(errInvalidClient, "client assertion is not valid yet (nbf)")
	}
	if claims.IssuedAt != nil && now.Add(assertionSkew).Before(claims.IssuedAt.Time()) {
		return nil, newError(errInvalidClient, "client assertion was issued in the future (iat)")
	}
	if claims.ID == "" || len(claims.ID) > maxJTILen {
		return nil, newError(errInvalidClient, "client assertion needs a jti (at most %d characters)", maxJTILen)
	}
	switch s.jtis.use(clientID+"\x00"+claims.ID, exp.Add(assertionSkew), now) {
	case onceReplay:
		return nil, newError(errInvalidClient, "client assertion was already used (jti %s)", quote(claims.ID))
	case onceFull:
		return nil, newError(errTemporarilyUnavailable, "too many client assertions in flight; retry shortly")
	}
	c := agentClient(a)
	if why := agentInactive(c.Agent); why != "" {
		return nil, newError(errInvalidClient, "%s", why)
	}
	return c, nil
}

// requireGrant refuses a client that may not use a grant type.
func requireGrant(c *client, grant string) *oauthError {
	if c.allows(grant) {
		return nil
	}
	if grant == grantClientCredentials {
		return newError(errUnauthorizedClient, "only agents may use the client_credentials grant")
	}
	return newError(errUnauthorizedClient, "client %s is not registered for the %s grant (registered: %v)", quote(c.ID), grant, slices.Clone(c.GrantTypes))
}
