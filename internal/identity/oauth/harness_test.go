package oauth

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"
	"golang.org/x/oauth2"

	"gatehouse/internal/identity"
	"gatehouse/internal/store"
	"gatehouse/internal/store/sqlite"
)

// testSealer seals with AES-256-GCM under a fixed key.
type testSealer struct{ aead cipher.AEAD }

func newTestSealer() *testSealer {
	block, err := aes.NewCipher([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		panic(err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic(err)
	}
	return &testSealer{aead}
}

func (s *testSealer) Seal(p []byte, aad string) ([]byte, error) {
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return s.aead.Seal(nonce, nonce, p, []byte(aad)), nil
}

func (s *testSealer) Open(c []byte, aad string) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(c) < n {
		return nil, errors.New("short ciphertext")
	}
	return s.aead.Open(nil, c[:n], c[n:], []byte(aad))
}

// testClock is the real time plus an offset that tests advance (the
// token issuer and authenticator use the real clock, so the offset stays
// small relative to token lifetimes, or tokens are not checked after it).
type testClock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.offset += d
	c.mu.Unlock()
}

// Passwords of the test users.
const (
	alicePW = "alice: correct horse battery staple"
	bobPW   = "bob: tr0ub4dor&3"
	carolPW = "carol: disabled but right"
)

var testServers = []string{"support", "crm", "billing"}

// env is a gateway authorization server on a real SQLite store, with real
// keys, issuer, directory and authenticator, served over HTTP.
type env struct {
	ctx    context.Context
	st     store.Store
	srv    *Server
	ts     *httptest.Server
	issuer string
	clock  *testClock
	keys   *identity.KeyManager
	dir    *identity.Directory
	authn  *identity.Authenticator
	logs   *logBuffer
	// secrets of the test agents: bot, bot2 (both valid), bot-revoked,
	// bot-expired, ops, empty, disabled, revoked, delegate.
	secrets map[string]string
}

type envOptions struct {
	insecureMetadata bool
	httpClient       *http.Client
}

