package admin_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"gatehouse/internal/admin"
	"gatehouse/internal/admin/admintest"
)

func TestCreateAgentShowsSecretOnce(t *testing.T) {
	s := admintest.New(t)
	c := newClient(t, s)
	var res admin.CreateAgentResponse
	c.call("POST", "/admin/v1/agents", `{"name":"support-bot","team":"support","owner":"alice@example.com","attributes":{"queue":"billing"}}`, http.StatusCreated, &res)
	if !strings.HasPrefix(res.ClientSecret, "ghs_") || res.ClientID == "" || res.ClientID != res.Agent.ClientID {
		t.Fatalf("create response: client_id %q, secret %.4s…, agent %+v", res.ClientID, res.ClientSecret, res.Agent)
	}
	a := res.Agent
	if a.Name != "support-bot" || a.Team != "support" || a.Owner != "alice@example.com" || a.Status != "active" || a.Source != "api" {
		t.Errorf("agent %+v", a)
	}
	if string(a.Attributes) != `{"queue":"billing"}` {
		t.Errorf("attributes %s", a.Attributes)
	}
	if len(a.Credentials) != 1 || a.Credentials[0].Kind != "secret" || !a.Credentials[0].Active ||
		!strings.HasPrefix(res.ClientSecret, a.Credentials[0].Prefix) {
		t.Errorf("credentials %+v", a.Credentials)
	}
	// Reading the agent again never shows the secret.
	for _, path := range []string{"/admin/v1/agents/support-bot", "/admin/v1/agents", "/admin/v1/agents?team=support"} {
		raw := c.call("GET", path, nil, http.StatusOK, nil)
		if strings.Contains(string(raw), res.ClientSecret) || strings.Contains(string(raw), "client_secret") {
			t.Errorf("GET %s shows the secret: %s", path, raw)
		}
	}
	assertNotLogged(t, s, res.ClientSecret)
}

func TestRotateWithOverlap(t *testing.T) {
	s := admintest.New(t)
	c := newClient(t, s)
	first := c.createAgent("bot", "support")

	var r1 admin.RotateResponse
	c.call("POST", "/admin/v1/agents/bot/rotate", admin.RotateRequest{Overlap: ptr("24h")}, http.StatusOK, &r1)
	if !strings.HasPrefix(r1.ClientSecret, "ghs_") || r1.ClientSecret == first.ClientSecret {
		t.Fatalf("new secret %.6s…", r1.ClientSecret)
	}
	a := c.agent("bot")
	if n := countActive(a, "secret"); n != 2 {
		t.Fatalf("after rotating with 24h overlap: %d active secrets, want 2: %+v", n, a.Credentials)
	}
	// The old secret now ends within the overlap, and the listing says so.
	// (Found by prefix: both may have been created in the same
	// millisecond, and then the listing's order is the ids'.)
	var old admin.Credential
	for _, cr := range a.Credentials {
		if strings.HasPrefix(first.ClientSecret, cr.Prefix) {
			old = cr
		}
	}
	if old.ExpiresAt == nil || time.Until(*old.ExpiresAt) > 24*time.Hour || !strings.Contains(strings.Join(a.Warnings, "\n"), old.Prefix) {
		t.Errorf("old secret %+v, warnings %q", old, a.Warnings)
	}

	// Without a body the overlap is 24h too; with "0s" the others end now.
	c.call("POST", "/admin/v1/agents/bot/rotate", nil, http.StatusOK, nil)
	if n := countActive(c.agent("bot"), "secret"); n != 3 {
		t.Fatalf("after a default rotation: %d active secrets, want 3", n)
	}
	var r3 admin.RotateResponse
	c.call("POST", "/admin/v1/agents/bot/rotate", `{"overlap":"0s"}`, http.StatusOK, &r3)
	a = c.agent("bot")
	if n := countActive(a, "secret"); n != 1 {
		t.Fatalf("after rotating with 0s overlap: %d active secrets, want 1", n)
	}
	for _, cr := range a.Credentials {
		if cr.Active && !strings.HasPrefix(r3.ClientSecret, cr.Prefix) {
			t.Errorf("the active secret %s is not the newest", cr.Prefix)
		}
	}
	assertNotLogged(t, s, first.ClientSecret, r1.ClientSecret, r3.ClientSecret)
}

