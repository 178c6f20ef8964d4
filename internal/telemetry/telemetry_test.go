package telemetry

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gatehouse/internal/store"
	"gatehouse/internal/store/sqlite"
)

func TestCredentialGauges(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now().UTC()
	if err := st.CreateAgent(ctx, store.Agent{ID: "a1", Name: "bot", ClientID: "a1", Team: "support", Owner: "o@example.com", Status: store.AgentActive, CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	soon, later, past := now.Add(24*time.Hour), now.Add(60*24*time.Hour), now.Add(-time.Hour)
	for i, exp := range []*time.Time{&soon, &later, &past} {
		c := store.Credential{ID: string(rune('a' + i)), AgentID: "a1", Kind: store.CredSecret, Prefix: "ghs_" + string(rune('a'+i)), Hash: []byte{1}, CreatedAt: now, ExpiresAt: exp}
		if err := st.AddCredential(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	r := New()
	r.WatchCredentials(st, 14*24*time.Hour, slog.New(slog.NewTextHandler(io.Discard, nil)))
	r.AuthFailures.WithLabelValues("invalid_token").Inc()
	rec := httptest.NewRecorder()
	r.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{
		`gatehouse_agent_credentials{kind="secret",state="active",team="support"} 1`,
		`gatehouse_agent_credentials{kind="secret",state="expiring",team="support"} 1`,
		`gatehouse_agent_credentials{kind="secret",state="expired",team="support"} 1`,
		`gatehouse_auth_failures_total{error="invalid_token"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}
