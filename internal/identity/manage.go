package identity

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"gatehouse/internal/store"
)

// Manager runs the lifecycle of agents, their credentials and local users:
// creation, secret rotation with overlap, API keys, revocation, disabling.
// The admin API and the CLI use it; every change is published on the
// store's change feed so every replica's directory follows at once.
type Manager struct {
	st  store.Store
	now func() time.Time
	// maxAge returns the maximum secret age of a team (0: 90 days).
	maxAge func(team string) time.Duration
}

// DefaultMaxSecretAge bounds the life of secrets and API keys when the
// team sets nothing.
const DefaultMaxSecretAge = 90 * 24 * time.Hour

// NewManager returns a manager; maxAge may be nil.
func NewManager(st store.Store, maxAge func(team string) time.Duration) *Manager {
	if maxAge == nil {
		maxAge = func(string) time.Duration { return DefaultMaxSecretAge }
	}
	return &Manager{st: st, now: func() time.Time { return time.Now().UTC().Truncate(time.Millisecond) }, maxAge: maxAge}
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// ErrInvalid marks a request the caller must fix.
var ErrInvalid = errors.New("invalid request")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// NewAgent describes an agent to create.
type NewAgent struct {
	Name       string
	Team       string
	Owner      string
	Attributes json.RawMessage
	Source     string // "api" or "config"
}

// CreateAgent registers an agent and gives it a client secret, returned
// once: only its hash is stored. With noSecret (agents declared in the
// configuration) no secret is created.
func (m *Manager) CreateAgent(ctx context.Context, n NewAgent, noSecret bool) (store.Agent, string, error) {
	if !nameRE.MatchString(n.Name) {
		return store.Agent{}, "", invalid("agent name %q must be 1-64 characters of letters, digits, '_', '-' and '.'", n.Name)
	}
	if n.Team == "" {
		return store.Agent{}, "", invalid("every agent belongs to a team")
	}
	if n.Owner == "" {
		return store.Agent{}, "", invalid("every agent needs an owning person (e.g. alice@example.com)")
	}
	if len(n.Attributes) > 0 {
		var obj map[string]any
		if json.Unmarshal(n.Attributes, &obj) != nil {
			return store.Agent{}, "", invalid("attributes must be a JSON object")
		}
	}
	if n.Source == "" {
		n.Source = "api"
	}
	now := m.now()
	id := "agt_" + randomID(16)
	a := store.Agent{ID: id, Name: n.Name, ClientID: id, Team: n.Team, Owner: n.Owner, Status: store.AgentActive,
		Attributes: n.Attributes, Source: n.Source, CreatedAt: now, UpdatedAt: now}
	if err := m.st.CreateAgent(ctx, a); err != nil {
		return store.Agent{}, "", fmt.Errorf("creating agent %s: %w", n.Name, err)
	}
	_ = m.st.Publish(ctx, store.Change{Kind: "agent", ID: a.ID})
	if noSecret {
		return a, "", nil
	}
	secret, err := m.addSecret(ctx, a, store.CredSecret, SecretTag, 0)
	if err != nil {
		return store.Agent{}, "", err
	}
	return a, secret, nil
}

// addSecret creates a secret or API key for the agent, expiring after the
// team's maximum age (or ttl when shorter and positive).
func (m *Manager) addSecret(ctx context.Context, a store.Agent, kind, tag string, ttl time.Duration) (string, error) {
	secret := tag + randomToken(32)
	h := sha256.Sum256([]byte(secret))
	now := m.now()
	age := m.maxAge(a.Team)
	if age <= 0 {
		age = DefaultMaxSecretAge
	}
	if ttl > 0 && ttl < age {
		age = ttl
	}
	exp := now.Add(age)
	c := store.Credential{ID: "crd_" + randomID(12), AgentID: a.ID, Kind: kind, Prefix: CredentialPrefix(secret), Hash: h[:], CreatedAt: now, ExpiresAt: &exp}
	if err := m.st.AddCredential(ctx, c); err != nil {
		return "", fmt.Errorf("storing credential of %s: %w", a.Name, err)
	}
	_ = m.st.Publish(ctx, store.Change{Kind: "credential", ID: c.Prefix})
	return secret, nil
}

// RotateSecret gives the agent a new client secret; its current secrets
// keep working for overlap (0: they stop now). The new secret is returned
// once.
func (m *Manager) RotateSecret(ctx context.Context, name string, overlap time.Duration) (string, error) {
	a, err := m.st.GetAgentByName(ctx, name)
	if err != nil {
		return "", fmt.Errorf("agent %s: %w", name, err)
	}
	if a.Status == store.AgentRevoked {
		return "", invalid("agent %s is revoked: create a new agent", name)
	}
	secret, err := m.addSecret(ctx, a, store.CredSecret, SecretTag, 0)
	if err != nil {
		return "", err
	}
	return secret, m.expireOld(ctx, a, store.CredSecret, CredentialPrefix(secret), overlap)
}

// expireOld shortens every live credential of kind (except keep) to end
// after overlap.
func (m *Manager) expireOld(ctx context.Context, a store.Agent, kind, keep string, overlap time.Duration) error {
	creds, err := m.st.ListCredentials(ctx, a.ID)
	if err != nil {
		return fmt.Errorf("credentials of %s: %w", a.Name, err)
	}
	end := m.now().Add(overlap)
	for _, c := range creds {
		if c.Kind != kind || c.Prefix == keep || c.RevokedAt != nil || (c.ExpiresAt != nil && !c.ExpiresAt.After(end)) {
			continue
		}
		c.ExpiresAt = &end
		if err := m.st.UpdateCredential(ctx, c); err != nil {
			return fmt.Errorf("ending credential %s…: %w", c.Prefix, err)
		}
		_ = m.st.Publish(ctx, store.Change{Kind: "credential", ID: c.Prefix})
	}
	return nil
}

// CreateAPIKey gives the agent a static API key (for clients that cannot
// do OAuth), returned once. ttl 0 uses the team's maximum age.
func (m *Manager) CreateAPIKey(ctx context.Context, name string, ttl time.Duration) (string, error) {
	a, err := m.st.GetAgentByName(ctx, name)
	if err != nil {
		return "", fmt.Errorf("agent %s: %w", name, err)
	}
	if a.Status != store.AgentActive {
		return "", invalid("agent %s is %s", name, a.Status)
	}
	return m.addSecret(ctx, a, store.CredAPIKey, APIKeyTag, ttl)
}

// AddPublicKey registers a public JWK for private_key_jwt client
// authentication.
func (m *Manager) AddPublicKey(ctx context.Context, name string, jwk json.RawMessage) (string, error) {
	a, err := m.st.GetAgentByName(ctx, name)
	if err != nil {
		return "", fmt.Errorf("agent %s: %w", name, err)
	}
	var k jose.JSONWebKey
	if err := k.UnmarshalJSON(jwk); err != nil || !k.Valid() || !k.IsPublic() {
		return "", invalid("the key must be a valid public JWK")
	}
	now := m.now()
	age := m.maxAge(a.Team)
	if age <= 0 {
		age = DefaultMaxSecretAge
	}
	exp := now.Add(age)
	prefix := "jwk_" + randomID(8)
	pub, _ := k.MarshalJSON()
	c := store.Credential{ID: "crd_" + randomID(12), AgentID: a.ID, Kind: store.CredJWK, Prefix: prefix, PublicJWK: pub, CreatedAt: now, ExpiresAt: &exp}
	if err := m.st.AddCredential(ctx, c); err != nil {
		return "", err
	}
	_ = m.st.Publish(ctx, store.Change{Kind: "credential", ID: prefix})
	return prefix, nil
}

// SetStatus disables, enables or revokes an agent. Revoking also revokes
// every credential; it cannot be undone.
func (m *Manager) SetStatus(ctx context.Context, name, status string) (store.Agent, error) {
	a, err := m.st.GetAgentByName(ctx, name)
	if err != nil {
		return store.Agent{}, fmt.Errorf("agent %s: %w", name, err)
	}
	switch status {
	case store.AgentActive, store.AgentDisabled, store.AgentRevoked:
	default:
		return store.Agent{}, invalid("unknown status %q", status)
	}
	if a.Status == store.AgentRevoked && status != store.AgentRevoked {
		return store.Agent{}, invalid("agent %s is revoked: create a new agent", name)
	}
	now := m.now()
	a.Status, a.UpdatedAt = status, now
	if status == store.AgentRevoked {
		a.RevokedAt = &now
		creds, err := m.st.ListCredentials(ctx, a.ID)
		if err != nil {
			return store.Agent{}, err
		}
		for _, c := range creds {
			if c.RevokedAt == nil {
				c.RevokedAt = &now
				if err := m.st.UpdateCredential(ctx, c); err != nil {
					return store.Agent{}, err
				}
				_ = m.st.Publish(ctx, store.Change{Kind: "credential", ID: c.Prefix})
			}
		}
	}
	if err := m.st.UpdateAgent(ctx, a); err != nil {
		return store.Agent{}, fmt.Errorf("updating agent %s: %w", name, err)
	}
	// Published last: every replica drops the agent's tokens on receipt.
	if err := m.st.Publish(ctx, store.Change{Kind: "agent", ID: a.ID}); err != nil {
		return a, fmt.Errorf("the change is stored but replicas were not notified: %w", err)
	}
	return a, nil
}

// RotateTeam gives every active agent of a team a new secret; old secrets
// and API keys end after overlap (0: now — the emergency case). It returns
// the new secrets by agent name.
func (m *Manager) RotateTeam(ctx context.Context, team string, overlap time.Duration) (map[string]string, error) {
	agents, err := m.st.ListAgents(ctx, store.AgentFilter{Team: team})
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(agents))
	for _, a := range agents {
		if a.Status != store.AgentActive {
			// Disabled agents get no new secret, but their old credentials
			// end too: re-enabling must not bring leaked ones back.
			for _, kind := range []string{store.CredSecret, store.CredAPIKey, store.CredJWK} {
				if err := m.expireOld(ctx, a, kind, "", overlap); err != nil {
					return out, err
				}
			}
			continue
		}
		s, err := m.RotateSecret(ctx, a.Name, overlap)
		if err != nil {
			return out, err
		}
		if err := m.expireOld(ctx, a, store.CredAPIKey, "", overlap); err != nil {
			return out, err
		}
		out[a.Name] = s
	}
	return out, nil
}

