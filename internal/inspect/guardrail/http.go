package guardrail

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// ErrResponseTooLarge is returned when a guardrail's response is longer
// than Settings.MaxResponseBytes.
var ErrResponseTooLarge = errors.New("response too large")

type responseLimitKey struct{}

// withResponseLimit tells the adapters' HTTP clients how much of a
// response body to read.
func withResponseLimit(ctx context.Context, n int64) context.Context {
	return context.WithValue(ctx, responseLimitKey{}, n)
}

func responseLimit(ctx context.Context) int64 {
	if n, ok := ctx.Value(responseLimitKey{}).(int64); ok && n > 0 {
		return n
	}
	return DefaultMaxResponseBytes
}

// limitTransport fails reading a response body past the request context's
// response limit, so a misbehaving provider cannot make the gateway buffer
// gigabytes. It sits under every adapter, the AWS SDK's included.
type limitTransport struct{ base http.RoundTripper }

func (t limitTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	resp.Body = &limitedBody{rc: resp.Body, left: responseLimit(req.Context())}
	return resp, nil
}

type limitedBody struct {
	rc   io.ReadCloser
	left int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left < 0 {
		return 0, ErrResponseTooLarge
	}
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	if b.left < 0 {
		return 0, ErrResponseTooLarge
	}
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }

// newHTTPClient returns base (or a default client) with the response
// limit under its transport.
func newHTTPClient(base *http.Client) *http.Client {
	c := &http.Client{Timeout: time.Minute} // a backstop; Wrap's timeout is the real bound
	if base != nil {
		cp := *base
		c = &cp
	}
	rt := c.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	c.Transport = limitTransport{base: rt}
	return c
}

// parseBaseURL checks a configured base URL (http or https, no query).
func parseBaseURL(s, def string) (*url.URL, error) {
	if s == "" {
		s = def
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("base url: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("base url %q: want http(s)://host[/path]", u.Redacted())
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("base url %q: must not have credentials, a query or a fragment", u.Redacted())
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	return u, nil
}

// StatusError is a non-2xx answer. It keeps only the status: provider
// error bodies may quote the content they were sent.
type StatusError struct{ Status int }

func (e *StatusError) Error() string {
	return fmt.Sprintf("HTTP %d %s", e.Status, http.StatusText(e.Status))
}

// postJSON POSTs body as JSON with hdr and returns the 2xx response body.
func postJSON(ctx context.Context, c *http.Client, u string, hdr http.Header, body []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("building request: %w", err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("posting: %w", err)
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("reading response: %w", err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, &StatusError{Status: resp.StatusCode}
	}
	return rb, nil
}

// decodeResponse unmarshals a provider response. Its errors name the
// field and the expected type or the offset, never a value: a type error's
// text quotes the offending number and a field's UnmarshalText error (a
// confidence, say) quotes the string, which may be content the provider
// echoed back.
func decodeResponse(b []byte, v any) error {
	err := json.Unmarshal(b, v)
	if err == nil {
		return nil
	}
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Errorf("%w: decoding response: invalid JSON at offset %d", errBadVerdict, se.Offset)
	case errors.As(err, &te):
		return fmt.Errorf("%w: decoding response: field %.64q: want %s", errBadVerdict, te.Field, te.Type)
	}
	return fmt.Errorf("%w: decoding response: invalid value", errBadVerdict)
}
