package upstream

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"
)

// h1Pool sends POST requests over HTTP/1.1 keep-alive connections with the
// calling goroutine writing the request and reading the response.
//
// It is hand-written because it is on the hot path of every tools/call to
// an HTTP upstream: net/http's Transport runs a reader and a writer
// goroutine per connection, and the hand-offs between them and the caller
// cost more CPU than the gateway's own MCP work (measured: see
// docs/performance.md). Response parsing is net/http's (http.ReadResponse),
// so framing (Content-Length, chunked, Connection: close) stays exact.
// Requests that need a proxy go through net/http instead.
type h1Pool struct {
	scheme   string
	hostPort string // dial address
	host     string // Host header
	tls      *tls.Config
	dialer   net.Dialer

	mu   sync.Mutex
	idle []*h1Conn
}

const maxIdleH1 = 64

type h1Conn struct {
	c  net.Conn
	br *bufio.Reader
	bw *bufio.Writer
}

// newH1Pool returns a pool for the URL's origin, or nil when the URL needs
// a proxy (then net/http is used).
func newH1Pool(raw string) *h1Pool {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return nil
	}
	if p, err := http.ProxyFromEnvironment(&http.Request{URL: u}); err != nil || p != nil {
		return nil
	}
	hp := u.Host
	if u.Port() == "" {
		if u.Scheme == "https" {
			hp = net.JoinHostPort(u.Hostname(), "443")
		} else {
			hp = net.JoinHostPort(u.Hostname(), "80")
		}
	}
	p := &h1Pool{scheme: u.Scheme, hostPort: hp, host: u.Host, dialer: net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}}
	if u.Scheme == "https" {
		p.tls = &tls.Config{ServerName: u.Hostname(), NextProtos: []string{"http/1.1"}, MinVersion: tls.VersionTLS12}
	}
	return p
}

func (p *h1Pool) get(ctx context.Context) (*h1Conn, bool, error) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		c := p.idle[n-1]
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		return c, true, nil
	}
	p.mu.Unlock()
	nc, err := p.dialer.DialContext(ctx, "tcp", p.hostPort)
	if err != nil {
		return nil, false, err
	}
	if p.tls != nil {
		tc := tls.Client(nc, p.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, false, err
		}
		nc = tc
	}
	return &h1Conn{c: nc, br: bufio.NewReaderSize(nc, 16<<10), bw: bufio.NewWriterSize(nc, 8<<10)}, false, nil
}

func (p *h1Pool) put(c *h1Conn) {
	p.mu.Lock()
	if len(p.idle) < maxIdleH1 {
		p.idle = append(p.idle, c)
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	c.c.Close()
}

// close drops the idle connections.
func (p *h1Pool) close() {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, c := range idle {
		c.c.Close()
	}
}

// post sends a POST with the given path+query, headers and body. The
// response body must be closed; reading it to the end returns the
// connection to the pool.
func (p *h1Pool) post(ctx context.Context, requestURI string, header http.Header, body []byte) (*http.Response, error) {
	for attempt := 0; ; attempt++ {
		c, reused, err := p.get(ctx)
		if err != nil {
			return nil, err
		}
		resp, err := p.roundTrip(ctx, c, requestURI, header, body)
		if err == nil {
			return resp, nil
		}
		c.c.Close()
		// A kept-alive connection the server closed while it was idle fails
		// before any byte of a response: the request was not processed, so
		// it is sent again once on a fresh connection (net/http does the
		// same for requests whose body can be replayed).
		if reused && attempt == 0 && errors.Is(err, errIdleClosed) && ctx.Err() == nil {
			continue
		}
		return nil, err
	}
}

var errIdleClosed = errors.New("connection closed before a response")

func (p *h1Pool) roundTrip(ctx context.Context, c *h1Conn, requestURI string, header http.Header, body []byte) (*http.Response, error) {
	// Cancellation: a deadline in the past unblocks the read or write.
	stop := context.AfterFunc(ctx, func() { _ = c.c.SetDeadline(time.Unix(1, 0)) })
	bw := c.bw
	bw.WriteString("POST ")
	bw.WriteString(requestURI)
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(p.host)
	bw.WriteString("\r\nContent-Length: ")
	bw.Write(strconv.AppendInt(make([]byte, 0, 20), int64(len(body)), 10))
	bw.WriteString("\r\n")
	for k, vs := range header {
		for _, v := range vs {
			bw.WriteString(k)
			bw.WriteString(": ")
			bw.WriteString(v)
			bw.WriteString("\r\n")
		}
	}
	bw.WriteString("\r\n")
	bw.Write(body)
	if err := bw.Flush(); err != nil {
		stop()
		return nil, fmt.Errorf("%w: %v", errIdleClosed, err)
	}
	if _, err := c.br.Peek(1); err != nil {
		stop()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%w: %v", errIdleClosed, err)
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		stop()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	resp.Body = &h1Body{rc: resp.Body, pool: p, conn: c, stop: stop, reuse: !resp.Close}
	return resp, nil
}

// h1Body returns its connection to the pool when read to the end.
type h1Body struct {
	rc    io.ReadCloser
	pool  *h1Pool
	conn  *h1Conn
	stop  func() bool
	reuse bool
	eof   bool
	done  bool
}

func (b *h1Body) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if errors.Is(err, io.EOF) {
		b.eof = true
	}
	return n, err
}

func (b *h1Body) Close() error {
	if b.done {
		return nil
	}
	b.done = true
	err := b.rc.Close()
	stopped := b.stop()
	if b.eof && b.reuse && stopped && err == nil {
		b.pool.put(b.conn)
	} else {
		b.conn.c.Close()
	}
	return nil
}

// drain reads what is left of the body for at most d, so that a stream the
// server ends right after its last message leaves a reusable connection.
func (b *h1Body) drain(d time.Duration) {
	if b.done || b.eof {
		return
	}
	const limit = 256 << 10
	_ = b.conn.c.SetReadDeadline(time.Now().Add(d))
	if n, err := io.Copy(io.Discard, io.LimitReader(b.rc, limit)); err == nil && n < limit {
		b.eof = true
	}
	if b.eof {
		_ = b.conn.c.SetReadDeadline(time.Time{})
	}
}
