package upstream

import (
	"context"
	"errors"
	"fmt"
	"net/http"
)

// Target says how to reach an upstream.
type Target struct {
	Stdio *StdioConfig
	HTTP  *HTTPConfig
	// Transport for HTTP: "streamable-http", "sse" or "auto" (try
	// Streamable HTTP, fall back to the 2024-11-05 HTTP+SSE transport).
	Transport string
}

// Connect opens a session with the upstream and performs the initialize
// handshake, asking for protocol version and declaring the given client
// capabilities.
func Connect(ctx context.Context, t Target, opts Options, version string, caps []byte) (*Client, error) {
	if t.Stdio != nil {
		c, err := StartStdio(*t.Stdio, opts)
		if err != nil {
			return nil, err
		}
		return initOrClose(ctx, c, version, caps)
	}
	if t.HTTP == nil {
		return nil, errors.New("upstream has neither a command nor a URL")
	}
	if t.Transport == "sse" {
		return dialSSE(ctx, *t.HTTP, opts, version, caps)
	}
	c, err := initOrClose(ctx, NewStreamableHTTP(*t.HTTP, opts), version, caps)
	if err == nil || t.Transport != "auto" || !looksLegacy(err) {
		return c, err
	}
	c, sseErr := dialSSE(ctx, *t.HTTP, opts, version, caps)
	if sseErr != nil {
		return nil, fmt.Errorf("streamable HTTP: %w; HTTP+SSE fallback: %v", err, sseErr)
	}
	return c, nil
}

func dialSSE(ctx context.Context, cfg HTTPConfig, opts Options, version string, caps []byte) (*Client, error) {
	c, err := DialLegacySSE(ctx, cfg, opts)
	if err != nil {
		return nil, err
	}
	return initOrClose(ctx, c, version, caps)
}

func initOrClose(ctx context.Context, c *Client, version string, caps []byte) (*Client, error) {
	if _, err := c.Initialize(ctx, version, caps); err != nil {
		_ = c.Close(context.Background())
		return nil, err
	}
	return c, nil
}

// looksLegacy reports whether a failed Streamable HTTP initialize looks
// like a server that only has the old HTTP+SSE transport: a 4xx without a
// JSON-RPC error body, as the transport's backward-compatibility rules say.
func looksLegacy(err error) bool {
	var se *StatusError
	if !errors.As(err, &se) || se.RPC != nil {
		return false
	}
	switch se.Status {
	case http.StatusBadRequest, http.StatusNotFound, http.StatusMethodNotAllowed:
		return true
	}
	return false
}
