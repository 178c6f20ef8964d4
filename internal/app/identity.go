package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"gatehouse/internal/admin"
	"gatehouse/internal/config"
	"gatehouse/internal/identity"
	"gatehouse/internal/identity/oauth"
	"gatehouse/internal/policy"
	"gatehouse/internal/store"
	"gatehouse/internal/store/postgres"
	"gatehouse/internal/store/sqlite"
	"gatehouse/internal/vault"
)

// identitySystem is everything behind authentication: the store, the
// vault, signing keys, the directory of agents and users, the OAuth
// server. It exists when the configuration needs it (authentication on,
// the admin API, or vault references).
type identitySystem struct {
	log   *slog.Logger
	st    store.Store
	vault *vault.Vault
	keys  *identity.KeyManager
	dir   *identity.Directory
	authn *identity.Authenticator
	mgr   *identity.Manager
	oauth *oauth.Server

	mu     sync.RWMutex
	cfg    *config.Config
	policy *policy.Engine // receives grant, approval, agent and user changes
	padmin *policyAdmin   // the admin API's policy routes
	audit  *auditHook     // admin changes and policy events go to the audit trail
	// toolPins receives tool pin changes (the gateway's ToolPinChanged).
	toolPins func(upstream, tool string)

	stop context.CancelFunc
	wg   sync.WaitGroup
}

// needsIdentity reports whether a configuration needs the store and vault.
func needsIdentity(cfg *config.Config) bool {
	if cfg.Identity.Auth == "required" || !cfg.Admin.Disabled {
		return true
	}
	for _, u := range cfg.Upstreams {
		if u.Auth != nil {
			return true
		}
		for _, v := range u.Headers {
			if strings.Contains(v.Reveal(), "{{vault:") {
				return true
			}
		}
		for _, v := range u.Env {
			if strings.Contains(v.Reveal(), "{{vault:") {
				return true
			}
		}
	}
	for _, g := range cfg.Inspect.Guardrails {
		if g == nil {
			continue
		}
		for _, v := range g.Secrets() {
			if strings.Contains(v.Reveal(), "{{vault:") {
				return true
			}
		}
	}
	return false
}

// openStore opens the configured database.
func openStore(ctx context.Context, c config.Store) (store.Store, error) {
	switch c.Driver {
	case "postgres":
		return postgres.Open(ctx, c.URL.Reveal())
	default:
		if err := os.MkdirAll(filepath.Dir(c.Path), 0o700); err != nil {
			return nil, fmt.Errorf("creating the data directory: %w", err)
		}
		return sqlite.Open(ctx, c.Path)
	}
}

// loadKeyring loads the key-encryption keys; the default file reference is
// created with a new key on first start.
func loadKeyring(c config.Vault, log *slog.Logger) (*vault.Keyring, error) {
	if path, ok := strings.CutPrefix(c.KEK, "file:"); ok {
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			key, err := vault.GenerateKEK()
			if err != nil {
				return nil, err
			}
			if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
				return nil, fmt.Errorf("creating the key directory: %w", err)
			}
			if err := os.WriteFile(path, []byte(key+"\n"), 0o600); err != nil {
				return nil, fmt.Errorf("writing a new key-encryption key: %w", err)
			}
			log.Warn("created a new key-encryption key: back it up, secrets cannot be read without it", "path", path)
		}
	}
	return vault.LoadKeyring(c.KEK, c.PreviousKEKs, os.LookupEnv)
}

