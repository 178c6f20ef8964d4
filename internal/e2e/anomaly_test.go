package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"gatehouse/internal/audit"
	"gatehouse/internal/gateway"
	"gatehouse/internal/identity"
	"gatehouse/internal/inspect/alert"
	"gatehouse/internal/mcp"
	"gatehouse/internal/store"
	"gatehouse/internal/store/sqlite"
	"gatehouse/internal/telemetry"
	"gatehouse/internal/webhooksig"
)

const alertSecret = "e2e-alert-signing-key-0123456789abcdef"

// alertReceiver is the alert webhook: it checks every request's signature
// and keeps the alerts and raw bodies.
type alertReceiver struct {
	t   *testing.T
	srv *httptest.Server

	mu     sync.Mutex
	alerts []alert.Alert
	bodies []string
	badSig int
}

func newAlertReceiver(t *testing.T) *alertReceiver {
	r := &alertReceiver{t: t}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		if err := webhooksig.Verify([]byte(alertSecret), req.Header.Get(webhooksig.TimestampHeader), req.Header.Get(webhooksig.SignatureHeader), body, time.Now(), 5*time.Minute); err != nil {
			r.mu.Lock()
			r.badSig++
			r.mu.Unlock()
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		var b struct {
			Alerts []alert.Alert `json:"alerts"`
		}
		if err := json.Unmarshal(body, &b); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		r.alerts = append(r.alerts, b.Alerts...)
		r.bodies = append(r.bodies, string(body))
		r.mu.Unlock()
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// wait polls until the receiver holds n alerts of kind.
func (r *alertReceiver) wait(kind alert.Kind, n int) []alert.Alert {
	r.t.Helper()
	var got []alert.Alert
	eventually(r.t, fmt.Sprintf("%d %s alerts at the webhook", n, kind), func() error {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.badSig > 0 {
			r.t.Fatalf("%d alert requests with a bad signature", r.badSig)
		}
		got = got[:0]
		for _, a := range r.alerts {
			if a.Kind == kind {
				got = append(got, a)
			}
		}
		if len(got) < n {
			return errNotYet
		}
		return nil
	})
	return got
}

func (r *alertReceiver) body() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.bodies, "\n")
}

// e2eClock is the gateway's clock in these tests: moved by hand.
type e2eClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *e2eClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *e2eClock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// agentAuth authenticates every request as one agent.
type agentAuth struct{ p *identity.Principal }

func (a agentAuth) Authenticate(*http.Request, string, string) (*identity.Principal, *identity.AuthError) {
	return a.p, nil
}

// alertGateway is a gateway with an audit trail, metrics and every caller
// authenticated as the agent e2e-bot of team qa.
type alertGateway struct {
	*harness
	trail   *audit.Trail
	st      *sqlite.Store
	metrics *telemetry.Registry
}

func startAlertGateway(t *testing.T, yaml string, opts gateway.Options) *alertGateway {
	t.Helper()
	st, trail := auditedStore(t)
	lb := &logBuffer{}
	log := slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug}))
	metrics := telemetry.New()
	opts.Logger, opts.Audit, opts.Metrics = log, trail, metrics
	gw, err := gateway.New(loadConfig(t, yaml), opts)
	if err != nil {
		t.Fatalf("gateway.New: %v", err)
	}
	bot := &identity.Principal{Kind: identity.KindAgent, Subject: "agt_e2e", AgentID: "agt_e2e", AgentName: "e2e-bot", Team: "qa"}
	h := mcp.NewHandlerWith(gw, mcp.Options{Logger: log, Auth: agentAuth{bot}, Issuer: "http://gatehouse.test"})
	mux := http.NewServeMux()
	mux.Handle("/mcp/", h)
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		h.Close()
		srv.CloseClientConnections()
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		_ = gw.Close(ctx)
		if t.Failed() || os.Getenv("E2E_VERBOSE") != "" {
			t.Logf("gateway log (last lines):\n%s", lb.tail(150))
		}
	})
	return &alertGateway{harness: &harness{t: t, GW: gw, H: h, Srv: srv, log: lb}, trail: trail, st: st, metrics: metrics}
}

// scrape returns the metrics in the Prometheus text format.
func (g *alertGateway) scrape() string {
	rec := httptest.NewRecorder()
	g.metrics.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	return rec.Body.String()
}

func (g *alertGateway) wantMetrics(want ...string) {
	g.t.Helper()
	body := g.scrape()
	for _, w := range want {
		if !strings.Contains(body, w) {
			g.t.Errorf("metrics lack %s", w)
		}
	}
}

