package script

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/dop251/goja"

	"gatehouse/internal/inspect"
)

// runner is one goja runtime with the script loaded. One goroutine uses
// it at a time (it is taken from and returned to Hooks.idle).
type runner struct {
	h        *Hooks
	vm       *goja.Runtime
	onCall   goja.Callable
	onResult goja.Callable

	// JSON.parse and JSON.stringify as they were before the script ran,
	// and the replacer that makes stringify strict.
	parse     goja.Callable
	stringify goja.Callable
	replacer  goja.Value

	allowObj *goja.Object

	// The current call's ctx, its lazily parsed args and result, and the
	// accessors that read them.
	ctx                                    *goja.Object
	args, result                           lazyJSON
	argsGet, argsSet, resultGet, resultSet goja.Value

	// verdicts maps the objects deny() and mutate() returned during the
	// current call to what they mean; a script cannot forge one.
	verdicts map[*goja.Object]Verdict
	mutated  map[*goja.Object]goja.Value

	// timer interrupts a call that runs too long. It is created once and
	// re-armed per call; fired receives one value each time it goes off,
	// after the interrupt, so the caller can wait for a late timer before
	// clearing the interrupt and reusing the runtime.
	timer *time.Timer
	fired chan struct{}
	// ctxFired does the same for a context's cancellation.
	ctxFired chan struct{}
}

// Interrupt values, returned inside *goja.InterruptedError.
var (
	errTimeout  = errors.New("timeout")
	errCanceled = errors.New("canceled")
)

func (h *Hooks) newRunner() (*runner, error) {
	vm := goja.New()
	vm.SetMaxCallStackSize(h.maxStack)
	r := &runner{
		h: h, vm: vm,
		verdicts: make(map[*goja.Object]Verdict),
		mutated:  make(map[*goja.Object]goja.Value),
		fired:    make(chan struct{}, 1),
		ctxFired: make(chan struct{}, 1),
	}
	r.timer = time.AfterFunc(time.Hour, func() {
		vm.Interrupt(errTimeout)
		r.fired <- struct{}{}
	})
	r.timer.Stop()

	jsonObj := vm.Get("JSON").ToObject(vm)
	r.parse, _ = goja.AssertFunction(jsonObj.Get("parse"))
	r.stringify, _ = goja.AssertFunction(jsonObj.Get("stringify"))
	r.replacer = vm.ToValue(r.strictJSON)
	r.allowObj = vm.NewObject()
	r.initAccessors()

	global := vm.GlobalObject()
	for name, fn := range map[string]func(goja.FunctionCall) goja.Value{
		"allow": func(goja.FunctionCall) goja.Value { return r.allowObj },
		"deny": func(c goja.FunctionCall) goja.Value {
			o := vm.NewObject()
			reason := ""
			if a := c.Argument(0); !goja.IsUndefined(a) && !goja.IsNull(a) {
				reason = inspect.Printable(a.String(), maxReasonBytes)
			}
			if reason == "" {
				reason = "denied by script " + h.name
			}
			r.verdicts[o] = Verdict{Action: Deny, Reason: reason}
			return o
		},
		"mutate": func(c goja.FunctionCall) goja.Value {
			o := vm.NewObject()
			r.verdicts[o] = Verdict{Action: Mutate}
			r.mutated[o] = c.Argument(0)
			return o
		},
		"log": r.logFn,
	} {
		// Not writable, not configurable: the script cannot replace
		// them for later calls.
		if err := global.DefineDataProperty(name, vm.ToValue(fn), goja.FLAG_FALSE, goja.FLAG_FALSE, goja.FLAG_TRUE); err != nil {
			return nil, fmt.Errorf("defining %s: %w", name, err)
		}
	}

	if _, err := r.timed(context.Background(), h.initTimeout, func() (goja.Value, error) { return vm.RunProgram(h.prog) }); err != nil {
		return nil, fmt.Errorf("running top-level code: %w", err)
	}
	fns, err := vm.RunProgram(lookupProgram)
	if err != nil {
		return nil, fmt.Errorf("finding hooks: %w", err)
	}
	arr := fns.ToObject(vm)
	r.onCall, _ = goja.AssertFunction(arr.Get("0"))
	r.onResult, _ = goja.AssertFunction(arr.Get("1"))
	return r, nil
}

