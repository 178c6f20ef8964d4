package sinks

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"gatehouse/internal/audit"
	"gatehouse/internal/config"
)

// Defaults of the Splunk sink.
const (
	DefaultSplunkSourceType    = "gatehouse:audit"
	DefaultSplunkMaxBatchBytes = 1 << 20
	splunkSource               = "gatehouse"
	splunkEventPath            = "/services/collector/event"
)

// SplunkConfig configures the Splunk HTTP Event Collector sink.
type SplunkConfig struct {
	// Name identifies the sink (default "splunk").
	Name string
	// URL is the HEC base URL, e.g. https://splunk.example.com:8088;
	// /services/collector/event is appended (unless already there).
	URL string
	// Token is the HEC token, sent as "Authorization: Splunk <token>".
	// Never logged.
	Token config.Secret
	// Host is the events' host when a record names no replica (default:
	// this machine's host name).
	Host string
	// SourceType is the events' sourcetype (default "gatehouse:audit").
	SourceType string
	// Index is the events' index; empty leaves it to the token's default.
	Index string
	// MaxBatchBytes splits a batch into requests of at most this size
	// (default 1 MiB, HEC's historical max_content_length).
	MaxBatchBytes int
	// Timeout bounds one request (default 10s).
	Timeout time.Duration
	// CAFile is a PEM bundle trusted in place of the system roots
	// (HEC often has a private CA).
	CAFile string
}

// Splunk posts records to a Splunk HTTP Event Collector as OCSF events.
// Each request body is a concatenation of JSON events, one a record:
//
//	{"time":1700000000.123,"host":"<replica>","source":"gatehouse",
//	 "sourcetype":"gatehouse:audit","index":"<index>","event":{<OCSF(record)>}}
//
// time is the record's time in epoch seconds with milliseconds; index
// is left out when not configured. HEC must answer 200 with
// {"text":"Success","code":0}; anything else fails the Send and the
// batch is resent (deduplicate on event.metadata.uid, the record id).
type Splunk struct {
	name       string
	url        *url.URL
	token      func() string
	host       string
	sourceType string
	index      string
	maxBatch   int
	client     *http.Client
}

var _ audit.Sink = (*Splunk)(nil)

// NewSplunk validates cfg.
func NewSplunk(cfg SplunkConfig) (*Splunk, error) {
	if cfg.Name == "" {
		cfg.Name = "splunk"
	}
	errf := func(format string, a ...any) error {
		return fmt.Errorf("audit sink %q (splunk): "+format, append([]any{cfg.Name}, a...)...)
	}
	u, err := parseSinkURL("url", cfg.URL, false)
	if err != nil {
		return nil, errf("%w", err)
	}
	if !strings.HasSuffix(u.Path, splunkEventPath) {
		u.Path = strings.TrimRight(u.Path, "/") + splunkEventPath
		u.RawPath = ""
	}
	tok := strings.TrimSpace(cfg.Token.Reveal())
	if tok == "" {
		return nil, errf("token is required")
	}
	if strings.ContainsAny(tok, " \r\n\t") {
		return nil, errf("token must not contain white space")
	}
	if cfg.SourceType == "" {
		cfg.SourceType = DefaultSplunkSourceType
	}
	if cfg.Host == "" {
		cfg.Host, _ = os.Hostname()
	}
	if cfg.MaxBatchBytes < 0 {
		return nil, errf("max_batch_bytes must not be negative")
	}
	if cfg.MaxBatchBytes == 0 {
		cfg.MaxBatchBytes = DefaultSplunkMaxBatchBytes
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
	return &Splunk{
		name:       cfg.Name,
		url:        u,
		token:      sinkCredential(tok),
		host:       cfg.Host,
		sourceType: cfg.SourceType,
		index:      cfg.Index,
		maxBatch:   cfg.MaxBatchBytes,
		client:     sinkHTTPClient(cfg.Timeout, tc),
	}, nil
}

// Name implements audit.Sink.
func (s *Splunk) Name() string { return s.name }

// Format shows the sink's name and URL (without query), whatever the verb.
func (s *Splunk) Format(f fmt.State, _ rune) { formatSink(f, "splunk", s.name, s.url) }

// splunkEvent is one HEC event.
type splunkEvent struct {
	Time       json.Number    `json:"time"`
	Host       string         `json:"host,omitempty"`
	Source     string         `json:"source"`
	SourceType string         `json:"sourcetype"`
	Index      string         `json:"index,omitempty"`
	Event      map[string]any `json:"event"`
}

// splunkTime is t in epoch seconds with a millisecond fraction.
func splunkTime(t time.Time) json.Number {
	ms := t.UnixMilli()
	sec, frac := ms/1000, ms%1000
	if frac < 0 {
		sec, frac = sec-1, frac+1000
	}
	return json.Number(strconv.FormatInt(sec, 10) + "." + fmt.Sprintf("%03d", frac))
}

// Send posts the batch, in requests of at most MaxBatchBytes.
func (s *Splunk) Send(ctx context.Context, recs []audit.Record) error {
	if len(recs) == 0 {
		return nil
	}
	var body bytes.Buffer
	for _, r := range recs {
		host := r.Replica
		if host == "" {
			host = s.host
		}
		ev, err := json.Marshal(splunkEvent{
			Time:       splunkTime(r.Time),
			Host:       host,
			Source:     splunkSource,
			SourceType: s.sourceType,
			Index:      s.index,
			Event:      OCSF(r),
		})
		if err != nil {
			return fmt.Errorf("splunk sink %q: encoding record %s: %w", s.name, r.ID, err)
		}
		if body.Len() > 0 && body.Len()+len(ev) > s.maxBatch {
			if err := s.post(ctx, body.Bytes()); err != nil {
				return err
			}
			body.Reset()
		}
		body.Write(ev)
	}
	return s.post(ctx, body.Bytes())
}

// splunkResponse is HEC's answer.
type splunkResponse struct {
	Text string `json:"text"`
	Code *int   `json:"code"`
}

func (s *Splunk) post(ctx context.Context, body []byte) error {
	hdr := http.Header{
		"Authorization": {"Splunk " + s.token()},
		"Content-Type":  {"application/json"},
	}
	status, rb, err := sinkPost(ctx, s.client, s.url, hdr, body)
	if err != nil {
		return fmt.Errorf("splunk sink %q: %w", s.name, err)
	}
	var resp splunkResponse
	parsed := json.Unmarshal(rb, &resp) == nil && resp.Code != nil
	if status == http.StatusOK && parsed && *resp.Code == 0 {
		return nil
	}
	detail := rb
	if parsed {
		detail = []byte(fmt.Sprintf("%s (HEC code %d)", resp.Text, *resp.Code))
	}
	if status == http.StatusOK {
		return fmt.Errorf("splunk sink %q: %s: unexpected answer: %s", s.name, redactedURL(s.url), snippet(detail))
	}
	return fmt.Errorf("splunk sink %q: %s: %w", s.name, redactedURL(s.url), httpStatusError(status, detail))
}

// Close releases idle connections.
func (s *Splunk) Close() error {
	s.client.CloseIdleConnections()
	return nil
}