func newEnv(t testing.TB, opts ...envOptions) *env {
	var o envOptions
	if len(opts) > 0 {
		o = opts[0]
	} else {
		o.insecureMetadata = true
	}
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "gatehouse.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	logs := &logBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))

	mux := http.NewServeMux()
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	issuer := ts.URL

	keys := identity.NewKeyManager(st, newTestSealer(), identity.KeyConfig{}, log)
	if err := keys.Load(ctx); err != nil {
		t.Fatal(err)
	}
	clock := &testClock{}
	e := &env{ctx: ctx, st: st, ts: ts, issuer: issuer, clock: clock, keys: keys, logs: logs}
	e.seed(t)
	e.dir = identity.NewDirectory(st, log)
	e.reloadDirectory(t)
	e.dir.SetAccess(identity.Access{
		Teams:  map[string][]string{"support": {"support", "crm"}, "ops": {"*"}, "empty": {}},
		Groups: map[string][]string{"staff": {"support"}, "admins": {"*"}},
	})
	e.authn = identity.NewAuthenticator(keys, e.dir, issuer)
	srv, err := New(Config{
		Issuer: issuer, Store: st, Tokens: identity.NewIssuer(keys, issuer, 5*time.Minute), Keys: keys,
		Directory: e.dir, Servers: func() []string { return testServers }, HTTPClient: o.httpClient,
		AllowInsecureMetadataURLs: o.insecureMetadata, Logger: log, Now: clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv.Register(mux)
	e.srv = srv
	return e
}

func (e *env) reloadDirectory(t testing.TB) {
	if err := e.dir.Load(e.ctx); err != nil {
		t.Fatal(err)
	}
}

// Test agents and their client ids.
const (
	botClient      = "cli_bot"
	opsClient      = "cli_ops"
	emptyClient    = "cli_empty"
	disabledClient = "cli_disabled"
	revokedClient  = "cli_revoked"
	delegateClient = "cli_delegate"
)

// seed creates the users, teams and agents of the tests.
func (e *env) seed(t testing.TB) {
	ctx := e.ctx
	for _, tm := range []string{"support", "ops", "empty"} {
		if err := e.st.UpsertTeam(ctx, store.Team{Name: tm, CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	for _, u := range []struct {
		name, pw string
		groups   []string
		disabled bool
	}{
		{"alice", alicePW, []string{"staff"}, false},
		{"bob", bobPW, nil, false},
		{"carol", carolPW, []string{"admins"}, true},
	} {
		h := hashFor(t, u.pw)
		if err := e.st.CreateUser(ctx, store.User{Username: u.name, PasswordHash: h, Groups: u.groups, Disabled: u.disabled,
			CreatedAt: time.Now(), UpdatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	e.secrets = map[string]string{}
	bot := e.addAgent(t, "bot", botClient, "support", store.AgentActive, nil)
	e.secrets["bot"] = e.addSecret(t, bot, nil, false)
	e.secrets["bot2"] = e.addSecret(t, bot, nil, false) // rotation overlap: both valid
	e.secrets["bot-revoked"] = e.addSecret(t, bot, nil, true)
	past := time.Now().Add(-time.Hour)
	e.secrets["bot-expired"] = e.addSecret(t, bot, &past, false)
	e.secrets["ops"] = e.addSecret(t, e.addAgent(t, "ops-bot", opsClient, "ops", store.AgentActive, nil), nil, false)
	e.secrets["empty"] = e.addSecret(t, e.addAgent(t, "idle-bot", emptyClient, "empty", store.AgentActive, nil), nil, false)
	e.secrets["disabled"] = e.addSecret(t, e.addAgent(t, "off-bot", disabledClient, "support", store.AgentDisabled, nil), nil, false)
	e.secrets["revoked"] = e.addSecret(t, e.addAgent(t, "gone-bot", revokedClient, "support", store.AgentRevoked, nil), nil, false)
	e.secrets["delegate"] = e.addSecret(t, e.addAgent(t, "helper", delegateClient, "support", store.AgentActive,
		json.RawMessage(`{"redirect_uris":["http://127.0.0.1:9/callback","https://app.example.com/cb"]}`)), nil, false)
}

// hashFor returns a cheap argon2id hash of pw (1 MiB, one pass): argon2id
// at the production cost is slow on purpose, and VerifyPassword reads the
// cost from the hash. TestLoginDefaultHash covers HashPassword's hashes.
func hashFor(t testing.TB, pw string) string {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		t.Fatal(err)
	}
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=19$m=1024,t=1,p=1$%s$%s", b64.EncodeToString(salt),
		b64.EncodeToString(argon2.IDKey([]byte(pw), salt, 1, 1024, 1, 32)))
}

func (e *env) addAgent(t testing.TB, name, clientID, team, status string, attrs json.RawMessage) store.Agent {
	a := store.Agent{ID: "agt_" + name, Name: name, ClientID: clientID, Team: team, Owner: "owner@example.com",
		Status: status, Attributes: attrs, Source: "api", CreatedAt: time.Now(), UpdatedAt: time.Now()}
	if err := e.st.CreateAgent(e.ctx, a); err != nil {
		t.Fatal(err)
	}
	return a
}

// addSecret adds a client secret to an agent and returns it.
func (e *env) addSecret(t testing.TB, a store.Agent, expires *time.Time, revoked bool) string {
	secret := randomToken(identity.SecretTag, 32)
	h := sha256.Sum256([]byte(secret))
	c := store.Credential{ID: randomToken("cred_", 8), AgentID: a.ID, Kind: store.CredSecret,
		Prefix: identity.CredentialPrefix(secret), Hash: h[:], CreatedAt: time.Now(), ExpiresAt: expires}
	if revoked {
		now := time.Now()
		c.RevokedAt = &now
	}
	if err := e.st.AddCredential(e.ctx, c); err != nil {
		t.Fatal(err)
	}
	return secret
}

func (e *env) url(path string) string { return e.issuer + path }

func (e *env) resource(server string) string { return ResourceURL(e.issuer, server) }

// authenticate checks an access token the way the MCP endpoint does.
func (e *env) authenticate(token, server string) (*identity.Principal, *identity.AuthError) {
	r := httptest.NewRequest(http.MethodPost, e.resource(server), nil)
	r.Header.Set("Authorization", "Bearer "+token)
	return e.authn.Authenticate(r, server, e.resource(server))
}

// tokenError is an RFC 6749 error response as received.
type tokenError struct {
	Status      int
	Code        string `json:"error"`
	Description string `json:"error_description"`
	Header      http.Header
}

// postToken posts a token request and decodes the answer.
func (e *env) postToken(t *testing.T, form url.Values, basicUser, basicPass string) (map[string]any, *tokenError) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.url(pathToken), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basicUser != "" {
		req.SetBasicAuth(url.QueryEscape(basicUser), url.QueryEscape(basicPass))
	}
	return doToken(t, req)
}

func doToken(t *testing.T, req *http.Request) (map[string]any, *tokenError) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("token endpoint answered Content-Type %q: %s", ct, body)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("token endpoint answered Cache-Control %q, want no-store", cc)
	}
	if resp.StatusCode == http.StatusOK {
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatal(err)
		}
		return m, nil
	}
	te := &tokenError{Status: resp.StatusCode, Header: resp.Header}
	if err := json.Unmarshal(body, te); err != nil {
		t.Fatalf("error body %s: %v", body, err)
	}
	return nil, te
}

// browser is a user agent with a cookie jar that does not follow
// redirects, so tests see them.
func newBrowser(t *testing.T) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// loginForm is the login page's form as parsed from its HTML.
type loginForm struct {
	Status int
	Body   string
	Fields url.Values // hidden fields, including form_token
}

var hiddenRE = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)

// getLogin loads the authorization endpoint in the browser.
func getLogin(t *testing.T, b *http.Client, authURL string) (*loginForm, *http.Response) {
	t.Helper()
	resp, err := b.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	f := &loginForm{Status: resp.StatusCode, Body: string(body), Fields: url.Values{}}
	for _, m := range hiddenRE.FindAllStringSubmatch(f.Body, -1) {
		f.Fields.Set(html.UnescapeString(m[1]), html.UnescapeString(m[2]))
	}
	return f, resp
}

// postLogin submits the login form with a username and password.
func postLogin(t *testing.T, b *http.Client, issuer string, fields url.Values, user, pw string) (*http.Response, string) {
	t.Helper()
	v := url.Values{}
	for k, vs := range fields {
		v[k] = append([]string(nil), vs...)
	}
	if user != "" || pw != "" {
		v.Set("username", user)
		v.Set("password", pw)
	}
	if v.Get("action") == "" {
		v.Set("action", "login")
	}
	resp, err := b.PostForm(issuer+pathAuthorize, v)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// pkce returns a verifier and its S256 challenge.
func pkce() (string, string) {
	v := oauth2.GenerateVerifier()
	return v, oauth2.S256ChallengeFromVerifier(v)
}

// authorizeURL builds an authorization request.
func (e *env) authorizeURL(clientID, redirect, challenge, resource, state string, extra ...string) string {
	q := url.Values{"response_type": {"code"}, "client_id": {clientID}, "redirect_uri": {redirect},
		"code_challenge": {challenge}, "code_challenge_method": {"S256"}, "state": {state}}
	if resource != "" {
		q.Set("resource", resource)
	}
	for i := 0; i+1 < len(extra); i += 2 {
		if extra[i+1] == "" {
			q.Del(extra[i])
		} else {
			q.Set(extra[i], extra[i+1])
		}
	}
	return e.url(pathAuthorize) + "?" + q.Encode()
}

// register registers a client dynamically and returns the response.
func (e *env) register(t *testing.T, body string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Post(e.url(pathRegister), "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, m
}

// logBuffer collects log output so tests can check that no secret is
// logged.
type logBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// assertNotLogged fails when any of the secrets appears in the logs.
func (e *env) assertNotLogged(t *testing.T, secrets ...string) {
	t.Helper()
	logs := e.logs.String()
	for _, s := range secrets {
		if s != "" && strings.Contains(logs, s) {
			t.Errorf("a secret (%.8s…) appears in the logs", s)
		}
	}
}
