// Package gateway implements virtual MCP servers: it aggregates upstreams,
// maps names, routes requests, fans lists out and relays notifications and
// server→client requests to the right downstream session. It works on raw
// JSON-RPC messages (internal/jsonrpc) and knows nothing about HTTP; the
// downstream transports in internal/mcp call into it.
package gateway

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"gatehouse/internal/audit"
	"gatehouse/internal/config"
	"gatehouse/internal/inspect/alert"
	"gatehouse/internal/policy"
	"gatehouse/internal/telemetry"
)

// Versions the gateway speaks downstream, newest first. 2026-07-28 is the
// stateless revision; the others use the initialize handshake.
var (
	ModernVersion  = "2026-07-28"
	LegacyVersions = []string{"2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"}
)

// SupportedVersions lists every revision, newest first.
func SupportedVersions() []string { return append([]string{ModernVersion}, LegacyVersions...) }

// Replier receives what the gateway sends for one downstream request:
// related notifications and server→client requests, then the response.
// Implementations must be safe for concurrent use.
type Replier interface {
	// Send delivers an interim message related to the request.
	Send(msg []byte) error
	// Reply delivers the final response. It is called at most once.
	Reply(msg []byte) error
	// Abandon ends the request without a response: the client cancelled
	// it. Called instead of Reply.
	Abandon()
}

// Outbound delivers session-level messages that belong to no request.
type Outbound interface {
	Send(msg []byte) error
}

// Gateway holds the current configuration snapshot and the upstream pool.
// It is safe for concurrent use.
type Gateway struct {
	log  *slog.Logger
	snap atomic.Pointer[snapshot]

	mu       sync.Mutex
	entries  map[string]*entry   // by upstream fingerprint
	retiring map[*entry]struct{} // replaced entries still finishing requests
	sessions map[string]map[*Session]struct{}
	// listeners are the open subscriptions/listen requests of stateless
	// clients, by virtual server (see listen.go).
	listeners map[string]map[*listener]struct{}
	closed    bool

	httpClient *http.Client
	secrets    SecretResolver
	engine     *policy.Engine
	// history is what policy knows of callers of the stateless revision,
	// which have no session.
	history *policy.History
	audit   *audit.Trail // nil: audit off
	masker  *audit.Masker
	tools   *toolGuard // tool definitions: pins and poisoning (drift.go)

	// alerting is metrics, the alert notifier and anomaly detection
	// (anomaly.go).
	alerting alerting
}

// SecretResolver expands {{vault:NAME}} references in upstream headers and
// environment for an agent ("" for shared connections).
type SecretResolver interface {
	Expand(ctx context.Context, template, agent string) (string, error)
}

// Options configure a Gateway.
type Options struct {
	Logger *slog.Logger
	// HTTPClient is used for HTTP upstreams; nil means a tuned default.
	HTTPClient *http.Client
	// Secrets resolves vault references; nil when no vault is configured.
	Secrets SecretResolver
	// Policy is the runtime of the policy section (callers, grants,
	// approvals, decision record); nil: one without a store (no grants,
	// and calls that need approval are denied).
	Policy *policy.Engine
	// Audit receives a record of every request before its answer leaves;
	// nil: no audit trail.
	Audit *audit.Trail
	// AuditFields are argument names masked in records besides the
	// built-in ones (password, token, …).
	AuditFields []string
	// Metrics counts inspection findings and alerts; nil: no metrics.
	Metrics *telemetry.Registry
	// Alerts logs and delivers alerts; the gateway configures its webhook
	// from inspect.alerts on every Apply. nil: the gateway makes its own,
	// closed by Close.
	Alerts *alert.Notifier
	// Now is the clock of anomaly detection and alerts (nil: time.Now);
	// tests move it and call AnomalyTick.
	Now func() time.Time
	// AnomalyState is the file anomaly baselines are saved to and restored
	// from; "": they are not kept across restarts.
	AnomalyState string
	// Pins keeps approved tool definitions (the store); nil keeps them in
	// memory, for this process's life.
	Pins PinStore
}

// New builds a gateway from a validated configuration and starts the
// upstreams marked start: at_startup.
func New(cfg *config.Config, opts Options) (*Gateway, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.HTTPClient == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConns = 1024
		tr.MaxIdleConnsPerHost = 256
		tr.IdleConnTimeout = 90 * time.Second
		opts.HTTPClient = &http.Client{Transport: tr}
	}
	if opts.Policy == nil {
		opts.Policy = policy.NewEngine(policy.EngineOptions{Logger: opts.Logger})
	}
	g := &Gateway{log: opts.Logger, entries: map[string]*entry{}, httpClient: opts.HTTPClient, secrets: opts.Secrets, engine: opts.Policy,
		history: policy.NewHistory(cfg.Sessions.IdleTimeout.Std()), audit: opts.Audit, masker: audit.NewMasker(opts.AuditFields)}
	g.initAlerting(opts)
	g.tools = newToolGuard(g, opts.Pins)
	if err := g.Apply(cfg); err != nil {
		return nil, err
	}
	return g, nil
}

