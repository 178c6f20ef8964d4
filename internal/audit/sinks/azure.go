package sinks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"gatehouse/internal/audit"
	"gatehouse/internal/config"
)

// Defaults of the Azure Monitor sink.
const (
	DefaultAzureScope   = "https://monitor.azure.com//.default"
	DefaultAzureTimeout = 30 * time.Second
	// AzureMaxBody is the Logs Ingestion API's limit on one call.
	AzureMaxBody    = 1 << 20
	azureAPIVersion = "2023-01-01"
)

// AzureConfig configures the Azure Monitor Logs Ingestion sink (Microsoft
// Sentinel, Log Analytics).
type AzureConfig struct {
	// Name identifies the sink (default "azure").
	Name string
	// Endpoint is the data collection endpoint's logs ingestion URL (or
	// the DCR's own), e.g. https://my-dce-abcd.westeurope-1.ingest.monitor.azure.com.
	Endpoint string
	// DCRImmutableID is the data collection rule's immutable id ("dcr-…").
	DCRImmutableID string
	// StreamName is the DCR's input stream, e.g. "Custom-GatehouseAudit".
	StreamName string
	// TenantID, ClientID and ClientSecret are the Entra ID (Azure AD)
	// application's; it needs the "Monitoring Metrics Publisher" role on
	// the DCR. ClientSecret is never logged.
	TenantID     string
	ClientID     string
	ClientSecret config.Secret
	// TokenURL overrides the token endpoint (default
	// https://login.microsoftonline.com/<tenant_id>/oauth2/v2.0/token;
	// set it for sovereign clouds and tests).
	TokenURL string
	// Scope overrides the token scope (default
	// https://monitor.azure.com//.default).
	Scope string
	// MaxBodyBytes splits a batch into calls of at most this size (default
	// and maximum 1 MiB, the API's limit).
	MaxBodyBytes int
	// Timeout bounds one request (default 30s).
	Timeout time.Duration
	// CAFile is a PEM bundle trusted in place of the system roots (for a
	// TLS-inspecting proxy).
	CAFile string
}

// AzureMonitor sends records to the Azure Monitor Logs Ingestion API:
//
//	POST {endpoint}/dataCollectionRules/{dcr_immutable_id}/streams/{stream_name}?api-version=2023-01-01
//	Authorization: Bearer <token for https://monitor.azure.com//.default>
//	Content-Type: application/json
//	[{"TimeGenerated":"2025-01-02T03:04:05.678Z","activity_id":99,"actor_user_uid":"agent:…",…},…]
//
// Each row is OCSF(record) flattened: nested objects become columns named
// by their path joined with "_" (actor.user.uid → actor_user_uid,
// unmapped.outcome.rule → unmapped_outcome_rule); lists (resources,
// actor_user_groups, …) and api_request_data stay JSON values (dynamic
// columns). TimeGenerated is the record's time (RFC 3339, UTC). The DCR's
// stream declaration lists the columns it keeps. A batch is split into
// calls of at most 1 MiB; a single row above that has api_request_data
// and unmapped_ai_conversation replaced by a note of their size. Any
// non-2xx answer fails the Send (the batch is resent whole; deduplicate on
// metadata_uid).
type AzureMonitor struct {
	name    string
	url     *url.URL
	maxBody int
	client  *http.Client
	// fetchToken asks Entra ID for a token; a closure, so formatting the
	// sink never shows the client secret.
	fetchToken func(ctx context.Context) (*oauth2.Token, error)

	mu  sync.Mutex
	tok *oauth2.Token // cached until 10s before it expires
}

var _ audit.Sink = (*AzureMonitor)(nil)

