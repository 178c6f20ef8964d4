package identity

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"gatehouse/internal/store"
	"gatehouse/internal/store/sqlite"
)

// testSealer seals with AES-GCM under a fixed key (the vault does this in
// production).
type testSealer struct{ aead cipher.AEAD }

func newTestSealer() *testSealer {
	b, _ := aes.NewCipher(make([]byte, 32))
	g, _ := cipher.NewGCM(b)
	return &testSealer{g}
}

func (s *testSealer) Seal(p []byte, aad string) ([]byte, error) {
	n := make([]byte, s.aead.NonceSize())
	_, _ = rand.Read(n)
	return s.aead.Seal(n, n, p, []byte(aad)), nil
}

func (s *testSealer) Open(b []byte, aad string) ([]byte, error) {
	ns := s.aead.NonceSize()
	return s.aead.Open(nil, b[:ns], b[ns:], []byte(aad))
}

const (
	testIssuer   = "http://gw.test"
	testResource = "http://gw.test/mcp/support"
)

type fixture struct {
	st     *sqlite.Store
	keys   *KeyManager
	dir    *Directory
	issuer *Issuer
	auth   *Authenticator
	apiKey string
}

// newFixture builds the identity stack over a real SQLite file with a few
// agents, users and API keys in every state the authenticator distinguishes.
func newFixture(t testing.TB) *fixture {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "gatehouse.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	now := time.Now().UTC()
	for _, a := range []store.Agent{
		{ID: "agt_ok", Name: "support-bot", ClientID: "agt_ok", Team: "support", Owner: "alice@example.com", Status: store.AgentActive},
		{ID: "agt_off", Name: "paused-bot", ClientID: "agt_off", Team: "support", Owner: "alice@example.com", Status: store.AgentDisabled},
		{ID: "agt_rev", Name: "old-bot", ClientID: "agt_rev", Team: "support", Owner: "alice@example.com", Status: store.AgentRevoked, RevokedAt: &now},
		{ID: "agt_eng", Name: "eng-bot", ClientID: "agt_eng", Team: "eng", Owner: "bob@example.com", Status: store.AgentActive},
	} {
		a.CreatedAt = now
		if err := st.CreateAgent(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	for _, u := range []store.User{
		{Username: "carol", Groups: []string{"staff"}, CreatedAt: now},
		{Username: "dave", Groups: []string{"staff"}, Disabled: true, CreatedAt: now},
	} {
		if err := st.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	apiKey := APIKeyTag + strings.Repeat("k", 43)
	past := now.Add(-time.Hour)
	for _, c := range []struct {
		key     string
		agent   string
		expires *time.Time
		revoked *time.Time
	}{
		{apiKey, "agt_ok", nil, nil},
		{APIKeyTag + "revokedxx" + strings.Repeat("r", 34), "agt_ok", nil, &past},
		{APIKeyTag + "expiredxx" + strings.Repeat("e", 34), "agt_ok", &past, nil},
	} {
		h := sha256.Sum256([]byte(c.key))
		cred := store.Credential{ID: "cred_" + c.key[len(APIKeyTag):len(APIKeyTag)+8], AgentID: c.agent, Kind: store.CredAPIKey,
			Prefix: CredentialPrefix(c.key), Hash: h[:], CreatedAt: now, ExpiresAt: c.expires, RevokedAt: c.revoked}
		if err := st.AddCredential(ctx, cred); err != nil {
			t.Fatal(err)
		}
	}
	quiet := slog.New(slog.DiscardHandler)
	keys := NewKeyManager(st, newTestSealer(), KeyConfig{}, quiet)
	if err := keys.Load(ctx); err != nil {
		t.Fatal(err)
	}
	dir := NewDirectory(st, quiet)
	if err := dir.Load(ctx); err != nil {
		t.Fatal(err)
	}
	dir.SetAccess(Access{
		Teams:  map[string][]string{"support": {"support", "crm"}, "eng": {"eng"}},
		Groups: map[string][]string{"staff": {"support"}},
	})
	return &fixture{st: st, keys: keys, dir: dir, issuer: NewIssuer(keys, testIssuer, 10*time.Minute), auth: NewAuthenticator(keys, dir, testIssuer), apiKey: apiKey}
}

func (f *fixture) token(t testing.TB, g Grant) string {
	t.Helper()
	raw, _, err := f.issuer.Issue(g)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// signWith signs arbitrary claims with the current key but lets the test
// choose header fields.
func (f *fixture) signWith(t testing.TB, claims any, mutate func(*jose.SignerOptions)) string {
	t.Helper()
	signer, _, _ := f.keys.Current()
	_ = signer
	f.keys.mu.RLock()
	var rec store.SigningKey
	for _, k := range f.keys.keys {
		rec = k.rec
	}
	f.keys.mu.RUnlock()
	der, err := f.keys.seal.Open(rec.Private, keyAAD+rec.KID)
	if err != nil {
		t.Fatal(err)
	}
	priv, _ := x509.ParsePKCS8PrivateKey(der)
	opts := (&jose.SignerOptions{}).WithType("at+jwt")
	if mutate != nil {
		mutate(opts)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: priv, KeyID: rec.KID}}, opts)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jwt.Signed(s).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func baseClaims(now time.Time) AccessClaims {
	return AccessClaims{
		Claims: jwt.Claims{Issuer: testIssuer, Subject: "agt_ok", Audience: jwt.Audience{testResource},
			IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(5 * time.Minute)), ID: "j1"},
		Scope: "mcp:support", Kind: KindAgent, ClientID: "agt_ok",
	}
}

func unsigned(header, claims any) string {
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	return base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c) + "."
}

func TestAuthenticate(t *testing.T) {
	f := newFixture(t)
	now := time.Now()
	ok := f.token(t, Grant{Kind: KindAgent, Subject: "agt_ok", ClientID: "agt_ok", Audience: []string{testResource}, Scopes: []string{"mcp:support"}})

	expired := baseClaims(now.Add(-time.Hour))
	notYet := baseClaims(now.Add(time.Hour))
	wrongAud := baseClaims(now)
	wrongAud.Audience = jwt.Audience{"http://gw.test/mcp/other"}
	wrongIss := baseClaims(now)
	wrongIss.Issuer = "http://evil.test"
	noScope := baseClaims(now)
	noScope.Scope = "mcp:crm"
	engScope := baseClaims(now)
	engScope.Subject, engScope.Scope = "agt_eng", "mcp:support"
	disabled := baseClaims(now)
	disabled.Subject = "agt_off"
	revoked := baseClaims(now)
	revoked.Subject = "agt_rev"
	unknown := baseClaims(now)
	unknown.Subject = "agt_gone"
	user := baseClaims(now)
	user.Subject, user.Kind = "carol", KindUser
	disabledUser := baseClaims(now)
	disabledUser.Subject, disabledUser.Kind = "dave", KindUser

	// HS256 "signed" with the public key: the classic key-confusion attack.
	pubJSON := f.keys.JWKS()
	hsKey := sha256.Sum256(pubJSON)
	hs, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: hsKey[:]}, (&jose.SignerOptions{}).WithType("at+jwt"))
	hsTok, _ := jwt.Signed(hs).Claims(baseClaims(now)).Serialize()

	// A token signed by a key the gateway does not know, with a kid it does.
	otherKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, kid, _ := f.keys.Current()
	forged, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: otherKey, KeyID: kid}}, (&jose.SignerOptions{}).WithType("at+jwt"))
	forgedTok, _ := jwt.Signed(forged).Claims(baseClaims(now)).Serialize()

	tamper := func(raw string) string {
		p := strings.Split(raw, ".")
		c := baseClaims(now)
		c.Scope = "mcp:support mcp:crm mcp:eng"
		b, _ := json.Marshal(c)
		p[1] = base64.RawURLEncoding.EncodeToString(b)
		return strings.Join(p, ".")
	}

	tests := []struct {
		name, auth string
		server     string
		status     int
		code, desc string
	}{
		{"valid", "Bearer " + ok, "support", 0, "", ""},
		{"valid_api_key", "Bearer " + f.apiKey, "crm", 0, "", ""},
		{"user", "Bearer " + f.signWith(t, user, nil), "support", 0, "", ""},
		{"no_header", "", "support", 401, "", "authentication required"},
		{"basic_scheme", "Basic dXNlcjpwdw==", "support", 401, "invalid_request", "Bearer"},
		{"malformed", "Bearer not.a.jwt.at.all", "support", 401, "invalid_token", "malformed"},
		{"expired", "Bearer " + f.signWith(t, expired, nil), "support", 401, "invalid_token", "expired at"},
		{"not_yet_valid", "Bearer " + f.signWith(t, notYet, nil), "support", 401, "invalid_token", "not valid before"},
		{"wrong_audience", "Bearer " + f.signWith(t, wrongAud, nil), "support", 401, "invalid_token", "audience"},
		{"wrong_issuer", "Bearer " + f.signWith(t, wrongIss, nil), "support", 401, "invalid_token", `issuer "http://evil.test"`},
		{"alg_none", "Bearer " + unsigned(map[string]string{"alg": "none", "typ": "at+jwt", "kid": kid}, baseClaims(now)), "support", 401, "invalid_token", `alg "none"`},
		{"hs256_with_public_key", "Bearer " + hsTok, "support", 401, "invalid_token", `alg "HS256"`},
		{"unknown_kid", "Bearer " + f.signWith(t, baseClaims(now), func(o *jose.SignerOptions) {
			o.WithHeader(jose.HeaderKey("kid"), "nope")
		}), "support", 401, "invalid_token", "unknown signing key"},
		{"bad_signature", "Bearer " + forgedTok, "support", 401, "invalid_token", "signature is invalid"},
		{"tampered_claims", "Bearer " + tamper(ok), "support", 401, "invalid_token", "signature is invalid"},
		{"wrong_typ", "Bearer " + f.signWith(t, baseClaims(now), func(o *jose.SignerOptions) { o.WithType("JWT") }), "support", 401, "invalid_token", "not an access token"},
		{"disabled_agent", "Bearer " + f.signWith(t, disabled, nil), "support", 401, "invalid_token", "disabled"},
		{"revoked_agent", "Bearer " + f.signWith(t, revoked, nil), "support", 401, "invalid_token", "revoked"},
		{"unknown_agent", "Bearer " + f.signWith(t, unknown, nil), "support", 401, "invalid_token", "unknown agent"},
		{"disabled_user", "Bearer " + f.signWith(t, disabledUser, nil), "support", 401, "invalid_token", "disabled"},
		{"missing_scope", "Bearer " + f.signWith(t, noScope, nil), "support", 403, "insufficient_scope", "lacks scope mcp:support"},
		{"team_not_granted", "Bearer " + f.signWith(t, engScope, nil), "support", 403, "insufficient_scope", "no longer granted"},
		{"api_key_unknown", "Bearer " + APIKeyTag + strings.Repeat("z", 43), "support", 401, "invalid_token", "unknown API key"},
		{"api_key_revoked", "Bearer " + APIKeyTag + "revokedxx" + strings.Repeat("r", 34), "support", 401, "invalid_token", "revoked"},
		{"api_key_expired", "Bearer " + APIKeyTag + "expiredxx" + strings.Repeat("e", 34), "support", 401, "invalid_token", "expired"},
		{"api_key_wrong_server", "Bearer " + f.apiKey, "eng", 403, "insufficient_scope", "mcp:eng"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", testResource, nil)
			if tt.auth != "" {
				r.Header.Set("Authorization", tt.auth)
			}
			resource := "http://gw.test/mcp/" + tt.server
			if tt.server == "support" {
				resource = testResource
			}
			p, aerr := f.auth.Authenticate(r, tt.server, resource)
			if tt.status == 0 {
				if aerr != nil {
					t.Fatalf("want success, got %v", aerr)
				}
				if p == nil || p.Subject == "" {
					t.Fatal("no principal")
				}
				return
			}
			if aerr == nil {
				t.Fatalf("want %d %s, got success (%+v)", tt.status, tt.code, p)
			}
			if aerr.Status != tt.status || aerr.Code != tt.code || !strings.Contains(aerr.Description, tt.desc) {
				t.Fatalf("got %d %q %q, want %d %q containing %q", aerr.Status, aerr.Code, aerr.Description, tt.status, tt.code, tt.desc)
			}
		})
	}
}