// startIdentity builds the identity system and mounts its HTTP endpoints.
func startIdentity(ctx context.Context, cfg *config.Config, mux *http.ServeMux, servers func() []string, log *slog.Logger) (*identitySystem, error) {
	st, err := openStore(ctx, cfg.Store)
	if err != nil {
		return nil, fmt.Errorf("opening the store: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			st.Close()
		}
	}()
	kr, err := loadKeyring(cfg.Vault, log)
	if err != nil {
		return nil, err
	}
	s := &identitySystem{log: log, st: st, cfg: cfg, audit: &auditHook{}}
	s.vault = vault.New(st, kr, vault.Options{Logger: log})
	s.keys = identity.NewKeyManager(st, kr, identity.KeyConfig{
		Alg: cfg.Identity.SigningAlg, RotateEvery: cfg.Identity.KeyRotation.Std(), MaxTokenTTL: cfg.Identity.TokenTTL.Std(),
	}, log)
	if err := s.keys.Load(ctx); err != nil {
		return nil, err
	}
	s.dir = identity.NewDirectory(st, log)
	s.mgr = identity.NewManager(st, s.maxSecretAge)
	if err := s.apply(ctx, cfg); err != nil {
		return nil, err
	}
	if err := s.dir.Load(ctx); err != nil {
		return nil, err
	}
	if err := s.bootstrapUser(ctx, cfg); err != nil {
		return nil, err
	}
	tokens := identity.NewIssuer(s.keys, cfg.Identity.Issuer, cfg.Identity.TokenTTL.Std())
	s.authn = identity.NewAuthenticator(s.keys, s.dir, cfg.Identity.Issuer)
	s.oauth, err = oauth.New(oauth.Config{
		Issuer: cfg.Identity.Issuer, Store: st, Tokens: tokens, Keys: s.keys, Directory: s.dir,
		Servers: servers, AllowInsecureMetadataURLs: cfg.Identity.AllowInsecureMetadataURLs, Logger: log,
		Record: s.audit.Log,
	})
	if err != nil {
		return nil, err
	}
	s.oauth.Register(mux)
	if !cfg.Admin.Disabled {
		token, err := adminToken(cfg.Admin, log)
		if err != nil {
			return nil, err
		}
		s.padmin = &policyAdmin{st: st, dir: s.dir}
		var auditAdmin admin.AuditAdmin // nil (not a typed nil) when off
		if ast, ok := st.(store.AuditStore); ok && !cfg.Audit.Disabled {
			auditAdmin = ast
		}
		admin.New(admin.Config{
			Token: token, Manager: s.mgr, Store: st, Vault: rotatingVault{s.vault, s.keys}, Keys: s.keys,
			Policy: s.padmin, Audit: auditAdmin, Record: s.audit.Log, Logger: log.With("component", "admin"),
		}).Register(mux)
	}

	runCtx, cancel := context.WithCancel(context.Background())
	s.stop = cancel
	changes, err := st.Subscribe(runCtx)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("subscribing to store changes: %w", err)
	}
	s.wg.Add(2)
	go s.follow(runCtx, changes)
	go s.maintain(runCtx)
	ok = true
	return s, nil
}

// follow applies the store's change feed: revocations, new keys and new
// secrets reach this replica within moments of being made anywhere.
func (s *identitySystem) follow(ctx context.Context, changes <-chan store.Change) {
	defer s.wg.Done()
	for c := range changes {
		s.mu.RLock()
		pe := s.policy
		s.mu.RUnlock()
		if pe != nil {
			pe.Apply(ctx, c)
		}
		switch c.Kind {
		case "agent", "credential", "user":
			s.dir.Apply(ctx, c)
		case "signing_key":
			if err := s.keys.Reload(ctx); err != nil {
				s.log.Warn("reloading signing keys", "error", err)
			}
		case "secret":
			s.vault.HandleChange(c)
		case "tool_pin":
			if f := s.toolPinsFunc(); f != nil {
				upstream, tool, _ := strings.Cut(c.ID, "/")
				f(upstream, tool)
			}
		case "resync":
			if f := s.toolPinsFunc(); f != nil {
				f("", "")
			}
			s.dir.Apply(ctx, c)
			_ = s.keys.Reload(ctx)
			s.vault.HandleChange(c)
		}
	}
}

// maintain rotates signing keys on schedule, and reloads everything
// cached every few minutes: a change written by a process that died before
// publishing it would otherwise stay unseen here.
func (s *identitySystem) maintain(ctx context.Context) {
	defer s.wg.Done()
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for n := 1; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.keys.Maintain(ctx); err != nil {
				s.log.Warn("signing key maintenance", "error", err)
			}
			if n%5 == 0 {
				s.dir.Apply(ctx, store.Change{Kind: "resync"})
				if err := s.keys.Reload(ctx); err != nil {
					s.log.Warn("reloading signing keys", "error", err)
				}
			}
		}
	}
}

// apply installs the identity parts of a (new) configuration: team and
// group grants, teams, and agents declared in the file.
func (s *identitySystem) apply(ctx context.Context, cfg *config.Config) error {
	s.mu.Lock()
	s.cfg = cfg
	s.mu.Unlock()
	acc := identity.Access{Teams: map[string][]string{}, Groups: map[string][]string{}}
	for _, t := range cfg.Identity.Teams {
		acc.Teams[t.Name] = t.Servers
		if err := s.st.UpsertTeam(ctx, store.Team{Name: t.Name, MaxSecretAge: t.MaxSecretAge.Std(), CreatedAt: time.Now().UTC()}); err != nil {
			return fmt.Errorf("team %s: %w", t.Name, err)
		}
	}
	for _, g := range cfg.Identity.Groups {
		acc.Groups[g.Name] = g.Servers
	}
	s.dir.SetAccess(acc)
	for _, d := range cfg.Identity.Agents {
		attrs, _ := json.Marshal(d.Attributes)
		if d.Attributes == nil {
			attrs = nil
		}
		a, err := s.st.GetAgentByName(ctx, d.Name)
		switch {
		case errors.Is(err, store.ErrNotFound):
			if _, _, err := s.mgr.CreateAgent(ctx, identity.NewAgent{Name: d.Name, Team: d.Team, Owner: d.Owner, Attributes: attrs, Source: "config"}, true); err != nil {
				return err
			}
			s.log.Info("agent declared in the configuration created; give it a secret with `gatehouse agent rotate`", "agent", d.Name)
		case err != nil:
			return err
		case a.Team != d.Team || a.Owner != d.Owner || string(a.Attributes) != string(attrs):
			a.Team, a.Owner, a.Attributes, a.UpdatedAt = d.Team, d.Owner, attrs, time.Now().UTC()
			if err := s.st.UpdateAgent(ctx, a); err != nil {
				return err
			}
			_ = s.st.Publish(ctx, store.Change{Kind: "agent", ID: a.ID})
		}
	}
	return nil
}

