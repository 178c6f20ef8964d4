package sinks

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"
)

// Helpers of the file, webhook, Splunk, syslog and Azure sinks.

// defaultSinkTimeout bounds one request (or one connection and write) of
// the HTTP and syslog sinks when their config leaves Timeout zero.
const defaultSinkTimeout = 10 * time.Second

// sinkHTTPClient is the client of an HTTP sink: its own transport, the
// given TLS config, a timeout per request, and no redirects (a 3xx is an
// error: following one would turn a POST into a GET that "succeeds").
func sinkHTTPClient(timeout time.Duration, tc *tls.Config) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tc
	tr.ResponseHeaderTimeout = timeout
	return &http.Client{
		Transport: tr,
		Timeout:   timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// parseSinkURL checks that raw is an absolute http(s) URL (https only when
// httpsOnly). Errors never repeat the URL: it may carry a credential.
func parseSinkURL(field, raw string, httpsOnly bool) (*url.URL, error) {
	if strings.TrimSpace(raw) == "" {
		return nil, fmt.Errorf("%s is required", field)
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, fmt.Errorf("%s must be an absolute http or https URL", field)
	}
	if httpsOnly && u.Scheme != "https" {
		return nil, fmt.Errorf("%s must be an https URL", field)
	}
	return u, nil
}

// redactedURL is u without user info, query and fragment, for messages.
func redactedURL(u *url.URL) string {
	c := *u
	c.User, c.RawQuery, c.ForceQuery, c.Fragment, c.RawFragment = nil, "", false, "", ""
	return c.String()
}

// sinkCredential wraps a token or key the way sinks keep them: in a
// closure, so formatting a sink (with any verb, at any depth) shows a
// function's address, never the value.
func sinkCredential(v string) func() string { return func() string { return v } }

// formatSink writes what fmt shows of an HTTP sink: its kind, name and
// URL without user info or query, never a credential.
func formatSink(f fmt.State, kind, name string, u *url.URL) {
	fmt.Fprintf(f, "%s sink %q (%s)", kind, name, redactedURL(u))
}

// maxSinkResponse bounds how much of a response body is read.
const maxSinkResponse = 64 << 10

// sinkPost POSTs body and returns the status and (up to 64 KiB of) the
// response body. A transport error has the request URL redacted.
func sinkPost(ctx context.Context, c *http.Client, u *url.URL, hdr http.Header, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return 0, nil, fmt.Errorf("building request to %s: %w", redactedURL(u), err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", "gatehouse-audit/"+ProductVersion)
	}
	resp, err := c.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return 0, nil, fmt.Errorf("POST %s: %w", redactedURL(u), err)
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(io.LimitReader(resp.Body, maxSinkResponse))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)) // let the connection be reused
	if err != nil {
		return resp.StatusCode, rb, fmt.Errorf("POST %s: reading the response: %w", redactedURL(u), err)
	}
	return resp.StatusCode, rb, nil
}

// httpStatusError describes a non-2xx answer. Every one is an error (the
// batch is sent again: records are never dropped), but a 4xx other than
// 408 and 429 says so, as retrying will not help until the receiver or
// the configuration is fixed.
func httpStatusError(status int, body []byte) error {
	detail := snippet(body)
	kind := "server error"
	switch {
	case status == http.StatusTooManyRequests:
		kind = "throttled"
	case status == http.StatusRequestTimeout:
		kind = "timeout"
	case status >= 300 && status < 400:
		kind = "redirect, not followed"
	case status >= 400 && status < 500:
		kind = "client error: fix the receiver or the sink's configuration; the batch is retried"
	}
	if detail != "" {
		return fmt.Errorf("status %d (%s): %s", status, kind, detail)
	}
	return fmt.Errorf("status %d (%s)", status, kind)
}

// snippet is the start of a response body, printable, for an error.
func snippet(b []byte) string {
	const max = 256
	s := strings.TrimSpace(string(b))
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

// contextDeadline is the earlier of now+timeout and ctx's deadline.
func contextDeadline(ctx context.Context, timeout time.Duration) time.Time {
	d := time.Now().Add(timeout)
	if cd, ok := ctx.Deadline(); ok && cd.Before(d) {
		return cd
	}
	return d
}

// dialContextTimeout dials with a timeout, honouring ctx.
func dialContextTimeout(ctx context.Context, network, addr string, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithDeadline(ctx, contextDeadline(ctx, timeout))
	defer cancel()
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}
