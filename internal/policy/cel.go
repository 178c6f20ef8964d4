package policy

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
	"cel.dev/cel-go/ext"
	"cel.dev/cel-go/interpreter"

	_ "time/tzdata" // conditions name time zones (getHours("Europe/Paris")) on any host
)

// The variables a condition sees. Each is a map so that conditions can
// use attributes the operator invents (agent.attributes.queues) without a
// schema; the keys the gateway sets are listed in docs/policy.md.
var celVars = []string{"agent", "user", "tool", "args", "request", "session"}

// costLimit bounds one evaluation (a condition iterating over a huge
// argument must not stall the call path); exceeding it is an evaluation
// error, so the call is denied.
const costLimit = 1_000_000

var (
	envOnce sync.Once
	celEnv  *cel.Env
	envErr  error
)

func environment() (*cel.Env, error) {
	envOnce.Do(func() {
		opts := append(stdLibWithCachedZones(),
			ext.Strings(), ext.Sets(), ext.Lists(), ext.Network(),
			cel.OptionalTypes(),
			cel.Function("urls",
				cel.Overload("urls_dyn", []*cel.Type{cel.DynType}, cel.ListType(cel.StringType),
					cel.UnaryBinding(celURLs))),
			cel.Function("host",
				cel.Overload("host_string", []*cel.Type{cel.StringType}, cel.StringType,
					cel.UnaryBinding(celHost))),
			cel.Function("sql_read_only",
				cel.Overload("sql_read_only_string", []*cel.Type{cel.StringType}, cel.BoolType,
					cel.UnaryBinding(func(v ref.Val) ref.Val {
						s, ok := v.(types.String)
						if !ok {
							return types.NewErr("sql_read_only: want a string, got %s", v.Type())
						}
						return types.Bool(SQLReadOnly(string(s)))
					}))),
		)
		for _, name := range celVars {
			opts = append(opts, cel.Variable(name, cel.MapType(cel.StringType, cel.DynType)))
		}
		celEnv, envErr = cel.NewCustomEnv(opts...)
	})
	return celEnv, envErr
}

// condition is a compiled `when`.
type condition struct {
	src  string
	prog cel.Program
	// uses records the variables the expression reads: conditions that
	// read args cannot be decided when a list is filtered (there are no
	// arguments yet), and the others need not build what they do not read.
	uses map[string]bool
}

func compileCondition(src string) (*condition, error) {
	env, err := environment()
	if err != nil {
		return nil, fmt.Errorf("policy expression environment: %w", err)
	}
	checked, iss := env.Compile(src)
	if iss != nil && iss.Err() != nil {
		var msgs []string
		for _, e := range iss.Errors() {
			msgs = append(msgs, fmt.Sprintf("column %d: %s", e.Location.Column()+1, e.Message))
		}
		return nil, errors.New(strings.Join(msgs, "; "))
	}
	if !checked.OutputType().IsExactType(cel.BoolType) && !checked.OutputType().IsExactType(cel.DynType) {
		return nil, fmt.Errorf("must be a boolean expression, not %s", checked.OutputType())
	}
	prog, err := env.Program(checked, cel.CostLimit(costLimit), cel.EvalOptions(cel.OptOptimize))
	if err != nil {
		return nil, err
	}
	c := &condition{src: src, prog: prog, uses: map[string]bool{}}
	ast.PostOrderVisit(checked.NativeRep().Expr(), ast.NewExprVisitor(func(e ast.Expr) {
		if e.Kind() == ast.IdentKind {
			c.uses[e.AsIdent()] = true
		}
	}))
	return c, nil
}

// eval runs the condition. A non-boolean result is an error.
func (c *condition) eval(a *activation) (bool, error) {
	out, _, err := c.prog.Eval(a)
	if err != nil {
		return false, err
	}
	b, ok := out.(types.Bool)
	if !ok {
		return false, fmt.Errorf("the condition returned %s, not a boolean", out.Type())
	}
	return bool(b), nil
}

// activation resolves the condition variables for one decision, building
// each only when a condition reads it.
type activation struct {
	in *Input

	tool     map[string]any
	args     any
	argsErr  error
	argsDone bool
	request  map[string]any
	session  map[string]any
}

func (a *activation) Parent() interpreter.Activation { return nil }

