package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// DefaultEchoAddr is where the echo upstream listens unless told otherwise.
// It is loopback only: the echo server has no authentication.
const DefaultEchoAddr = "127.0.0.1:9200"

// EchoOptions configures the echo upstream.
type EchoOptions struct {
	// Stateless serves every request on a throwaway session, without
	// Mcp-Session-Id, as the go-sdk's stateless mode does.
	Stateless bool
	// Logger receives the go-sdk transport's logs; nil discards them.
	Logger *slog.Logger
}

// echoInput is the echo tool's argument object.
type echoInput struct {
	Message string `json:"message" jsonschema:"the text to send back"`
}

// NewEchoServer returns an MCP server with a single tool, echo, which
// returns its message argument as text content. It does as little work as
// the SDK allows so that benchmarks measure the transport and whatever sits
// in front of it, not the tool.
func NewEchoServer() *mcp.Server {
	srv := mcp.NewServer(&mcp.Implementation{Name: "gatehouse-echo", Version: "1.0.0"}, nil)
	mcp.AddTool(srv, &mcp.Tool{
		Name:        "echo",
		Description: "Return the message unchanged.",
	}, echo)
	return srv
}

// echo is the tool handler. Returning a nil output with Out=any keeps the
// SDK from adding structured content, so the response stays small.
func echo(_ context.Context, _ *mcp.CallToolRequest, in echoInput) (*mcp.CallToolResult, any, error) {
	return &mcp.CallToolResult{
		Content: []mcp.Content{&mcp.TextContent{Text: in.Message}},
	}, nil, nil
}

// NewEchoHandler returns the echo upstream as a stateful Streamable HTTP
// handler answering with application/json, the cheapest response form.
func NewEchoHandler() http.Handler {
	return NewEchoHandlerWith(EchoOptions{})
}

// NewEchoHandlerWith is NewEchoHandler with options.
func NewEchoHandlerWith(opts EchoOptions) http.Handler {
	srv := NewEchoServer()
	// One server instance serves every session; it holds no per-session state.
	return mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv },
		&mcp.StreamableHTTPOptions{
			JSONResponse: true,
			Stateless:    opts.Stateless,
			Logger:       opts.Logger,
		})
}

// shutdownGrace bounds how long in-flight requests may finish on shutdown.
const shutdownGrace = 5 * time.Second

// ServeEcho listens on addr and serves the echo upstream until ctx ends.
// ready, if non-nil, is called with the bound address once listening, which
// lets callers use port 0.
func ServeEcho(ctx context.Context, addr string, opts EchoOptions, ready func(net.Addr)) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("echo server: listen: %w", err)
	}
	hs := &http.Server{
		Handler:           NewEchoHandlerWith(opts),
		ReadHeaderTimeout: 10 * time.Second,
	}
	if ready != nil {
		ready(ln.Addr())
	}

	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()

	select {
	case err := <-errc:
		return fmt.Errorf("echo server: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		// Long-lived SSE streams may outlast the grace period; cut them.
		_ = hs.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("echo server: %w", err)
	}
	return nil
}
