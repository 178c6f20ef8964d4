package script

import (
	"context"
	"testing"
	"time"
)

// The benchmarks use a 1s limit: the default 50ms is wall-clock time and
// a loaded machine can stall a goroutine that long.

// BenchmarkOnToolCall measures a trivial hook: build ctx (two small
// arguments, one finding), call, read the verdict.
func BenchmarkOnToolCall(b *testing.B) {
	h, err := Load(Script{Name: "bench", Source: `
		function onToolCall(ctx) {
			if (ctx.tool === "delete_repo") return deny("not here");
			return allow();
		}`}, Options{Logger: discardLogger, Timeout: time.Second})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if v := h.OnToolCall(ctx, testCall); v.Action != Allow {
			b.Fatal(v)
		}
	}
}

// BenchmarkOnToolCallMutate measures a hook that rewrites the arguments.
func BenchmarkOnToolCallMutate(b *testing.B) {
	h, err := Load(Script{Name: "bench", Source: `
		function onToolCall(ctx) {
			ctx.args.path = "/sandbox" + ctx.args.path;
			return mutate(ctx.args);
		}`}, Options{Logger: discardLogger, Timeout: time.Second})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if v := h.OnToolCall(ctx, testCall); v.Action != Mutate {
			b.Fatal(v)
		}
	}
}

// BenchmarkOnToolCallParallel measures the pool under contention.
func BenchmarkOnToolCallParallel(b *testing.B) {
	h, err := Load(Script{Name: "bench", Source: `function onToolCall(ctx) { return ctx.args.path ? allow() : deny("no path"); }`},
		Options{Logger: discardLogger, Timeout: time.Second})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if v := h.OnToolCall(ctx, testCall); v.Action != Allow {
				b.Error(v)
				return
			}
		}
	})
}
