package telemetry

import (
	"context"
	"fmt"
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

// TestInspectionMetrics: the inspection and alert counters are exposed,
// finding label values are bounded, and a nil Registry counts nothing.
func TestInspectionMetrics(t *testing.T) {
	r := New()
	r.Finding("pii", "email", "alert", "response")
	r.Finding("pii", "email", "alert", "response")
	r.Finding("secret", "github-pat", "block", "request")
	r.Blocked("request")
	r.AnomalyAlert("calls")
	r.Alert("anomaly")
	r.AlertsDroppedAdd("queue_full", 3)
	r.GuardrailFailure("bedrock")
	r.ScriptFailure("redact-tickets", "timeout")
	r.SetToolsQuarantined("crm", 2)
	for i := range maxTypes + 10 {
		r.Finding("guardrail", fmt.Sprintf("custom-%d", i), "flag", "request")
	}
	r.Finding("pii", strings.Repeat("x", maxLabelLen+1), "flag", "request")
	body := scrape(t, r)
	for _, want := range []string{
		`gatehouse_inspect_findings_total{action="alert",category="pii",direction="response",type="email"} 2`,
		`gatehouse_inspect_findings_total{action="block",category="secret",direction="request",type="github-pat"} 1`,
		`gatehouse_inspect_blocked_total{direction="request"} 1`,
		`gatehouse_anomaly_alerts_total{metric="calls"} 1`,
		`gatehouse_alerts_total{kind="anomaly"} 1`,
		`gatehouse_alerts_dropped_total{reason="queue_full"} 3`,
		`gatehouse_guardrail_failures_total{guardrail="bedrock"} 1`,
		`gatehouse_script_failures_total{kind="timeout",script="redact-tickets"} 1`,
		`gatehouse_tools_quarantined{upstream="crm"} 2`,
		// 2 types were admitted before the custom ones: 510 of those fit.
		`gatehouse_inspect_findings_total{action="flag",category="guardrail",direction="request",type="other"} 12`,
		`gatehouse_inspect_findings_total{action="flag",category="pii",direction="request",type="other"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if n := strings.Count(body, "gatehouse_inspect_findings_total{"); n > maxTypes+3 {
		t.Errorf("%d finding series, want at most %d", n, maxTypes+3)
	}

	var nilReg *Registry
	nilReg.Finding("pii", "email", "alert", "response")
	nilReg.Blocked("request")
	nilReg.AnomalyAlert("calls")
	nilReg.Alert("finding")
	nilReg.AlertsDroppedAdd("shutdown", 1)
	nilReg.GuardrailFailure("x")
	nilReg.ScriptFailure("x", "error")
	nilReg.SetToolsQuarantined("crm", 1)
}

func scrape(t *testing.T, r *Registry) string {
	t.Helper()
	rec := httptest.NewRecorder()
	r.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	return rec.Body.String()
}
