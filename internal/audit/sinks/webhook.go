package sinks

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"gatehouse/internal/audit"
	"gatehouse/internal/config"
	"gatehouse/internal/webhooksig"
)

// WebhookConfig configures the webhook sink.
type WebhookConfig struct {
	// Name identifies the sink (default "webhook").
	Name string
	// URL receives the POSTs (http or https).
	URL string
	// Secret is the HMAC-SHA256 key, at least 16 bytes (32 random bytes
	// recommended). Never logged.
	Secret config.Secret
	// Timeout bounds one request (default 10s).
	Timeout time.Duration
	// CAFile is a PEM bundle trusted in place of the system roots.
	CAFile string
}

// Webhook POSTs each batch as {"records":[…]} (the records' canonical
// JSON, in order) with these headers:
//
//	Content-Type: application/json
//	X-Gatehouse-Timestamp: <unix seconds>
//	X-Gatehouse-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>
//
// The signed content is the timestamp header's value, a dot, and the raw
// body bytes. A receiver recomputes the HMAC over exactly that, compares
// in constant time, and rejects timestamps too far from its clock (e.g.
// 5 minutes) to stop replays; it deduplicates records on their id (a
// batch may arrive more than once). A 2xx answer means delivered; any
// other answer or a network error fails the Send, and the batch is sent
// again (with a fresh timestamp and signature).
type Webhook struct {
	name   string
	url    *url.URL
	secret func() string
	client *http.Client
}

var _ audit.Sink = (*Webhook)(nil)

// NewWebhook validates cfg.
func NewWebhook(cfg WebhookConfig) (*Webhook, error) {
	if cfg.Name == "" {
		cfg.Name = "webhook"
	}
	errf := func(format string, a ...any) error {
		return fmt.Errorf("audit sink %q (webhook): "+format, append([]any{cfg.Name}, a...)...)
	}
	u, err := parseSinkURL("url", cfg.URL, false)
	if err != nil {
		return nil, errf("%w", err)
	}
	if len(cfg.Secret) < webhooksig.MinKey {
		return nil, errf("secret must be at least %d bytes (use 32 random bytes)", webhooksig.MinKey)
	}
	if cfg.Timeout < 0 {
		return nil, errf("timeout must not be negative")
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = defaultSinkTimeout
	}
	tc, err := TLSFiles{CAFile: cfg.CAFile}.load()
	if err != nil {
		return nil, errf("%w", err)
	}
	return &Webhook{
		name:   cfg.Name,
		url:    u,
		secret: sinkCredential(cfg.Secret.Reveal()),
		client: sinkHTTPClient(cfg.Timeout, tc),
	}, nil
}

// Name implements audit.Sink.
func (w *Webhook) Name() string { return w.name }

// Format shows the sink's name and URL (without query), whatever the verb.
func (w *Webhook) Format(f fmt.State, _ rune) { formatSink(f, "webhook", w.name, w.url) }

// Send POSTs the batch.
func (w *Webhook) Send(ctx context.Context, recs []audit.Record) error {
	if len(recs) == 0 {
		return nil
	}
	body, err := json.Marshal(struct {
		Records []audit.Record `json:"records"`
	}{recs})
	if err != nil {
		return fmt.Errorf("webhook sink %q: encoding: %w", w.name, err)
	}
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	hdr := http.Header{
		"Content-Type":             {"application/json"},
		webhooksig.TimestampHeader: {ts},
		webhooksig.SignatureHeader: {webhooksig.Sign([]byte(w.secret()), ts, body)},
	}
	status, rb, err := sinkPost(ctx, w.client, w.url, hdr, body)
	if err != nil {
		return fmt.Errorf("webhook sink %q: %w", w.name, err)
	}
	if status < 200 || status > 299 {
		return fmt.Errorf("webhook sink %q: %s: %w", w.name, redactedURL(w.url), httpStatusError(status, rb))
	}
	return nil
}

// Close releases idle connections.
func (w *Webhook) Close() error {
	w.client.CloseIdleConnections()
	return nil
}
