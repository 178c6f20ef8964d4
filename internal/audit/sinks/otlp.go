package sinks

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploghttp"
	otellog "go.opentelemetry.io/otel/log"
	"go.opentelemetry.io/otel/propagation"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	"go.opentelemetry.io/otel/sdk/resource"

	"gatehouse/internal/audit"
	"gatehouse/internal/config"
)

// Bodies of the OTLP log records.
const (
	OTLPBodyJSON = "json" // the canonical record JSON
	OTLPBodyOCSF = "ocsf" // the OCSF API Activity event, as JSON
)

// Defaults of the OTLP sink.
const (
	DefaultOTLPTimeout     = 30 * time.Second
	DefaultOTLPServiceName = "gatehouse"
	otlpLogsPath           = "/v1/logs"
	otlpScopeName          = "gatehouse/audit"
	otlpEventName          = "gatehouse.audit"
)

// Attribute keys of the OTLP log records.
const (
	OTLPAttrRecordID = "gatehouse.record_id"
	OTLPAttrSeq      = "gatehouse.seq"
	OTLPAttrKind     = "gatehouse.kind"
	OTLPAttrAction   = "gatehouse.action"
	OTLPAttrOutcome  = "gatehouse.outcome"
	OTLPAttrAgent    = "gatehouse.agent"    // the agent's name, else its id
	OTLPAttrAgentID  = "gatehouse.agent_id" // when known
	OTLPAttrUser     = "gatehouse.user"     // when known
	OTLPAttrServer   = "gatehouse.server"   // when known
	OTLPAttrTool     = "gatehouse.tool"     // when known
	OTLPAttrRule     = "gatehouse.rule"     // when known
)

// OTLPConfig configures the OTLP sink (OpenTelemetry logs over HTTP,
// protobuf encoding).
type OTLPConfig struct {
	// Name identifies the sink (default "otlp").
	Name string
	// Endpoint is the collector's URL: "https://otel.internal:4318"
	// (the path /v1/logs is added when there is none) or the full logs
	// URL. http is allowed.
	Endpoint string
	// Headers are sent with every request (an API key, Authorization).
	Headers map[string]config.Secret
	// Body is what each log record carries: "json" (default), the
	// canonical record JSON, or "ocsf", the record as an OCSF API
	// Activity event (JSON).
	Body string
	// Compression is "gzip" (default) or "none".
	Compression string
	// ServiceName is the resource's service.name (default "gatehouse");
	// ResourceAttributes are added to the resource.
	ServiceName        string
	ResourceAttributes map[string]string
	// TLS sets a private CA or a client certificate for an https
	// endpoint; nil means the system roots.
	TLS *TLSFiles
	// Timeout bounds one Send (default 30s).
	Timeout time.Duration
}

// OTLP exports each record as one OpenTelemetry log record: timestamp =
// the record's time, severity INFO (WARN for denied and error outcomes),
// body = the record as JSON (canonical or OCSF), attributes gatehouse.*
// (kind, action, outcome, agent, tool, record id, …) and the trace context
// of the record's traceparent. Send exports the batch in one request and
// returns its result: no background batching, no retries of its own (the
// sink's owner resends the batch).
type OTLP struct {
	name     string
	ocsf     bool
	timeout  time.Duration
	logger   otellog.Logger
	provider *sdklog.LoggerProvider
	exporter *otlploghttp.Exporter
	client   *http.Client
	mu       sync.Mutex // one Send at a time: the collected batch is per call, the exporter is shared
}

var _ audit.Sink = (*OTLP)(nil)

