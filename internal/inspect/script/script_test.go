package script

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse/internal/inspect"
)

var discardLogger = slog.New(slog.DiscardHandler)

// load loads src as script "t" with one runtime, so that every call after
// a failure reuses the runtime that failed.
func load(t *testing.T, src string, o Options) (*Hooks, *[]Failure) {
	t.Helper()
	var mu sync.Mutex
	failures := new([]Failure)
	if o.PoolSize == 0 {
		o.PoolSize = 1
	}
	if o.Logger == nil {
		o.Logger = discardLogger
	}
	o.OnFailure = func(f Failure) {
		mu.Lock()
		*failures = append(*failures, f)
		mu.Unlock()
	}
	h, err := Load(Script{Name: "t", Version: "3", Source: src}, o)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return h, failures
}

var testCall = &Call{
	Server: "files", Upstream: "fs-1", Tool: "write_file", Method: "tools/call",
	Agent: Agent{ID: "agt_1", Name: "build-bot", Team: "platform"},
	Args:  json.RawMessage(`{"path":"/tmp/a.txt","content":"hello"}`),
	Findings: []inspect.Finding{
		{Category: inspect.CategoryPII, Type: "email", Start: 1, End: 5, Confidence: inspect.High},
	},
}

func TestVerdicts(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want Verdict
	}{
		{"allow", `function onToolCall(ctx) { return allow(); }`, Verdict{Action: Allow}},
		{"undefined_allows", `function onToolCall(ctx) { }`, Verdict{Action: Allow}},
		{"deny", `function onToolCall(ctx) { if (ctx.tool === "write_file") return deny("writes need review"); }`,
			Verdict{Action: Deny, Reason: "writes need review"}},
		{"deny_without_reason", `function onToolCall(ctx) { return deny(); }`, Verdict{Action: Deny, Reason: "denied by script t"}},
		// Cleaned, then cut to 256 bytes: the format character becomes one space.
		{"deny_reason_cleaned", `function onToolCall(ctx) { return deny("a\nb\u202e" + "x".repeat(300)); }`,
			Verdict{Action: Deny, Reason: "a b " + strings.Repeat("x", 252) + "…"}},
		{"mutate_args", `function onToolCall(ctx) { ctx.args.path = "/sandbox" + ctx.args.path; return mutate(ctx.args); }`,
			Verdict{Action: Mutate, JSON: json.RawMessage(`{"path":"/sandbox/tmp/a.txt","content":"hello"}`)}},
		{"mutate_date_uses_toJSON", `function onToolCall(ctx) { return mutate({at: new Date(0)}); }`,
			Verdict{Action: Mutate, JSON: json.RawMessage(`{"at":"1970-01-01T00:00:00.000Z"}`)}},
		{"sees_ctx", `function onToolCall(ctx) {
			var f = ctx.findings[0];
			return deny([ctx.server, ctx.upstream, ctx.method, ctx.agent.id, ctx.agent.name, ctx.agent.team,
				f.category, f.type, f.confidence, typeof ctx.result].join(","));
		}`, Verdict{Action: Deny, Reason: "files,fs-1,tools/call,agt_1,build-bot,platform,pii,email,high,undefined"}},
		{"const_hook", `const onToolCall = (ctx) => deny("arrow");`, Verdict{Action: Deny, Reason: "arrow"}},
		{"deny_like_a_failure", `function onToolCall(ctx) { return deny("script t failed: timeout"); }`,
			Verdict{Action: Deny, Reason: "script t failed: timeout"}}, // decided, not failed: Failed stays empty
		{"math_and_date_work", `function onToolCall() { var x = Math.random(); var d = Date.now(); return (x >= 0 && d > 0) ? allow() : deny("?"); }`,
			Verdict{Action: Allow}},
		{"args_assigned", `function onToolCall(ctx) { ctx.args = {replaced: true}; return mutate(ctx.args); }`,
			Verdict{Action: Mutate, JSON: json.RawMessage(`{"replaced":true}`)}},
		{"ctx_is_json", `function onToolCall(ctx) { return deny(JSON.stringify(ctx)); }`,
			Verdict{Action: Deny, Reason: `{"server":"files","upstream":"fs-1","tool":"write_file","method":"tools/call","agent":{"id":"agt_1","name":"build-bot","team":"platform"},"args":{"path":"/tmp/a.txt","content":"hello"},"findings":[{"category":"pii","type":"email","confidence":"high"}]}`}},
		{"log_is_harmless", `function onToolCall(ctx) { log("tool", ctx.tool, {a: 1}); }`, Verdict{Action: Allow}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, failures := load(t, tt.src, Options{})
			got := h.OnToolCall(context.Background(), testCall)
			if a, b := mustJSON(t, got), mustJSON(t, tt.want); a != b {
				t.Errorf("verdict = %s, want %s (failures %v)", a, b, *failures)
			}
		})
	}
}

