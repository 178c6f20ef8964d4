package e2e

import (
	"context"
	"errors"
	"syscall"
	"testing"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// TestClientsHearListChanges checks that the list changes the gateway
// itself makes — a reload that changes a tool's description, an upstream
// that dies — reach clients of both eras: stateful sessions on their
// standalone stream, stateless (2026-07-28) clients on subscriptions/listen,
// which the go-sdk client opens because the gateway announces
// tools.listChanged.
func TestClientsHearListChanges(t *testing.T) {
	cfg := func(desc string) string {
		return render(t, `
upstreams:
  crm:     {command: "{{gatehouse}}", args: [demo-server, crm]}
  tickets: {command: "{{gatehouse}}", args: [demo-server, tickets]}
servers:
  support:
    upstreams:
      - upstream: crm
        tools: {get_customer: {description: "{{d}}"}}
      - {upstream: tickets}
`, "d", desc)
	}
	for _, era := range eras {
		t.Run(era.name, func(t *testing.T) {
			h := startGateway(t, cfg("first"))
			lc := newListChanged()
			cs := connect(t, h.URL("support"), era.version, &sdk.ClientOptions{ToolListChangedHandler: lc.handler})
			callText(t, cs, "tickets_get_ticket", map[string]any{"id": "TCK-5001"})
			got := func() error {
				select {
				case <-lc.ch:
					return nil
				default:
					return errors.New("no notifications/tools/list_changed yet")
				}
			}

			t.Run("description_reload", func(t *testing.T) {
				lc.drain()
				h.apply(cfg("second"))
				eventually(t, "list_changed after a reload", got)
				res, err := cs.ListTools(ctxT(t), nil)
				if err != nil {
					t.Fatal(err)
				}
				for _, tool := range res.Tools {
					if tool.Name == "crm_get_customer" && tool.Description != "second" {
						t.Errorf("description = %q, want second", tool.Description)
					}
				}
			})
			t.Run("upstream_died", func(t *testing.T) {
				// Stateless traffic of an upstream that speaks 2026-07-28
				// runs on a process of its own: kill every tickets process.
				lc.drain()
				pids := stdioChildren(t, "demo-server\x00tickets")
				if len(pids) == 0 {
					t.Fatal("no tickets process")
				}
				for _, pid := range pids {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
				eventually(t, "list_changed after an upstream died", got)
			})
		})
	}
}

// TestStatelessResourceSubscription subscribes to a resource with the
// 2026-07-28 revision (the go-sdk client sends subscriptions/listen with
// resourceSubscriptions): the fixture's periodic updates reach the client.
func TestStatelessResourceSubscription(t *testing.T) {
	h := startGateway(t, render(t, fixtureConfig))
	updated := make(chan string, 16)
	cs := connect(t, h.URL("fx"), "", &sdk.ClientOptions{
		ResourceUpdatedHandler: func(_ context.Context, req *sdk.ResourceUpdatedNotificationRequest) {
			updated <- req.Params.URI
		},
	})
	if err := cs.Subscribe(ctxT(t), &sdk.SubscribeParams{URI: "test://watched-resource"}); err != nil {
		t.Fatal(err)
	}
	select {
	case uri := <-updated:
		if uri != "test://watched-resource" {
			t.Errorf("update for %s", uri)
		}
	case <-ctxT(t).Done():
		t.Fatal("no notifications/resources/updated within the deadline (the fixture sends one every 3s)")
	}
}

// TestStatelessListenAcrossMembers opens subscriptions/listen on a virtual
// server whose members speak 2026-07-28 over stdio (the fixture) and HTTP
// (a stateless go-sdk server with no subscribable resources): the update
// from the member that serves the resource arrives, and the member that
// has nothing to announce is not asked again and again.
func TestStatelessListenAcrossMembers(t *testing.T) {
	web := echoServer("web")
	counter := &countMethods{}
	web.AddReceivingMiddleware(counter.middleware)
	url := serveStateless(t, web)
	h := startGateway(t, render(t, `
upstreams:
  fx:  {command: "{{fixture}}"}
  web: {url: "{{url}}"}
servers:
  both:
    upstreams: [{upstream: fx, prefix: ""}, {upstream: web}]
`, "url", url))
	updated := make(chan string, 16)
	cs := connect(t, h.URL("both"), "", &sdk.ClientOptions{
		ResourceUpdatedHandler: func(_ context.Context, req *sdk.ResourceUpdatedNotificationRequest) {
			updated <- req.Params.URI
		},
	})
	if got := callText(t, cs, "web_hello", map[string]any{"text": "modern"}); got != "web says hello modern" {
		t.Errorf("web_hello = %q", got)
	}
	if err := cs.Subscribe(ctxT(t), &sdk.SubscribeParams{URI: "test://watched-resource"}); err != nil {
		t.Fatal(err)
	}
	select {
	case uri := <-updated:
		if uri != "test://watched-resource" {
			t.Errorf("update for %s", uri)
		}
	case <-ctxT(t).Done():
		t.Fatal("no notifications/resources/updated within the deadline (the fixture sends one every 3s)")
	}
	if n := counter.count("subscriptions/listen"); n > 2 {
		t.Errorf("the member without subscriptions got %d subscriptions/listen requests before the first update, want at most 2", n)
	}
}
