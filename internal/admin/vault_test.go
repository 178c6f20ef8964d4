package admin_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"gatehouse/internal/admin"
	"gatehouse/internal/admin/admintest"
	"gatehouse/internal/vault"
)

func TestVaultSecrets(t *testing.T) {
	s := admintest.New(t)
	c := newClient(t, s)
	bot := c.createAgent("bot", "support")
	const shared, mine, newer = "xoxb-shared-0123456789", "ghp_bot_only_abcdef", "xoxb-newer-9876543210"

	var e admin.VaultEntry
	raw := c.call("PUT", "/admin/v1/vault/secrets/slack-token", admin.VaultPutRequest{Value: shared}, http.StatusOK, &e)
	if e.Name != "slack-token" || e.Agent != "" || e.Version != 1 || e.KEKID != s.Keyring.PrimaryID() {
		t.Errorf("put shared: %+v", e)
	}
	noValue(t, raw, shared)
	// Names may contain '/', escaped or not.
	raw = c.call("PUT", "/admin/v1/vault/secrets/github/token?agent=bot", admin.VaultPutRequest{Value: mine}, http.StatusOK, &e)
	if e.Name != "github/token" || e.Agent != "bot" || e.AgentID != bot.Agent.ID {
		t.Errorf("put for the agent: %+v", e)
	}
	noValue(t, raw, mine)
	raw = c.call("PUT", "/admin/v1/vault/secrets/slack-token", admin.VaultPutRequest{Value: newer}, http.StatusOK, &e)
	if e.Version != 2 {
		t.Errorf("second put: version %d, want 2", e.Version)
	}
	noValue(t, raw, newer)

	// The vault holds the values, keyed by agent id.
	if v, err := s.Vault.Get(context.Background(), "github/token", bot.Agent.ID); err != nil || string(v) != mine {
		t.Fatalf("vault value for the agent: %v", err)
	}

	var list []admin.VaultEntry
	raw = c.call("GET", "/admin/v1/vault/secrets", nil, http.StatusOK, &list)
	noValue(t, raw, shared, mine, newer)
	if len(list) != 2 || list[0].Name != "github/token" || list[0].Agent != "bot" || list[1].Name != "slack-token" || list[1].Version != 2 {
		t.Errorf("listed %+v", list)
	}

	c.call("DELETE", "/admin/v1/vault/secrets/github%2Ftoken?agent=bot", nil, http.StatusNoContent, nil)
	if got, raw := c.do("DELETE", "/admin/v1/vault/secrets/github%2Ftoken?agent=bot", nil); got != http.StatusNotFound {
		t.Errorf("second delete: %d %s", got, raw)
	}
	// The shared entry is untouched by deleting the agent's.
	c.call("GET", "/admin/v1/vault/secrets", nil, http.StatusOK, &list)
	if len(list) != 1 || list[0].Name != "slack-token" {
		t.Errorf("after delete: %+v", list)
	}
	assertNotLogged(t, s, shared, mine, newer)
}

func TestVaultRotate(t *testing.T) {
	s := admintest.New(t)
	ctx := context.Background()
	for _, name := range []string{"a", "b"} {
		if err := s.Vault.Put(ctx, name, "", []byte("value-"+name)); err != nil {
			t.Fatal(err)
		}
	}
	// A new primary key, the old one kept for reading: what an operator
	// configures before calling rotate.
	kr, err := vault.NewKeyring(admintest.NewKEK(t), s.KEK)
	if err != nil {
		t.Fatal(err)
	}
	v := vault.New(s.Store, kr, vault.Options{})
	api := admin.New(admin.Config{Token: admintest.Token, Manager: s.Manager, Store: s.Store, Vault: v, Keys: s.Keys, Logger: slog.New(slog.DiscardHandler)})
	mux := http.NewServeMux()
	api.Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	c := client{t: t, base: srv.URL, token: admintest.Token}

	var res admin.VaultRotateResponse
	c.call("POST", "/admin/v1/vault/rotate", nil, http.StatusOK, &res)
	if res.Rewrapped != 2 {
		t.Errorf("rewrapped %d, want 2", res.Rewrapped)
	}
	c.call("POST", "/admin/v1/vault/rotate", nil, http.StatusOK, &res)
	if res.Rewrapped != 0 {
		t.Errorf("second rotation rewrapped %d, want 0", res.Rewrapped)
	}
	var list []admin.VaultEntry
	c.call("GET", "/admin/v1/vault/secrets", nil, http.StatusOK, &list)
	for _, e := range list {
		if e.KEKID != kr.PrimaryID() {
			t.Errorf("%s still wrapped by %s", e.Name, e.KEKID)
		}
	}
	if got, err := v.Get(ctx, "a", ""); err != nil || string(got) != "value-a" {
		t.Errorf("value after rotation: %v", err)
	}
}

func noValue(t *testing.T, raw []byte, values ...string) {
	t.Helper()
	for _, v := range values {
		if strings.Contains(string(raw), v) {
			t.Errorf("a response shows a vault value: %s", raw)
		}
	}
}
