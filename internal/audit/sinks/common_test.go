package sinks_test

// OCSF mapping tests, and fixtures of the file, webhook, Splunk, syslog
// and Azure sink tests (names start with "st" to stay apart from the
// Kafka, S3 and OTLP fixtures).

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"gatehouse/internal/audit"
	"gatehouse/internal/audit/sinks"
)

// stBase is the time of the first fixture record.
var stBase = time.Date(2025, 3, 4, 5, 6, 7, 89_000_000, time.UTC)

// stRecords returns n fully populated records, Seq 1…n, a second apart.
func stRecords(n int) []audit.Record {
	statuses := []string{audit.OutcomeAllowed, audit.OutcomeDenied, audit.OutcomeError, audit.OutcomeWouldDeny, audit.OutcomePending}
	recs := make([]audit.Record, n)
	for i := range recs {
		seq := int64(i + 1)
		recs[i] = audit.Record{
			ID:     fmt.Sprintf("aud_01JST%021d", seq),
			Seq:    seq,
			Time:   stBase.Add(time.Duration(i) * time.Second),
			Kind:   audit.KindMCPRequest,
			Action: "tools/call",
			Actor: audit.Actor{
				Kind: "agent", ID: "agent:agt_7", AgentID: "agt_7", AgentName: "triage-bot", Team: "sre",
				User: "alice", Chain: []string{"user:alice", "agent:agt_7"},
				ClientName: "claude-code", ClientVersion: "1.2.3", Source: "192.0.2.10",
			},
			Target:  audit.Target{Server: "github", Upstream: "gh-prod", Method: "tools/call", Tool: fmt.Sprintf("create_issue_%d", i)},
			Outcome: audit.Outcome{Status: statuses[i%len(statuses)], Rule: "org.deny-prod", Origin: "organisation", Reason: "prod is read only"},
			Context: audit.Context{
				SessionID: "ses_1", RequestID: fmt.Sprint(100 + i), CorrelationID: "cor_1",
				TraceParent:  "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
				Conversation: json.RawMessage(`{"id":"conv-9","model":"claude-opus-4"}`),
				Protocol:     "2025-11-25",
			},
			Args:       json.RawMessage(`{"title":"<b>x</b> & y"}`),
			Result:     &audit.ResultSummary{Bytes: 321, ContentTypes: []string{"text"}, Items: 1},
			Masking:    "masked",
			DurationMS: 12.625,
			UpstreamMS: 10.5,
			BytesIn:    120,
			BytesOut:   321,
			Replica:    "gw-1",
			PrevHash:   fmt.Sprintf("%064x", seq-1),
			Hash:       fmt.Sprintf("%064x", seq),
		}
	}
	return recs
}

// stCert is a self-signed certificate for 127.0.0.1 and "localhost", and
// the path of a PEM file holding it (a CA file for the sinks).
type stCert struct {
	TLS               tls.Certificate
	CAFile            string
	CertFile, KeyFile string // the same certificate and its key, for client authentication
	Pool              *x509.CertPool
}

func newSTCert(t *testing.T) stCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "gatehouse sink test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	parsed, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(parsed)
	caFile := stWritePEM(t, der)
	return stCert{
		TLS:      tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key},
		CAFile:   caFile,
		CertFile: caFile,
		KeyFile:  keyFile,
		Pool:     pool,
	}
}