func TestEmergencyTeamRotate(t *testing.T) {
	s := admintest.New(t)
	c := newClient(t, s)
	c.createAgent("a1", "ops")
	c.createAgent("a2", "ops")
	c.createAgent("other", "support")
	c.call("POST", "/admin/v1/agents/a1/api-keys", nil, http.StatusCreated, nil)
	c.call("POST", "/admin/v1/agents/a2/disable", nil, http.StatusOK, nil)
	c.createAgent("a3", "ops")

	var res admin.TeamRotateResponse
	c.call("POST", "/admin/v1/teams/ops/rotate", nil, http.StatusOK, &res)
	// Active agents get new secrets; the disabled one is left for its
	// owner to deal with when enabling it.
	if len(res.Secrets) != 2 || res.Secrets["a1"] == "" || res.Secrets["a3"] == "" {
		t.Fatalf("secrets for %v", keys(res.Secrets))
	}
	for name, secret := range res.Secrets {
		a := c.agent(name)
		if n := countActive(a, ""); n != 1 {
			t.Errorf("%s: %d active credentials after the emergency rotation, want only the new secret: %+v", name, n, a.Credentials)
		}
		for _, cr := range a.Credentials {
			if cr.Active && !strings.HasPrefix(secret, cr.Prefix) {
				t.Errorf("%s: credential %s %s still active", name, cr.Kind, cr.Prefix)
			}
		}
	}
	if n := countActive(c.agent("other"), ""); n != 1 {
		t.Errorf("an agent of another team lost its credential")
	}

	// With an overlap the old secrets keep working.
	c.call("POST", "/admin/v1/teams/ops/rotate", admin.TeamRotateRequest{Overlap: ptr("1h")}, http.StatusOK, &res)
	if n := countActive(c.agent("a1"), "secret"); n != 2 {
		t.Errorf("after a team rotation with overlap: %d active secrets, want 2", n)
	}
}

func TestRevokeDisableEnable(t *testing.T) {
	s := admintest.New(t)
	c := newClient(t, s)
	c.createAgent("bot", "support")
	var key admin.APIKeyResponse
	c.call("POST", "/admin/v1/agents/bot/api-keys", admin.APIKeyRequest{TTL: ptr("72h")}, http.StatusCreated, &key)
	c.call("POST", "/admin/v1/agents/bot/keys", publicJWK(t), http.StatusCreated, nil)

	var a admin.Agent
	c.call("POST", "/admin/v1/agents/bot/disable", nil, http.StatusOK, &a)
	if a.Status != "disabled" || countActive(a, "") != 3 {
		t.Errorf("disabled: status %s, %d active credentials (kept for enabling)", a.Status, countActive(a, ""))
	}
	c.call("POST", "/admin/v1/agents/bot/enable", nil, http.StatusOK, &a)
	if a.Status != "active" {
		t.Errorf("enabled: status %s", a.Status)
	}

	c.call("POST", "/admin/v1/agents/bot/revoke", nil, http.StatusOK, &a)
	if a.Status != "revoked" || a.RevokedAt == nil {
		t.Fatalf("revoked: status %s, revoked_at %v", a.Status, a.RevokedAt)
	}
	a = c.agent("bot")
	if len(a.Credentials) != 3 {
		t.Fatalf("credentials %+v", a.Credentials)
	}
	for _, cr := range a.Credentials {
		if cr.Active || cr.RevokedAt == nil {
			t.Errorf("credential %s %s after revocation: active %v, revoked_at %v", cr.Kind, cr.Prefix, cr.Active, cr.RevokedAt)
		}
	}
	var revoked []admin.Agent
	c.call("GET", "/admin/v1/agents?status=revoked", nil, http.StatusOK, &revoked)
	if len(revoked) != 1 || revoked[0].Name != "bot" {
		t.Errorf("revoked agents: %+v", revoked)
	}
	assertNotLogged(t, s, key.APIKey)
}

