package sinks_test

import (
	"compress/gzip"
	"context"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	"google.golang.org/protobuf/proto"

	"gatehouse/internal/audit"
	"gatehouse/internal/audit/sinks"
	"gatehouse/internal/config"
)

// otlpReceiver is an OTLP/HTTP logs receiver (protobuf) that keeps what it
// gets and answers as told.
type otlpReceiver struct {
	*testServer
	mu       sync.Mutex
	requests []*collogspb.ExportLogsServiceRequest
	headers  []http.Header
	// answer, if set, replaces the success answer: a status and, for
	// 200, a partial success.
	answer func() (status int, partial *collogspb.ExportLogsPartialSuccess)
}

func newOTLPReceiver(t *testing.T, pki *testPKI) *otlpReceiver {
	t.Helper()
	o := &otlpReceiver{}
	var tc *tls.Config
	if pki != nil {
		tc = pki.serverTLS()
	}
	o.testServer = startTestServer(t, tc, http.HandlerFunc(o.serve))
	return o
}

func (o *otlpReceiver) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/logs" {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-protobuf" {
		http.Error(w, "content type "+ct, http.StatusUnsupportedMediaType)
		return
	}
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = zr
	}
	raw, err := io.ReadAll(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	req := &collogspb.ExportLogsServiceRequest{}
	if err := proto.Unmarshal(raw, req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	o.mu.Lock()
	answer := o.answer
	o.mu.Unlock()
	status, partial := http.StatusOK, (*collogspb.ExportLogsPartialSuccess)(nil)
	if answer != nil {
		status, partial = answer()
	}
	if status != http.StatusOK {
		http.Error(w, "receiver says no", status)
		return
	}
	o.mu.Lock()
	o.requests = append(o.requests, req)
	o.headers = append(o.headers, r.Header.Clone())
	o.mu.Unlock()
	resp, _ := proto.Marshal(&collogspb.ExportLogsServiceResponse{PartialSuccess: partial})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(resp)
}

func (o *otlpReceiver) setAnswer(f func() (int, *collogspb.ExportLogsPartialSuccess)) {
	o.mu.Lock()
	o.answer = f
	o.mu.Unlock()
}

func (o *otlpReceiver) got() ([]*collogspb.ExportLogsServiceRequest, []http.Header) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]*collogspb.ExportLogsServiceRequest(nil), o.requests...), append([]http.Header(nil), o.headers...)
}

// logRecords flattens a request, with the resource and scope of each.
type receivedLog struct {
	resource map[string]string
	scope    string
	rec      *logspb.LogRecord
}

func flattenLogs(req *collogspb.ExportLogsServiceRequest) []receivedLog {
	var out []receivedLog
	for _, rl := range req.GetResourceLogs() {
		res := map[string]string{}
		for _, kv := range rl.GetResource().GetAttributes() {
			res[kv.GetKey()] = kv.GetValue().GetStringValue()
		}
		for _, sl := range rl.GetScopeLogs() {
			for _, lr := range sl.GetLogRecords() {
				out = append(out, receivedLog{resource: res, scope: sl.GetScope().GetName(), rec: lr})
			}
		}
	}
	return out
}

func otlpAttrs(kvs []*commonpb.KeyValue) map[string]any {
	m := map[string]any{}
	for _, kv := range kvs {
		switch v := kv.GetValue().GetValue().(type) {
		case *commonpb.AnyValue_StringValue:
			m[kv.GetKey()] = v.StringValue
		case *commonpb.AnyValue_IntValue:
			m[kv.GetKey()] = v.IntValue
		default:
			m[kv.GetKey()] = fmt.Sprint(v)
		}
	}
	return m
}

func newOTLPSink(t *testing.T, cfg sinks.OTLPConfig) *sinks.OTLP {
	t.Helper()
	o, err := sinks.NewOTLP(cfg)
	if err != nil {
		t.Fatalf("NewOTLP: %v", err)
	}
	t.Cleanup(func() { _ = o.Close() })
	return o
}

