// Package admintest runs the admin API over real components for tests:
// the SQLite store in a temporary directory, a real identity.Manager, key
// manager and vault (and, with WithPolicy, a real policy.Engine), served
// by an httptest.Server.
package admintest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"gatehouse/internal/admin"
	"gatehouse/internal/identity"
	"gatehouse/internal/policy"
	"gatehouse/internal/store/sqlite"
	"gatehouse/internal/vault"
)

// Token is the admin token of every test server.
const Token = "test-admin-token-0123456789abcdef"

// ShortTeam is a team whose maximum secret age is ShortMaxAge, so that
// its agents' secrets expire soon enough to be warned about.
const (
	ShortTeam   = "short-lived"
	ShortMaxAge = 10 * 24 * time.Hour
)

// Server is a running admin API and the components behind it.
type Server struct {
	URL     string
	Store   *sqlite.Store
	Manager *identity.Manager
	Keys    *identity.KeyManager
	Issuer  *identity.Issuer
	// KEK is the keyring's primary key-encryption key.
	KEK     []byte
	Keyring *vault.Keyring
	Vault   *vault.Vault
	API     *admin.API
	// Policy serves the policy routes (nil unless WithPolicy).
	Policy *Policy
	// Logs holds everything the API and the components logged.
	Logs *Buffer
}

// Option configures New.
type Option func(*options)

type options struct {
	policy *PolicyOptions
}

// PolicyOptions describe the running policy of a test server.
type PolicyOptions struct {
	// Bundles are the bundles the policy defines.
	Bundles []string
	// Explain answers explanations (nil: every query is an error).
	Explain func(context.Context, policy.ExplainQuery) (policy.Explanation, error)
}

// WithPolicy serves the policy routes with a real policy.Engine over the
// server's store, the running policy's bundles and explanations taken
// from o.
func WithPolicy(o PolicyOptions) Option {
	return func(opts *options) { opts.policy = &o }
}

// Policy is the admin.PolicyAdmin of a test server: grants and approvals
// are the real engine's; bundles and explanations, which the composition
// root derives from the running configuration, come from PolicyOptions.
type Policy struct {
	*policy.Engine
	opts PolicyOptions
}

// HasBundle reports whether the bundle is one of PolicyOptions.Bundles.
func (p *Policy) HasBundle(name string) bool { return slices.Contains(p.opts.Bundles, name) }

// Explain calls PolicyOptions.Explain.
func (p *Policy) Explain(ctx context.Context, q policy.ExplainQuery) (policy.Explanation, error) {
	if p.opts.Explain == nil {
		return policy.Explanation{}, errors.New("no explanations in this test")
	}
	return p.opts.Explain(ctx, q)
}

var _ admin.PolicyAdmin = (*Policy)(nil)

// New starts a server; everything is cleaned up when the test ends.
func New(t testing.TB, opts ...Option) *Server {
	t.Helper()
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "gatehouse.db"))
	if err != nil {
		t.Fatalf("opening the store: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })

	logs := &Buffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))

	kek := NewKEK(t)
	kr, err := vault.NewKeyring(kek)
	if err != nil {
		t.Fatalf("keyring: %v", err)
	}
	km := identity.NewKeyManager(st, kr, identity.KeyConfig{}, log)
	if err := km.Load(ctx); err != nil {
		t.Fatalf("loading signing keys: %v", err)
	}
	s := &Server{
		Store: st,
		Manager: identity.NewManager(st, func(team string) time.Duration {
			if team == ShortTeam {
				return ShortMaxAge
			}
			// Not 0 ("the default"): identity.Manager.AddPublicKey
			// does not apply the default for 0.
			return identity.DefaultMaxSecretAge
		}),
		Keys:    km,
		Issuer:  identity.NewIssuer(km, "http://gatehouse.test", 5*time.Minute),
		KEK:     kek,
		Keyring: kr,
		Vault:   vault.New(st, kr, vault.Options{Logger: log}),
		Logs:    logs,
	}
	cfg := admin.Config{Token: Token, Manager: s.Manager, Store: st, Vault: s.Vault, Keys: km, Logger: log}
	if o.policy != nil {
		s.Policy = &Policy{Engine: policy.NewEngine(policy.EngineOptions{Store: st, Logger: log}), opts: *o.policy}
		cfg.Policy = s.Policy
	}
	s.API = admin.New(cfg)
	mux := http.NewServeMux()
	s.API.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

// NewKEK returns a random key-encryption key.
func NewKEK(t testing.TB) []byte {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

// Buffer is a bytes.Buffer safe for concurrent writes and reads.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