func TestAPIKeysAndPublicKeys(t *testing.T) {
	s := admintest.New(t)
	c := newClient(t, s)
	c.createAgent("bot", "support")
	var key admin.APIKeyResponse
	c.call("POST", "/admin/v1/agents/bot/api-keys", `{"ttl":"72h"}`, http.StatusCreated, &key)
	if !strings.HasPrefix(key.APIKey, "ghk_") {
		t.Fatalf("api key %.6s…", key.APIKey)
	}
	var added admin.AddKeyResponse
	c.call("POST", "/admin/v1/agents/bot/keys", publicJWK(t), http.StatusCreated, &added)
	if !strings.HasPrefix(added.Prefix, "jwk_") {
		t.Fatalf("prefix %q", added.Prefix)
	}
	a := c.agent("bot")
	kinds := map[string]admin.Credential{}
	for _, cr := range a.Credentials {
		kinds[cr.Kind] = cr
	}
	ak := kinds["api_key"]
	if !ak.Active || ak.ExpiresAt == nil || time.Until(*ak.ExpiresAt) > 72*time.Hour || !strings.HasPrefix(key.APIKey, ak.Prefix) {
		t.Errorf("api key credential %+v", ak)
	}
	if jk := kinds["jwk"]; !jk.Active || jk.Prefix != added.Prefix {
		t.Errorf("jwk credential %+v", jk)
	}
	if raw := c.call("GET", "/admin/v1/agents/bot", nil, http.StatusOK, nil); strings.Contains(string(raw), key.APIKey) {
		t.Error("GET shows the API key")
	}
	// A key expiring within 14 days is warned about.
	if !strings.Contains(strings.Join(a.Warnings, "\n"), ak.Prefix) {
		t.Errorf("no warning for the API key expiring in 72h: %q", a.Warnings)
	}
}

func TestListWarningsAndFilters(t *testing.T) {
	s := admintest.New(t)
	c := newClient(t, s)
	c.createAgent("fresh", "support")
	c.createAgent("brief", admintest.ShortTeam)
	c.createAgent("idle", "support")
	c.call("POST", "/admin/v1/agents/idle/rotate", `{"overlap":"0s"}`, http.StatusOK, nil)
	c.call("POST", "/admin/v1/agents/idle/disable", nil, http.StatusOK, nil)

	var all []admin.Agent
	c.call("GET", "/admin/v1/agents", nil, http.StatusOK, &all)
	byName := map[string]admin.Agent{}
	for _, a := range all {
		byName[a.Name] = a
	}
	if len(all) != 3 {
		t.Fatalf("listed %d agents", len(all))
	}
	if w := byName["fresh"].Warnings; len(w) != 0 {
		t.Errorf("fresh agent warnings %q (its secret lives 90 days)", w)
	}
	// The short-lived team's secrets expire within 14 days: warned.
	if w := strings.Join(byName["brief"].Warnings, "\n"); !strings.Contains(w, "expires in") {
		t.Errorf("short-lived team's agent warnings %q, want an expiry warning", w)
	}
	if raw := c.call("GET", "/admin/v1/agents", nil, http.StatusOK, nil); !strings.Contains(string(raw), `"warnings":[]`) {
		t.Errorf("an agent without warnings should list an empty array")
	}

	tests := []struct {
		query string
		want  []string
	}{
		{"?team=support", []string{"fresh", "idle"}},
		{"?team=" + admintest.ShortTeam, []string{"brief"}},
		{"?status=disabled", []string{"idle"}},
		{"?team=support&status=active", []string{"fresh"}},
		{"?team=nobody", []string{}},
	}
	for _, tt := range tests {
		var got []admin.Agent
		c.call("GET", "/admin/v1/agents"+tt.query, nil, http.StatusOK, &got)
		var names []string
		for _, a := range got {
			names = append(names, a.Name)
		}
		if strings.Join(names, ",") != strings.Join(tt.want, ",") {
			t.Errorf("GET agents%s: %v, want %v", tt.query, names, tt.want)
		}
	}
}

func publicJWK(t *testing.T) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jose.JSONWebKey{Key: &k.PublicKey, KeyID: "agent-key-1", Algorithm: "ES256", Use: "sig"}.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

func ptr[T any](v T) *T { return &v }

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