func TestNewOTLPValidation(t *testing.T) {
	const secret = "otlp-api-key-123"
	ok := sinks.OTLPConfig{Endpoint: "http://127.0.0.1:4318", Headers: map[string]config.Secret{"Authorization": "Bearer " + secret}}
	tests := []struct {
		name    string
		mutate  func(*sinks.OTLPConfig)
		wantErr string
	}{
		{"valid", func(*sinks.OTLPConfig) {}, ""},
		{"valid full path, ocsf, no compression", func(c *sinks.OTLPConfig) {
			c.Endpoint, c.Body, c.Compression = "https://otel.example:4318/custom/v1/logs", sinks.OTLPBodyOCSF, "none"
		}, ""},
		{"no endpoint", func(c *sinks.OTLPConfig) { c.Endpoint = "" }, "endpoint is required"},
		{"endpoint without scheme", func(c *sinks.OTLPConfig) { c.Endpoint = "otel:4318" }, "http(s)://host"},
		{"grpc scheme", func(c *sinks.OTLPConfig) { c.Endpoint = "grpc://otel:4317" }, "http(s)://host"},
		{"credentials in URL", func(c *sinks.OTLPConfig) { c.Endpoint = "https://u:" + secret + "@otel:4318" }, "use headers"},
		{"query in URL", func(c *sinks.OTLPConfig) { c.Endpoint = "https://otel:4318/v1/logs?api_key=" + secret }, "no query"},
		{"bad body", func(c *sinks.OTLPConfig) { c.Body = "cef" }, `body "cef"`},
		{"bad compression", func(c *sinks.OTLPConfig) { c.Compression = "zstd" }, `compression "zstd"`},
		{"bad header name", func(c *sinks.OTLPConfig) { c.Headers = map[string]config.Secret{"X Key": secret} }, `"X Key" is not a valid header name`},
		{"header value with newline", func(c *sinks.OTLPConfig) {
			c.Headers = map[string]config.Secret{"X-Key": config.Secret(secret + "\r\nX-Evil: 1")}
		}, "line break"},
		{"tls with http", func(c *sinks.OTLPConfig) { c.TLS = &sinks.TLSFiles{} }, "plain http"},
		{"negative timeout", func(c *sinks.OTLPConfig) { c.Timeout = -time.Second }, "must not be negative"},
		{"empty resource attribute key", func(c *sinks.OTLPConfig) { c.ResourceAttributes = map[string]string{"": "x"} }, "empty key"},
		{"service.name as a resource attribute", func(c *sinks.OTLPConfig) {
			c.ResourceAttributes = map[string]string{"service.name": "x"}
		}, "service_name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ok
			tt.mutate(&cfg)
			o, err := sinks.NewOTLP(cfg)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				_ = o.Close()
				return
			}
			if err == nil {
				_ = o.Close()
				t.Fatalf("no error, want one containing %q", tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not contain %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error reveals the secret: %q", err)
			}
		})
	}
}

