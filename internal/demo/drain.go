package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// drainTimeout bounds how long end of input waits for in-flight calls, so a
// stuck handler cannot keep the process alive after its client is gone.
const drainTimeout = 5 * time.Second

// drainingTransport answers every call already read before reporting end of
// input.
//
// Without it, a client that pipes its requests and closes stdin (as in
// `printf ... | gatehouse demo-server crm`) gets no output at all: the SDK
// treats read EOF as shutdown, cancels in-flight calls and refuses to write
// their responses (modelcontextprotocol/go-sdk#1061). Closing stdin means "no
// more requests", not "stop replying", so Read holds back io.EOF until the
// responses are written.
//
// Known cost: the wrapper hides the SDK's stdio connection from the server
// session, so the SDK no longer rejects JSON-RPC batches on protocol
// versions that forbid them; batches are still answered correctly.
type drainingTransport struct {
	inner   mcp.Transport
	timeout time.Duration
}

func (t *drainingTransport) Connect(ctx context.Context) (mcp.Connection, error) {
	c, err := t.inner.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &drainingConn{Connection: c, timeout: t.timeout, closed: make(chan struct{})}, nil
}

// SupportsProtocolVersion keeps the inner transport's protocol limits visible
// to the server, which looks for them on the transport it is given.
func (t *drainingTransport) SupportsProtocolVersion(v string) bool {
	if pvs, ok := t.inner.(mcp.ProtocolVersionSupporter); ok {
		return pvs.SupportsProtocolVersion(v)
	}
	return true
}

type drainingConn struct {
	mcp.Connection
	timeout time.Duration

	closeOnce sync.Once
	closed    chan struct{}

	mu      sync.Mutex
	pending map[jsonrpc.ID]bool // calls read but not yet answered
	idle    chan struct{}       // closed when pending empties; nil while nothing waits
}

func (c *drainingConn) Read(ctx context.Context) (jsonrpc.Message, error) {
	msg, err := c.Connection.Read(ctx)
	if err == nil {
		if req, ok := msg.(*jsonrpc.Request); ok && req.IsCall() {
			c.mu.Lock()
			if c.pending == nil {
				c.pending = map[jsonrpc.ID]bool{}
			}
			c.pending[req.ID] = true
			c.mu.Unlock()
		}
		return msg, nil
	}
	if errors.Is(err, io.EOF) {
		c.waitIdle(ctx)
	}
	return nil, err
}

func (c *drainingConn) Write(ctx context.Context, msg jsonrpc.Message) error {
	err := c.Connection.Write(ctx, msg)
	// Count the call as answered even if the write failed: nothing will
	// retry it, and waiting for it would only stall shutdown.
	if resp, ok := msg.(*jsonrpc.Response); ok {
		c.mu.Lock()
		delete(c.pending, resp.ID)
		if len(c.pending) == 0 && c.idle != nil {
			close(c.idle)
			c.idle = nil
		}
		c.mu.Unlock()
	}
	return err
}

func (c *drainingConn) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	if err := c.Connection.Close(); err != nil {
		return fmt.Errorf("closing connection: %w", err)
	}
	return nil
}

// waitIdle blocks until every call read so far has been answered, the
// connection is closed, ctx is done, or the drain timeout expires.
func (c *drainingConn) waitIdle(ctx context.Context) {
	c.mu.Lock()
	if len(c.pending) == 0 {
		c.mu.Unlock()
		return
	}
	if c.idle == nil {
		c.idle = make(chan struct{})
	}
	idle := c.idle
	c.mu.Unlock()

	timer := time.NewTimer(c.timeout)
	defer timer.Stop()
	select {
	case <-idle:
	case <-c.closed:
	case <-ctx.Done():
	case <-timer.C:
	}
}
