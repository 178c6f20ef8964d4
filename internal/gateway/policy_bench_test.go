package gateway

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"

	"gatehouse/internal/config"
	"gatehouse/internal/identity"
	"gatehouse/internal/jsonrpc"
	"gatehouse/internal/policy"
	"gatehouse/internal/policy/policytest"
)

// BenchmarkListFilter500 is what policy adds to a tools/list of 500 tools
// (25 upstreams × 20) for one agent under the realistic policy: per item,
// reading its annotations and deciding its visibility, on top of the name
// mapping the list does anyway.
func BenchmarkListFilter500(b *testing.B) {
	cfg, err := config.Load("bench.yaml", []byte(policytest.Config()), func(string) (string, bool) { return "", false })
	if err != nil {
		b.Fatal(err)
	}
	pol, err := policy.Compile(cfg)
	if err != nil {
		b.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	g := &Gateway{log: log, engine: policy.NewEngine(policy.EngineOptions{Logger: log}), history: policy.NewHistory(0)}
	vs := &VirtualServer{Name: "all", policy: pol}
	var members []*member
	var items [][]byte
	for u := 0; u < policytest.Upstreams; u++ {
		members = append(members, &member{e: &entry{name: fmt.Sprintf("up%d", u)}, prefix: fmt.Sprintf("up%d_", u)})
		var page []string
		for t := 0; t < policytest.ToolsPerUpstream; t++ {
			page = append(page, policytest.ToolJSON(t))
		}
		items = append(items, []byte("["+strings.Join(page, ",")+"]"))
	}
	p := &identity.Principal{Kind: identity.KindAgent, Subject: "agt_3", AgentID: "agt_3", AgentName: "a3", Team: "team3"}
	ctx := identity.WithPrincipal(context.Background(), p)
	x := &exchange{g: g, vs: vs, m: &jsonrpc.Message{Method: "tools/list"}}

	run := func(pin *policy.Input) int {
		seen := map[string]string{}
		n := 0
		for i, mb := range members {
			_ = jsonrpc.Elements(items[i], func(s, e int) bool {
				if _, ok := x.mapItem(mb, items[i][s:e], seen, pin); ok {
					n++
				}
				return true
			})
		}
		return n
	}
	total := run(nil)
	visible := run(x.listInput(ctx))
	if total != 500 || visible == 0 || visible == total {
		b.Fatalf("setup: %d of %d visible", visible, total)
	}
	b.Run("without-policy", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			run(nil)
		}
	})
	b.Run("with-policy", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			run(x.listInput(ctx))
		}
	})
}