func TestRevocationTakesEffectOnCachedTokens(t *testing.T) {
	f := newFixture(t)
	raw := f.token(t, Grant{Kind: KindAgent, Subject: "agt_ok", ClientID: "agt_ok", Audience: []string{testResource}, Scopes: []string{"mcp:support"}})
	r := httptest.NewRequest("POST", testResource, nil)
	r.Header.Set("Authorization", "Bearer "+raw)
	if _, aerr := f.auth.Authenticate(r, "support", testResource); aerr != nil {
		t.Fatal(aerr)
	}
	// Revoke in the store and deliver the change, as the feed would.
	ctx := context.Background()
	a, err := f.st.GetAgent(ctx, "agt_ok")
	if err != nil {
		t.Fatal(err)
	}
	a.Status = store.AgentRevoked
	if err := f.st.UpdateAgent(ctx, a); err != nil {
		t.Fatal(err)
	}
	f.dir.Apply(ctx, store.Change{Kind: "agent", ID: "agt_ok"})
	if _, aerr := f.auth.Authenticate(r, "support", testResource); aerr == nil || !strings.Contains(aerr.Description, "revoked") {
		t.Fatalf("cached token still accepted after revocation: %v", aerr)
	}
}

func TestKeyRotationKeepsOldTokensValid(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	before := f.token(t, Grant{Kind: KindAgent, Subject: "agt_ok", Audience: []string{testResource}, Scopes: []string{"mcp:support"}})
	_, kid1, _ := f.keys.Current()
	kid2, err := f.keys.Rotate(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, cur, _ := f.keys.Current(); cur != kid2 || cur == kid1 {
		t.Fatalf("current key %s, want the new %s", cur, kid2)
	}
	var set struct{ Keys []json.RawMessage }
	if err := json.Unmarshal(f.keys.JWKS(), &set); err != nil || len(set.Keys) != 2 {
		t.Fatalf("JWKS has %d keys, want both during the overlap: %s", len(set.Keys), f.keys.JWKS())
	}
	after := f.token(t, Grant{Kind: KindAgent, Subject: "agt_ok", Audience: []string{testResource}, Scopes: []string{"mcp:support"}})
	for _, raw := range []string{before, after} {
		r := httptest.NewRequest("POST", testResource, nil)
		r.Header.Set("Authorization", "Bearer "+raw)
		if _, aerr := f.auth.Authenticate(r, "support", testResource); aerr != nil {
			t.Fatal(aerr)
		}
	}
	// Once the old key expires it leaves the JWKS and its tokens fail.
	f.keys.now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	if err := f.keys.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := f.keys.PublicKey(kid1); ok {
		t.Fatal("expired key still published")
	}
}

func BenchmarkAuthenticateCached(b *testing.B) {
	f := newFixture(b)
	raw := f.token(b, Grant{Kind: KindAgent, Subject: "agt_ok", Audience: []string{testResource}, Scopes: []string{"mcp:support"}})
	r := httptest.NewRequest("POST", testResource, nil)
	r.Header.Set("Authorization", "Bearer "+raw)
	b.ReportAllocs()
	for b.Loop() {
		if _, aerr := f.auth.Authenticate(r, "support", testResource); aerr != nil {
			b.Fatal(aerr)
		}
	}
}

func BenchmarkAuthenticateUncached(b *testing.B) {
	f := newFixture(b)
	raw := f.token(b, Grant{Kind: KindAgent, Subject: "agt_ok", Audience: []string{testResource}, Scopes: []string{"mcp:support"}})
	r := httptest.NewRequest("POST", testResource, nil)
	r.Header.Set("Authorization", "Bearer "+raw)
	b.ReportAllocs()
	for b.Loop() {
		f.auth.mu.Lock()
		clear(f.auth.cache)
		f.auth.mu.Unlock()
		if _, aerr := f.auth.Authenticate(r, "support", testResource); aerr != nil {
			b.Fatal(aerr)
		}
	}
}