func TestOnToolResult(t *testing.T) {
	h, _ := load(t, `
		function onToolResult(ctx) {
			var c = ctx.result.content;
			for (var i = 0; i < c.length; i++) c[i].text = c[i].text.replace(/\d{3}-\d{2}-\d{4}/g, "[ssn]");
			return mutate(ctx.result);
		}`, Options{})
	if !h.HasToolResult() || h.HasToolCall() {
		t.Fatalf("HasToolResult %v, HasToolCall %v", h.HasToolResult(), h.HasToolCall())
	}
	c := *testCall
	c.Result = json.RawMessage(`{"content":[{"type":"text","text":"ssn 123-45-6789"}],"isError":false}`)
	got := h.OnToolResult(context.Background(), &c)
	want := `{"content":[{"type":"text","text":"ssn [ssn]"}],"isError":false}`
	if got.Action != Mutate || string(got.JSON) != want {
		t.Errorf("verdict %s %s, want mutate %s", got.Action, got.JSON, want)
	}
	if v := h.OnToolCall(context.Background(), testCall); v.Action != Allow {
		t.Errorf("no onToolCall: verdict %+v, want allow", v)
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name, src, want string
	}{
		{"syntax", "function onToolCall(ctx) {\n  return deny(\"x\"\n}", `script "bad": syntax error at 3:1`},
		{"no_hooks", "var x = 1;", `script "bad": defines neither onToolCall nor onToolResult`},
		{"top_level_throw", "throw new Error('boom'); function onToolCall() {}", `script "bad": running top-level code`},
		{"top_level_loop", "for (;;) {} function onToolCall() {}", `script "bad": running top-level code`},
		{"hook_not_function", "var onToolCall = 3;", `defines neither`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(Script{Name: "bad", Source: tt.src}, Options{InitTimeout: 10 * time.Millisecond})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Load error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// TestFailsClosed runs scripts that misbehave, each followed by a normal
// call on the same (single) runtime, which must work.
func TestFailsClosed(t *testing.T) {
	tests := []struct {
		name, body, kind string
	}{
		{"infinite_loop", `for (;;) {}`, "timeout"},
		{"loop_in_catch", `for (;;) { try { for (;;) {} } catch (e) {} }`, "timeout"},
		{"loop_in_finally", `try { for (;;) {} } finally { for (;;) {} }`, "timeout"},
		{"deep_recursion", `function f(n) { return f(n + 1) + 1; } return f(0);`, "stack overflow"},
		{"throws", `throw new Error("secret-ish detail " + ctx.args.content);`, "exception"},
		{"throws_value", `throw 42;`, "exception"},
		{"reads_missing", `return ctx.nothing.here;`, "exception"},
		{"returns_string", `return "allow";`, "bad return value"},
		{"returns_null", `return null;`, "bad return value"},
		{"returns_lookalike", `return {action: "allow"};`, "bad return value"},
		{"returns_function", `return mutate(function () {});`, "mutate value is not JSON"},
		{"function_member", `return mutate({a: 1, f: function () {}});`, "mutate value is not JSON"},
		{"undefined_in_array", `return mutate([1, undefined]);`, "mutate value is not JSON"},
		{"nan", `return mutate({n: NaN});`, "mutate value is not JSON"},
		{"cyclic", `var o = {}; o.self = o; return mutate(o);`, "mutate value is not JSON"},
		{"bigint", `return mutate({n: 10n});`, "mutate value is not JSON"},
		{"too_large", `return mutate({s: "x".repeat(2000)});`, "mutate value too large"},
		{"async", `return Promise.resolve(allow());`, "bad return value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := `var calls = 0;
				function onToolCall(ctx) { calls++; if (ctx.tool !== "ok") { ` + tt.body + ` } return deny("call " + calls); }`
			// Options.Timeout is long so that no well-behaved call can
			// hit it on a loaded machine; the runaway calls get a short
			// deadline from their context instead.
			h, failures := load(t, src, Options{Timeout: time.Hour, MaxValueBytes: 1000})
			ctx := context.Background()
			if tt.kind == "timeout" {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, 5*time.Millisecond)
				defer cancel()
			}
			got := h.OnToolCall(ctx, testCall)
			want := "script t failed: " + tt.kind
			if got.Action != Deny || got.Reason != want || got.Failed != tt.kind {
				t.Errorf("verdict %+v, want deny %q failed %q", got, want, tt.kind)
			}
			if len(*failures) != 1 || (*failures)[0].Kind != tt.kind || (*failures)[0].Hook != "onToolCall" || (*failures)[0].Version != "3" || (*failures)[0].Err == nil {
				t.Errorf("failures %+v, want one of kind %q", *failures, tt.kind)
			}
			// The same runtime serves the next call, with its state.
			ok := *testCall
			ok.Tool = "ok"
			if got := h.OnToolCall(context.Background(), &ok); got.Action != Deny || got.Reason != "call 2" {
				t.Errorf("next call: verdict %+v, want deny \"call 2\"", got)
			}
		})
	}
}

// TestTimeoutOption checks Options.Timeout on its own (no context
// deadline) and its default.
func TestTimeoutOption(t *testing.T) {
	h, failures := load(t, `function onToolCall(ctx) { while (true) {} }`, Options{Timeout: time.Millisecond})
	if got := h.OnToolCall(context.Background(), testCall); got.Reason != "script t failed: timeout" || len(*failures) != 1 {
		t.Errorf("verdict %+v, failures %v", got, *failures)
	}
	if got := h.OnToolCall(context.Background(), testCall); got.Reason != "script t failed: timeout" || len(*failures) != 2 {
		t.Errorf("second call: verdict %+v, failures %v", got, *failures)
	}
	h, _ = load(t, `function onToolCall() {}`, Options{})
	if h.timeout != DefaultTimeout || h.maxStack != DefaultMaxCallStackSize {
		t.Errorf("defaults: timeout %v, stack %d", h.timeout, h.maxStack)
	}
}

// TestCanceled checks that a cancelled context stops a running script.
// The script cannot call Go except through log(), so a log handler
// cancels the context once the script is running.
func TestCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logger := slog.New(handlerFunc(func(context.Context, slog.Record) error { cancel(); return nil }))
	h, failures := load(t, `function onToolCall(ctx) {
		if (ctx.tool === "write_file") { log("spinning"); for (;;) {} }
		return allow();
	}`, Options{Timeout: time.Hour, Logger: logger})
	got := h.OnToolCall(ctx, testCall)
	if got.Reason != "script t failed: canceled" || len(*failures) != 1 {
		t.Errorf("verdict %+v, failures %v", got, *failures)
	}
	ok := *testCall
	ok.Tool = "ok"
	if got := h.OnToolCall(context.Background(), &ok); got.Action != Allow {
		t.Errorf("next call: %+v", got)
	}
	if got := h.OnToolCall(ctx, &ok); got.Reason != "script t failed: canceled" {
		t.Errorf("call with a done context: %+v", got)
	}
}

// handlerFunc is a slog.Handler that calls a function for every record.
type handlerFunc func(context.Context, slog.Record) error

func (handlerFunc) Enabled(context.Context, slog.Level) bool          { return true }
func (f handlerFunc) Handle(ctx context.Context, r slog.Record) error { return f(ctx, r) }
func (f handlerFunc) WithAttrs([]slog.Attr) slog.Handler              { return f }
func (f handlerFunc) WithGroup(string) slog.Handler                   { return f }

func TestStaleCtx(t *testing.T) {
	h, _ := load(t, `var last;
		function onToolCall(ctx) {
			var prev = last; last = ctx;
			if (prev) return deny("prev args " + JSON.stringify(prev.args));
		}`, Options{})
	h.OnToolCall(context.Background(), testCall)
	c := *testCall
	c.Args = json.RawMessage(`{"other":"call"}`)
	if got := h.OnToolCall(context.Background(), &c); got.Reason != "prev args undefined" {
		t.Errorf("verdict %+v: a kept ctx must not show the current args", got)
	}
}

func TestInvalidArgs(t *testing.T) {
	h, _ := load(t, `function onToolCall(ctx) { return ctx.tool === "skip" ? allow() : deny(ctx.args.x); }`, Options{})
	c := *testCall
	c.Args = json.RawMessage(`{"x":`)
	if got := h.OnToolCall(context.Background(), &c); got.Reason != "script t failed: exception" {
		t.Errorf("verdict %+v", got)
	}
	c.Tool = "skip" // never read, never parsed
	if got := h.OnToolCall(context.Background(), &c); got.Action != Allow {
		t.Errorf("verdict %+v", got)
	}
}

func TestSandbox(t *testing.T) {
	h, _ := load(t, `function onToolCall(ctx) {
		var names = ["require", "fetch", "XMLHttpRequest", "setTimeout", "setInterval", "setImmediate",
			"process", "console", "module", "exports", "Deno", "Bun", "WebSocket", "importScripts"];
		var present = names.filter(function (n) { return typeof globalThis[n] !== "undefined"; });
		return present.length ? deny("present: " + present.join(",")) : allow();
	}`, Options{})
	if got := h.OnToolCall(context.Background(), testCall); got.Action != Allow {
		t.Errorf("sandbox: %+v", got)
	}
	// Calling require is an exception, hence a deny.
	h, _ = load(t, `function onToolCall(ctx) { require("fs"); return allow(); }`, Options{})
	if got := h.OnToolCall(context.Background(), testCall); got.Reason != "script t failed: exception" {
		t.Errorf("require: %+v", got)
	}
	// The helpers cannot be replaced.
	h, _ = load(t, `allow = function () { return "x"; };
		function onToolCall(ctx) { return allow(); }`, Options{})
	if got := h.OnToolCall(context.Background(), testCall); got.Action != Allow {
		t.Errorf("replaced allow: %+v", got)
	}
}

func TestConcurrent(t *testing.T) {
	h, failures := load(t, `function onToolCall(ctx) {
		if (ctx.args.n % 7 === 0) { for (;;) {} }
		if (ctx.args.n % 2 === 0) return deny("even " + ctx.args.n);
		return mutate({n: ctx.args.n + 1});
	}`, Options{PoolSize: 4, Timeout: time.Hour})
	var wg sync.WaitGroup
	for i := range 64 {
		wg.Go(func() {
			c := *testCall
			c.Args = json.RawMessage(fmt.Sprintf(`{"n":%d}`, i))
			ctx := context.Background()
			if i%7 == 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, 5*time.Millisecond)
				defer cancel()
			}
			got := h.OnToolCall(ctx, &c)
			var want Verdict
			switch {
			case i%7 == 0:
				want = Verdict{Action: Deny, Reason: "script t failed: timeout"}
			case i%2 == 0:
				want = Verdict{Action: Deny, Reason: fmt.Sprintf("even %d", i)}
			default:
				want = Verdict{Action: Mutate, JSON: json.RawMessage(fmt.Sprintf(`{"n":%d}`, i+1))}
			}
			if a, b := fmt.Sprintf("%s|%s|%s", got.Action, got.Reason, got.JSON), fmt.Sprintf("%s|%s|%s", want.Action, want.Reason, want.JSON); a != b {
				t.Errorf("call %d: %s, want %s", i, a, b)
			}
		})
	}
	wg.Wait()
	if len(*failures) != 10 { // 0, 7, …, 63
		t.Errorf("%d failures, want 10", len(*failures))
	}
	if n := len(h.slots); n > 4 {
		t.Errorf("%d runtimes, want at most 4", n)
	}
}

func TestLogGoesToSlog(t *testing.T) {
	var buf strings.Builder
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return buf.Write(p)
	}), &slog.HandlerOptions{Level: slog.LevelDebug}))
	h, _ := load(t, `function onToolCall(ctx) { log("checking", ctx.tool); }`, Options{Logger: logger})
	h.OnToolCall(context.Background(), testCall)
	mu.Lock()
	defer mu.Unlock()
	if s := buf.String(); !strings.Contains(s, `level=DEBUG msg="script log" script=t version=3 msg="checking write_file"`) {
		t.Errorf("log output %q", s)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
