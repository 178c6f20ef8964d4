package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"gatehouse/internal/store"
)

// Client kinds.
const (
	kindAgent    = "agent"             // an agent: confidential, authenticates with a secret or a key
	kindDynamic  = "dynamic"           // registered through /oauth/register
	kindDocument = "metadata_document" // a client ID metadata document URL
)

// Grant types.
const (
	grantAuthorizationCode = "authorization_code"
	grantClientCredentials = "client_credentials"
	grantRefreshToken      = "refresh_token"
)

// Client authentication methods.
const (
	authNone          = "none"
	authSecretBasic   = "client_secret_basic"
	authSecretPost    = "client_secret_post"
	authPrivateKeyJWT = "private_key_jwt"
)

// client is an OAuth client of any kind, as the endpoints need it.
type client struct {
	ID           string
	Name         string
	Kind         string
	RedirectURIs []string
	GrantTypes   []string
	// AuthMethod is how a dynamic client authenticates; agents may use a
	// secret or a key, documents none.
	AuthMethod string
	SecretHash []byte
	Agent      *store.Agent // for kindAgent
}

// public reports whether the client has no credentials of its own.
func (c *client) public() bool { return c.Kind != kindAgent && c.AuthMethod == authNone }

// allows reports whether the client may use a grant type.
func (c *client) allows(grant string) bool { return slices.Contains(c.GrantTypes, grant) }

// displayName is how the login page names the client.
func (c *client) displayName() string {
	if c.Name != "" {
		return c.Name
	}
	return c.ID
}

// registration is the metadata of a dynamically registered client, as
// stored in store.OAuthClient.Metadata (normalized, no secret).
type registration struct {
	RedirectURIs            []string `json:"redirect_uris"`
	ClientName              string   `json:"client_name,omitempty"`
	ClientURI               string   `json:"client_uri,omitempty"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	GrantTypes              []string `json:"grant_types"`
	ResponseTypes           []string `json:"response_types"`
	ApplicationType         string   `json:"application_type,omitempty"`
	Scope                   string   `json:"scope,omitempty"`
	SoftwareID              string   `json:"software_id,omitempty"`
	SoftwareVersion         string   `json:"software_version,omitempty"`
}

// isURLClientID reports whether a client_id names a client ID metadata
// document.
func isURLClientID(id string) bool {
	return strings.HasPrefix(id, "https://") || strings.HasPrefix(id, "http://")
}

// lookupClient finds a client by id. With fetch, a metadata document
// client is resolved through the document (cache, then network); without,
// from the cache or the store only (the token endpoint never fetches). The
// error is public: it explains why the client is not accepted.
func (s *Server) lookupClient(ctx context.Context, id string, fetch bool) (*client, *oauthError) {
	if id == "" {
		return nil, newError(errInvalidClient, "client_id is missing")
	}
	if isURLClientID(id) {
		if fetch {
			return s.resolveDocument(ctx, id)
		}
		if c, ok := s.cimd.get(id, s.now()); ok {
			return c, nil
		}
		rec, err := s.cfg.Store.GetClient(ctx, id)
		if errors.Is(err, store.ErrNotFound) || (err == nil && rec.Kind != kindDocument) {
			return nil, newError(errInvalidClient, "unknown client %s", quote(id))
		}
		if err != nil {
			return nil, serverError(fmt.Errorf("looking up client: %w", err))
		}
		return documentClientFromRecord(rec)
	}
	a, err := s.cfg.Store.GetAgentByClientID(ctx, id)
	switch {
	case err == nil:
		return agentClient(a), nil
	case !errors.Is(err, store.ErrNotFound):
		return nil, serverError(fmt.Errorf("looking up agent client: %w", err))
	}
	rec, err := s.cfg.Store.GetClient(ctx, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && rec.Kind != kindDynamic) {
		return nil, newError(errInvalidClient, "unknown client %s", quote(id))
	}
	if err != nil {
		return nil, serverError(fmt.Errorf("looking up client: %w", err))
	}
	var reg registration
	if err := json.Unmarshal(rec.Metadata, &reg); err != nil {
		return nil, serverError(fmt.Errorf("decoding registration of client %s: %w", rec.ClientID, err))
	}
	return &client{
		ID: rec.ClientID, Name: rec.Name, Kind: kindDynamic, RedirectURIs: rec.RedirectURIs,
		GrantTypes: reg.GrantTypes, AuthMethod: reg.TokenEndpointAuthMethod, SecretHash: rec.SecretHash,
	}, nil
}

// agentClient describes an agent as a client. An agent may use the
// authorization-code flow (a person driving it) when its attributes list
// redirect_uris.
func agentClient(a store.Agent) *client {
	c := &client{ID: a.ClientID, Name: a.Name, Kind: kindAgent, Agent: &a,
		GrantTypes: []string{grantClientCredentials}}
	var attrs struct {
		RedirectURIs []string `json:"redirect_uris"`
	}
	if len(a.Attributes) > 0 && json.Unmarshal(a.Attributes, &attrs) == nil && len(attrs.RedirectURIs) > 0 {
		for _, u := range attrs.RedirectURIs {
			if validateRedirectURI(u) == nil {
				c.RedirectURIs = append(c.RedirectURIs, u)
			}
		}
		if len(c.RedirectURIs) > 0 {
			c.GrantTypes = append(c.GrantTypes, grantAuthorizationCode, grantRefreshToken)
		}
	}
	return c
}

// agentInactive explains why an agent may not act, or "" when it may.
func agentInactive(a *store.Agent) string {
	switch a.Status {
	case store.AgentActive:
		return ""
	case store.AgentDisabled:
		return "agent " + a.Name + " is disabled"
	case store.AgentRevoked:
		return "agent " + a.Name + " is revoked"
	}
	return "agent " + a.Name + " is not active"
}

// quote quotes a client-supplied value for an error description, cut to a
// readable length.
func quote(s string) string {
	const max = 100
	if len(s) > max {
		s = s[:max] + "…"
	}
	return fmt.Sprintf("%q", s)
}
