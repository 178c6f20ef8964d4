package upstream

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"gatehouse/internal/sse"
)

// legacySSEWire speaks the HTTP+SSE transport of protocol revision
// 2024-11-05: a GET opens an event stream whose first event names the URL
// to POST messages to; every message from the server arrives on the stream.
type legacySSEWire struct {
	cfg      HTTPConfig
	endpoint string
	body     io.ReadCloser
	cancel   context.CancelFunc
	done     chan struct{}
}

// ErrNotLegacySSE means the URL did not answer like a 2024-11-05 server.
var ErrNotLegacySSE = errors.New("not an HTTP+SSE (2024-11-05) endpoint")

// DialLegacySSE opens the event stream and waits for the endpoint event.
func DialLegacySSE(ctx context.Context, cfg HTTPConfig, opts Options) (*Client, error) {
	if cfg.Client == nil {
		cfg.Client = http.DefaultClient
	}
	streamCtx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(streamCtx, http.MethodGet, cfg.URL, nil)
	if err != nil {
		cancel()
		return nil, err
	}
	for k, v := range cfg.Headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Accept", "text/event-stream")
	// The dial deadline applies to getting the endpoint event only; the
	// stream itself lives as long as the client.
	stop := context.AfterFunc(ctx, cancel)
	resp, err := cfg.Client.Do(req)
	if err != nil {
		stop()
		cancel()
		return nil, fmt.Errorf("%s: %w", opts.Name, redactURL(err))
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		stop()
		resp.Body.Close()
		cancel()
		return nil, fmt.Errorf("%s: %w (HTTP %d, %s)", opts.Name, ErrNotLegacySSE, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	maxMsg := opts.MaxMessageBytes
	if maxMsg <= 0 {
		maxMsg = 64 << 20
	}
	r := sse.NewReader(resp.Body, maxMsg)
	var endpoint string
	for endpoint == "" {
		ev, err := r.Next()
		if err != nil {
			stop()
			resp.Body.Close()
			cancel()
			return nil, fmt.Errorf("%s: waiting for the endpoint event: %w", opts.Name, err)
		}
		if ev.Type != "endpoint" {
			continue
		}
		ref, err := url.Parse(strings.TrimSpace(string(ev.Data)))
		if err != nil {
			stop()
			resp.Body.Close()
			cancel()
			return nil, fmt.Errorf("%s: bad endpoint %q: %w", opts.Name, ev.Data, err)
		}
		base, _ := url.Parse(cfg.URL)
		ep := base.ResolveReference(ref)
		if ep.Scheme != base.Scheme || ep.Host != base.Host {
			// A server must not redirect the gateway's messages (and the
			// credentials in its headers) to another origin.
			stop()
			resp.Body.Close()
			cancel()
			return nil, fmt.Errorf("%s: endpoint %q is on another origin", opts.Name, ep)
		}
		endpoint = ep.String()
	}
	stop()
	w := &legacySSEWire{cfg: cfg, endpoint: endpoint, body: resp.Body, cancel: cancel, done: make(chan struct{})}
	c := newClient(opts, w)
	go w.readLoop(c, r)
	return c, nil
}

func (w *legacySSEWire) readLoop(c *Client, r *sse.Reader) {
	defer close(w.done)
	for {
		ev, err := r.Next()
		if err != nil {
			cause := fmt.Errorf("%w: %s: event stream ended", ErrClosed, c.opts.Name)
			if !errors.Is(err, io.EOF) {
				cause = fmt.Errorf("%w: %s: event stream: %v", ErrClosed, c.opts.Name, err)
			}
			w.body.Close()
			c.fail(cause)
			return
		}
		if ev.Empty() || ev.Type != "message" {
			continue
		}
		c.deliver(bytes.Clone(ev.Data), nil)
	}
}

func (w *legacySSEWire) send(ctx context.Context, msg []byte, _ *Call) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.endpoint, bytes.NewReader(msg))
	if err != nil {
		return err
	}
	for k, v := range w.cfg.Headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := w.cfg.Client.Do(req)
	if err != nil {
		return redactURL(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return &StatusError{Status: resp.StatusCode}
	}
	return nil
}

func (w *legacySSEWire) close(context.Context) error {
	w.cancel()
	<-w.done
	return nil
}