// NewOTLP validates cfg and creates the exporter. It does not connect:
// the first Send does.
func NewOTLP(cfg OTLPConfig) (*OTLP, error) {
	if cfg.Name == "" {
		cfg.Name = "otlp"
	}
	errf := func(format string, a ...any) error {
		return fmt.Errorf("audit sink %q (otlp): "+format, append([]any{cfg.Name}, a...)...)
	}
	if cfg.Endpoint == "" {
		return nil, errf("endpoint is required (e.g. https://otel-collector:4318)")
	}
	u, err := url.Parse(cfg.Endpoint)
	switch {
	case err != nil:
		return nil, errf("endpoint is not a URL")
	case u.User != nil:
		return nil, errf("endpoint: credentials do not belong in the URL (use headers)")
	case u.RawQuery != "" || u.Fragment != "":
		return nil, errf("endpoint: no query or fragment (credentials go in headers)")
	case u.Scheme != "http" && u.Scheme != "https", u.Host == "":
		return nil, errf("endpoint %q: use http(s)://host[:port][/path]", cfg.Endpoint)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = otlpLogsPath
	}
	if cfg.TLS != nil && u.Scheme == "http" {
		return nil, errf("tls is set but endpoint %q is plain http", u.String())
	}

	var ocsf bool
	switch cfg.Body {
	case "", OTLPBodyJSON:
	case OTLPBodyOCSF:
		ocsf = true
	default:
		return nil, errf("body %q: use %q or %q", cfg.Body, OTLPBodyJSON, OTLPBodyOCSF)
	}
	compression := otlploghttp.GzipCompression
	switch cfg.Compression {
	case "", "gzip":
	case "none":
		compression = otlploghttp.NoCompression
	default:
		return nil, errf("compression %q: use gzip or none", cfg.Compression)
	}
	headers := make(map[string]string, len(cfg.Headers))
	for k, v := range cfg.Headers {
		if !validHeaderName(k) {
			return nil, errf("headers: %q is not a valid header name", k)
		}
		if strings.ContainsAny(v.Reveal(), "\r\n\x00") {
			return nil, errf("headers: the value of %s holds a line break or NUL", k)
		}
		headers[textproto.CanonicalMIMEHeaderKey(k)] = v.Reveal()
	}
	if cfg.Timeout < 0 {
		return nil, errf("timeout must not be negative")
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultOTLPTimeout
	}
	if cfg.ServiceName == "" {
		cfg.ServiceName = DefaultOTLPServiceName
	}

	transport := http.DefaultTransport.(*http.Transport).Clone()
	if cfg.TLS != nil {
		tc, err := cfg.TLS.load()
		if err != nil {
			return nil, errf("tls: %w", err)
		}
		transport.TLSClientConfig = tc
	}
	client := &http.Client{Transport: transport, Timeout: cfg.Timeout}

	// Every setting is given, so OTEL_EXPORTER_OTLP_* variables meant for
	// the gateway's own telemetry do not leak into the audit trail.
	exporter, err := otlploghttp.New(context.Background(),
		otlploghttp.WithEndpointURL(u.String()),
		otlploghttp.WithHeaders(headers),
		otlploghttp.WithCompression(compression),
		otlploghttp.WithTimeout(cfg.Timeout),
		otlploghttp.WithHTTPClient(client),
		otlploghttp.WithRetry(otlploghttp.RetryConfig{Enabled: false}),
	)
	if err != nil {
		return nil, errf("%w", err)
	}

	attrs := []attribute.KeyValue{attribute.String("service.name", cfg.ServiceName)}
	for k, v := range cfg.ResourceAttributes {
		switch k {
		case "":
			return nil, errf("resource_attributes: empty key")
		case "service.name":
			return nil, errf("resource_attributes: set service.name with service_name")
		}
		attrs = append(attrs, attribute.String(k, v))
	}
	provider := sdklog.NewLoggerProvider(
		sdklog.WithResource(resource.NewSchemaless(attrs...)),
		sdklog.WithProcessor(otlpCollector{}),
	)
	return &OTLP{
		name:     cfg.Name,
		ocsf:     ocsf,
		timeout:  cfg.Timeout,
		logger:   provider.Logger(otlpScopeName),
		provider: provider,
		exporter: exporter,
		client:   client,
	}, nil
}

// validHeaderName reports whether s is an HTTP token.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c >= 0x7f || c <= ' ' || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, c) {
			return false
		}
	}
	return true
}

// Name implements audit.Sink.
func (o *OTLP) Name() string { return o.name }

