package config

import (
	"errors"
	"strings"
	"testing"
	"time"

	"gatehouse/internal/inspect/anomaly"
)

const anomalyBase = `
upstreams:
  crm: {command: gatehouse}
servers:
  s:
    upstreams: [{upstream: crm}]
`

// TestAlertsAnomalyConfig: the alerts and anomaly sections load, map to
// the monitor's configuration, and every mistake is reported at its path.
func TestAlertsAnomalyConfig(t *testing.T) {
	env := map[string]string{"ALERT_SECRET": "0123456789abcdef0123456789abcdef", "ALERT_URL": "https://alerts.example/hook?token=abc"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	for _, tc := range []struct {
		name    string
		inspect string
		errs    []string // substrings of the problems, in order; none: valid
		check   func(t *testing.T, c *Config)
	}{
		{name: "defaults", inspect: ``, check: func(t *testing.T, c *Config) {
			a := c.Inspect.Anomaly
			if a.Enabled || c.Inspect.Alerts.Webhook != nil {
				t.Error("anomaly detection and the webhook are off by default")
			}
			if a.SnapshotEvery() != DefaultAnomalySnapshotInterval {
				t.Errorf("snapshot interval %v", a.SnapshotEvery())
			}
			mc, err := a.MonitorConfig()
			if err != nil || mc.Window != 0 || mc.Factors != nil || mc.Floors != nil {
				t.Errorf("MonitorConfig() = %+v, %v: want the anomaly package's defaults", mc, err)
			}
		}},
		{name: "full", inspect: `
  alerts:
    webhook: {url: "${ALERT_URL}", secret: "${ALERT_SECRET}", timeout: 5s}
  anomaly:
    enabled: true
    window: 5m
    warmup: 12
    alpha: 0.1
    factors: {calls: 20, bytes_out: 0, new_label: 1}
    floors: {calls: 30, error_rate: 0.2}
    error_rate_min_calls: 25
    late_alerts: true
    snapshot_interval: 10m
`, check: func(t *testing.T, c *Config) {
			w := c.Inspect.Alerts.Webhook
			if w.URL.Reveal() != env["ALERT_URL"] || w.Secret.Reveal() != env["ALERT_SECRET"] || w.Timeout.Std() != 5*time.Second {
				t.Errorf("webhook = %+v", w)
			}
			a := c.Inspect.Anomaly
			if !a.Enabled || a.SnapshotEvery() != 10*time.Minute {
				t.Errorf("anomaly = %+v", a)
			}
			mc, err := a.MonitorConfig()
			if err != nil {
				t.Fatal(err)
			}
			if mc.Window != 5*time.Minute || mc.Warmup != 12 || mc.Alpha != 0.1 || mc.ErrorRateMinCalls != 25 || !mc.LateAlerts {
				t.Errorf("MonitorConfig() = %+v", mc)
			}
			if mc.Factors[anomaly.Calls] != 20 || mc.Factors[anomaly.BytesOut] != 0 || mc.Factors[anomaly.NewLabel] != 1 || len(mc.Factors) != 3 {
				t.Errorf("factors = %v", mc.Factors)
			}
			if mc.Floors[anomaly.Calls] != 30 || mc.Floors[anomaly.ErrorRate] != 0.2 || len(mc.Floors) != 2 {
				t.Errorf("floors = %v", mc.Floors)
			}
			if _, err := anomaly.New(mc); err != nil {
				t.Errorf("anomaly.New: %v", err)
			}
		}},
		{name: "webhook without url", inspect: `
  alerts: {webhook: {secret: "${ALERT_SECRET}"}}
`, errs: []string{"inspect.alerts.webhook.url: missing"}},
		{name: "webhook bad url and short secret", inspect: `
  alerts: {webhook: {url: "ftp://alerts.example/hook?token=SECRETTOKEN", secret: short}}
`, errs: []string{"inspect.alerts.webhook.url: must be an absolute http or https URL", "inspect.alerts.webhook.secret: the signing key must be at least 16 bytes"}},
		{name: "webhook negative timeout", inspect: `
  alerts: {webhook: {url: "https://a.example/", secret: "${ALERT_SECRET}", timeout: -1s}}
`, errs: []string{"must not be negative"}},
		{name: "unknown field", inspect: `
  anomaly: {enabled: true, windw: 1m}
`, errs: []string{`inspect.anomaly.windw: unknown field "windw"`}},
		{name: "bad numbers", inspect: `
  anomaly:
    window: 100ms
    warmup: -1
    alpha: 1.5
    error_rate_min_calls: -3
`, errs: []string{"inspect.anomaly.window: must be at least 1s", "inspect.anomaly.warmup: must not be negative",
			"inspect.anomaly.alpha: want 0 < alpha <= 1", "inspect.anomaly.error_rate_min_calls: must not be negative"}},
		{name: "unknown metrics", inspect: `
  anomaly:
    factors: {calls: 10, call: 3, errors: -1}
    floors: {new_label: 1, bytes_out: -5}
`, errs: []string{`inspect.anomaly.factors.call: unknown metric "call"`, `inspect.anomaly.factors.errors: unknown metric "errors"`,
			"inspect.anomaly.factors.errors: want a non-negative number", "inspect.anomaly.floors.bytes_out: want a non-negative number",
			`inspect.anomaly.floors.new_label: unknown metric "new_label"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := anomalyBase
			if tc.inspect != "" {
				src += "inspect:" + tc.inspect
			}
			c, err := Load("t.yaml", []byte(src), lookup)
			if len(tc.errs) == 0 {
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				if tc.check != nil {
					tc.check(t, c)
				}
				return
			}
			var ps Problems
			if !errors.As(err, &ps) {
				t.Fatalf("Load: %v, want problems %q", err, tc.errs)
			}
			msg := err.Error()
			for _, want := range tc.errs {
				if !strings.Contains(msg, want) {
					t.Errorf("problems lack %q:\n%s", want, msg)
				}
			}
			if len(ps) != len(tc.errs) {
				t.Errorf("%d problems, want %d:\n%s", len(ps), len(tc.errs), msg)
			}
			if strings.Contains(msg, "SECRETTOKEN") {
				t.Errorf("a problem repeats the webhook URL:\n%s", msg)
			}
			for _, p := range ps {
				if p.Line == 0 && !strings.Contains(p.Msg, "duration") { // decoding errors have none
					t.Errorf("problem without a position: %v", p)
				}
			}
		})
	}
}
