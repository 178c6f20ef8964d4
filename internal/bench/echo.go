package bench

import (
	"context"
	"encoding/json"
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
	Message string `json:"message"`
}

// echoInputSchema is written out rather than inferred from echoInput
// because the tool is registered with the raw Server.AddTool (see below).
var echoInputSchema = json.RawMessage(`{"type":"object","properties":{"message":{"type":"string","description":"the text to send back"}},"required":["message"],"additionalProperties":false}`)

// NewEchoServer returns an MCP server with a single tool, echo, which
// returns its message argument as text content.
//
// It does as little work per call as the SDK allows, so that benchmarks
// measure the transport and whatever sits in front of it rather than the
// tool: the raw Server.AddTool skips the generic mcp.AddTool's per-call
// JSON Schema validation and re-encoding (about a quarter of the server's
// allocations in BenchmarkClientCall), and the handler checks its one
// argument itself.
func NewEchoServer() *mcp.Server {
	srv := mcp.NewServer(&mcp.Implementation{Name: "gatehouse-echo", Version: "1.0.0"}, nil)
	srv.AddTool(&mcp.Tool{
		Name:        "echo",
		Description: "Return the message unchanged.",
		InputSchema: echoInputSchema,
	}, echo)
	return srv
}

// echo is the tool handler. Bad arguments are a tool error (isError), not
// a protocol error, as the MCP spec asks for input validation failures.
func echo(_ context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	var in echoInput
	if err := json.Unmarshal(req.Params.Arguments, &in); err != nil {
		return toolFailure("invalid arguments: " + err.Error()), nil
	}
	return &mcp.CallToolResult{
		Content: []mcp.Content{&mcp.TextContent{Text: in.Message}},
	}, nil
}

func toolFailure(msg string) *mcp.CallToolResult {
	return &mcp.CallToolResult{
		Content: []mcp.Content{&mcp.TextContent{Text: msg}},
		IsError: true,
	}
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
