package oauth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"gatehouse/internal/identity"
	"gatehouse/internal/store"
)

// addJWK registers the public half of priv as a private_key_jwt key of
// an agent and returns its key id.
func (e *env) addJWK(t *testing.T, agentID string, priv crypto.Signer, alg string, revoked bool) string {
	t.Helper()
	jwk := jose.JSONWebKey{Key: priv.Public(), Algorithm: alg, Use: "sig", KeyID: randomToken("k", 6)}
	pub, err := jwk.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	c := store.Credential{ID: randomToken("cred_", 8), AgentID: agentID, Kind: store.CredJWK,
		Prefix: "jwk_" + jwk.KeyID, PublicJWK: pub, CreatedAt: time.Now()}
	if revoked {
		now := time.Now()
		c.RevokedAt = &now
	}
	if err := e.st.AddCredential(e.ctx, c); err != nil {
		t.Fatal(err)
	}
	return jwk.KeyID
}

// assertion signs client-assertion claims.
func assertion(t *testing.T, priv crypto.Signer, alg, kid string, claims any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if kid != "" {
		opts = opts.WithHeader("kid", kid)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(alg), Key: priv}, opts)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestPrivateKeyJWT(t *testing.T) {
	e := newEnv(t)
	agent := e.addAgent(t, "keyed", "cli_keyed", "support", store.AgentActive, nil)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	oldKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	strangerKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecKID := e.addJWK(t, agent.ID, ecKey, "ES256", false)
	edKID := e.addJWK(t, agent.ID, edKey, "EdDSA", false)
	e.addJWK(t, agent.ID, rsaKey, "RS256", false)
	oldKID := e.addJWK(t, agent.ID, oldKey, "ES256", true)
	offAgent := e.addAgent(t, "keyed-off", "cli_keyed_off", "support", store.AgentDisabled, nil)
	offKID := e.addJWK(t, offAgent.ID, ecKey, "ES256", false)
	e.reloadDirectory(t)

	now := time.Now()
	claims := func(mut func(*jwt.Claims)) jwt.Claims {
		c := jwt.Claims{Issuer: "cli_keyed", Subject: "cli_keyed", Audience: jwt.Audience{e.url(pathToken)},
			Expiry: jwt.NewNumericDate(now.Add(2 * time.Minute)), IssuedAt: jwt.NewNumericDate(now), ID: randomToken("jti-", 12)}
		if mut != nil {
			mut(&c)
		}
		return c
	}
	post := func(t *testing.T, a string, extra ...string) (map[string]any, *tokenError) {
		f := url.Values{"grant_type": {"client_credentials"}, "client_assertion_type": {assertionType}, "client_assertion": {a}}
		for i := 0; i+1 < len(extra); i += 2 {
			f.Set(extra[i], extra[i+1])
		}
		return e.postToken(t, f, "", "")
	}

	t.Run("valid keys", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			key  crypto.Signer
			alg  string
			kid  string
			mut  func(*jwt.Claims)
		}{
			{"ES256 with kid", ecKey, "ES256", ecKID, nil},
			{"ES256 without kid", ecKey, "ES256", "", nil},
			{"EdDSA", edKey, "EdDSA", edKID, nil},
			{"RS256", rsaKey, "RS256", "", nil},
			{"audience is the issuer", ecKey, "ES256", ecKID, func(c *jwt.Claims) { c.Audience = jwt.Audience{e.issuer} }},
		} {
			t.Run(tc.name, func(t *testing.T) {
				a := assertion(t, tc.key, tc.alg, tc.kid, claims(tc.mut))
				tok, te := post(t, a, "resource", e.resource("support"))
				if te != nil {
					t.Fatalf("refused: %+v", te)
				}
				p, aerr := e.authenticate(tok["access_token"].(string), "support")
				if aerr != nil {
					t.Fatal(aerr)
				}
				if p.Kind != identity.KindAgent || p.AgentID != agent.ID || p.ClientID != "cli_keyed" {
					t.Errorf("principal %+v", p)
				}
			})
		}
	})

	t.Run("replayed jti", func(t *testing.T) {
		a := assertion(t, ecKey, "ES256", ecKID, claims(nil))
		if _, te := post(t, a); te != nil {
			t.Fatalf("first use refused: %+v", te)
		}
		_, te := post(t, a)
		if te == nil || te.Code != "invalid_client" || !strings.Contains(te.Description, "already used") {
			t.Fatalf("replay: %+v", te)
		}
	})

	for _, tc := range []struct {
		name     string
		key      crypto.Signer
		kid      string
		mut      func(*jwt.Claims)
		extra    []string
		wantDesc string
	}{
		{"wrong audience", ecKey, ecKID, func(c *jwt.Claims) { c.Audience = jwt.Audience{"https://other.example.com/token"} }, nil, "audience must include"},
		{"expired", ecKey, ecKID, func(c *jwt.Claims) { c.Expiry = jwt.NewNumericDate(now.Add(-time.Minute)) }, nil, "expired at"},
		{"lives too long", ecKey, ecKID, func(c *jwt.Claims) { c.Expiry = jwt.NewNumericDate(now.Add(time.Hour)) }, nil, "more than 5m0s away"},
		{"no exp", ecKey, ecKID, func(c *jwt.Claims) { c.Expiry = nil }, nil, "has no exp"},
		{"no jti", ecKey, ecKID, func(c *jwt.Claims) { c.ID = "" }, nil, "needs a jti"},
		{"not yet valid", ecKey, ecKID, func(c *jwt.Claims) { c.NotBefore = jwt.NewNumericDate(now.Add(3 * time.Minute)) }, nil, "not valid yet"},
		{"iss differs from sub", ecKey, ecKID, func(c *jwt.Claims) { c.Issuer = "cli_bot" }, nil, "iss and sub"},
		{"unknown client", ecKey, ecKID, func(c *jwt.Claims) { c.Issuer, c.Subject = "cli_nobody", "cli_nobody" }, nil, "unknown client"},
		{"stranger's key", strangerKey, "", nil, nil, "not signed by a registered"},
		{"revoked key", oldKey, oldKID, nil, nil, "not signed by a registered"},
		{"key of another agent", ecKey, ecKID, func(c *jwt.Claims) { c.Issuer, c.Subject = "cli_bot", "cli_bot" }, nil, "not signed by a registered"},
		{"client_id differs", ecKey, ecKID, nil, []string{"client_id", "cli_bot"}, "does not match"},
		{"disabled agent", ecKey, offKID, func(c *jwt.Claims) { c.Issuer, c.Subject = "cli_keyed_off", "cli_keyed_off" }, nil, "agent keyed-off is disabled"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			alg := "ES256"
			a := assertion(t, tc.key, alg, tc.kid, claims(tc.mut))
			_, te := post(t, a, tc.extra...)
			if te == nil || te.Status != 401 || te.Code != "invalid_client" || !strings.Contains(te.Description, tc.wantDesc) {
				t.Fatalf("got %+v; want 401 invalid_client containing %q", te, tc.wantDesc)
			}
		})
	}

	t.Run("HS256 refused", func(t *testing.T) {
		signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: []byte("0123456789abcdef0123456789abcdef")}, nil)
		a, _ := jwt.Signed(signer).Claims(claims(nil)).Serialize()
		_, te := post(t, a)
		if te == nil || te.Code != "invalid_client" || !strings.Contains(te.Description, "malformed client assertion") {
			t.Fatalf("got %+v", te)
		}
	})
	t.Run("garbage", func(t *testing.T) {
		_, te := post(t, "not-a-jwt")
		if te == nil || te.Code != "invalid_client" {
			t.Fatalf("got %+v", te)
		}
	})
}
