// Package script runs JavaScript hooks on tool calls and tool results, with
// github.com/dop251/goja (pure Go, ES5.1 and most of ES2015+).
//
// A script, written in configuration, may define either or both of
//
//	function onToolCall(ctx)   { … }   // before the call goes upstream
//	function onToolResult(ctx) { … }   // before the result goes back
//
// ctx is a plain object:
//
//	{server, upstream, tool, method,
//	 agent: {id, name, team},
//	 args,      // the tool arguments, parsed JSON ({} when absent)
//	 result,    // onToolResult only: the tool result, parsed JSON
//	 findings: [{category, type, confidence}]}   // from the gateway's detectors
//
// and the hook returns allow() (or nothing) to let the call go on,
// deny("reason") to refuse it with a reason shown to the caller, or
// mutate(value) to replace the arguments (onToolCall) or the result
// (onToolResult); value must survive a JSON round trip (no functions,
// undefined, symbols, NaN or cycles). log(msg) writes msg to the gateway's
// log at debug level with the script's name.
//
// # Sandbox
//
// The runtime has only the ECMAScript built-ins plus allow, deny, mutate
// and log: there is no require, no module loader, no console, no timers,
// no fetch or XMLHttpRequest, and no file or network access. Math.random
// and Date work. A call is interrupted after Options.Timeout (default
// 50 ms) and the call depth is limited (Options.MaxCallStackSize, default
// 1000). A script that times out, overflows the stack, throws, or returns
// something else than allow/deny/mutate fails closed: the call is denied
// with "script <name> failed: <kind>" and the failure is reported through
// Options.OnFailure and the log.
//
// goja has no heap limit, and a single built-in call is not interrupted:
// "x".repeat(1e10) asks for 10 GB at once. Scripts are trusted code, from
// configuration reviewed like the rest of it; the time limit, the stack
// limit and the cap on returned values (Options.MaxValueBytes) guard
// against mistakes, not against a hostile author. Global state a script
// keeps between calls is per runtime, and calls are spread over a pool of
// runtimes: do not rely on it.
package script

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"time"

	"github.com/dop251/goja"
	"github.com/dop251/goja/parser"

	"gatehouse/internal/inspect"
)

// Script is a hook's source, as configured.
type Script struct {
	Name    string
	Version string
	Source  string
}

// Defaults for Options.
const (
	DefaultTimeout          = 50 * time.Millisecond
	DefaultInitTimeout      = time.Second
	DefaultMaxCallStackSize = 1000
	DefaultMaxValueBytes    = 1 << 20
	maxReasonBytes          = 256
	maxLogBytes             = 1024
)

// Options tune how scripts run.
type Options struct {
	// Timeout bounds one hook call (default 50ms), or the context's
	// deadline when that is sooner. It is wall-clock time: on a host short
	// of CPU a script can be stopped before it used that much.
	Timeout time.Duration
	// InitTimeout bounds the script's top-level code, run once per
	// runtime (default 1s).
	InitTimeout time.Duration
	// MaxCallStackSize limits the JavaScript call depth (default 1000).
	MaxCallStackSize int
	// MaxValueBytes caps the JSON of a mutate value (default 1 MiB).
	MaxValueBytes int
	// PoolSize is the number of runtimes, hence of concurrent calls
	// (default GOMAXPROCS). Runtimes are created on demand.
	PoolSize int
	// Logger receives log() output (debug) and failures (warn); default
	// slog.Default().
	Logger *slog.Logger
	// OnFailure, when set, is told about every failed call.
	OnFailure func(Failure)
}

// Failure describes a hook call that failed (and was denied).
type Failure struct {
	Script  string
	Version string
	Hook    string // "onToolCall" or "onToolResult"
	Kind    string // "timeout", "canceled", "stack overflow", "exception", "bad return value", …
	Err     error  // details for operators: the JavaScript error and its position
}

// Agent identifies the caller in ctx.agent.
type Agent struct {
	ID, Name, Team string
}

