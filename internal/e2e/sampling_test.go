package e2e

import (
	"context"
	"strings"
	"sync"
	"testing"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// TestSamplingInspected: a sampling request an upstream sends to the
// client's model is inspected on its way (an email redacted, a secret
// blocked before the client sees it), and so is the model's answer on its
// way back to the upstream.
func TestSamplingInspected(t *testing.T) {
	const token = "ghp_8Kq2Lm4Np6Rs8Tv0Wx2Yz4Ab6Cd8Ef0Gh2Ij4" // GitHub token format, random body
	var mu sync.Mutex
	var prompts []string
	answer := "all good"
	client := &sdk.ClientOptions{
		CreateMessageHandler: func(_ context.Context, req *sdk.CreateMessageRequest) (*sdk.CreateMessageResult, error) {
			mu.Lock()
			defer mu.Unlock()
			for _, m := range req.Params.Messages {
				if tc, ok := m.Content.(*sdk.TextContent); ok {
					prompts = append(prompts, tc.Text)
				}
			}
			return &sdk.CreateMessageResult{Role: "assistant", Model: "e2e-model", Content: &sdk.TextContent{Text: answer}}, nil
		},
	}
	h, _, _ := startAuditedGateway(t, render(t, `
upstreams:
  fx: {command: "{{fixture}}"}
servers:
  fx:
    upstreams: [{upstream: fx, prefix: ""}]
identity: {auth: "off"}
admin: {disabled: true}
`))
	cs := connect(t, h.URL("fx"), v20251125, client)
	seen := func() string {
		mu.Lock()
		defer mu.Unlock()
		return strings.Join(prompts, "\n")
	}

	callText(t, cs, "test_sampling", map[string]any{"prompt": "write to jane.doe@example.org"})
	if got := seen(); !strings.Contains(got, "[redacted:email]") || strings.Contains(got, "jane.doe@example.org") {
		t.Fatalf("the model saw %q, want the email redacted", got)
	}

	res, err := cs.CallTool(ctxT(t), &sdk.CallToolParams{Name: "test_sampling", Arguments: map[string]any{"prompt": "use " + token}})
	if strings.Contains(seen(), token) {
		t.Fatal("the model was sent the secret")
	}
	if err == nil {
		t.Logf("secret prompt: %v %s", res.IsError, contentText(res.Content))
	}
	if err == nil && !res.IsError {
		t.Fatalf("a sampling request with a secret was answered: %s", contentText(res.Content))
	}

	mu.Lock()
	answer = "here is the key " + token
	mu.Unlock()
	res, err = cs.CallTool(ctxT(t), &sdk.CallToolParams{Name: "test_sampling", Arguments: map[string]any{"prompt": "what is the key?"}})
	if err == nil {
		t.Logf("secret answer: %v %s", res.IsError, contentText(res.Content))
	}
	if err == nil && strings.Contains(contentText(res.Content), token) {
		t.Fatal("the model's answer carried the secret to the upstream")
	}
}

// TestPromptArgumentsInspected: the arguments of prompts/get are inspected
// like tool arguments (a secret blocks the request before the upstream
// sees it) and the prompt's messages like a tool result.
func TestPromptArgumentsInspected(t *testing.T) {
	const token = "ghp_8Kq2Lm4Np6Rs8Tv0Wx2Yz4Ab6Cd8Ef0Gh2Ij4" // GitHub token format, random body
	var mu sync.Mutex
	var got []string
	s := sdk.NewServer(&sdk.Implementation{Name: "prompter", Version: "1.0.0"}, nil)
	s.AddPrompt(&sdk.Prompt{Name: "greet", Arguments: []*sdk.PromptArgument{{Name: "who"}}}, func(_ context.Context, req *sdk.GetPromptRequest) (*sdk.GetPromptResult, error) {
		mu.Lock()
		got = append(got, req.Params.Arguments["who"])
		mu.Unlock()
		return &sdk.GetPromptResult{Messages: []*sdk.PromptMessage{{Role: "user", Content: &sdk.TextContent{Text: "Say hello to " + req.Params.Arguments["who"]}}}}, nil
	})
	h := startGateway(t, render(t, `
upstreams:
  p: {url: "{{url}}"}
servers:
  work:
    upstreams: [{upstream: p, prefix: ""}]
identity: {auth: "off"}
admin: {disabled: true}
`, "url", serveStreamable(t, s)))
	cs := connect(t, h.URL("work"), v20251125, nil)
	res, err := cs.GetPrompt(ctxT(t), &sdk.GetPromptParams{Name: "greet", Arguments: map[string]string{"who": "jane.doe@example.org"}})
	if err != nil {
		t.Fatal(err)
	}
	if tc, ok := res.Messages[0].Content.(*sdk.TextContent); !ok || tc.Text != "Say hello to [redacted:email]" {
		t.Fatalf("prompt messages: %+v", res.Messages[0].Content)
	}
	_, err = cs.GetPrompt(ctxT(t), &sdk.GetPromptParams{Name: "greet", Arguments: map[string]string{"who": token}})
	if e := rpcError(t, err); e.Code != -31012 || strings.Contains(e.Message, token) {
		t.Fatalf("a secret in prompt arguments: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, w := range got {
		if w == token {
			t.Fatal("the upstream received the secret")
		}
	}
}