func (a *activation) ResolveName(name string) (any, bool) {
	switch name {
	case "agent":
		return a.in.Caller.agentValue(), true
	case "user":
		return a.in.Caller.userValue(), true
	case "tool":
		if a.tool == nil {
			a.tool = a.in.Target.value(&a.in.facts)
		}
		return a.tool, true
	case "args":
		if !a.argsDone {
			a.argsDone = true
			a.args, a.argsErr = decodeArgs(a.in.Args)
		}
		if a.argsErr != nil {
			return types.NewErr("arguments: %v", a.argsErr), true
		}
		return a.args, true
	case "request":
		if a.request == nil {
			a.request = map[string]any{"time": a.in.Request.Time, "source": a.in.Request.Source, "method": a.in.Request.Method}
		}
		return a.request, true
	case "session":
		if a.session == nil {
			labels := a.in.Session.Labels
			if labels == nil {
				labels = []string{}
			}
			a.session = map[string]any{"labels": labels, "calls": int64(a.in.Session.Calls), "id": a.in.Session.ID}
		}
		return a.session, true
	}
	return nil, false
}

func decodeArgs(raw json.RawMessage) (any, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return map[string]any{}, nil
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, err
	}
	if _, ok := v.(map[string]any); !ok {
		return nil, fmt.Errorf("arguments must be an object")
	}
	return v, nil
}

// findURLs appends the URLs found in s: "scheme://…" for any scheme of
// two or more characters, and the web schemes (http, https, ws, wss, ftp)
// also without "//" ("https:evil.example", "https:/x", "https:\\x"), which
// WHATWG parsers (browsers, Node's fetch) open all the same. A URL inside
// another URL's text is reported too. Hand-written: the equivalent regular
// expression took 40% of a whole decision (BenchmarkDecideCall).
func findURLs(dst []string, s string) []string {
	for off := 0; off < len(s); {
		j := strings.IndexByte(s[off:], ':')
		if j < 0 {
			return dst
		}
		i := off + j
		off = i + 1
		start := i
		for start > 0 && isSchemeChar(s[start-1]) {
			start--
		}
		for start < i && !isLetter(s[start]) { // a scheme starts with a letter
			start++
		}
		if start == i {
			continue
		}
		slashes := strings.HasPrefix(s[i+1:], "//")
		switch {
		case slashes && i-start < 2: // "c://": a drive letter, not a scheme
			continue
		case !slashes && !webScheme(s[start:i]):
			continue
		}
		end := i + 1
		for end < len(s) && !isURLEnd(s[end]) {
			end++
		}
		if end == i+1 || (slashes && end == i+3) {
			continue
		}
		dst = append(dst, s[start:end])
	}
	return dst
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// isSchemeChar: RFC 3986 scheme characters.
func isSchemeChar(c byte) bool {
	return isLetter(c) || c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.'
}

func isURLEnd(c byte) bool {
	switch c {
	case ' ', '\t', '\n', '\r', '\f', '\v', '"', '\'', '<', '>', '`':
		return true
	}
	return false
}

func webScheme(s string) bool {
	switch strings.ToLower(s) {
	case "http", "https", "ws", "wss", "ftp":
		return true
	}
	return false
}

// maxURLDepth bounds the nesting urls() walks; deeper arguments are an
// evaluation error (so a deny rule over them fails closed).
const maxURLDepth = 64

// celURLs returns every URL found in any string inside v (keys included),
// so that "no URL outside an allow list" holds however deep the argument.
func celURLs(v ref.Val) ref.Val {
	var found []string
	tooDeep := false
	var walk func(v ref.Val, depth int)
	walk = func(v ref.Val, depth int) {
		if tooDeep {
			return
		}
		if depth > maxURLDepth {
			tooDeep = true
			return
		}
		switch t := v.(type) {
		case types.String:
			found = findURLs(found, string(t))
		case traits.Mapper:
			it := t.Iterator()
			for it.HasNext() == types.True {
				k := it.Next()
				walk(k, depth+1)
				walk(t.Get(k), depth+1)
			}
		case traits.Lister:
			it := t.Iterator()
			for it.HasNext() == types.True {
				walk(it.Next(), depth+1)
			}
		}
	}
	walk(v, 0)
	if tooDeep {
		return types.NewErr("urls: the value is nested deeper than %d levels", maxURLDepth)
	}
	if found == nil {
		found = []string{}
	}
	return types.DefaultTypeAdapter.NativeToValue(found)
}

// celHost returns the lower-case host name of a URL ("" when it has none).
func celHost(v ref.Val) ref.Val {
	s, ok := v.(types.String)
	if !ok {
		return types.NewErr("host: want a string, got %s", v.Type())
	}
	u, err := url.Parse(strings.TrimSpace(string(s)))
	if err != nil {
		return types.String("")
	}
	return types.String(strings.ToLower(strings.TrimSuffix(u.Hostname(), ".")))
}

// now is replaced in tests.
var now = time.Now
