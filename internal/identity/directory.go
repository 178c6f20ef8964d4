package identity

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"gatehouse/internal/store"
)

// DirectoryStore is the part of the store the directory reads.
type DirectoryStore interface {
	ListAgents(ctx context.Context, f store.AgentFilter) ([]store.Agent, error)
	GetAgent(ctx context.Context, id string) (store.Agent, error)
	ListCredentials(ctx context.Context, agentID string) ([]store.Credential, error)
	GetCredentialByPrefix(ctx context.Context, prefix string) (store.Credential, error)
	ListUsers(ctx context.Context) ([]store.User, error)
	GetUser(ctx context.Context, username string) (store.User, error)
}

// Access says which virtual servers teams and groups may use. It comes
// from the configuration and is replaced on reload.
type Access struct {
	Teams  map[string][]string // team -> servers ("*": all)
	Groups map[string][]string // group -> servers
}

// serverAllowed reports whether a server list grants server.
func serverAllowed(servers []string, server string) bool {
	return slices.Contains(servers, "*") || slices.Contains(servers, server)
}

// Directory is an in-memory view of agents, their API keys and users, kept
// current through the store's change feed, so authentication never reads
// the database on the hot path. It is safe for concurrent use.
type Directory struct {
	st  DirectoryStore
	log *slog.Logger

	mu      sync.RWMutex
	agents  map[string]store.Agent      // by id
	apiKeys map[string]store.Credential // by prefix
	users   map[string]store.User       // by username
	access  Access
}

// NewDirectory returns an empty directory; call Load.
func NewDirectory(st DirectoryStore, log *slog.Logger) *Directory {
	if log == nil {
		log = slog.Default()
	}
	return &Directory{st: st, log: log, agents: map[string]store.Agent{}, apiKeys: map[string]store.Credential{}, users: map[string]store.User{}}
}

// SetAccess installs the team and group grants of a configuration.
func (d *Directory) SetAccess(a Access) {
	d.mu.Lock()
	d.access = a
	d.mu.Unlock()
}

// Load reads every agent, API key and user.
func (d *Directory) Load(ctx context.Context) error {
	agents, err := d.st.ListAgents(ctx, store.AgentFilter{})
	if err != nil {
		return fmt.Errorf("loading agents: %w", err)
	}
	am := make(map[string]store.Agent, len(agents))
	km := map[string]store.Credential{}
	for _, a := range agents {
		am[a.ID] = a
		creds, err := d.st.ListCredentials(ctx, a.ID)
		if err != nil {
			return fmt.Errorf("loading credentials of %s: %w", a.Name, err)
		}
		for _, c := range creds {
			if c.Kind == store.CredAPIKey {
				km[c.Prefix] = c
			}
		}
	}
	users, err := d.st.ListUsers(ctx)
	if err != nil {
		return fmt.Errorf("loading users: %w", err)
	}
	um := make(map[string]store.User, len(users))
	for _, u := range users {
		um[u.Username] = u
	}
	d.mu.Lock()
	d.agents, d.apiKeys, d.users = am, km, um
	d.mu.Unlock()
	return nil
}

// Apply updates the directory for one change of the store's feed.
func (d *Directory) Apply(ctx context.Context, c store.Change) {
	var err error
	switch c.Kind {
	case "agent":
		err = d.reloadAgent(ctx, c.ID)
	case "credential":
		err = d.reloadCredential(ctx, c.ID)
	case "user":
		err = d.reloadUser(ctx, c.ID)
	case "resync":
		err = d.Load(ctx)
	}
	if err != nil {
		d.log.Warn("updating the identity directory", "change", c.Kind, "id", c.ID, "error", err)
	}
}

func (d *Directory) reloadAgent(ctx context.Context, id string) error {
	a, err := d.st.GetAgent(ctx, id)
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case errors.Is(err, store.ErrNotFound):
		delete(d.agents, id)
	case err != nil:
		return err
	default:
		d.agents[id] = a
	}
	return nil
}

func (d *Directory) reloadCredential(ctx context.Context, prefix string) error {
	c, err := d.st.GetCredentialByPrefix(ctx, prefix)
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case errors.Is(err, store.ErrNotFound):
		delete(d.apiKeys, prefix)
	case err != nil:
		return err
	case c.Kind == store.CredAPIKey:
		d.apiKeys[prefix] = c
	}
	return nil
}

func (d *Directory) reloadUser(ctx context.Context, name string) error {
	u, err := d.st.GetUser(ctx, name)
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case errors.Is(err, store.ErrNotFound):
		delete(d.users, name)
	case err != nil:
		return err
	default:
		d.users[name] = u
	}
	return nil
}

// Agent returns an agent by id.
func (d *Directory) Agent(id string) (store.Agent, bool) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	a, ok := d.agents[id]
	return a, ok
}

// User returns a user by name.
func (d *Directory) User(name string) (store.User, bool) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	u, ok := d.users[name]
	return u, ok
}

// AgentServers returns the virtual servers an agent's team may use.
func (d *Directory) AgentServers(a store.Agent) []string {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.access.Teams[a.Team]
}

// UserServers returns the virtual servers a user's groups may use.
func (d *Directory) UserServers(u store.User) []string {
	d.mu.RLock()
	defer d.mu.RUnlock()
	var out []string
	for _, g := range u.Groups {
		out = append(out, d.access.Groups[g]...)
	}
	return out
}

// agentStatus explains why an agent may not act, or "" when it may.
func agentStatus(a store.Agent) string {
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

// API key format: "ghk_" + 43 base64url characters (32 random bytes). The
// first apiKeyPrefixLen characters are stored in clear for look-up and
// display; the whole key only as a SHA-256 hash.
const (
	APIKeyTag       = "ghk_"
	SecretTag       = "ghs_"
	apiKeyPrefixLen = 12
)

// CredentialPrefix returns the look-up prefix of a secret or API key.
func CredentialPrefix(secret string) string {
	if len(secret) < apiKeyPrefixLen {
		return secret
	}
	return secret[:apiKeyPrefixLen]
}

// checkAPIKey verifies a static API key and returns its agent.
func (d *Directory) checkAPIKey(key string, now time.Time) (store.Agent, *AuthError) {
	d.mu.RLock()
	c, ok := d.apiKeys[CredentialPrefix(key)]
	var a store.Agent
	var aok bool
	if ok {
		a, aok = d.agents[c.AgentID]
	}
	d.mu.RUnlock()
	h := sha256.Sum256([]byte(key))
	if !ok || subtle.ConstantTimeCompare(h[:], c.Hash) != 1 {
		return store.Agent{}, invalidToken("unknown API key")
	}
	if c.RevokedAt != nil {
		return store.Agent{}, invalidToken("API key %s… is revoked", c.Prefix)
	}
	if c.ExpiresAt != nil && !now.Before(*c.ExpiresAt) {
		return store.Agent{}, invalidToken("API key %s… expired at %s", c.Prefix, c.ExpiresAt.UTC().Format(time.RFC3339))
	}
	if !aok {
		return store.Agent{}, invalidToken("API key %s… belongs to no agent", c.Prefix)
	}
	if why := agentStatus(a); why != "" {
		return store.Agent{}, invalidToken("%s", why)
	}
	return a, nil
}

// isAPIKey reports whether a bearer credential looks like an API key.
func isAPIKey(s string) bool { return strings.HasPrefix(s, APIKeyTag) }