// NewAzure validates cfg. It fetches no token: the first Send does.
func NewAzure(cfg AzureConfig) (*AzureMonitor, error) {
	if cfg.Name == "" {
		cfg.Name = "azure"
	}
	errf := func(format string, a ...any) error {
		return fmt.Errorf("audit sink %q (azure): "+format, append([]any{cfg.Name}, a...)...)
	}
	ep, err := parseSinkURL("endpoint", cfg.Endpoint, true)
	if err != nil {
		return nil, errf("%w", err)
	}
	for _, f := range []struct{ name, v string }{
		{"dcr_immutable_id", cfg.DCRImmutableID}, {"stream_name", cfg.StreamName},
		{"tenant_id", cfg.TenantID}, {"client_id", cfg.ClientID},
	} {
		if strings.TrimSpace(f.v) == "" {
			return nil, errf("%s is required", f.name)
		}
		if strings.ContainsAny(f.v, "/?#% \t\r\n") {
			return nil, errf("%s %q has characters not allowed in it", f.name, f.v)
		}
	}
	if cfg.ClientSecret == "" {
		return nil, errf("client_secret is required")
	}
	tokenURL := cfg.TokenURL
	if tokenURL == "" {
		tokenURL = "https://login.microsoftonline.com/" + url.PathEscape(cfg.TenantID) + "/oauth2/v2.0/token"
	}
	tu, err := parseSinkURL("token_url", tokenURL, true)
	if err != nil {
		return nil, errf("%w", err)
	}
	if cfg.Scope == "" {
		cfg.Scope = DefaultAzureScope
	}
	if cfg.MaxBodyBytes < 0 || cfg.MaxBodyBytes > AzureMaxBody {
		return nil, errf("max_body_bytes must be between 1 and %d", AzureMaxBody)
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = AzureMaxBody
	}
	if cfg.Timeout < 0 {
		return nil, errf("timeout must not be negative")
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultAzureTimeout
	}
	tc, err := TLSFiles{CAFile: cfg.CAFile}.load()
	if err != nil {
		return nil, errf("%w", err)
	}

	u := *ep
	u.Path = strings.TrimRight(u.Path, "/") + "/dataCollectionRules/" + cfg.DCRImmutableID + "/streams/" + cfg.StreamName
	u.RawPath = ""
	q := u.Query()
	q.Set("api-version", azureAPIVersion)
	u.RawQuery = q.Encode()

	client := sinkHTTPClient(cfg.Timeout, tc)
	cc := &clientcredentials.Config{
		ClientID:     cfg.ClientID,
		ClientSecret: cfg.ClientSecret.Reveal(),
		TokenURL:     tu.String(),
		Scopes:       []string{cfg.Scope},
		AuthStyle:    oauth2.AuthStyleInParams,
	}
	return &AzureMonitor{
		name:    cfg.Name,
		url:     &u,
		maxBody: cfg.MaxBodyBytes,
		client:  client,
		fetchToken: func(ctx context.Context) (*oauth2.Token, error) {
			return cc.Token(context.WithValue(ctx, oauth2.HTTPClient, client))
		},
	}, nil
}

// Name implements audit.Sink.
func (a *AzureMonitor) Name() string { return a.name }

// Format shows the sink's name and URL, whatever the verb.
func (a *AzureMonitor) Format(f fmt.State, _ rune) { formatSink(f, "azure", a.name, a.url) }

// Send posts the batch, in calls of at most MaxBodyBytes.
func (a *AzureMonitor) Send(ctx context.Context, recs []audit.Record) error {
	if len(recs) == 0 {
		return nil
	}
	if err := a.send(ctx, recs); err != nil {
		return fmt.Errorf("azure sink %q: %w", a.name, err)
	}
	return nil
}

func (a *AzureMonitor) send(ctx context.Context, recs []audit.Record) error {
	var body bytes.Buffer
	n := 0 // rows in body
	flush := func() error {
		if n == 0 {
			return nil
		}
		body.WriteByte(']')
		err := a.post(ctx, body.Bytes())
		body.Reset()
		n = 0
		return err
	}
	for _, r := range recs {
		row, err := azureRow(r, a.maxBody)
		if err != nil {
			return err
		}
		if n > 0 && body.Len()+1+len(row)+1 > a.maxBody {
			if err := flush(); err != nil {
				return err
			}
		}
		if n == 0 {
			body.WriteByte('[')
		} else {
			body.WriteByte(',')
		}
		body.Write(row)
		n++
	}
	return flush()
}