// stWritePEM writes a DER certificate as a PEM file and returns its path.
func stWritePEM(t *testing.T, der []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// stRoundTrip is v through JSON and back, as a receiver sees it.
func stRoundTrip(t *testing.T, v any) map[string]any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// stGet follows a dotted path in decoded JSON.
func stGet(m map[string]any, path string) any {
	var v any = m
	for _, k := range strings.Split(path, ".") {
		mm, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = mm[k]
	}
	return v
}

func TestOCSFFullRecord(t *testing.T) {
	r := stRecords(2)[1] // denied
	ev := stRoundTrip(t, sinks.OCSF(r))
	want := map[string]any{
		"class_uid":                    6003.0,
		"class_name":                   "API Activity",
		"category_uid":                 6.0,
		"category_name":                "Application Activity",
		"activity_id":                  99.0,
		"activity_name":                "tools/call",
		"type_uid":                     600399.0,
		"type_name":                    "API Activity: tools/call",
		"time":                         float64(r.Time.UnixMilli()),
		"duration":                     13.0,
		"severity_id":                  3.0,
		"severity":                     "Medium",
		"status_id":                    2.0,
		"status":                       "Failure",
		"status_code":                  "denied",
		"status_detail":                "prod is read only",
		"message":                      "tools/call github/create_issue_1: denied",
		"actor.user.uid":               "agent:agt_7",
		"actor.user.name":              "triage-bot",
		"actor.user.type":              "Agent",
		"actor.user.type_id":           99.0,
		"actor.app_name":               "claude-code",
		"actor.session.uid":            "ses_1",
		"src_endpoint.ip":              "192.0.2.10",
		"api.operation":                "tools/call",
		"api.request.uid":              "101",
		"api.request.data.title":       "<b>x</b> & y",
		"api.service.name":             "github",
		"metadata.uid":                 r.ID,
		"metadata.version":             "1.3.0",
		"metadata.product.name":        "Gatehouse",
		"metadata.product.vendor_name": "Gatehouse",
		"metadata.product.version":     sinks.ProductVersion,
		"metadata.sequence":            2.0,
		"metadata.correlation_uid":     "cor_1",
		"metadata.event_code":          "mcp.request",
		"unmapped.kind":                "mcp.request",
		"unmapped.outcome.status":      "denied",
		"unmapped.outcome.rule":        "org.deny-prod",
		"unmapped.outcome.origin":      "organisation",
		"unmapped.outcome.reason":      "prod is read only",
		"unmapped.hash":                r.Hash,
		"unmapped.prev_hash":           r.PrevHash,
		"unmapped.duration_ms":         12.625,
		"unmapped.upstream_ms":         10.5,
		"unmapped.bytes_in":            120.0,
		"unmapped.bytes_out":           321.0,
		"unmapped.masking":             "masked",
		"unmapped.replica":             "gw-1",
		"unmapped.result.bytes":        321.0,
		"unmapped.target.upstream":     "gh-prod",
		"unmapped.context.traceparent": r.Context.TraceParent,
		"unmapped.actor.user":          "alice",
		"unmapped.ai.agent":            "triage-bot",
		"unmapped.ai.agent_id":         "agt_7",
		"unmapped.ai.client":           "claude-code",
		"unmapped.ai.client_version":   "1.2.3",
		"unmapped.ai.tool":             "create_issue_1",
		"unmapped.ai.model":            "claude-opus-4",
		"unmapped.ai.conversation.id":  "conv-9",
		"unmapped.ai.mcp_protocol":     "2025-11-25",
	}
	for path, w := range want {
		if got := stGet(ev, path); !reflect.DeepEqual(got, w) {
			t.Errorf("%s = %#v, want %#v", path, got, w)
		}
	}
	if got := ev["resources"]; !reflect.DeepEqual(got, []any{map[string]any{"name": "create_issue_1", "type": "tool"}}) {
		t.Errorf("resources = %#v", got)
	}
	if got := stGet(ev, "actor.user.groups"); !reflect.DeepEqual(got, []any{map[string]any{"name": "sre"}}) {
		t.Errorf("actor.user.groups = %#v", got)
	}
	if got := stGet(ev, "actor.authorizations"); !reflect.DeepEqual(got, []any{map[string]any{
		"decision": "denied", "policy": map[string]any{"name": "org.deny-prod", "group": map[string]any{"name": "organisation"}},
	}}) {
		t.Errorf("actor.authorizations = %#v", got)
	}
	if got := stGet(ev, "unmapped.ai.delegation_chain"); !reflect.DeepEqual(got, []any{"user:alice", "agent:agt_7"}) {
		t.Errorf("unmapped.ai.delegation_chain = %#v", got)
	}
}

func TestOCSFActivityStatusSeverity(t *testing.T) {
	tests := []struct {
		name                 string
		kind, action, status string
		errorCode            int
		activity             int
		activityName         string
		statusID, severityID int
	}{
		{"list tools", audit.KindMCPRequest, "tools/list", audit.OutcomeAllowed, 0, 2, "Read", 1, 1},
		{"read resource", audit.KindMCPRequest, "resources/read", audit.OutcomeAllowed, 0, 2, "Read", 1, 1},
		{"get prompt denied", audit.KindMCPRequest, "prompts/get", audit.OutcomeDenied, 0, 2, "Read", 2, 3},
		{"subscribe", audit.KindMCPRequest, "resources/subscribe", audit.OutcomeAllowed, 0, 1, "Create", 1, 1},
		{"unsubscribe", audit.KindMCPRequest, "resources/unsubscribe", audit.OutcomeAllowed, 0, 4, "Delete", 1, 1},
		{"set log level", audit.KindMCPRequest, "logging/setLevel", audit.OutcomeAllowed, 0, 3, "Update", 1, 1},
		{"tool call", audit.KindMCPRequest, "tools/call", audit.OutcomeAllowed, 0, 99, "tools/call", 1, 1},
		{"tool call upstream error", audit.KindMCPRequest, "tools/call", audit.OutcomeAllowed, -32603, 99, "tools/call", 2, 1},
		{"tool call monitor mode", audit.KindMCPRequest, "tools/call", audit.OutcomeWouldDeny, 0, 99, "tools/call", 1, 3},
		{"tool call pending", audit.KindMCPRequest, "tools/call", audit.OutcomePending, 0, 99, "tools/call", 2, 2},
		{"tool call error", audit.KindMCPRequest, "tools/call", audit.OutcomeError, 0, 99, "tools/call", 2, 2},
		{"notification", audit.KindMCPNotification, "notifications/resources/list_changed", audit.OutcomeAllowed, 0, 99, "notifications/resources/list_changed", 1, 1},
		{"a notification is never Read", audit.KindMCPNotification, "tools/list", audit.OutcomeAllowed, 0, 99, "tools/list", 1, 1},
		{"server request", audit.KindMCPServerRequest, "roots/list", audit.OutcomeAllowed, 0, 2, "Read", 1, 1},
		{"agent created", audit.KindAdmin, "agent.created", audit.OutcomeAllowed, 0, 1, "Create", 1, 1},
		{"token issued", audit.KindAuth, "token.issued", audit.OutcomeAllowed, 0, 1, "Create", 1, 1},
		{"token refused", audit.KindAuth, "token.refused", audit.OutcomeDenied, 0, 99, "token.refused", 2, 3},
		{"key rotated", audit.KindAuth, "key.rotated", audit.OutcomeAllowed, 0, 3, "Update", 1, 1},
		{"grant expired", audit.KindPolicy, "grant.expired", audit.OutcomeAllowed, 0, 4, "Delete", 1, 1},
		{"token revoked", audit.KindAuth, "token.revoked", audit.OutcomeAllowed, 0, 4, "Delete", 1, 1},
		{"no status", audit.KindAdmin, "config.reloaded", "", 0, 3, "Update", 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := audit.Record{ID: "aud_x", Kind: tt.kind, Action: tt.action, Time: stBase,
				Outcome: audit.Outcome{Status: tt.status, ErrorCode: tt.errorCode}}
			ev := stRoundTrip(t, sinks.OCSF(r))
			for k, w := range map[string]any{
				"activity_id":   float64(tt.activity),
				"activity_name": tt.activityName,
				"type_uid":      float64(600300 + tt.activity),
				"status_id":     float64(tt.statusID),
				"severity_id":   float64(tt.severityID),
			} {
				if got := ev[k]; got != w {
					t.Errorf("%s = %v, want %v", k, got, w)
				}
			}
		})
	}
}