// auditRecords returns the audit records of a kind, once committed.
func (g *alertGateway) auditRecords(kind string) []audit.Record {
	g.t.Helper()
	if err := g.trail.Flush(context.Background()); err != nil {
		g.t.Fatal(err)
	}
	rows, err := g.st.ListAudit(context.Background(), store.AuditFilter{Kind: kind, Limit: 100})
	if err != nil {
		g.t.Fatal(err)
	}
	out := make([]audit.Record, len(rows))
	for i, rw := range rows {
		if err := json.Unmarshal(rw.Data, &out[i]); err != nil {
			g.t.Fatal(err)
		}
	}
	return out
}

// echoUpstream is an upstream with one tool, echo, returning its text.
func echoUpstream(t *testing.T) string {
	s := sdk.NewServer(&sdk.Implementation{Name: "echoer", Version: "1.0.0"}, nil)
	sdk.AddTool(s, &sdk.Tool{Name: "echo", Description: "returns its text"}, func(_ context.Context, _ *sdk.CallToolRequest, in textArgs) (*sdk.CallToolResult, any, error) {
		return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: in.Text}}}, nil, nil
	})
	return serveStreamable(t, s)
}

// TestAnomalyAlert: an agent's calls build a baseline over a warm-up of
// two windows (the gateway's clock is moved by hand and windows closed
// with AnomalyTick), then a burst of calls raises one anomaly alert: it
// reaches the webhook signed, counts in the metrics, has an audit record,
// and the baselines survive a restart through the state file.
func TestAnomalyAlert(t *testing.T) {
	hook := newAlertReceiver(t)
	clock := &e2eClock{}
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	clock.Set(t0.Add(10 * time.Second))
	statePath := filepath.Join(t.TempDir(), "data", "anomaly-baselines.json")
	yaml := render(t, `
upstreams:
  echoer: {url: "{{url}}"}
servers:
  work:
    upstreams: [{upstream: echoer, prefix: ""}]
identity: {auth: "off"}
admin: {disabled: true}
inspect:
  alerts:
    webhook: {url: "{{hook}}", secret: "{{secret}}"}
  anomaly:
    enabled: true
    window: 1m
    warmup: 2
    factors: {calls: 2, distinct_tools: 0, bytes_out: 0, error_rate: 0, distinct_labels: 0, new_label: 0}
    floors: {calls: 1}
`, "url", echoUpstream(t), "hook", hook.srv.URL, "secret", alertSecret)
	g := startAlertGateway(t, yaml, gateway.Options{Now: clock.Now, AnomalyState: statePath})
	cs := connect(t, g.URL("work"), v20251125, nil)
	calls := func(n int) {
		t.Helper()
		for i := range n {
			callText(t, cs, "echo", map[string]any{"text": fmt.Sprint("call ", i)})
		}
	}

	// Warm-up: two windows of two calls each.
	calls(2)
	clock.Set(t0.Add(70 * time.Second))
	calls(2)
	clock.Set(t0.Add(130 * time.Second))
	g.GW.AnomalyTick() // closes the second window
	st, ok := g.GW.AnomalyAgent("e2e-bot")
	if !ok || st.Windows != 2 || st.Team != "qa" || st.Baseline["calls"] != 2 {
		t.Fatalf("after the warm-up: %+v (tracked %v), want 2 windows with a baseline of 2 calls", st, ok)
	}
	if strings.Contains(g.scrape(), "gatehouse_anomaly_alerts_total{") {
		t.Fatal("an anomaly alert during the warm-up")
	}

	// The threshold is 2 × max(baseline 2, floor 1) = 4 calls: the fifth
	// call of the window alerts, once.
	calls(7)
	got := hook.wait(alert.KindAnomaly, 1)
	a := got[0]
	if a.Agent != "e2e-bot" || a.Team != "qa" || a.Anomaly == nil || a.Anomaly.Metric != "calls" ||
		a.Anomaly.Value != 5 || a.Anomaly.Baseline != 2 || a.Anomaly.Threshold != 4 ||
		!a.Anomaly.WindowStart.Equal(t0.Add(2*time.Minute)) || !a.Time.Equal(t0.Add(130*time.Second)) {
		t.Errorf("anomaly alert: %+v %+v", a, a.Anomaly)
	}
	g.wantMetrics(`gatehouse_anomaly_alerts_total{metric="calls"} 1`, `gatehouse_alerts_total{kind="anomaly"} 1`)
	if !strings.Contains(g.log.String(), `msg="anomaly alert"`) {
		t.Error("the anomaly alert is not logged")
	}
	recs := g.auditRecords(audit.KindAnomaly)
	if len(recs) != 1 || recs[0].Action != "anomaly.calls" || recs[0].Actor.AgentName != "e2e-bot" || recs[0].Actor.Team != "qa" ||
		!strings.Contains(recs[0].Outcome.Reason, "calls 5") {
		t.Errorf("anomaly audit records: %+v", recs)
	}

	// The baselines are saved to the state file (0600) and a gateway
	// started on it knows the agent; a corrupt file is logged and ignored.
	if err := g.GW.SaveAnomalyBaselines(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(statePath)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("state file: %v, %v", fi, err)
	}
	restarted := startAlertGateway(t, yaml, gateway.Options{Now: clock.Now, AnomalyState: statePath})
	if st, ok := restarted.GW.AnomalyAgent("e2e-bot"); !ok || st.Windows != 2 || st.Baseline["calls"] != 2 {
		t.Errorf("after a restart: %+v (tracked %v)", st, ok)
	}
	if err := os.WriteFile(statePath, []byte(`{"version":1,"window":"1m0s","agents":[{"agent":""`), 0o600); err != nil {
		t.Fatal(err)
	}
	corrupt := startAlertGateway(t, yaml, gateway.Options{Now: clock.Now, AnomalyState: statePath})
	if _, ok := corrupt.GW.AnomalyAgent("e2e-bot"); ok || !strings.Contains(corrupt.log.String(), "anomaly baselines not restored") {
		t.Errorf("a corrupt state file: agent tracked %v; log:\n%s", ok, corrupt.log.tail(20))
	}

	// A reload that changes nothing of the anomaly section keeps the
	// monitor; one that changes the window starts over.
	g.apply(yaml)
	if st, ok := g.GW.AnomalyAgent("e2e-bot"); !ok || st.Windows != 2 || st.Baseline["calls"] != 2 {
		t.Errorf("after a reload: %+v (tracked %v), want the baselines kept", st, ok)
	}
	g.apply(strings.Replace(yaml, "floors: {calls: 1}", "floors: {calls: 3}", 1))
	if st, ok := g.GW.AnomalyAgent("e2e-bot"); !ok || st.Windows != 2 || st.Baseline["calls"] != 2 {
		t.Errorf("after new factors: %+v (tracked %v), want the baselines carried over", st, ok)
	}
	g.apply(strings.Replace(yaml, "window: 1m", "window: 2m", 1))
	if _, ok := g.GW.AnomalyAgent("e2e-bot"); ok {
		t.Error("after a new window length the old baselines are kept")
	}
}

