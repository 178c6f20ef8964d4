// Package admin is the gateway's admin REST API, mounted under /admin/v1/:
// agents and their credentials, emergency team rotation, local users, the
// vault's entries (never their values), signing-key rotation,
// least-privilege policy (time-bounded grants, approvals of held calls,
// explanations of decisions), the audit trail (records, signed
// checkpoints, the chain's head), and tool pins (approved tool definitions,
// changed ones waiting for review). The management commands of the gatehouse
// CLI are its client, so they work against any replica.
//
// Admin calls authenticate with their own bearer token, compared in
// constant time with the configured one. It is a credential separate from
// everything agents hold: an agent's access token, client secret or API
// key is never accepted here.
//
// Requests and responses are JSON; request bodies are limited to 64 KiB
// and unknown fields are rejected. Errors have one shape,
// {"error": {"code": ..., "message": ...}}, rendered by one function
// (writeError). GET /admin/v1/openapi.json describes every route.
package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"gatehouse/internal/audit"
	"gatehouse/internal/identity"
	"gatehouse/internal/store"
	"gatehouse/internal/vault"
)

// Prefix is the path under which the API is mounted.
const Prefix = "/admin/v1/"

// MaxBodyBytes bounds request bodies. Every body but a vault value is
// tiny; a vault value of up to this size less its JSON wrapping fits.
const MaxBodyBytes = 64 << 10

// VaultAdmin is what the API needs of the vault; *vault.Vault satisfies it.
// Agent arguments are agent ids ("" for the shared entry).
type VaultAdmin interface {
	Put(ctx context.Context, name, agent string, value []byte) error
	// List describes the entries without their values.
	List(ctx context.Context) ([]vault.Entry, error)
	Delete(ctx context.Context, name, agent string) error
	// Rotate re-wraps every data key with the primary key-encryption key
	// and returns how many entries it re-wrapped.
	Rotate(ctx context.Context) (int, error)
}

// KeyRotator creates a new token-signing key; *identity.KeyManager
// satisfies it. With immediate false the key is published at once and
// signs after the configured overlap, so verifiers caching the JWKS learn
// it first.
type KeyRotator interface {
	Rotate(ctx context.Context, immediate bool) (string, error)
}

// Config configures the API.
type Config struct {
	// Token is the admin bearer token. Empty disables the API: every
	// request under Prefix gets 404, as if nothing were mounted.
	Token string
	// Manager runs the lifecycle of agents and users (required when Token
	// is set).
	Manager *identity.Manager
	// Store is read for listings and name look-ups (required when Token is
	// set).
	Store store.Store
	// Vault serves the vault routes; nil: they answer 404 with a message
	// saying no vault is configured.
	Vault VaultAdmin
	// Keys serves signing-key rotation; nil: 404, likewise.
	Keys KeyRotator
	// Policy serves grants, approvals and explanations; nil (no policy
	// section): 404, likewise.
	Policy PolicyAdmin
	// Audit serves the audit trail's records, checkpoints and head (a
	// store.AuditStore); nil (the trail is off): 404, likewise.
	Audit AuditAdmin
	// Record, when set, receives an audit record of every admin change
	// (every request but GET, refused ones included).
	Record func(audit.Record) error
	// Logger receives one line per admin action (default slog.Default()).
	Logger *slog.Logger
}

// API serves the admin routes. It is safe for concurrent use and holds no
// state of its own besides its configuration and the OpenAPI document.
type API struct {
	cfg     Config
	log     *slog.Logger
	mux     *http.ServeMux // the routes, behind authentication
	routes  []route
	openapi []byte
	// tokenHash is SHA-256 of the admin token: comparing fixed-size hashes
	// keeps the comparison constant-time in the token's length too.
	tokenHash [sha256.Size]byte
}

// New returns the API for cfg. It panics if the API is enabled (Token set)
// without a Manager or a Store: that is a wiring mistake, not a runtime
// condition.
func New(cfg Config) *API {
	a := &API{cfg: cfg, log: cfg.Logger}
	if a.log == nil {
		a.log = slog.Default()
	}
	if cfg.Token == "" {
		return a
	}
	if cfg.Manager == nil || cfg.Store == nil {
		panic("admin.New: the API needs a Manager and a Store")
	}
	if len(cfg.Token) < 16 {
		a.log.Warn("the admin token is short: use at least 32 random characters", "length", len(cfg.Token))
	}
	a.tokenHash = sha256.Sum256([]byte(cfg.Token))
	a.routes = a.routeTable()
	a.mux = http.NewServeMux()
	for _, rt := range a.routes {
		a.mux.Handle(rt.method+" "+rt.path, a.serveRoute(rt))
	}
	// Everything else under the prefix: a JSON 404 (or 405), not the
	// mux's plain-text page.
	a.mux.HandleFunc(Prefix, a.unmatched)
	doc, err := a.openAPIDocument()
	if err != nil {
		// The document is built from Go types known at compile time; a
		// failure is a bug that tests catch.
		panic(fmt.Sprintf("admin.New: building the OpenAPI document: %v", err))
	}
	a.openapi = doc
	return a
}

