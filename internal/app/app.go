// Package app is the composition root: it loads the configuration, builds
// the gateway and the HTTP listener, and reloads on SIGHUP or file change.
// It is the only package that wires the others together.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"

	"gatehouse/internal/audit/sinks"
	"gatehouse/internal/config"
	"gatehouse/internal/gateway"
	"gatehouse/internal/identity"
	"gatehouse/internal/inspect/alert"
	"gatehouse/internal/inspect/detectors"
	"gatehouse/internal/mcp"
	"gatehouse/internal/policy"
	"gatehouse/internal/telemetry"
)

// Options configure Run.
type Options struct {
	ConfigPath string
	// Listen overrides the configuration's listen address when set.
	Listen string
	// LogOutput receives the log (default stderr).
	LogOutput io.Writer
	// Ready, when set, receives the bound address once the listener is up.
	Ready chan<- string
	// DebugListen, when set, serves Go's pprof profiles on this address
	// (keep it on loopback).
	DebugListen string
}

// Run serves until ctx ends.
func Run(ctx context.Context, opts Options) error {
	cfg, err := LoadConfig(opts.ConfigPath)
	if err != nil {
		return err
	}
	defaultIssuer := cfg.Identity.Issuer == "http://"+cfg.Listen
	if opts.Listen != "" {
		cfg.Listen = opts.Listen
	}
	if opts.LogOutput == nil {
		opts.LogOutput = os.Stderr
	}
	level := new(slog.LevelVar)
	level.Set(cfg.Log.SlogLevel())
	log := newLogger(opts.LogOutput, cfg.Log.Format, level)

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", cfg.Listen, err)
	}
	defer ln.Close()
	if defaultIssuer {
		// The default issuer is the address actually listened on (a port
		// given as 0 or overridden with --listen).
		cfg.Identity.Issuer = "http://" + ln.Addr().String()
	}

	mux := http.NewServeMux()
	var servers func() []string
	var ids *identitySystem
	gwOpts := gateway.Options{Logger: log}
	if needsIdentity(cfg) {
		ids, err = startIdentity(ctx, cfg, mux, func() []string { return servers() }, log)
		if err != nil {
			return err
		}
		defer ids.close()
		gwOpts.Secrets = ids.vault
		gwOpts.Pins = ids.st
	}
	engine, err := startPolicy(ctx, cfg, ids, log)
	if err != nil {
		return err
	}
	defer engine.close()
	gwOpts.Policy = engine.Engine
	trail, err := startAudit(ctx, cfg, ids, log)
	if err != nil {
		return err
	}
	if trail != nil {
		defer trail.close()
		gwOpts.Audit, gwOpts.AuditFields = trail.Trail, cfg.Audit.MaskFields
		ids.audit.t.Store(trail.Trail)
	}
	metrics := telemetry.New()
	// Alerts: logged, and POSTed to inspect.alerts.webhook (the gateway
	// follows its changes on reload); closed after the gateway, so alerts
	// raised while it stops are still delivered.
	notifier, err := alert.New(alert.Options{Logger: log, Webhook: alert.WebhookFromConfig(cfg.Inspect.Alerts),
		OnAlert: func(a alert.Alert) { metrics.Alert(string(a.Kind)) }, OnDrop: metrics.AlertsDroppedAdd})
	if err != nil {
		return err
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := notifier.Close(ctx); err != nil {
			log.Warn("alerts still queued were dropped at shutdown", "error", err, "dropped", notifier.Dropped())
		}
	}()
	gwOpts.Metrics, gwOpts.Alerts = metrics, notifier
	gwOpts.AnomalyState = filepath.Join(dataDir(cfg), "anomaly-baselines.json")
	gw, err := gateway.New(cfg, gwOpts)
	if err != nil {
		return err
	}
	if ids != nil && ids.padmin != nil {
		ids.padmin.bind(engine.Engine, gw)
	}
	if ids != nil {
		ids.setToolPins(gw.ToolPinChanged)
	}
	servers = func() []string {
		names := make([]string, 0, len(gw.Config().Servers))
		for name := range gw.Config().Servers {
			names = append(names, name)
		}
		return names
	}
	if ids != nil {
		metrics.WatchCredentials(ids.st, identity.ExpiryWarning, log)
	}
	hopts := mcp.Options{Logger: log, Issuer: cfg.Identity.Issuer, OnAuthFailure: func(code string) {
		if code == "" {
			code = "missing"
		}
		metrics.AuthFailures.WithLabelValues(code).Inc()
	}}
	if ids != nil {
		hopts.Record = ids.audit.Log
	}
	if cfg.Identity.Auth == "required" {
		hopts.Auth = ids.authn
	} else {
		log.Warn("authentication is OFF (identity.auth: off): anyone who can reach the gateway can use every virtual server")
	}
	h := mcp.NewHandlerWith(gw, hopts)

	mux.Handle("/mcp/", h)
	mux.Handle("GET /metrics", metrics.Handler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "Gatehouse MCP gateway. Virtual servers:")
		for name := range gw.Config().Servers {
			fmt.Fprintf(w, "  http://%s/mcp/%s\n", r.Host, name)
		}
	})

	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	log.Info("gatehouse listening", "addr", "http://"+ln.Addr().String(), "servers", len(cfg.Servers), "upstreams", len(cfg.Upstreams))
	for name := range cfg.Servers {
		log.Info("virtual server", "name", name, "url", "http://"+ln.Addr().String()+"/mcp/"+name)
	}

	if opts.DebugListen != "" {
		dbg := http.NewServeMux()
		dbg.HandleFunc("/debug/pprof/", pprof.Index)
		dbg.HandleFunc("/debug/pprof/profile", pprof.Profile)
		dbg.HandleFunc("/debug/pprof/trace", pprof.Trace)
		dsrv := &http.Server{Addr: opts.DebugListen, Handler: dbg, ReadHeaderTimeout: 10 * time.Second}
		go func() {
			if err := dsrv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Warn("debug listener", "error", err)
			}
		}()
		defer dsrv.Close()
	}

	// The reload triggers are installed before Ready is signalled, so a
	// change made right after start-up is not missed.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	var events <-chan fsnotify.Event
	if w, err := fsnotify.NewWatcher(); err == nil {
		defer w.Close()
		// Watch the directory: editors and config managers replace the file
		// rather than write it in place.
		if err := w.Add(filepath.Dir(opts.ConfigPath)); err == nil {
			events = w.Events
		} else {
			log.Warn("not watching the configuration file; reload with SIGHUP", "error", err)
		}
	}
	reloadCtx, stopReload := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		watchReload(reloadCtx, opts.ConfigPath, cfg.Listen, gw, ids, level, log, hup, events)
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		gw.RunAnomaly(reloadCtx) // anomaly windows and baselines (saved again by gw.Close)
	}()
	if opts.Ready != nil {
		opts.Ready <- ln.Addr().String()
	}

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
	case err = <-serveErr:
	}
	stopReload()
	wg.Wait()
	log.Info("shutting down")
	shutCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	h.Close()
	_ = srv.Shutdown(shutCtx)
	_ = gw.Close(shutCtx)
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// dataDir is where the gateway keeps its state besides the store: the
// SQLite file's directory, else gatehouse-data (as for the audit queue).
func dataDir(cfg *config.Config) string {
	if cfg.Store.Driver == "sqlite" && cfg.Store.Path != "" {
		return filepath.Dir(cfg.Store.Path)
	}
	return "gatehouse-data"
}