// TestFindingAlert: a finding whose action is alert reaches the webhook
// (types, never the text) and the findings metrics count; a blocked call
// counts in the blocked metric.
func TestFindingAlert(t *testing.T) {
	hook := newAlertReceiver(t)
	g := startAlertGateway(t, render(t, `
upstreams:
  echoer: {url: "{{url}}"}
servers:
  work:
    upstreams: [{upstream: echoer, prefix: ""}]
identity: {auth: "off"}
admin: {disabled: true}
inspect:
  alerts:
    webhook: {url: "{{hook}}", secret: "{{secret}}"}
  actions:
    - {category: pii, types: [email], action: alert}
    - {category: secret, action: block}
`, "url", echoUpstream(t), "hook", hook.srv.URL, "secret", alertSecret), gateway.Options{})
	cs := connect(t, g.URL("work"), v20251125, nil)

	const email = "jane.doe@example.org"
	if got := callText(t, cs, "echo", map[string]any{"text": "write to " + email}); got != "write to "+email {
		t.Errorf("an alert lets the payload through: got %q", got)
	}
	const token = "ghp_8Kq2Lm4Np6Rs8Tv0Wx2Yz4Ab6Cd8Ef0Gh2Ij4"
	if _, err := cs.CallTool(ctxT(t), &sdk.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "deploy with " + token}}); err == nil {
		t.Error("a secret in the arguments was not blocked")
	}

	got := hook.wait(alert.KindFinding, 2) // the arguments, then the result
	dirs := map[string]bool{}
	for _, a := range got {
		dirs[a.Direction] = true
		// The arguments are inspected before the upstream is called: only
		// the result's alert names it.
		if a.Direction == "response" && a.Upstream != "echoer" {
			t.Errorf("the result's alert does not name the upstream: %+v", a)
		}
		if a.Server != "work" || a.Tool != "echo" || a.Agent != "e2e-bot" || a.AgentID != "agt_e2e" || a.Team != "qa" ||
			a.Action != "alert" || len(a.Findings) != 1 || a.Findings[0].Category != "pii" || a.Findings[0].Type != "email" {
			t.Errorf("finding alert: %+v", a)
		}
	}
	if !dirs["request"] || !dirs["response"] {
		t.Errorf("alerts for directions %v, want request and response", dirs)
	}
	if body := hook.body(); strings.Contains(body, email) || strings.Contains(body, token) {
		t.Errorf("the webhook got the text found:\n%s", body)
	}
	g.wantMetrics(
		`gatehouse_inspect_findings_total{action="alert",category="pii",direction="request",type="email"} 1`,
		`gatehouse_inspect_findings_total{action="alert",category="pii",direction="response",type="email"} 1`,
		`gatehouse_inspect_findings_total{action="block",category="secret",direction="request",type="github-pat"} 1`,
		`gatehouse_inspect_blocked_total{direction="request"} 1`,
		`gatehouse_alerts_total{kind="finding"} 2`,
	)
}