// Call is what a hook sees.
type Call struct {
	Server, Upstream, Tool, Method string
	Agent                          Agent
	// Args are the tool arguments (JSON object).
	Args json.RawMessage
	// Result is the tool result, for onToolResult.
	Result json.RawMessage
	// Findings are the gateway's detector findings on the content; the
	// script sees their category, type and confidence.
	Findings []inspect.Finding
}

// Action is a hook's decision.
type Action string

// Actions.
const (
	Allow  Action = "allow"
	Deny   Action = "deny"
	Mutate Action = "mutate"
)

// Verdict is a hook's answer.
type Verdict struct {
	Action Action
	// Reason explains a deny; it is shown to the caller.
	Reason string
	// JSON is, for Mutate, the replacement arguments or result.
	JSON json.RawMessage
	// Failed is, for a Deny the script did not decide (it failed and the
	// call fails closed), the kind of failure (see Failure.Kind).
	Failed string
}

// Hooks is a loaded script. It is safe for concurrent use.
type Hooks struct {
	name, version string
	prog          *goja.Program
	timeout       time.Duration
	initTimeout   time.Duration
	maxStack      int
	maxValue      int
	log           *slog.Logger
	onFailure     func(Failure)
	hasCall       bool
	hasResult     bool

	idle  chan *runner  // runtimes ready for a call
	slots chan struct{} // one token per runtime in existence
}

// lookupProgram finds the hooks whether they are declared with function,
// var, let or const (the last two are not properties of the global object).
var lookupProgram = goja.MustCompile("lookup", `[
	typeof onToolCall === "function" ? onToolCall : undefined,
	typeof onToolResult === "function" ? onToolResult : undefined]`, false)

// Load compiles s and runs its top-level code once, so that syntax errors,
// top-level exceptions and a script defining no hook are load errors.
func Load(s Script, o Options) (*Hooks, error) {
	if s.Name == "" {
		return nil, errors.New("script: name is required")
	}
	errf := func(format string, a ...any) error {
		return fmt.Errorf("script %q: "+format, append([]any{s.Name}, a...)...)
	}
	switch {
	case o.Timeout < 0, o.InitTimeout < 0, o.MaxCallStackSize < 0, o.MaxValueBytes < 0, o.PoolSize < 0:
		return nil, errf("limits must not be negative")
	}
	h := &Hooks{
		name: s.Name, version: s.Version,
		timeout: o.Timeout, initTimeout: o.InitTimeout, maxStack: o.MaxCallStackSize,
		maxValue: o.MaxValueBytes, log: o.Logger, onFailure: o.OnFailure,
	}
	if h.timeout == 0 {
		h.timeout = DefaultTimeout
	}
	if h.initTimeout == 0 {
		h.initTimeout = DefaultInitTimeout
	}
	if h.maxStack == 0 {
		h.maxStack = DefaultMaxCallStackSize
	}
	if h.maxValue == 0 {
		h.maxValue = DefaultMaxValueBytes
	}
	if h.log == nil {
		h.log = slog.Default()
	}
	if o.PoolSize == 0 {
		o.PoolSize = runtime.GOMAXPROCS(0)
	}
	// Parsing separately from compiling keeps the error's position, which
	// goja.Compile folds into a string.
	ast, err := parser.ParseFile(nil, s.Name, s.Source, 0)
	if err != nil {
		return nil, errf("%s", syntaxError(err))
	}
	prog, err := goja.CompileAST(ast, false)
	if err != nil {
		return nil, errf("%s", syntaxError(err))
	}
	h.prog = prog
	h.idle = make(chan *runner, o.PoolSize)
	h.slots = make(chan struct{}, o.PoolSize)
	h.slots <- struct{}{}
	r, err := h.newRunner()
	if err != nil {
		return nil, errf("%w", err)
	}
	h.hasCall, h.hasResult = r.onCall != nil, r.onResult != nil
	if !h.hasCall && !h.hasResult {
		return nil, errf("defines neither onToolCall nor onToolResult")
	}
	h.idle <- r
	return h, nil
}

