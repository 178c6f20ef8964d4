package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// serveStreamable serves a go-sdk server over Streamable HTTP (stateful
// sessions) on a loopback httptest server and returns its URL.
func serveStreamable(t *testing.T, s *sdk.Server) string {
	t.Helper()
	h := sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return s }, nil)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// serveLegacySSE serves a go-sdk server over the 2024-11-05 HTTP+SSE
// transport only.
func serveLegacySSE(t *testing.T, s *sdk.Server) string {
	t.Helper()
	h := sdk.NewSSEHandler(func(*http.Request) *sdk.Server { return s }, nil)
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
	})
	return srv.URL
}

type textArgs struct {
	Text string `json:"text,omitempty"`
}

// echoServer is a small go-sdk server with one tool, "hello".
func echoServer(name string) *sdk.Server {
	s := sdk.NewServer(&sdk.Implementation{Name: name, Version: "1.0.0"}, nil)
	sdk.AddTool(s, &sdk.Tool{Name: "hello", Description: "says hello"}, func(_ context.Context, _ *sdk.CallToolRequest, in textArgs) (*sdk.CallToolResult, any, error) {
		return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: name + " says hello " + in.Text}}}, nil, nil
	})
	return s
}

// manyToolsServer has n tools named t000, t001, … and lists them pageSize
// at a time.
func manyToolsServer(n, pageSize int) *sdk.Server {
	s := sdk.NewServer(&sdk.Implementation{Name: "many", Version: "1.0.0"}, &sdk.ServerOptions{PageSize: pageSize})
	for i := range n {
		name := fmt.Sprintf("t%03d", i)
		sdk.AddTool(s, &sdk.Tool{Name: name, Description: "tool " + name}, func(context.Context, *sdk.CallToolRequest, struct{}) (*sdk.CallToolResult, any, error) {
			return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: "ran " + name}}}, nil, nil
		})
	}
	return s
}

// probe is a go-sdk server whose tools make server→client requests and
// observe cancellation.
type probe struct {
	s *sdk.Server
	// started receives a value when "block" starts; cancelled when its
	// context ends before it was released.
	started   chan struct{}
	cancelled chan struct{}
}

func newProbe() *probe {
	p := &probe{
		s:         sdk.NewServer(&sdk.Implementation{Name: "probe", Version: "1.0.0"}, nil),
		started:   make(chan struct{}, 16),
		cancelled: make(chan struct{}, 16),
	}
	sdk.AddTool(p.s, &sdk.Tool{Name: "block", Description: "blocks until cancelled"}, func(ctx context.Context, _ *sdk.CallToolRequest, _ struct{}) (*sdk.CallToolResult, any, error) {
		p.started <- struct{}{}
		<-ctx.Done()
		p.cancelled <- struct{}{}
		return nil, nil, ctx.Err()
	})
	sdk.AddTool(p.s, &sdk.Tool{Name: "roots", Description: "lists the client's roots"}, func(ctx context.Context, req *sdk.CallToolRequest, _ struct{}) (*sdk.CallToolResult, any, error) {
		res, err := req.Session.ListRoots(ctx, nil)
		if err != nil {
			return nil, nil, fmt.Errorf("roots/list failed: %w", err)
		}
		var uris []string
		for _, r := range res.Roots {
			uris = append(uris, r.URI)
		}
		return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: "roots: " + strings.Join(uris, ",")}}}, nil, nil
	})
	sdk.AddTool(p.s, &sdk.Tool{Name: "sample", Description: "asks the client's model"}, func(ctx context.Context, req *sdk.CallToolRequest, in textArgs) (*sdk.CallToolResult, any, error) {
		res, err := req.Session.CreateMessage(ctx, &sdk.CreateMessageParams{
			Messages:  []*sdk.SamplingMessage{{Role: "user", Content: &sdk.TextContent{Text: in.Text}}},
			MaxTokens: 10,
		})
		if err != nil {
			return nil, nil, fmt.Errorf("sampling failed: %w", err)
		}
		tc, _ := res.Content.(*sdk.TextContent)
		if tc == nil {
			return nil, nil, fmt.Errorf("sampling returned %T", res.Content)
		}
		return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: "LLM response: " + tc.Text}}}, nil, nil
	})
	return p
}

// serveStateless serves a go-sdk server over stateless Streamable HTTP,
// which speaks the 2026-07-28 revision.
func serveStateless(t *testing.T, s *sdk.Server) string {
	t.Helper()
	h := sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return s }, &sdk.StreamableHTTPOptions{Stateless: true})
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
	})
	return srv.URL
}

// countMethods counts the requests a go-sdk server receives, by method.
type countMethods struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *countMethods) middleware(next sdk.MethodHandler) sdk.MethodHandler {
	return func(ctx context.Context, method string, req sdk.Request) (sdk.Result, error) {
		c.mu.Lock()
		if c.n == nil {
			c.n = map[string]int{}
		}
		c.n[method]++
		c.mu.Unlock()
		return next(ctx, method, req)
	}
}

func (c *countMethods) count(method string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[method]
}