func TestOCSFMinimalRecord(t *testing.T) {
	r := audit.Record{ID: "aud_min", Seq: 0, Time: stBase, Kind: audit.KindPolicy, Action: "grant.expired",
		Actor: audit.Actor{Kind: "system"}, Target: audit.Target{Object: "grant g_1"}, Outcome: audit.Outcome{Status: audit.OutcomeAllowed}}
	ev := stRoundTrip(t, sinks.OCSF(r))
	for _, absent := range []string{"src_endpoint", "api.request", "api.response", "api.service", "actor.session",
		"actor.app_name", "actor.authorizations", "unmapped.hash", "unmapped.result", "unmapped.ai.model",
		"unmapped.ai.conversation", "metadata.correlation_uid", "duration", "status_detail"} {
		if v := stGet(ev, absent); v != nil {
			t.Errorf("%s = %#v, want absent", absent, v)
		}
	}
	for path, w := range map[string]any{
		"actor.user.name": "system", "actor.user.type": "System", "actor.user.type_id": 3.0,
		"metadata.sequence": 0.0, "api.operation": "grant.expired",
	} {
		if got := stGet(ev, path); got != w {
			t.Errorf("%s = %#v, want %#v", path, got, w)
		}
	}
	if got := ev["resources"]; !reflect.DeepEqual(got, []any{map[string]any{"name": "g_1", "type": "grant"}}) {
		t.Errorf("resources = %#v", got)
	}

	// Without a source, the replica names the source endpoint.
	r.Replica = "gw-2"
	if got := stGet(stRoundTrip(t, sinks.OCSF(r)), "src_endpoint.name"); got != "gw-2" {
		t.Errorf("src_endpoint.name = %#v", got)
	}
	// A conversation too long to inline is reported by size.
	r.Context.Conversation = json.RawMessage(`{"model":"m","pad":"` + strings.Repeat("x", 5000) + `"}`)
	ev = stRoundTrip(t, sinks.OCSF(r))
	if stGet(ev, "unmapped.ai.conversation") != nil || stGet(ev, "unmapped.ai.conversation_bytes") == nil || stGet(ev, "unmapped.ai.model") != "m" {
		t.Errorf("long conversation: %#v", ev["unmapped"])
	}
}

// Formatting a sink, with any verb, never shows its credentials.
func TestSinksDoNotFormatSecrets(t *testing.T) {
	const secret = "s3cr3t-value-0123456789"
	webhook, err := sinks.NewWebhook(sinks.WebhookConfig{URL: "https://hooks.example.com/x", Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	splunk, err := sinks.NewSplunk(sinks.SplunkConfig{URL: "https://splunk.example.com:8088", Token: secret})
	if err != nil {
		t.Fatal(err)
	}
	azure, err := sinks.NewAzure(sinks.AzureConfig{Endpoint: "https://dce.example.com", DCRImmutableID: "dcr-1",
		StreamName: "Custom-X", TenantID: "t", ClientID: "c", ClientSecret: secret})
	if err != nil {
		t.Fatal(err)
	}
	type holder struct{ Exported, unexported any }
	for _, s := range []any{webhook, splunk, azure} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%d"} {
			if out := fmt.Sprintf(verb, s) + fmt.Sprintf(verb, holder{s, s}); strings.Contains(out, secret) {
				t.Errorf("%T formatted with %s shows the secret: %s", s, verb, out)
			}
		}
	}
}
