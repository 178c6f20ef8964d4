package config

import (
	"math"
	"net/url"
	"time"

	"gatehouse/internal/inspect/anomaly"
	"gatehouse/internal/webhooksig"
)

// InspectAlerts configures where alerts go. Every alert (a finding whose
// action is alert, an anomaly, a tool-definition change, a failing
// guardrail) is logged at warn level; with a webhook it is also POSTed.
type InspectAlerts struct {
	// Webhook receives alerts in signed JSON batches (docs/detection.md).
	Webhook *AlertWebhook `yaml:"webhook"`
}

// AlertWebhook is the alert webhook.
type AlertWebhook struct {
	// URL receives the POSTs (http or https). Never logged: it may carry
	// a token.
	URL Secret `yaml:"url"`
	// Secret is the HMAC-SHA256 key the requests are signed with, at least
	// 16 bytes (32 random bytes recommended); use ${VAR}.
	Secret Secret `yaml:"secret"`
	// Timeout bounds one request (default 10s).
	Timeout Duration `yaml:"timeout"`
}

// InspectAnomaly configures per-agent anomaly detection: a baseline of
// each agent's activity per window, and an alert when a window departs
// from it (internal/inspect/anomaly).
type InspectAnomaly struct {
	// Enabled turns anomaly detection on. It is off by default: baselines
	// need weeks of steady traffic to be worth alerting on, and a gateway
	// in front of a few test agents would mostly alert on noise.
	Enabled bool `yaml:"enabled"`
	// Window is the length of a window (default 1m).
	Window Duration `yaml:"window"`
	// Warmup is the number of active windows an agent must have had
	// before it can alert (0: 30).
	Warmup int `yaml:"warmup"`
	// Alpha is the weight of the newest window in a baseline, 0 < alpha ≤
	// 1 (0: 0.05).
	Alpha float64 `yaml:"alpha"`
	// Factors maps a metric (calls, distinct_tools, bytes_out, error_rate,
	// distinct_labels, new_label) to how many times its baseline a window
	// must exceed to alert (default 10 each); 0 disables the metric. For
	// new_label any positive number enables it.
	Factors map[string]float64 `yaml:"factors"`
	// Floors maps a metric to the least baseline it is compared against
	// (defaults: calls 10, distinct_tools 3, bytes_out 65536, error_rate
	// 0.05, distinct_labels 2).
	Floors map[string]float64 `yaml:"floors"`
	// ErrorRateMinCalls is the number of calls a window needs before its
	// error rate can alert (0: 10).
	ErrorRateMinCalls int `yaml:"error_rate_min_calls"`
	// LateAlerts raises alerts when a window closes, with the whole
	// window's value, instead of as soon as it crosses the threshold.
	LateAlerts bool `yaml:"late_alerts"`
	// SnapshotInterval is how often baselines are saved to the data
	// directory (default 5m; they are also saved at shutdown).
	SnapshotInterval Duration `yaml:"snapshot_interval"`
}

// Anomaly defaults the configuration applies (the others are the
// anomaly package's).
const (
	DefaultAnomalySnapshotInterval = 5 * time.Minute
	MinAnomalyWindow               = time.Second
)

// SnapshotEvery returns the snapshot interval in force.
func (a InspectAnomaly) SnapshotEvery() time.Duration {
	if a.SnapshotInterval == 0 {
		return DefaultAnomalySnapshotInterval
	}
	return a.SnapshotInterval.Std()
}

// MonitorConfig maps the section to the anomaly monitor's configuration
// (OnAlert is left to the caller).
func (a InspectAnomaly) MonitorConfig() (anomaly.Config, error) {
	c := anomaly.Config{
		Window: a.Window.Std(), Warmup: a.Warmup, Alpha: a.Alpha,
		ErrorRateMinCalls: a.ErrorRateMinCalls, LateAlerts: a.LateAlerts,
	}
	for name, f := range a.Factors {
		m, err := anomaly.ParseMetric(name)
		if err != nil {
			return anomaly.Config{}, err
		}
		if c.Factors == nil {
			c.Factors = map[anomaly.Metric]float64{}
		}
		c.Factors[m] = f
	}
	for name, f := range a.Floors {
		m, err := anomaly.ParseMetric(name)
		if err != nil {
			return anomaly.Config{}, err
		}
		if c.Floors == nil {
			c.Floors = map[anomaly.Metric]float64{}
		}
		c.Floors[m] = f
	}
	return c, nil
}

// validateAlerts checks inspect.alerts and inspect.anomaly.
func (l *loader) validateAlerts(in *Inspect) {
	if w := in.Alerts.Webhook; w != nil {
		p := "inspect.alerts.webhook"
		u, err := url.Parse(w.URL.Reveal())
		switch {
		case w.URL == "":
			l.addAt(p+".url", "missing: the URL alerts are POSTed to")
		case err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https"):
			// The URL is not repeated: it may carry a token.
			l.addAt(p+".url", "must be an absolute http or https URL")
		}
		if len(w.Secret) < webhooksig.MinKey {
			l.addAt(p+".secret", "the signing key must be at least %d bytes (use 32 random bytes, e.g. ${GATEHOUSE_ALERT_SECRET})", webhooksig.MinKey)
		}
	}
	a := &in.Anomaly
	p := "inspect.anomaly"
	if a.Window != 0 && a.Window.Std() < MinAnomalyWindow {
		l.addAt(p+".window", "must be at least %s", MinAnomalyWindow)
	}
	if a.Warmup < 0 {
		l.addAt(p+".warmup", "must not be negative")
	}
	if a.Alpha != 0 && !(a.Alpha > 0 && a.Alpha <= 1) {
		l.addAt(p+".alpha", "want 0 < alpha <= 1")
	}
	if a.ErrorRateMinCalls < 0 {
		l.addAt(p+".error_rate_min_calls", "must not be negative")
	}
	for _, name := range sortedKeys(a.Factors) {
		fp := joinPath(p+".factors", name)
		if _, err := anomaly.ParseMetric(name); err != nil {
			l.addAt(fp, "unknown metric %q (calls, distinct_tools, bytes_out, error_rate, distinct_labels, new_label)", name)
		}
		if f := a.Factors[name]; math.IsNaN(f) || math.IsInf(f, 0) || f < 0 {
			l.addAt(fp, "want a non-negative number (0 disables the metric)")
		}
	}
	for _, name := range sortedKeys(a.Floors) {
		fp := joinPath(p+".floors", name)
		if m, err := anomaly.ParseMetric(name); err != nil || m == anomaly.NewLabel {
			l.addAt(fp, "unknown metric %q (calls, distinct_tools, bytes_out, error_rate, distinct_labels)", name)
		}
		if f := a.Floors[name]; math.IsNaN(f) || math.IsInf(f, 0) || f < 0 {
			l.addAt(fp, "want a non-negative number")
		}
	}
	if len(l.problems) == 0 {
		// Whatever the checks above missed, the monitor itself refuses.
		if mc, err := a.MonitorConfig(); err != nil {
			l.addAt(p, "%v", err)
		} else if _, err := anomaly.New(mc); err != nil {
			l.addAt(p, "%v", err)
		}
	}
}

// expandAlerts expands ${VAR} in the alert webhook's URL and secret.
func (l *loader) expandAlerts(c *Config, lookup func(string) (string, bool)) {
	if w := c.Inspect.Alerts.Webhook; w != nil {
		w.URL = Secret(l.expand(string(w.URL), "inspect.alerts.webhook.url", lookup))
		w.Secret = Secret(l.expand(string(w.Secret), "inspect.alerts.webhook.secret", lookup))
	}
}
