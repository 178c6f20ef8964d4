// Package telemetry exposes the gateway's Prometheus metrics at /metrics.
// Collectors that need the database read it at scrape time, never on the
// request path.
package telemetry

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"gatehouse/internal/store"
)

// Registry holds the gateway's metrics.
type Registry struct {
	reg *prometheus.Registry
	// AuthFailures counts refused requests by RFC 6750 error code.
	AuthFailures *prometheus.CounterVec
}

// New returns a registry with the Go runtime and process collectors.
func New() *Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	r := &Registry{
		reg: reg,
		AuthFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_auth_failures_total",
			Help: "MCP requests refused by authentication or authorization, by error (invalid_token, insufficient_scope, invalid_request, missing).",
		}, []string{"error"}),
	}
	reg.MustRegister(r.AuthFailures)
	return r
}

// Handler serves the metrics in the Prometheus text format.
func (r *Registry) Handler() http.Handler {
	return promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{})
}

// WatchCredentials adds gauges of agent credentials by team and state
// (active, expiring within warn, expired), read from the store at each
// scrape: operators alert on secrets nearing their team's maximum age.
func (r *Registry) WatchCredentials(st store.Store, warn time.Duration, log *slog.Logger) {
	r.reg.MustRegister(&credentialCollector{st: st, warn: warn, log: log})
}

var credDesc = prometheus.NewDesc("gatehouse_agent_credentials",
	"Credentials (client secrets, API keys, public keys) of active agents, by team, kind and state: active, expiring (within the warning window), expired.",
	[]string{"team", "kind", "state"}, nil)

type credentialCollector struct {
	st   store.Store
	warn time.Duration
	log  *slog.Logger
}

func (c *credentialCollector) Describe(ch chan<- *prometheus.Desc) { ch <- credDesc }

func (c *credentialCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	agents, err := c.st.ListAgents(ctx, store.AgentFilter{Status: store.AgentActive})
	if err != nil {
		c.log.Warn("metrics: listing agents", "error", err)
		return
	}
	type key struct{ team, kind, state string }
	counts := map[key]float64{}
	now := time.Now()
	for _, a := range agents {
		creds, err := c.st.ListCredentials(ctx, a.ID)
		if err != nil {
			c.log.Warn("metrics: listing credentials", "agent", a.Name, "error", err)
			continue
		}
		for _, cr := range creds {
			if cr.RevokedAt != nil {
				continue
			}
			state := "active"
			switch {
			case cr.ExpiresAt != nil && !now.Before(*cr.ExpiresAt):
				state = "expired"
			case cr.ExpiresAt != nil && cr.ExpiresAt.Sub(now) < c.warn:
				state = "expiring"
			}
			counts[key{a.Team, cr.Kind, state}]++
		}
	}
	for k, n := range counts {
		ch <- prometheus.MustNewConstMetric(credDesc, prometheus.GaugeValue, n, k.team, k.kind, k.state)
	}
}