func newLogger(w io.Writer, format string, level *slog.LevelVar) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// LoadConfig loads and validates a configuration file, policies
// included: a condition that does not compile is a load error located in
// the file, like any other.
func LoadConfig(path string) (*config.Config, error) {
	cfg, err := config.LoadFile(path)
	if err != nil {
		return nil, err
	}
	if _, err := policy.Compile(cfg); err != nil {
		return nil, err
	}
	var problems config.Problems
	for i, sc := range cfg.Audit.Sinks {
		if err := sinks.Check(sc.Type, sc.Settings); err != nil {
			problems = append(problems, cfg.ProblemAt(fmt.Sprintf("audit.sinks[%d].settings", i), "%v", err))
		}
	}
	// The detectors' own checks (a phone region, a gitleaks rule id).
	for _, se := range detectors.Check(cfg.Inspect) {
		problems = append(problems, cfg.ProblemAt(se.Path, "%v", se.Err))
	}
	if len(problems) > 0 {
		return nil, problems
	}
	return cfg, nil
}

// watchReload reloads the configuration on SIGHUP and when the file
// changes. An invalid new configuration is logged with every problem and
// the running one stays.
func watchReload(ctx context.Context, path, listen string, gw *gateway.Gateway, ids *identitySystem, level *slog.LevelVar, log *slog.Logger, hup <-chan os.Signal, events <-chan fsnotify.Event) {
	abs, _ := filepath.Abs(path)
	var debounce <-chan time.Time
	reload := func(why string) {
		cfg, err := LoadConfig(path)
		if err != nil {
			log.Error("configuration rejected; keeping the running one", "reason", why, "errors", err.Error())
			return
		}
		if cfg.Listen != listen {
			log.Warn("listen address changes need a restart; keeping the old one", "configured", cfg.Listen, "in_use", listen)
			cfg.Listen = listen
		}
		old := gw.Config()
		if cfg.Identity.Auth != old.Identity.Auth || cfg.Store != old.Store || needsIdentity(cfg) != (ids != nil) {
			log.Error("configuration rejected; keeping the running one", "reason", why,
				"errors", "changes to identity.auth, store or enabling the store need a restart")
			return
		}
		cfg.Identity.Issuer = old.Identity.Issuer
		if ids != nil {
			if err := ids.apply(ctx, cfg); err != nil {
				log.Error("configuration rejected; keeping the running one", "reason", why, "errors", err.Error())
				return
			}
		}
		if err := gw.Apply(cfg); err != nil {
			log.Error("applying configuration", "error", err)
			return
		}
		level.Set(cfg.Log.SlogLevel())
		log.Info("configuration reloaded", "reason", why, "servers", len(cfg.Servers), "upstreams", len(cfg.Upstreams))
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			reload("SIGHUP")
		case ev := <-events:
			if p, _ := filepath.Abs(ev.Name); p == abs && ev.Op&(fsnotify.Write|fsnotify.Create|fsnotify.Rename) != 0 {
				debounce = time.After(200 * time.Millisecond)
			}
		case <-debounce:
			debounce = nil
			reload("file changed")
		}
	}
}