// timed runs fn with the runtime interrupted after d or when ctx is done,
// and leaves the runtime ready for the next call.
func (r *runner) timed(ctx context.Context, d time.Duration, fn func() (goja.Value, error)) (goja.Value, error) {
	var stopCtx func() bool
	if ctx.Done() != nil {
		stopCtx = context.AfterFunc(ctx, func() {
			r.vm.Interrupt(errCanceled)
			r.ctxFired <- struct{}{}
		})
	}
	// The caller's deadline, when sooner, is the limit too (and counts
	// as a timeout, not a cancellation).
	if dl, ok := ctx.Deadline(); ok {
		d = min(d, time.Until(dl))
	}
	r.timer.Reset(max(d, 1))
	v, err := fn()
	interrupted := false
	if !r.timer.Stop() {
		<-r.fired // the timer went off: wait until its Interrupt is done
		interrupted = true
	}
	if stopCtx != nil && !stopCtx() {
		<-r.ctxFired
		interrupted = true
	}
	if interrupted {
		// A late interrupt (after fn returned) would otherwise stop the
		// next call at once.
		r.vm.ClearInterrupt()
	}
	return v, err
}

// call runs one hook.
func (r *runner) call(ctx context.Context, k hook, c *Call) (Verdict, *failure) {
	fn := r.onCall
	if k == hookResult {
		fn = r.onResult
	}
	clear(r.verdicts)
	clear(r.mutated)
	defer func() {
		// Drop references to this call's values.
		clear(r.verdicts)
		clear(r.mutated)
		r.args, r.result, r.ctx = lazyJSON{}, lazyJSON{}, nil
	}()
	var out Verdict
	var bad *failure
	_, err := r.timed(ctx, r.h.timeout, func() (goja.Value, error) {
		ret, err := fn(goja.Undefined(), r.ctxObject(k, c))
		if err != nil {
			return nil, err
		}
		out, bad = r.verdict(ret)
		return nil, nil
	})
	if err != nil {
		return Verdict{}, classify(ctx, err)
	}
	if bad != nil {
		return Verdict{}, bad
	}
	return out, nil
}

// classify names a JavaScript error's kind for the deny reason.
func classify(ctx context.Context, err error) *failure {
	var intr *goja.InterruptedError
	var so *goja.StackOverflowError
	var exc *goja.Exception
	switch {
	case errors.As(err, &intr):
		// Interrupted by the timer or by ctx: only an explicit
		// cancellation is "canceled"; a deadline is a timeout.
		if ctx.Err() != nil {
			return fail(ctxKind(ctx), err)
		}
		return fail("timeout", err)
	case errors.As(err, &so):
		return fail("stack overflow", err)
	case errors.As(err, &exc):
		return fail("exception", err)
	}
	return fail("error", err)
}

// ctxObject builds the hook's argument. args and result are accessor
// properties parsed on first read: a hook that only looks at the tool
// name does not pay for parsing them.
func (r *runner) ctxObject(k hook, c *Call) goja.Value {
	vm := r.vm
	o := vm.NewObject()
	r.ctx = o
	_ = o.Set("server", c.Server)
	_ = o.Set("upstream", c.Upstream)
	_ = o.Set("tool", c.Tool)
	_ = o.Set("method", c.Method)
	agent := vm.NewObject()
	_ = agent.Set("id", c.Agent.ID)
	_ = agent.Set("name", c.Agent.Name)
	_ = agent.Set("team", c.Agent.Team)
	_ = o.Set("agent", agent)
	r.args = lazyJSON{doc: c.Args, empty: "{}"}
	_ = o.DefineAccessorProperty("args", r.argsGet, r.argsSet, goja.FLAG_TRUE, goja.FLAG_TRUE)
	if k == hookResult {
		r.result = lazyJSON{doc: c.Result, empty: "null"}
		_ = o.DefineAccessorProperty("result", r.resultGet, r.resultSet, goja.FLAG_TRUE, goja.FLAG_TRUE)
	}
	fs := make([]any, len(c.Findings))
	for i, f := range c.Findings {
		fo := vm.NewObject()
		_ = fo.Set("category", string(f.Category))
		_ = fo.Set("type", f.Type)
		_ = fo.Set("confidence", f.Confidence.String())
		fs[i] = fo
	}
	_ = o.Set("findings", vm.NewArray(fs...))
	return o
}

// lazyJSON is a JSON document parsed into JavaScript on first use.
type lazyJSON struct {
	doc   []byte
	empty string     // the document to use when doc is empty
	val   goja.Value // set once parsed, or once the script assigns
}

