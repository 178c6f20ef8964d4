// Package oauth makes the gateway an OAuth 2.1 authorization server for its
// own virtual servers, and describes each virtual server as a protected
// resource (RFC 9728) so that MCP clients find it with no manual step.
//
// Endpoints (all mounted by Server.Register):
//
//	GET  /.well-known/oauth-protected-resource/mcp/{server}  RFC 9728 metadata
//	GET  /.well-known/oauth-authorization-server             RFC 8414 metadata
//	GET  /.well-known/openid-configuration                   the same document
//	GET  /oauth/jwks                                         the signing keys
//	POST /oauth/token                                        client_credentials, authorization_code, refresh_token
//	GET  /oauth/authorize, POST /oauth/authorize             the login page (authorization code + PKCE)
//	POST /oauth/register                                     dynamic client registration (RFC 7591)
//
// Clients are agents (client_credentials, and the authorization-code flow
// when the agent lists redirect_uris), dynamically registered clients, and
// clients known by a client ID metadata document (an https URL as client_id).
// Tokens are audience-bound to one virtual server's resource URL (RFC 8707)
// and carry the scope mcp:{server}.
package oauth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"gatehouse/internal/audit"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"gatehouse/internal/identity"
	"gatehouse/internal/store"
)

// Config holds the dependencies of a Server.
type Config struct {
	// Issuer is the gateway's base URL, e.g. http://127.0.0.1:8080: scheme,
	// host and optional port, no path and no trailing slash. It is the
	// authorization server's issuer identifier and the prefix of every
	// endpoint and resource URL.
	Issuer string
	// Store is the persistent state (clients, codes, refresh tokens, users,
	// agents and their credentials).
	Store store.Store
	// Tokens signs access tokens.
	Tokens *identity.Issuer
	// Keys publishes the signing keys (JWKS).
	Keys *identity.KeyManager
	// Directory says which virtual servers teams and groups may use.
	Directory *identity.Directory
	// Servers returns the names of the virtual servers in the current
	// configuration. It is called on every request that needs them.
	Servers func() []string
	// HTTPClient fetches client ID metadata documents. Nil means a client
	// built here. Unless AllowInsecureMetadataURLs is set, the dialer of its
	// transport (an *http.Transport, or the default when nil) is replaced by
	// one that refuses non-public addresses and proxies are not used, so
	// that the address actually connected to is the one checked (SSRF).
	HTTPClient *http.Client
	// AllowInsecureMetadataURLs accepts http://localhost and
	// http://127.0.0.1 metadata document URLs and documents on private or
	// loopback addresses. For development and tests only.
	AllowInsecureMetadataURLs bool
	// Record, when set, receives an audit record of every access token
	// issued.
	Record func(audit.Record) error
	// Logger receives one line per registration, login and token issued;
	// never a password, code, secret or token. Nil means slog.Default().
	Logger *slog.Logger
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// Server is the authorization server. It is safe for concurrent use; its
// in-memory state (seen client-assertion ids, used login-form tokens,
// failed-login counters, cached metadata documents) is per process and
// bounded.
type Server struct {
	cfg    Config
	issuer *url.URL
	log    *slog.Logger
	now    func() time.Time

	csrfKey  []byte // per-process HMAC key for login-form tokens
	forms    *onceSet
	jtis     *onceSet
	failures *failures
	cimd     *cimdCache
	fetch    *http.Client

	pwSem     chan struct{} // bounds concurrent argon2 verifications
	dummyOnce sync.Once
	dummyHash string
}

// Endpoint paths, relative to the issuer.
const (
	pathAuthorize   = "/oauth/authorize"
	pathToken       = "/oauth/token"
	pathRegister    = "/oauth/register"
	pathJWKS        = "/oauth/jwks"
	pathASMetadata  = "/.well-known/oauth-authorization-server"
	pathOIDCConfig  = "/.well-known/openid-configuration"
	pathPRMetadata  = "/.well-known/oauth-protected-resource/mcp/"
	resourcePrefix  = "/mcp/"
	maxConcurrentPw = 4
)

// New checks cfg and returns a server.
func New(cfg Config) (*Server, error) {
	var errs []error
	if cfg.Store == nil {
		errs = append(errs, errors.New("oauth: Store is required"))
	}
	if cfg.Tokens == nil {
		errs = append(errs, errors.New("oauth: Tokens is required"))
	}
	if cfg.Keys == nil {
		errs = append(errs, errors.New("oauth: Keys is required"))
	}
	if cfg.Directory == nil {
		errs = append(errs, errors.New("oauth: Directory is required"))
	}
	if cfg.Servers == nil {
		errs = append(errs, errors.New("oauth: Servers is required"))
	}
	iss, err := parseIssuer(cfg.Issuer)
	if err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("oauth: generating the form key: %w", err)
	}
	s := &Server{
		cfg:      cfg,
		issuer:   iss,
		log:      cfg.Logger,
		now:      cfg.Now,
		csrfKey:  key,
		forms:    newOnceSet(maxUsedForms),
		jtis:     newOnceSet(maxSeenJTIs),
		failures: newFailures(maxTrackedUsers),
		cimd:     newCIMDCache(maxCachedDocuments),
		pwSem:    make(chan struct{}, maxConcurrentPw),
	}
	s.fetch = metadataClient(cfg.HTTPClient, cfg.AllowInsecureMetadataURLs)
	return s, nil
}

// parseIssuer accepts scheme://host[:port] only: every endpoint and resource
// URL is the issuer plus a fixed path, served from the root of the host.
func parseIssuer(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil || s == "" {
		return nil, fmt.Errorf("oauth: Issuer %q is not a URL", s)
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil ||
		u.Path != "" || u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(s, "/") {
		return nil, fmt.Errorf("oauth: Issuer %q must be http(s)://host[:port] with no path, query or trailing slash", s)
	}
	if u.Scheme != strings.ToLower(u.Scheme) || u.Host != strings.ToLower(u.Host) {
		return nil, fmt.Errorf("oauth: Issuer %q must be in lower case", s)
	}
	return u, nil
}

// Register mounts every endpoint of the server on mux.
func (s *Server) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET "+pathPRMetadata+"{server}", s.handleResourceMetadata)
	mux.HandleFunc("GET "+pathASMetadata, s.handleServerMetadata)
	mux.HandleFunc("GET "+pathOIDCConfig, s.handleServerMetadata)
	mux.HandleFunc("GET "+pathJWKS, s.handleJWKS)
	mux.HandleFunc(pathToken, s.handleToken)
	mux.HandleFunc(pathAuthorize, s.handleAuthorize)
	mux.HandleFunc(pathRegister, s.handleRegister)
}

// ResourceURL is the canonical resource identifier of a virtual server
// (RFC 8707): the audience of its tokens.
func ResourceURL(issuer, server string) string { return issuer + resourcePrefix + server }

// ResourceMetadataURL is where a virtual server's protected resource
// metadata (RFC 9728) is served; it goes in the resource_metadata parameter
// of WWW-Authenticate challenges.
func ResourceMetadataURL(issuer, server string) string {
	return issuer + pathPRMetadata + server
}

// endpoint returns the absolute URL of one of the server's paths.
func (s *Server) endpoint(path string) string { return s.cfg.Issuer + path }

// randomToken returns n random bytes, base64url encoded, with a tag.
func randomToken(tag string, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		// crypto/rand never fails on supported platforms (Go 1.24+ panics
		// internally instead); keep the signature simple.
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	return tag + base64.RawURLEncoding.EncodeToString(b)
}

// hashSecret is how codes, refresh tokens and client secrets are stored.
func hashSecret(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}