func (s *identitySystem) maxSecretAge(team string) time.Duration {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, t := range s.cfg.Identity.Teams {
		if t.Name == team {
			return t.MaxSecretAge.Std()
		}
	}
	return identity.DefaultMaxSecretAge
}

// bootstrapUser creates the first user of a fresh install, with a random
// password written to a file, so that someone can log in.
func (s *identitySystem) bootstrapUser(ctx context.Context, cfg *config.Config) error {
	name := *cfg.Identity.BootstrapUser
	if name == "" {
		return nil
	}
	users, err := s.st.ListUsers(ctx)
	if err != nil || len(users) > 0 {
		return err
	}
	pw := identity.RandomPassword()
	groups := []string{"admins"}
	if err := s.mgr.CreateUser(ctx, name, pw, groups); err != nil {
		return err
	}
	if !slices.ContainsFunc(cfg.Identity.Groups, func(g *config.Group) bool { return g.Name == "admins" }) {
		s.log.Warn("the bootstrap user is in group admins, which the configuration grants nothing: add it under identity.groups")
	}
	// The password goes to a file only its owner can read, never to the log
	// (logs are shipped and kept); the log says where it is.
	path := filepath.Join(filepath.Dir(cfg.Admin.TokenFile), "initial-admin-password")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("writing the first user's password: %w", err)
	}
	if err := os.WriteFile(path, []byte(pw+"\n"), 0o600); err != nil {
		return fmt.Errorf("writing the first user's password: %w", err)
	}
	s.log.Warn("FIRST START: created user "+name+" (group admins) to log in with; its password is in the file at path; change it with `gatehouse user set-password`, then delete the file",
		"user", name, "path", path)
	return nil
}

// setPolicy routes the store's change feed to the policy engine too.
func (s *identitySystem) toolPinsFunc() func(string, string) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.toolPins
}

// setToolPins routes tool pin changes to f.
func (s *identitySystem) setToolPins(f func(upstream, tool string)) {
	s.mu.Lock()
	s.toolPins = f
	s.mu.Unlock()
}

func (s *identitySystem) setPolicy(e *policy.Engine) {
	s.mu.Lock()
	s.policy = e
	s.mu.Unlock()
}

// rotatingVault makes a key-encryption key rotation re-seal the signing
// keys too, so that once it has run the previous key can be removed.
type rotatingVault struct {
	*vault.Vault
	keys *identity.KeyManager
}

func (v rotatingVault) Rotate(ctx context.Context) (int, error) {
	n, err := v.Vault.Rotate(ctx)
	if err != nil {
		return n, err
	}
	k, err := v.keys.Rewrap(ctx, v.Vault.Keyring())
	return n + k, err
}

// adminToken returns the admin API token: the configured one, or the one
// in the token file, created with a random token on first start.
func adminToken(c config.Admin, log *slog.Logger) (string, error) {
	if t := c.Token.Reveal(); t != "" {
		return t, nil
	}
	b, err := os.ReadFile(c.TokenFile)
	if err == nil {
		t := strings.TrimSpace(string(b))
		if len(t) < 16 {
			return "", fmt.Errorf("admin token file %s: the token must be at least 16 characters", c.TokenFile)
		}
		return t, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("reading the admin token: %w", err)
	}
	t := "gha_" + identity.RandomPassword() + identity.RandomPassword()
	if err := os.MkdirAll(filepath.Dir(c.TokenFile), 0o700); err != nil {
		return "", err
	}
	if err := os.WriteFile(c.TokenFile, []byte(t+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("writing the admin token: %w", err)
	}
	log.Warn("created an admin token for the admin API and the gatehouse commands on this machine", "path", c.TokenFile)
	return t, nil
}

func (s *identitySystem) close() {
	if s.stop != nil {
		s.stop()
	}
	s.wg.Wait()
	s.st.Close()
}