// syntaxError describes a compile error as "syntax error at line:col:
// message", without goja's file name prefix.
func syntaxError(err error) string {
	var list parser.ErrorList
	var one *parser.Error
	var comp *goja.CompilerSyntaxError
	switch {
	case errors.As(err, &list) && len(list) > 0:
		one = list[0]
	case errors.As(err, &one):
	case errors.As(err, &comp):
		if comp.File != nil {
			p := comp.File.Position(comp.Offset)
			return fmt.Sprintf("syntax error at %d:%d: %s", p.Line, p.Column, comp.Message)
		}
		return "syntax error: " + comp.Message
	default:
		return "compiling: " + err.Error()
	}
	return fmt.Sprintf("syntax error at %d:%d: %s", one.Position.Line, one.Position.Column, one.Message)
}

// Name returns the script's name.
func (h *Hooks) Name() string { return h.name }

// Version returns the script's configured version.
func (h *Hooks) Version() string { return h.version }

// HasToolCall reports whether the script defines onToolCall.
func (h *Hooks) HasToolCall() bool { return h.hasCall }

// HasToolResult reports whether the script defines onToolResult.
func (h *Hooks) HasToolResult() bool { return h.hasResult }

// OnToolCall runs onToolCall (allowing when the script has none).
func (h *Hooks) OnToolCall(ctx context.Context, c *Call) Verdict {
	if !h.hasCall {
		return Verdict{Action: Allow}
	}
	return h.run(ctx, hookCall, c)
}

// OnToolResult runs onToolResult (allowing when the script has none).
func (h *Hooks) OnToolResult(ctx context.Context, c *Call) Verdict {
	if !h.hasResult {
		return Verdict{Action: Allow}
	}
	return h.run(ctx, hookResult, c)
}

type hook int

const (
	hookCall hook = iota
	hookResult
)

func (k hook) String() string {
	if k == hookResult {
		return "onToolResult"
	}
	return "onToolCall"
}

// failure is a failed call: kind goes into the deny reason, err to the
// operators.
type failure struct {
	kind string
	err  error
}

func fail(kind string, err error) *failure { return &failure{kind: kind, err: err} }

func (h *Hooks) run(ctx context.Context, k hook, c *Call) Verdict {
	if err := ctx.Err(); err != nil {
		return h.failed(ctx, k, fail(ctxKind(ctx), err))
	}
	r, f := h.get(ctx)
	if f != nil {
		return h.failed(ctx, k, f)
	}
	v, f := r.call(ctx, k, c)
	h.idle <- r
	if f != nil {
		return h.failed(ctx, k, f)
	}
	return v
}

// get takes an idle runtime, creates one if the pool has room, or waits.
func (h *Hooks) get(ctx context.Context) (*runner, *failure) {
	select {
	case r := <-h.idle:
		return r, nil
	default:
	}
	select {
	case r := <-h.idle:
		return r, nil
	case h.slots <- struct{}{}:
		r, err := h.newRunner()
		if err != nil {
			<-h.slots
			return nil, fail("init", err)
		}
		return r, nil
	case <-ctx.Done():
		return nil, fail(ctxKind(ctx), ctx.Err())
	}
}

// ctxKind names why a done context stopped a call: its deadline passing
// is a timeout, anything else a cancellation.
func ctxKind(ctx context.Context) string {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return "timeout"
	}
	return "canceled"
}

func (h *Hooks) failed(ctx context.Context, k hook, f *failure) Verdict {
	h.log.LogAttrs(ctx, slog.LevelWarn, "script failed",
		slog.String("script", h.name), slog.String("version", h.version), slog.String("hook", k.String()),
		slog.String("kind", f.kind), slog.String("error", f.err.Error()))
	if h.onFailure != nil {
		h.onFailure(Failure{Script: h.name, Version: h.version, Hook: k.String(), Kind: f.kind, Err: f.err})
	}
	return Verdict{Action: Deny, Reason: fmt.Sprintf("script %s failed: %s", h.name, f.kind), Failed: f.kind}
}