// Apply installs a new validated configuration. Live sessions keep running:
// upstreams whose configuration did not change keep their connections,
// new ones start as configured, and removed or changed ones are closed once
// no session uses them. Sessions are told when tool lists change.
func (g *Gateway) Apply(cfg *config.Config) error {
	pol, err := policy.Compile(cfg)
	if err != nil {
		return err
	}
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return errors.New("gateway closed")
	}
	old := g.snap.Load()
	var prevInspect *inspection
	if old != nil {
		prevInspect = old.inspect
	}
	insp, err := g.compileInspection(cfg, prevInspect)
	if err != nil {
		g.mu.Unlock()
		return err
	}
	s := &snapshot{cfg: cfg, policy: pol, inspect: insp, servers: map[string]*VirtualServer{}, entries: map[string]*entry{}}
	keep := map[string]*entry{}
	for name, u := range cfg.Upstreams {
		fp := fingerprint(name, u, cfg.Limits)
		e, ok := g.entries[fp]
		if !ok {
			e = newEntry(g, name, u, int(cfg.Limits.MaxMessageBytes), fp)
		}
		keep[fp] = e
		s.entries[name] = e
	}
	var retired []*entry
	for fp, e := range g.entries {
		if _, ok := keep[fp]; !ok {
			retired = append(retired, e)
			if g.retiring == nil {
				g.retiring = map[*entry]struct{}{}
			}
			g.retiring[e] = struct{}{}
		}
	}
	g.entries = keep
	names := make([]string, 0, len(cfg.Servers))
	for name := range cfg.Servers {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		s.servers[name] = newVirtualServer(name, cfg.Servers[name], s.entries)
		s.servers[name].policy = pol
	}
	g.snap.Store(s)
	g.mu.Unlock()
	g.applyAlerting(cfg)

	for _, e := range retired {
		e.retire()
		for _, sess := range g.allSessions() {
			sess.releaseLink(e)
		}
	}
	for _, e := range s.entries {
		if e.cfg.Start == "at_startup" && e.shared {
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), e.cfg.Timeouts.Connect.Std())
				defer cancel()
				if _, err := e.sharedClient(ctx); err != nil {
					g.log.Warn("upstream failed to start", "upstream", e.name, "error", err)
				}
			}()
		}
	}
	if old != nil {
		g.notifyReload(old, s)
	}
	return nil
}

// notifyReload tells live sessions whose virtual server changed that their
// lists may have changed.
func (g *Gateway) notifyReload(old, cur *snapshot) {
	for name, vs := range cur.servers {
		if ovs, ok := old.servers[name]; ok && ovs.signature == vs.signature && policyVersion(old.policy) == policyVersion(cur.policy) {
			continue // what callers may see changes with the policy too
		}
		for _, sess := range g.sessionsOf(name) {
			sess.sendListChanged(nil)
		}
		g.notifyListeners(name, nil)
	}
}

// Server returns the virtual server with the given name in the current
// configuration.
func (g *Gateway) Server(name string) (*VirtualServer, bool) {
	vs, ok := g.snap.Load().servers[name]
	return vs, ok
}

// Config returns the configuration in force.
func (g *Gateway) Config() *config.Config { return g.snap.Load().cfg }

// Close stops every upstream.
func (g *Gateway) Close(ctx context.Context) error {
	g.mu.Lock()
	g.closed = true
	entries := make([]*entry, 0, len(g.entries)+len(g.retiring))
	for _, e := range g.entries {
		entries = append(entries, e)
	}
	for e := range g.retiring {
		entries = append(entries, e) // still finishing requests: stop now
	}
	g.entries = nil
	g.retiring = nil
	g.mu.Unlock()
	var wg sync.WaitGroup
	for _, e := range entries {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.close(ctx)
		}()
	}
	wg.Wait()
	g.closeAlerting(ctx)
	return nil
}

// snapshot is one immutable generation of compiled configuration.
type snapshot struct {
	cfg     *config.Config
	policy  *policy.Policy // nil: no policy section
	inspect *inspection
	servers map[string]*VirtualServer
	entries map[string]*entry // by upstream name
}

// fingerprint identifies an upstream configuration; a changed fingerprint
// means a new connection. It is a hash because the configuration holds
// secrets.
func fingerprint(name string, u *config.Upstream, lim config.Limits) string {
	return fmt.Sprintf("%x", sha256.Sum256(fmt.Appendf(nil, "%s|%q|%q|%v|%q|%q|%q|%v|%v|%v", name, u.Command, u.Args, revealMap(u.Env), u.Dir, u.URL, u.Transport, revealMap(u.Headers), u.Timeouts, lim.MaxMessageBytes)))
}

func revealMap(m map[string]config.Secret) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v.Reveal()
	}
	return out
}

// UpstreamPID returns the process id of the shared connection of a stdio
// upstream (0 when it is not running or not a stdio upstream).
func (g *Gateway) UpstreamPID(name string) int {
	e, ok := g.snap.Load().entries[name]
	if !ok {
		return 0
	}
	if c := e.currentClient(); c != nil && !c.Closed() {
		return c.Pid()
	}
	return 0
}
