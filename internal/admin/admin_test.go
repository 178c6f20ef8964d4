package admin_test

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"gatehouse/internal/admin"
	"gatehouse/internal/admin/admintest"
	"gatehouse/internal/identity"
)

func TestDisabledAPIAnswers404(t *testing.T) {
	mux := http.NewServeMux()
	admin.New(admin.Config{}).Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	for _, path := range []string{"/admin/v1/agents", "/admin/v1/openapi.json", "/admin/v1/nothing"} {
		c := client{t: t, base: srv.URL, token: "anything"}
		if got, body := c.do("GET", path, nil); got != http.StatusNotFound {
			t.Errorf("GET %s with the API disabled: %d %s, want 404", path, got, body)
		}
		c.token = ""
		if got, _ := c.do("POST", path, `{}`); got != http.StatusNotFound {
			t.Errorf("POST %s with the API disabled: %d, want 404", path, got)
		}
	}
}

func TestAuthentication(t *testing.T) {
	s := admintest.New(t)
	c := newClient(t, s)
	created := c.createAgent("bot", "support")
	var key admin.APIKeyResponse
	c.call("POST", "/admin/v1/agents/bot/api-keys", nil, http.StatusCreated, &key)
	jwt, _, err := s.Issuer.Issue(identity.Grant{Kind: "agent", Subject: created.Agent.ID, ClientID: created.ClientID,
		Audience: []string{"http://gatehouse.test/mcp/support"}, Scopes: []string{"mcp:support"}})
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name   string
		header string // the Authorization header; "" sends none
		path   string
		want   int
	}{
		{"no header", "", "/admin/v1/agents", http.StatusUnauthorized},
		{"no header, unknown route", "", "/admin/v1/nothing", http.StatusUnauthorized},
		{"wrong token", "Bearer not-the-admin-token", "/admin/v1/agents", http.StatusUnauthorized},
		{"token prefix", "Bearer " + admintest.Token[:10], "/admin/v1/agents", http.StatusUnauthorized},
		{"token with suffix", "Bearer " + admintest.Token + "x", "/admin/v1/agents", http.StatusUnauthorized},
		{"empty bearer", "Bearer ", "/admin/v1/agents", http.StatusUnauthorized},
		{"basic scheme", "Basic " + admintest.Token, "/admin/v1/agents", http.StatusUnauthorized},
		{"agent API key", "Bearer " + key.APIKey, "/admin/v1/agents", http.StatusUnauthorized},
		{"agent client secret", "Bearer " + created.ClientSecret, "/admin/v1/agents", http.StatusUnauthorized},
		{"agent access token", "Bearer " + jwt, "/admin/v1/agents", http.StatusUnauthorized},
		{"admin token", "Bearer " + admintest.Token, "/admin/v1/agents", http.StatusOK},
		{"admin token, lower-case scheme", "bearer " + admintest.Token, "/admin/v1/agents", http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", s.URL+tt.path, nil)
			if tt.header != "" {
				req.Header.Set("Authorization", tt.header)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.want)
			}
			if tt.want == http.StatusUnauthorized && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("401 without a Bearer challenge: %q", resp.Header.Get("WWW-Authenticate"))
			}
			if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control %q, want no-store", cc)
			}
		})
	}
	assertNotLogged(t, s, admintest.Token, key.APIKey, created.ClientSecret, jwt)
}