func TestOTLPSend(t *testing.T) {
	pki := newTestPKI(t)
	base := time.Date(2026, 3, 4, 5, 6, 7, 8_000_000, time.UTC)
	tests := []struct {
		name   string
		pki    *testPKI
		mutate func(*sinks.OTLPConfig)
		body   func(t *testing.T, r audit.Record) string
	}{
		{
			name: "canonical json body, gzip",
			body: func(t *testing.T, r audit.Record) string { return string(mustJSON(t, r)) },
		},
		{
			name:   "ocsf body, no compression",
			mutate: func(c *sinks.OTLPConfig) { c.Body, c.Compression = sinks.OTLPBodyOCSF, "none" },
			body: func(t *testing.T, r audit.Record) string {
				b, err := json.Marshal(sinks.OCSF(r))
				if err != nil {
					t.Fatal(err)
				}
				return string(b)
			},
		},
		{
			name: "mutual tls",
			pki:  &pki,
			mutate: func(c *sinks.OTLPConfig) {
				c.TLS = &sinks.TLSFiles{CAFile: pki.CAFile, CertFile: pki.ClientCert, KeyFile: pki.ClientKey}
			},
			body: func(t *testing.T, r audit.Record) string { return string(mustJSON(t, r)) },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rcv := newOTLPReceiver(t, tt.pki)
			cfg := sinks.OTLPConfig{
				Name:               "otel",
				Endpoint:           rcv.URL,
				Headers:            map[string]config.Secret{"authorization": "Bearer k1", "X-Tenant": "acme"},
				ServiceName:        "gatehouse-test",
				ResourceAttributes: map[string]string{"deployment.environment": "test"},
				Timeout:            5 * time.Second,
			}
			if tt.mutate != nil {
				tt.mutate(&cfg)
			}
			o := newOTLPSink(t, cfg)
			if o.Name() != "otel" {
				t.Errorf("Name() = %q", o.Name())
			}
			batches := [][]audit.Record{sampleAuditRecords(4, 1, base), nil, sampleAuditRecords(2, 5, base.Add(time.Hour))}
			batches[2][1].Actor.AgentName = "" // the agent's id stands in for its name
			batches[2][1].Target.Tool = ""
			batches[2][1].Context.TraceParent = ""
			for _, b := range batches {
				if err := o.Send(context.Background(), b); err != nil {
					t.Fatalf("Send: %v", err)
				}
			}

			reqs, hdrs := rcv.got()
			if len(reqs) != 2 {
				t.Fatalf("%d requests, want one per non-empty batch (2)", len(reqs))
			}
			for _, h := range hdrs {
				if h.Get("Authorization") != "Bearer k1" || h.Get("X-Tenant") != "acme" {
					t.Errorf("headers %v", h)
				}
				if wantGzip := cfg.Compression != "none"; (h.Get("Content-Encoding") == "gzip") != wantGzip {
					t.Errorf("Content-Encoding %q", h.Get("Content-Encoding"))
				}
			}
			for i, want := range [][]audit.Record{batches[0], batches[2]} {
				logs := flattenLogs(reqs[i])
				if len(logs) != len(want) {
					t.Fatalf("request %d: %d log records, want %d", i, len(logs), len(want))
				}
				for j, r := range want {
					checkOTLPLog(t, logs[j], r, tt.body(t, r))
				}
			}
		})
	}
}

func checkOTLPLog(t *testing.T, got receivedLog, r audit.Record, wantBody string) {
	t.Helper()
	lr := got.rec
	if got.resource["service.name"] != "gatehouse-test" || got.resource["deployment.environment"] != "test" {
		t.Errorf("%s: resource %v", r.ID, got.resource)
	}
	if got.scope != "gatehouse/audit" {
		t.Errorf("%s: scope %q", r.ID, got.scope)
	}
	if lr.GetTimeUnixNano() != uint64(r.Time.UnixNano()) {
		t.Errorf("%s: time %d, want %d", r.ID, lr.GetTimeUnixNano(), r.Time.UnixNano())
	}
	if lr.GetObservedTimeUnixNano() == 0 {
		t.Errorf("%s: no observed time", r.ID)
	}
	wantSev, wantText := logspb.SeverityNumber_SEVERITY_NUMBER_INFO, "INFO"
	if r.Outcome.Status == audit.OutcomeDenied || r.Outcome.Status == audit.OutcomeError {
		wantSev, wantText = logspb.SeverityNumber_SEVERITY_NUMBER_WARN, "WARN"
	}
	if lr.GetSeverityNumber() != wantSev || lr.GetSeverityText() != wantText {
		t.Errorf("%s (%s): severity %v %q, want %v %q", r.ID, r.Outcome.Status, lr.GetSeverityNumber(), lr.GetSeverityText(), wantSev, wantText)
	}
	if lr.GetEventName() != "gatehouse.audit" {
		t.Errorf("%s: event name %q", r.ID, lr.GetEventName())
	}
	if b := lr.GetBody().GetStringValue(); b != wantBody {
		t.Errorf("%s: body\n%s\nwant\n%s", r.ID, b, wantBody)
	}
	agent := r.Actor.AgentName
	if agent == "" {
		agent = r.Actor.AgentID
	}
	want := map[string]any{
		"gatehouse.record_id": r.ID,
		"gatehouse.seq":       r.Seq,
		"gatehouse.kind":      r.Kind,
		"gatehouse.action":    r.Action,
		"gatehouse.outcome":   r.Outcome.Status,
		"gatehouse.agent":     agent,
		"gatehouse.agent_id":  r.Actor.AgentID,
		"gatehouse.user":      r.Actor.User,
		"gatehouse.server":    r.Target.Server,
		"gatehouse.rule":      r.Outcome.Rule,
	}
	if r.Target.Tool != "" {
		want["gatehouse.tool"] = r.Target.Tool
	}
	attrs := otlpAttrs(lr.GetAttributes())
	if len(attrs) != len(want) {
		t.Errorf("%s: attributes %v, want %v", r.ID, attrs, want)
	}
	for k, v := range want {
		if attrs[k] != v {
			t.Errorf("%s: attribute %s = %v, want %v", r.ID, k, attrs[k], v)
		}
	}
	if r.Context.TraceParent == "" {
		if len(lr.GetTraceId()) != 0 || len(lr.GetSpanId()) != 0 {
			t.Errorf("%s: trace context without a traceparent", r.ID)
		}
		return
	}
	parts := strings.Split(r.Context.TraceParent, "-")
	if hex.EncodeToString(lr.GetTraceId()) != parts[1] || hex.EncodeToString(lr.GetSpanId()) != parts[2] || lr.GetFlags()&1 != 1 {
		t.Errorf("%s: trace %x span %x flags %d, want %s", r.ID, lr.GetTraceId(), lr.GetSpanId(), lr.GetFlags(), r.Context.TraceParent)
	}
}