// Send turns the batch into log records and exports them in one request.
func (o *OTLP) Send(ctx context.Context, recs []audit.Record) error {
	if len(recs) == 0 {
		return nil
	}
	o.mu.Lock()
	defer o.mu.Unlock()

	// The SDK builds the records (resource, scope, trace context, limits);
	// otlpCollector hands them back here rather than to a batching
	// processor, so that this call exports them and sees the outcome.
	batch := make([]sdklog.Record, 0, len(recs))
	collect := context.WithValue(context.Background(), otlpBatchKey{}, &batch)
	now := time.Now()
	for i := range recs {
		r := &recs[i]
		body, err := o.body(r)
		if err != nil {
			return fmt.Errorf("otlp sink %q: encoding record %s: %w", o.name, r.ID, err)
		}
		var lr otellog.Record
		lr.SetEventName(otlpEventName)
		lr.SetTimestamp(r.Time)
		lr.SetObservedTimestamp(now)
		if r.Outcome.Status == audit.OutcomeDenied || r.Outcome.Status == audit.OutcomeError {
			lr.SetSeverity(otellog.SeverityWarn)
			lr.SetSeverityText("WARN")
		} else {
			lr.SetSeverity(otellog.SeverityInfo)
			lr.SetSeverityText("INFO")
		}
		lr.SetBody(attribute.StringValue(string(body)))
		lr.AddAttributes(otlpAttributes(r)...)
		ectx := collect
		if r.Context.TraceParent != "" {
			// An invalid traceparent leaves the context as it is.
			ectx = propagation.TraceContext{}.Extract(collect, propagation.MapCarrier{"traceparent": r.Context.TraceParent})
		}
		o.logger.Emit(ectx, lr)
	}
	if len(batch) != len(recs) {
		return fmt.Errorf("otlp sink %q: built %d of %d log records", o.name, len(batch), len(recs))
	}

	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	if err := o.exporter.Export(ctx, batch); err != nil {
		return fmt.Errorf("otlp sink %q: exporting %d records: %w", o.name, len(batch), err)
	}
	return nil
}

func (o *OTLP) body(r *audit.Record) ([]byte, error) {
	if o.ocsf {
		return json.Marshal(OCSF(*r))
	}
	return json.Marshal(r)
}

func otlpAttributes(r *audit.Record) []attribute.KeyValue {
	attrs := []attribute.KeyValue{
		attribute.String(OTLPAttrRecordID, r.ID),
		attribute.Int64(OTLPAttrSeq, r.Seq),
		attribute.String(OTLPAttrKind, r.Kind),
		attribute.String(OTLPAttrAction, r.Action),
		attribute.String(OTLPAttrOutcome, r.Outcome.Status),
	}
	agent := r.Actor.AgentName
	if agent == "" {
		agent = r.Actor.AgentID
	}
	for _, kv := range [...]struct{ k, v string }{
		{OTLPAttrAgent, agent},
		{OTLPAttrAgentID, r.Actor.AgentID},
		{OTLPAttrUser, r.Actor.User},
		{OTLPAttrServer, r.Target.Server},
		{OTLPAttrTool, r.Target.Tool},
		{OTLPAttrRule, r.Outcome.Rule},
	} {
		if kv.v != "" {
			attrs = append(attrs, attribute.String(kv.k, kv.v))
		}
	}
	return attrs
}

// Close shuts the exporter down and releases idle connections.
func (o *OTLP) Close() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := o.exporter.Shutdown(ctx)
	if perr := o.provider.Shutdown(ctx); err == nil {
		err = perr
	}
	o.client.CloseIdleConnections()
	return err
}

// otlpBatchKey carries, in the context of Logger.Emit, the slice that
// otlpCollector appends the emitted record to.
type otlpBatchKey struct{}

// otlpCollector is a Processor that hands each emitted record back to the
// Send that emitted it.
type otlpCollector struct{}

func (otlpCollector) Enabled(context.Context, sdklog.EnabledParameters) bool { return true }

func (otlpCollector) OnEmit(ctx context.Context, r *sdklog.Record) error {
	if batch, ok := ctx.Value(otlpBatchKey{}).(*[]sdklog.Record); ok {
		*batch = append(*batch, r.Clone())
	}
	return nil
}

func (otlpCollector) Shutdown(context.Context) error   { return nil }
func (otlpCollector) ForceFlush(context.Context) error { return nil }