// Register mounts the API on mux under Prefix.
func (a *API) Register(mux *http.ServeMux) {
	mux.Handle(Prefix, a)
}

// ServeHTTP authenticates the request and dispatches it to its route.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if a.cfg.Token == "" {
		http.NotFound(w, r)
		return
	}
	// Admin responses carry credentials shown once: no cache may keep
	// them.
	w.Header().Set("Cache-Control", "no-store")
	if !a.authenticated(r) {
		a.log.Warn("admin request refused: missing or wrong admin token",
			"method", r.Method, "path", r.URL.Path, "remote_addr", r.RemoteAddr)
		w.Header().Set("WWW-Authenticate", `Bearer realm="gatehouse-admin"`)
		writeError(w, &apiError{status: http.StatusUnauthorized, code: codeUnauthorized,
			msg: "a valid admin token is required (Authorization: Bearer <admin token>); agent credentials are not accepted here"})
		return
	}
	a.mux.ServeHTTP(w, r)
}

// authenticated reports whether r carries the admin token.
func (a *API) authenticated(r *http.Request) bool {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	tok = strings.TrimSpace(tok)
	if tok == "" {
		return false
	}
	got := sha256.Sum256([]byte(tok))
	return subtle.ConstantTimeCompare(got[:], a.tokenHash[:]) == 1
}

// unmatched answers requests under Prefix that no route matches: 405 when
// the path exists with another method, else 404.
func (a *API) unmatched(w http.ResponseWriter, r *http.Request) {
	var allowed []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := a.mux.Handler(probe); pattern != Prefix && pattern != "" {
			allowed = append(allowed, m)
		}
	}
	if len(allowed) > 0 {
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		writeError(w, &apiError{status: http.StatusMethodNotAllowed, code: codeInvalid,
			msg: fmt.Sprintf("%s is not allowed on %s (allowed: %s)", r.Method, r.URL.Path, strings.Join(allowed, ", "))})
		return
	}
	writeError(w, &apiError{status: http.StatusNotFound, code: codeNotFound,
		msg: fmt.Sprintf("no admin route %s %s (see %sopenapi.json)", r.Method, r.URL.Path, Prefix)})
}

// serveRoute adapts a route's handler: it limits the body, runs the
// handler, writes its result or its error, and logs the action (never a
// body: bodies hold passwords, secrets and vault values).
func (a *API) serveRoute(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
		res, err := rt.handle(r)
		status := rt.status
		if err != nil {
			ae := toAPIError(err)
			status = ae.status
			if ae.status >= 500 {
				a.log.Error("admin action failed", a.actionAttrs(r, status, err)...)
			} else {
				a.log.Info("admin action refused", a.actionAttrs(r, status, nil, slog.String("reason", ae.msg))...)
			}
			if r.Method != http.MethodGet {
				a.record(r, rt, status, ae.msg)
			}
			writeError(w, ae)
			return
		}
		if r.Method != http.MethodGet {
			a.log.Info("admin action", a.actionAttrs(r, status, nil)...)
			a.record(r, rt, status, "")
		} else {
			a.log.Debug("admin read", a.actionAttrs(r, status, nil)...)
		}
		writeResult(w, status, res)
	})
}

// record writes the audit record of an admin change.
func (a *API) record(r *http.Request, rt route, status int, reason string) {
	if a.cfg.Record == nil {
		return
	}
	rec := audit.Record{Kind: audit.KindAdmin, Action: rt.method + " " + rt.path,
		Actor:   audit.Actor{Kind: "admin", Source: remoteHost(r.RemoteAddr)},
		Target:  audit.Target{Method: r.Method, Object: r.URL.Path},
		Outcome: audit.Outcome{Status: audit.OutcomeAllowed, Reason: reason}}
	switch {
	case status >= 500:
		rec.Outcome.Status = audit.OutcomeError
	case status >= 400:
		rec.Outcome.Status = audit.OutcomeDenied
	}
	if err := a.cfg.Record(rec); err != nil {
		a.log.Error("audit: an admin change could not be recorded", "path", r.URL.Path, "error", err)
	}
}

func remoteHost(addr string) string {
	if i := strings.LastIndexByte(addr, ':'); i > 0 {
		return strings.Trim(addr[:i], "[]")
	}
	return addr
}

// actionAttrs describes an admin request for the log: method, path and
// the names it acts on.
func (a *API) actionAttrs(r *http.Request, status int, err error, extra ...any) []any {
	attrs := []any{"method", r.Method, "path", r.URL.Path, "status", status, "remote_addr", r.RemoteAddr}
	for _, p := range []string{"name", "team", "username"} {
		if v := r.PathValue(p); v != "" {
			attrs = append(attrs, p, v)
		}
	}
	if agent := r.URL.Query().Get("agent"); agent != "" {
		attrs = append(attrs, "agent", agent)
	}
	if err != nil {
		attrs = append(attrs, "error", err.Error())
	}
	return append(attrs, extra...)
}

// Interface guards: the components the composition root passes in.
var (
	_ VaultAdmin   = (*vault.Vault)(nil)
	_ KeyRotator   = (*identity.KeyManager)(nil)
	_ http.Handler = (*API)(nil)
)