// azureRow is r's flattened OCSF row as JSON, at most max-2 bytes (room
// for the array's brackets).
func azureRow(r audit.Record, max int) ([]byte, error) {
	row := map[string]any{"TimeGenerated": r.Time.UTC().Format("2006-01-02T15:04:05.000Z07:00")}
	flattenOCSF(row, "", OCSF(r))
	b, err := json.Marshal(row)
	if err != nil {
		return nil, fmt.Errorf("encoding record %s: %w", r.ID, err)
	}
	if len(b)+2 <= max {
		return b, nil
	}
	for _, k := range []string{"api_request_data", "unmapped_ai_conversation"} {
		if v, ok := row[k]; ok {
			vb, _ := json.Marshal(v)
			row[k] = fmt.Sprintf("[left out: %d bytes, above the Logs Ingestion API's 1 MiB limit]", len(vb))
		}
	}
	if b, err = json.Marshal(row); err != nil {
		return nil, fmt.Errorf("encoding record %s: %w", r.ID, err)
	}
	if len(b)+2 > max {
		return nil, fmt.Errorf("record %s is %d bytes as a row, above the %d-byte limit of one call", r.ID, len(b), max)
	}
	return b, nil
}

// flattenOCSF copies ev into row, nested objects as prefix_key columns.
func flattenOCSF(row map[string]any, prefix string, ev map[string]any) {
	for k, v := range ev {
		if prefix != "" {
			k = prefix + "_" + k
		}
		if m, ok := v.(map[string]any); ok {
			flattenOCSF(row, k, m)
			continue
		}
		row[k] = v
	}
}

// token returns the cached token, or a new one when it is about to expire.
func (a *AzureMonitor) token(ctx context.Context) (*oauth2.Token, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.tok.Valid() {
		return a.tok, nil
	}
	tok, err := a.fetchToken(ctx)
	if err != nil {
		return nil, fmt.Errorf("getting a token: %w", azureTokenError(err))
	}
	a.tok = tok
	return tok, nil
}

// azureTokenError keeps what helps from a token error, without the
// endpoint's response body (it may echo request details).
func azureTokenError(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		msg := "token endpoint answered"
		if re.Response != nil {
			msg += " " + re.Response.Status
		}
		if re.ErrorCode != "" {
			msg += ": " + re.ErrorCode
		}
		if re.ErrorDescription != "" {
			msg += ": " + snippet([]byte(re.ErrorDescription))
		}
		return fmt.Errorf("%s", msg)
	}
	return err
}

// resetToken drops the cached token, so the next call gets a new one.
func (a *AzureMonitor) resetToken() {
	a.mu.Lock()
	a.tok = nil
	a.mu.Unlock()
}

func (a *AzureMonitor) post(ctx context.Context, body []byte) error {
	tok, err := a.token(ctx)
	if err != nil {
		return err
	}
	hdr := http.Header{
		"Authorization": {"Bearer " + tok.AccessToken},
		"Content-Type":  {"application/json"},
	}
	status, rb, err := sinkPost(ctx, a.client, a.url, hdr, body)
	if err != nil {
		return err
	}
	if status >= 200 && status <= 299 {
		return nil
	}
	if status == http.StatusUnauthorized || status == http.StatusForbidden {
		a.resetToken()
	}
	return fmt.Errorf("%s: %w", redactedURL(a.url), httpStatusError(status, rb))
}

// Close releases idle connections.
func (a *AzureMonitor) Close() error {
	a.client.CloseIdleConnections()
	return nil
}