// TestOTLPUnavailable: a receiver that is down or refuses makes Send fail;
// once it is back the same batch goes through.
func TestOTLPUnavailable(t *testing.T) {
	batch := sampleAuditRecords(3, 1, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	tests := []struct {
		name    string
		breakIt func(t *testing.T, r *otlpReceiver) (repair func())
	}{
		{"receiver down", func(t *testing.T, r *otlpReceiver) func() {
			r.stop()
			return func() { r.start(t) }
		}},
		{"503", func(_ *testing.T, r *otlpReceiver) func() {
			r.setAnswer(func() (int, *collogspb.ExportLogsPartialSuccess) { return http.StatusServiceUnavailable, nil })
			return func() { r.setAnswer(nil) }
		}},
		{"400", func(_ *testing.T, r *otlpReceiver) func() {
			r.setAnswer(func() (int, *collogspb.ExportLogsPartialSuccess) { return http.StatusBadRequest, nil })
			return func() { r.setAnswer(nil) }
		}},
		{"partial success rejecting records", func(_ *testing.T, r *otlpReceiver) func() {
			r.setAnswer(func() (int, *collogspb.ExportLogsPartialSuccess) {
				return http.StatusOK, &collogspb.ExportLogsPartialSuccess{RejectedLogRecords: 1, ErrorMessage: "too old"}
			})
			return func() { r.setAnswer(nil) }
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rcv := newOTLPReceiver(t, nil)
			o := newOTLPSink(t, sinks.OTLPConfig{
				Endpoint: rcv.URL, Timeout: 3 * time.Second,
				Headers: map[string]config.Secret{"Authorization": "Bearer otlp-secret-token"},
			})
			if err := o.Send(context.Background(), sampleAuditRecords(1, 0, time.Now())); err != nil {
				t.Fatalf("Send before the failure: %v", err)
			}
			repair := tt.breakIt(t, rcv)
			start := time.Now()
			err := o.Send(context.Background(), batch)
			if err == nil {
				t.Fatal("Send succeeded against a failing receiver")
			}
			if d := time.Since(start); d > 4*time.Second {
				t.Errorf("Send took %v", d)
			}
			if strings.Contains(err.Error(), "otlp-secret-token") {
				t.Errorf("error reveals the header: %v", err)
			}
			t.Logf("Send error: %v", err)

			repair()
			if err := o.Send(context.Background(), batch); err != nil {
				t.Fatalf("Send after repair: %v", err)
			}
			reqs, _ := rcv.got()
			last := flattenLogs(reqs[len(reqs)-1])
			if len(last) != len(batch) {
				t.Fatalf("last request holds %d records, want %d", len(last), len(batch))
			}
			for i, r := range batch {
				if got := last[i].rec.GetBody().GetStringValue(); got != string(mustJSON(t, r)) {
					t.Errorf("record %d: body %s", i, got)
				}
			}
		})
	}
}