// TestErrors drives each route's main failures.
func TestErrors(t *testing.T) {
	s := admintest.New(t)
	c := newClient(t, s)
	c.createAgent("bot", "support")
	c.call("POST", "/admin/v1/users", admin.CreateUserRequest{Username: "alice", Password: "correct horse battery"}, http.StatusCreated, nil)
	c.call("POST", "/admin/v1/agents/bot/revoke", nil, http.StatusOK, nil)
	c.createAgent("live", "support")

	big := `{"value":"` + strings.Repeat("x", 70<<10) + `"}`
	tests := []struct {
		name         string
		method, path string
		body         any
		status       int
		code         string
	}{
		{"create: not JSON", "POST", "/admin/v1/agents", `{name: bot}`, 400, "invalid"},
		{"create: no body", "POST", "/admin/v1/agents", nil, 400, "invalid"},
		{"create: unknown field", "POST", "/admin/v1/agents", `{"name":"x","team":"t","owner":"o","secret":"mine"}`, 400, "invalid"},
		{"create: wrong type", "POST", "/admin/v1/agents", `{"name":7,"team":"t","owner":"o"}`, 400, "invalid"},
		{"create: trailing data", "POST", "/admin/v1/agents", `{"name":"x","team":"t","owner":"o"} {}`, 400, "invalid"},
		{"create: bad name", "POST", "/admin/v1/agents", admin.CreateAgentRequest{Name: "no spaces", Team: "t", Owner: "o"}, 400, "invalid"},
		{"create: no team", "POST", "/admin/v1/agents", admin.CreateAgentRequest{Name: "x", Owner: "o"}, 400, "invalid"},
		{"create: attributes not an object", "POST", "/admin/v1/agents", `{"name":"x","team":"t","owner":"o","attributes":[1]}`, 400, "invalid"},
		{"create: duplicate name", "POST", "/admin/v1/agents", admin.CreateAgentRequest{Name: "live", Team: "t", Owner: "o"}, 409, "conflict"},
		{"list: bad status", "GET", "/admin/v1/agents?status=sleeping", nil, 400, "invalid"},
		{"show: unknown agent", "GET", "/admin/v1/agents/ghost", nil, 404, "not_found"},
		{"rotate: unknown agent", "POST", "/admin/v1/agents/ghost/rotate", nil, 404, "not_found"},
		{"rotate: bad duration", "POST", "/admin/v1/agents/live/rotate", `{"overlap":"a day"}`, 400, "invalid"},
		{"rotate: negative duration", "POST", "/admin/v1/agents/live/rotate", `{"overlap":"-1h"}`, 400, "invalid"},
		{"rotate: unknown field", "POST", "/admin/v1/agents/live/rotate", `{"overlap":"1h","grace":"2h"}`, 400, "invalid"},
		{"rotate: revoked agent", "POST", "/admin/v1/agents/bot/rotate", nil, 400, "invalid"},
		{"revoke: unknown agent", "POST", "/admin/v1/agents/ghost/revoke", nil, 404, "not_found"},
		{"revoke: with a body", "POST", "/admin/v1/agents/live/revoke", `{"force":true}`, 400, "invalid"},
		{"disable: unknown agent", "POST", "/admin/v1/agents/ghost/disable", nil, 404, "not_found"},
		{"enable: revoked agent", "POST", "/admin/v1/agents/bot/enable", nil, 400, "invalid"},
		{"api key: unknown agent", "POST", "/admin/v1/agents/ghost/api-keys", nil, 404, "not_found"},
		{"api key: bad ttl", "POST", "/admin/v1/agents/live/api-keys", `{"ttl":"30 days"}`, 400, "invalid"},
		{"api key: zero ttl", "POST", "/admin/v1/agents/live/api-keys", `{"ttl":"0s"}`, 400, "invalid"},
		{"api key: revoked agent", "POST", "/admin/v1/agents/bot/api-keys", nil, 400, "invalid"},
		{"add key: unknown agent", "POST", "/admin/v1/agents/ghost/keys", `{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}`, 404, "not_found"},
		{"add key: not an object", "POST", "/admin/v1/agents/live/keys", `"key"`, 400, "invalid"},
		{"add key: not a JWK", "POST", "/admin/v1/agents/live/keys", `{"kty":"nonsense"}`, 400, "invalid"},
		{"add key: private key", "POST", "/admin/v1/agents/live/keys", `{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"}`, 400, "invalid"},
		{"team rotate: unknown team", "POST", "/admin/v1/teams/nobody/rotate", nil, 404, "not_found"},
		{"team rotate: bad duration", "POST", "/admin/v1/teams/support/rotate", `{"overlap":"soon"}`, 400, "invalid"},
		{"user: short password", "POST", "/admin/v1/users", admin.CreateUserRequest{Username: "bob", Password: "short"}, 400, "invalid"},
		{"user: unknown field", "POST", "/admin/v1/users", `{"username":"bob","password":"correct horse battery","password_hash":"x"}`, 400, "invalid"},
		{"user: duplicate", "POST", "/admin/v1/users", admin.CreateUserRequest{Username: "alice", Password: "correct horse battery"}, 409, "conflict"},
		{"set password: unknown user", "PUT", "/admin/v1/users/nobody/password", admin.SetPasswordRequest{Password: "correct horse battery"}, 404, "not_found"},
		{"set password: short", "PUT", "/admin/v1/users/alice/password", admin.SetPasswordRequest{Password: "short"}, 400, "invalid"},
		{"update user: unknown user", "PATCH", "/admin/v1/users/nobody", `{"disabled":true}`, 404, "not_found"},
		{"update user: nothing to change", "PATCH", "/admin/v1/users/alice", `{}`, 400, "invalid"},
		{"vault put: unknown agent", "PUT", "/admin/v1/vault/secrets/github-token?agent=ghost", admin.VaultPutRequest{Value: "v"}, 404, "not_found"},
		{"vault put: empty value", "PUT", "/admin/v1/vault/secrets/github-token", admin.VaultPutRequest{}, 400, "invalid"},
		{"vault put: bad name", "PUT", "/admin/v1/vault/secrets/bad%7Cname", admin.VaultPutRequest{Value: "v"}, 400, "invalid"},
		{"vault put: body too large", "PUT", "/admin/v1/vault/secrets/big", big, 400, "invalid"},
		{"vault delete: unknown secret", "DELETE", "/admin/v1/vault/secrets/nothing", nil, 404, "not_found"},
		{"vault rotate: with a body", "POST", "/admin/v1/vault/rotate", `{"all":true}`, 400, "invalid"},
		{"unknown route", "GET", "/admin/v1/widgets", nil, 404, "not_found"},
		{"wrong method", "DELETE", "/admin/v1/agents/live", nil, 405, "invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClient(t, s)
			got, raw := c.do(tt.method, tt.path, tt.body)
			if got != tt.status {
				t.Fatalf("status %d, want %d; body %s", got, tt.status, raw)
			}
			if code := errorCode(t, raw); code != tt.code {
				t.Errorf("code %q, want %q (%s)", code, tt.code, raw)
			}
		})
	}
	// The failed calls changed nothing.
	if a := c.agent("live"); a.Status != "active" || countActive(a, "") != 1 {
		t.Errorf("agent live after failed calls: status %s, %d active credentials", a.Status, countActive(a, ""))
	}
}

func TestVaultAndKeysNotConfigured(t *testing.T) {
	base := admintest.New(t)
	api := admin.New(admin.Config{Token: admintest.Token, Manager: base.Manager, Store: base.Store, Logger: slog.New(slog.DiscardHandler)})
	mux := http.NewServeMux()
	api.Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	c := client{t: t, base: srv.URL, token: admintest.Token}
	for _, r := range []struct{ method, path string }{
		{"GET", "/admin/v1/vault/secrets"},
		{"POST", "/admin/v1/vault/rotate"},
		{"DELETE", "/admin/v1/vault/secrets/x"},
		{"POST", "/admin/v1/keys/rotate"},
	} {
		got, raw := c.do(r.method, r.path, nil)
		if got != http.StatusNotFound || errorCode(t, raw) != "not_found" {
			t.Errorf("%s %s without a vault or key manager: %d %s, want 404 not_found", r.method, r.path, got, raw)
		}
	}
}
