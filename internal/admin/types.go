package admin

import (
	"encoding/json"
	"time"

	"gatehouse/internal/identity"
	"gatehouse/internal/store"
)

// The wire types of the API. The CLI decodes responses into them, and the
// OpenAPI document's schemas are generated from them, so the three cannot
// drift apart. Fields with omitempty are optional; the others are always
// present in responses and required in requests.

// Agent is an agent with the state of its credentials (never their
// secrets) and warnings about them.
type Agent struct {
	ID          string          `json:"id"`
	Name        string          `json:"name"`
	ClientID    string          `json:"client_id"`
	Team        string          `json:"team"`
	Owner       string          `json:"owner"`
	Status      string          `json:"status" enum:"active,disabled,revoked"`
	Attributes  json.RawMessage `json:"attributes,omitempty"`
	Source      string          `json:"source" enum:"api,config"`
	CreatedAt   time.Time       `json:"created_at"`
	UpdatedAt   time.Time       `json:"updated_at"`
	RevokedAt   *time.Time      `json:"revoked_at,omitempty"`
	Credentials []Credential    `json:"credentials"`
	// Warnings name credentials expiring soon (the team's maximum secret
	// age bounds every secret) and agents left without a credential.
	Warnings []string `json:"warnings"`
}

// ActiveCredentials counts the credentials usable now.
func (a Agent) ActiveCredentials() int {
	n := 0
	for _, c := range a.Credentials {
		if c.Active {
			n++
		}
	}
	return n
}

// Credential describes one secret, API key or public key of an agent by
// its prefix.
type Credential struct {
	Kind      string     `json:"kind" enum:"secret,api_key,jwk"`
	Prefix    string     `json:"prefix"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
	Active    bool       `json:"active"`
}

func agentFromView(v identity.AgentView) Agent {
	a := Agent{
		ID: v.ID, Name: v.Name, ClientID: v.ClientID, Team: v.Team, Owner: v.Owner, Status: v.Status,
		Attributes: v.Attributes, Source: v.Source, CreatedAt: v.CreatedAt, UpdatedAt: v.UpdatedAt, RevokedAt: v.RevokedAt,
		Credentials: make([]Credential, 0, len(v.Credentials)), Warnings: v.Warnings,
	}
	if a.Warnings == nil {
		a.Warnings = []string{}
	}
	for _, c := range v.Credentials {
		a.Credentials = append(a.Credentials, Credential{Kind: c.Kind, Prefix: c.Prefix, CreatedAt: c.CreatedAt,
			ExpiresAt: c.ExpiresAt, RevokedAt: c.RevokedAt, Active: c.Active})
	}
	return a
}

// CreateAgentRequest registers an agent.
type CreateAgentRequest struct {
	Name  string `json:"name"`
	Team  string `json:"team"`
	Owner string `json:"owner"`
	// Attributes is a JSON object for policy (queues, regions, …).
	Attributes json.RawMessage `json:"attributes,omitempty"`
}

// CreateAgentResponse returns the new agent and its client secret, which
// is shown this once: only its hash is stored.
type CreateAgentResponse struct {
	Agent        Agent  `json:"agent"`
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
}

// RotateRequest rotates an agent's client secret.
type RotateRequest struct {
	// Overlap is how long the current secrets keep working, as a Go
	// duration ("24h", "90m", "0s"); default 24h. "0s" ends them now.
	Overlap *string `json:"overlap,omitempty"`
}

// RotateResponse returns the new client secret, shown this once.
type RotateResponse struct {
	ClientSecret string `json:"client_secret"`
}

// APIKeyRequest creates a static API key.
type APIKeyRequest struct {
	// TTL is the key's lifetime as a Go duration ("720h"); default and
	// upper bound: the team's maximum secret age.
	TTL *string `json:"ttl,omitempty"`
}

// APIKeyResponse returns the new API key, shown this once.
type APIKeyResponse struct {
	APIKey string `json:"api_key"`
}

// AddKeyResponse names the registered public key.
type AddKeyResponse struct {
	Prefix string `json:"prefix"`
}

// TeamRotateRequest rotates every credential of a team.
type TeamRotateRequest struct {
	// Overlap is how long the old secrets and API keys keep working;
	// default "0s": they stop now (the emergency case).
	Overlap *string `json:"overlap,omitempty"`
}

// TeamRotateResponse returns each active agent's new client secret, by
// agent name, shown this once.
type TeamRotateResponse struct {
	Secrets map[string]string `json:"secrets"`
}

// User is a local user, without the password hash.
type User struct {
	Username  string    `json:"username"`
	Groups    []string  `json:"groups"`
	Disabled  bool      `json:"disabled"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

func userFromStore(u store.User) User {
	groups := u.Groups
	if groups == nil {
		groups = []string{}
	}
	return User{Username: u.Username, Groups: groups, Disabled: u.Disabled, CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt}
}

// CreateUserRequest adds a local user.
type CreateUserRequest struct {
	Username string `json:"username"`
	// Password has at least 12 characters; it is stored as an argon2id
	// hash.
	Password string   `json:"password"`
	Groups   []string `json:"groups,omitempty"`
}

// SetPasswordRequest replaces a user's password.
type SetPasswordRequest struct {
	Password string `json:"password"`
}

// UpdateUserRequest changes a user; omitted fields stay as they are.
type UpdateUserRequest struct {
	Groups   *[]string `json:"groups,omitempty"`
	Disabled *bool     `json:"disabled,omitempty"`
}

// VaultEntry describes a vault secret, never its value.
type VaultEntry struct {
	Name string `json:"name"`
	// Agent is the name of the agent the entry is for; absent for the
	// shared entry.
	Agent   string `json:"agent,omitempty"`
	AgentID string `json:"agent_id,omitempty"`
	// Version is 1 when created and grows with every put.
	Version int `json:"version"`
	// KEKID is the key-encryption key that wraps the entry's data key.
	KEKID     string    `json:"kek_id"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// VaultPutRequest stores a secret value.
type VaultPutRequest struct {
	// Value is the secret (1 byte to 64 KiB less the JSON around it).
	Value string `json:"value"`
}

// VaultRotateResponse counts the entries re-wrapped with the primary
// key-encryption key.
type VaultRotateResponse struct {
	Rewrapped int `json:"rewrapped"`
}

// KeyRotateResponse names the new signing key.
type KeyRotateResponse struct {
	KID string `json:"kid"`
}

// publicJWK is the body of POST /agents/{name}/keys: a public JSON Web
// Key (RFC 7517), passed through to the identity layer.
type publicJWK struct{}

func (publicJWK) openAPISchema() map[string]any {
	return map[string]any{
		"type":        "object",
		"description": "A public JSON Web Key (RFC 7517) for private_key_jwt client authentication, e.g. {\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"…\",\"y\":\"…\"}. Private members are refused.",
		"required":    []string{"kty"},
		"properties": map[string]any{
			"kty": map[string]any{"type": "string"},
			"kid": map[string]any{"type": "string"},
			"alg": map[string]any{"type": "string"},
			"use": map[string]any{"type": "string"},
		},
		"additionalProperties": true,
	}
}