// AgentView is an agent with its credentials' state, for listings.
type AgentView struct {
	store.Agent
	Credentials []CredentialView `json:"credentials"`
	// Warnings name credentials expiring within 14 days or already
	// expired, and missing secrets.
	Warnings []string `json:"warnings,omitempty"`
}

// CredentialView describes a credential without its secret.
type CredentialView struct {
	Kind      string     `json:"kind"`
	Prefix    string     `json:"prefix"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
	Active    bool       `json:"active"`
}

// ExpiryWarning is how early expiring credentials are flagged.
const ExpiryWarning = 14 * 24 * time.Hour

// Describe returns an agent with its credentials and warnings.
func (m *Manager) Describe(ctx context.Context, a store.Agent) (AgentView, error) {
	creds, err := m.st.ListCredentials(ctx, a.ID)
	if err != nil {
		return AgentView{}, err
	}
	now := m.now()
	v := AgentView{Agent: a, Credentials: []CredentialView{}}
	live := 0
	for _, c := range creds {
		active := c.RevokedAt == nil && (c.ExpiresAt == nil || now.Before(*c.ExpiresAt))
		v.Credentials = append(v.Credentials, CredentialView{Kind: c.Kind, Prefix: c.Prefix, CreatedAt: c.CreatedAt, ExpiresAt: c.ExpiresAt, RevokedAt: c.RevokedAt, Active: active})
		if !active || c.ExpiresAt == nil {
			continue
		}
		live++
		if left := c.ExpiresAt.Sub(now); left < ExpiryWarning {
			v.Warnings = append(v.Warnings, fmt.Sprintf("%s %s… expires in %s", c.Kind, c.Prefix, left.Round(time.Hour)))
		}
	}
	if live == 0 && a.Status == store.AgentActive {
		v.Warnings = append(v.Warnings, "no active credential: rotate to get a secret")
	}
	return v, nil
}

// CreateUser adds a local user with a password.
func (m *Manager) CreateUser(ctx context.Context, username, password string, groups []string) error {
	if strings.TrimSpace(username) == "" || len(username) > 254 {
		return invalid("a user name of 1-254 characters is needed")
	}
	if len(password) < 12 {
		return invalid("passwords must be at least 12 characters")
	}
	h, err := HashPassword(password)
	if err != nil {
		return err
	}
	now := m.now()
	if err := m.st.CreateUser(ctx, store.User{Username: username, PasswordHash: h, Groups: groups, CreatedAt: now, UpdatedAt: now}); err != nil {
		return fmt.Errorf("creating user %s: %w", username, err)
	}
	return m.st.Publish(ctx, store.Change{Kind: "user", ID: username})
}

// SetPassword replaces a user's password.
func (m *Manager) SetPassword(ctx context.Context, username, password string) error {
	if len(password) < 12 {
		return invalid("passwords must be at least 12 characters")
	}
	u, err := m.st.GetUser(ctx, username)
	if err != nil {
		return fmt.Errorf("user %s: %w", username, err)
	}
	if u.PasswordHash, err = HashPassword(password); err != nil {
		return err
	}
	u.UpdatedAt = m.now()
	if err := m.st.UpdateUser(ctx, u); err != nil {
		return err
	}
	return m.st.Publish(ctx, store.Change{Kind: "user", ID: username})
}

// UpdateUser sets a user's groups and disabled flag.
func (m *Manager) UpdateUser(ctx context.Context, username string, groups []string, disabled bool) error {
	u, err := m.st.GetUser(ctx, username)
	if err != nil {
		return fmt.Errorf("user %s: %w", username, err)
	}
	u.Groups, u.Disabled, u.UpdatedAt = groups, disabled, m.now()
	if err := m.st.UpdateUser(ctx, u); err != nil {
		return err
	}
	return m.st.Publish(ctx, store.Change{Kind: "user", ID: username})
}

// RandomPassword returns a password for a bootstrap user.
func RandomPassword() string { return randomToken(18) }

func randomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

var idEncoding = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)

func randomID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return idEncoding.EncodeToString(b)
}
