// Package demo implements the built-in demo upstream MCP servers behind
// `gatehouse demo-server crm|tickets|chat`.
//
// Each server is self-contained: deterministic, in-memory data that looks like
// a small company's CRM, ticket queue and team chat. The data deliberately
// contains things a gateway should care about (payment card numbers, email
// addresses, a chat channel shared with a customer) so that policy and DLP
// demos have something realistic to act on without any external service.
//
// All state lives in the value built by [NewServer]; two servers never share
// data, and nothing is written outside the process.
package demo

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Version is the implementation version every demo server reports.
const Version = "1.0.0"

// builders maps each demo server name to the constructor of its backend.
// It is a function rather than a package variable so there is no shared
// mutable state between servers.
func builders() map[string]func() backend {
	return map[string]func() backend{
		"crm":     func() backend { return newCRM() },
		"tickets": func() backend { return newTickets() },
		"chat":    func() backend { return newChat() },
	}
}

// backend is what each demo server contributes: its tools, resources and
// prompts, plus optional server-wide settings.
type backend interface {
	// title is the human-readable server title.
	title() string
	// instructions are sent to clients at initialization.
	instructions() string
	// register adds the server's tools, resources and prompts.
	register(s *mcp.Server)
}

// completer is implemented by backends that support completion/complete.
type completer interface {
	complete(ctx context.Context, req *mcp.CompleteRequest) (*mcp.CompleteResult, error)
}

// Names returns the valid demo server names, sorted.
func Names() []string {
	names := make([]string, 0, 3)
	for name := range builders() {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// NewServer builds the demo server called name ("crm", "tickets" or "chat")
// with fresh in-memory state. It does not log.
func NewServer(name string) (*mcp.Server, error) {
	return newServer(name, slog.New(slog.DiscardHandler))
}

// Run serves the demo server called name over t until the peer disconnects
// or ctx is cancelled. When the peer stops sending (for stdio: stdin closes),
// calls already received are still answered before Run returns. Logs go to
// stderr, never to t, because for the stdio transport stdout carries the
// protocol.
func Run(ctx context.Context, name string, t mcp.Transport) error {
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("demo_server", name)
	s, err := newServer(name, logger)
	if err != nil {
		return err
	}
	logger.Info("demo server starting", "version", Version)
	if err := s.Run(ctx, &drainingTransport{inner: t, timeout: drainTimeout}); err != nil {
		return fmt.Errorf("demo server %s: %w", name, err)
	}
	return nil
}

func newServer(name string, logger *slog.Logger) (*mcp.Server, error) {
	build, ok := builders()[name]
	if !ok {
		return nil, fmt.Errorf("unknown demo server %q (want one of: %s)", name, strings.Join(Names(), ", "))
	}
	c := build()
	opts := &mcp.ServerOptions{
		Instructions: c.instructions(),
		Logger:       logger,
		// An empty (non-nil) value drops the SDK's default "logging"
		// capability: these servers never send log notifications, so
		// advertising it would be dishonest. Tools, resources, prompts and
		// completions are still inferred from what is registered.
		Capabilities: &mcp.ServerCapabilities{},
	}
	if cp, ok := c.(completer); ok {
		opts.CompletionHandler = cp.complete
	}
	s := mcp.NewServer(&mcp.Implementation{
		Name:    "gatehouse-demo-" + name,
		Title:   c.title(),
		Version: Version,
	}, opts)
	c.register(s)
	s.AddReceivingMiddleware(logRequests(logger))
	return s, nil
}

// logRequests logs every request the server handles, so a demo operator can
// see on stderr which calls actually reached the upstream (and which a
// gateway stopped before they got here).
func logRequests(logger *slog.Logger) mcp.Middleware {
	return func(next mcp.MethodHandler) mcp.MethodHandler {
		return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
			attrs := []any{"method", method}
			if p, ok := req.GetParams().(*mcp.CallToolParamsRaw); ok && p != nil {
				attrs = append(attrs, "tool", p.Name)
			}
			res, err := next(ctx, method, req)
			switch {
			case err != nil:
				logger.Warn("request failed", append(attrs, "error", err)...)
			case method == "tools/call":
				isErr := false
				if r, ok := res.(*mcp.CallToolResult); ok && r != nil {
					isErr = r.IsError
				}
				logger.Info("tool called", append(attrs, "is_error", isErr)...)
			default:
				logger.Debug("request handled", attrs...)
			}
			return res, err
		}
	}
}

// Helpers shared by the backend files.

// normID canonicalises a user-supplied record id: ids are matched
// case-insensitively and surrounding whitespace is ignored, because models
// often lower-case or pad them.
func normID(id string) string { return strings.ToUpper(strings.TrimSpace(id)) }

// textResult wraps human-readable text as a tool result. The typed handler
// still attaches the structured output alongside it.
func textResult(format string, args ...any) *mcp.CallToolResult {
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: fmt.Sprintf(format, args...)}}}
}

// readOnly returns annotations for a tool that only reads the demo's own
// in-memory data.
func readOnly(title string) *mcp.ToolAnnotations {
	return &mcp.ToolAnnotations{
		Title:          title,
		ReadOnlyHint:   true,
		IdempotentHint: true,
		OpenWorldHint:  new(false),
	}
}

// oneOf reports whether v is in allowed, and formats a helpful error if not.
func oneOf(field, v string, allowed []string) error {
	if slices.Contains(allowed, v) {
		return nil
	}
	return fmt.Errorf("invalid %s %q: want one of %s", field, v, strings.Join(allowed, ", "))
}