// get parses the document into native JavaScript values (not Go-backed
// wrappers, which behave differently when modified); a parse error is
// thrown into the script.
func (r *runner) get(l *lazyJSON) goja.Value {
	if l.val == nil {
		s := l.empty
		if len(l.doc) > 0 {
			s = string(l.doc)
		}
		v, err := r.parse(goja.Undefined(), r.vm.ToValue(s))
		if err != nil {
			panic(r.vm.NewTypeError("the gateway passed invalid JSON"))
		}
		l.val = v
	}
	return l.val
}

func (r *runner) initAccessors() {
	vm := r.vm
	// A ctx kept from an earlier call (in a global) must not show the
	// current call's data: the accessors answer only for the current ctx.
	getter := func(l *lazyJSON) goja.Value {
		return vm.ToValue(func(c goja.FunctionCall) goja.Value {
			if c.This != r.ctx {
				return goja.Undefined()
			}
			return r.get(l)
		})
	}
	setter := func(l *lazyJSON) goja.Value {
		return vm.ToValue(func(c goja.FunctionCall) goja.Value {
			if c.This == r.ctx {
				l.val = c.Argument(0)
			}
			return goja.Undefined()
		})
	}
	r.argsGet, r.argsSet = getter(&r.args), setter(&r.args)
	r.resultGet, r.resultSet = getter(&r.result), setter(&r.result)
}

// verdict reads a hook's return value.
func (r *runner) verdict(ret goja.Value) (Verdict, *failure) {
	if ret == nil || goja.IsUndefined(ret) {
		return Verdict{Action: Allow}, nil
	}
	o, ok := ret.(*goja.Object)
	if ok && o == r.allowObj {
		return Verdict{Action: Allow}, nil
	}
	v, ok := r.verdicts[o]
	if !ok {
		return Verdict{}, fail("bad return value", fmt.Errorf("want allow(), deny(reason), mutate(value) or nothing, got %s", describe(ret)))
	}
	if v.Action != Mutate {
		return v, nil
	}
	js, err := r.stringify(goja.Undefined(), r.mutated[o], r.replacer)
	if err != nil {
		return Verdict{}, fail("mutate value is not JSON", err)
	}
	if goja.IsUndefined(js) {
		return Verdict{}, fail("mutate value is not JSON", errors.New("nothing to serialise"))
	}
	s := js.String()
	if len(s) > r.h.maxValue {
		return Verdict{}, fail("mutate value too large", fmt.Errorf("%d bytes of JSON, limit %d", len(s), r.h.maxValue))
	}
	v.JSON = []byte(s)
	return v, nil
}

// strictJSON is the JSON.stringify replacer for mutate values: anything
// stringify would silently drop or change (functions, undefined, symbols,
// NaN and infinities) is an error instead, so the value round-trips.
func (r *runner) strictJSON(c goja.FunctionCall) goja.Value {
	v := c.Argument(1)
	switch {
	case goja.IsUndefined(v):
		panic(r.vm.NewTypeError("undefined at %q is not JSON", c.Argument(0).String()))
	case goja.IsNaN(v), goja.IsInfinity(v):
		panic(r.vm.NewTypeError("non-finite number at %q is not JSON", c.Argument(0).String()))
	}
	if _, ok := v.(*goja.Symbol); ok {
		panic(r.vm.NewTypeError("symbol at %q is not JSON", c.Argument(0).String()))
	}
	if _, ok := goja.AssertFunction(v); ok {
		panic(r.vm.NewTypeError("function at %q is not JSON", c.Argument(0).String()))
	}
	return v
}

// describe names a JavaScript value's type for an error message, without
// its content.
func describe(v goja.Value) string {
	switch {
	case goja.IsNull(v):
		return "null"
	case goja.IsUndefined(v):
		return "undefined"
	}
	if o, ok := v.(*goja.Object); ok {
		if _, ok := goja.AssertFunction(o); ok {
			return "a function"
		}
		return "an object (" + o.ClassName() + ")"
	}
	if v.ExportType() != nil {
		return "a " + v.ExportType().Kind().String()
	}
	return "a value"
}

// logFn is the script's log(): arguments joined by spaces, at debug level.
func (r *runner) logFn(c goja.FunctionCall) goja.Value {
	h := r.h
	if !h.log.Enabled(context.Background(), slog.LevelDebug) {
		return goja.Undefined()
	}
	parts := make([]string, len(c.Arguments))
	for i, a := range c.Arguments {
		parts[i] = a.String()
	}
	h.log.LogAttrs(context.Background(), slog.LevelDebug, "script log",
		slog.String("script", h.name), slog.String("version", h.version),
		slog.String("msg", inspect.Printable(strings.Join(parts, " "), maxLogBytes)))
	return goja.Undefined()
}
