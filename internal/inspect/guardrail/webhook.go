package guardrail

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"gatehouse/internal/inspect"
	"gatehouse/internal/webhooksig"
)

// WebhookOptions configure the generic HTTP guardrail (the contract is in
// the package documentation).
type WebhookOptions struct {
	// Name identifies the guardrail (required).
	Name string
	// URL receives the POSTs (http or https).
	URL string
	// Key is the HMAC-SHA256 signing key, at least webhooksig.MinKey bytes.
	Key string
	// BearerToken, when set, is sent as "Authorization: Bearer <token>".
	BearerToken string
	// HTTPClient replaces the default client (its transport is kept; the
	// response limit is added under it).
	HTTPClient *http.Client
	// Now replaces time.Now for the signature timestamp (tests).
	Now func() time.Time
}

// Webhook is the generic HTTP guardrail.
type Webhook struct {
	name   string
	url    string
	key    []byte
	bearer string
	client *http.Client
	now    func() time.Time
}

var _ Guardrail = (*Webhook)(nil)

// NewWebhook validates o.
func NewWebhook(o WebhookOptions) (*Webhook, error) {
	if o.Name == "" {
		return nil, errors.New("webhook guardrail: name is required")
	}
	errf := func(format string, a ...any) error {
		return fmt.Errorf("guardrail %q (webhook): "+format, append([]any{o.Name}, a...)...)
	}
	u, err := url.Parse(o.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return nil, errf("url: want http(s)://host/path without credentials")
	}
	if len(o.Key) < webhooksig.MinKey {
		return nil, errf("key must be at least %d bytes (use 32 random bytes)", webhooksig.MinKey)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Webhook{
		name: o.Name, url: u.String(), key: []byte(o.Key), bearer: o.BearerToken,
		client: newHTTPClient(o.HTTPClient), now: o.Now,
	}, nil
}

// Name implements Guardrail.
func (w *Webhook) Name() string { return w.name }

// webhookRequest is the body the gateway POSTs.
type webhookRequest struct {
	Direction Direction       `json:"direction"`
	Server    string          `json:"server"`
	Upstream  string          `json:"upstream"`
	Method    string          `json:"method"`
	Tool      string          `json:"tool"`
	Agent     string          `json:"agent"`
	Team      string          `json:"team"`
	Text      string          `json:"text"`
	JSON      json.RawMessage `json:"json"`
}

// webhookResponse is the body a receiver answers.
type webhookResponse struct {
	Action   Action            `json:"action"`
	Reason   string            `json:"reason"`
	JSON     json.RawMessage   `json:"json"`
	Text     string            `json:"text"`
	Findings []inspect.Finding `json:"findings"`
}

// Check implements Guardrail.
func (w *Webhook) Check(ctx context.Context, r *Request) (Verdict, error) {
	doc := r.JSON
	if len(doc) == 0 {
		doc = json.RawMessage("null")
	}
	body, err := json.Marshal(webhookRequest{
		Direction: r.Direction, Server: r.Server, Upstream: r.Upstream, Method: r.Method,
		Tool: r.Tool, Agent: r.Agent, Team: r.Team, Text: r.Text, JSON: doc,
	})
	if err != nil {
		return Verdict{}, fmt.Errorf("encoding request: %w", err)
	}
	ts := strconv.FormatInt(w.now().Unix(), 10)
	hdr := http.Header{
		webhooksig.TimestampHeader: {ts},
		webhooksig.SignatureHeader: {webhooksig.Sign(w.key, ts, body)},
	}
	if w.bearer != "" {
		hdr.Set("Authorization", "Bearer "+w.bearer)
	}
	rb, err := postJSON(ctx, w.client, w.url, hdr, body)
	if err != nil {
		return Verdict{}, err
	}
	return parseWebhookResponse(rb)
}

// parseWebhookResponse reads a receiver's answer.
func parseWebhookResponse(b []byte) (Verdict, error) {
	var resp webhookResponse
	if err := decodeResponse(b, &resp); err != nil {
		return Verdict{}, err
	}
	v := Verdict{Action: resp.Action, Reason: resp.Reason, Findings: resp.Findings}
	switch resp.Action {
	case Allow, Deny:
	case Mutate:
		if len(resp.JSON) > 0 && string(resp.JSON) != "null" {
			v.JSON = resp.JSON
		} else {
			v.Text = resp.Text
		}
	default:
		return Verdict{}, fmt.Errorf("%w: action %.32q: want allow, deny or mutate", errBadVerdict, resp.Action)
	}
	for i := range v.Findings {
		if v.Findings[i].Confidence == 0 {
			v.Findings[i].Confidence = inspect.Medium
		}
	}
	return v, nil
}
