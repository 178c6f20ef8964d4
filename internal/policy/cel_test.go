package policy

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"

	"gatehouse/internal/config"
)

// evalExpr evaluates any expression of the policy environment (not only
// boolean conditions) over in.
func evalExpr(tb testing.TB, expr string, in *Input) (ref.Val, error) {
	tb.Helper()
	env, err := environment()
	if err != nil {
		tb.Fatal(err)
	}
	checked, iss := env.Compile(expr)
	if iss != nil && iss.Err() != nil {
		tb.Fatalf("%s: %v", expr, iss.Err())
	}
	prog, err := env.Program(checked, cel.CostLimit(costLimit))
	if err != nil {
		tb.Fatal(err)
	}
	if in.Caller == nil {
		in.Caller = anonymous()
	}
	if in.Target == nil {
		in.Target = tt("web", "x")
	}
	out, _, err := prog.Eval(&activation{in: in})
	return out, err
}

func argsInput(args string) *Input { return &Input{Args: json.RawMessage(args)} }

func evalStrings(t *testing.T, expr string, in *Input) []string {
	t.Helper()
	out, err := evalExpr(t, expr, in)
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	v, err := out.ConvertToNative(reflect.TypeOf([]string{}))
	if err != nil {
		t.Fatalf("%s: %v (%v)", expr, err, out)
	}
	return v.([]string)
}

func TestURLs(t *testing.T) {
	cases := []struct {
		name string
		args string
		want []string
	}{
		{"one", `{"a":"see https://x.example/a?b=c#d"}`, []string{"https://x.example/a?b=c#d"}},
		{"several in one string", `{"a":"https://a.example and http://b.example/x, ftp://c.example"}`,
			[]string{"https://a.example", "http://b.example/x,", "ftp://c.example"}},
		{"nested maps and lists", `{"a":[{"b":["x","wss://deep.example/s"]}],"c":{"d":{"e":"http://e.example"}}}`,
			[]string{"http://e.example", "wss://deep.example/s"}},
		{"keys", `{"https://key.example/":1}`, []string{"https://key.example/"}},
		{"nested key", `{"a":{"gopher://k.example":true}}`, []string{"gopher://k.example"}},
		{"mixed case schemes", `{"a":"HTTPS://Upper.Example/X HtTp://mixed.example"}`,
			[]string{"HTTPS://Upper.Example/X", "HtTp://mixed.example"}},
		{"none", `{"a":"no links here","n":5,"b":true,"z":null,"l":[1,2]}`, []string{}},
		{"empty args", `{}`, []string{}},
		{"no args", ``, []string{}},
		{"strings without ://", `{"a":"mailto:a@b.example example.com/path urn:isbn:1 note: x"}`, []string{}},
		{"web schemes without //", `{"a":"http:/x http:\\\\y https:evil.example"}`, []string{"http:/x", `http:\\y`, "https:evil.example"}},
		{"no scheme", `{"a":"://nohost"}`, []string{}},
		{"one-letter scheme", `{"a":"x://single"}`, []string{}},
		{"nothing after ://", `{"a":"http:// next"}`, []string{}},
		{"ends at quotes and brackets", `{"a":"<a href='http://q.example/x'>\"https://r.example\"` + "`ftp://s.example`" + `"}`,
			[]string{"http://q.example/x", "https://r.example", "ftp://s.example"}},
		{"ends at whitespace", "{\"a\":\"http://t.example\\nhttp://u.example\\thttp://v.example\\rhttp://w.example\"}",
			[]string{"http://t.example", "http://u.example", "http://v.example", "http://w.example"}},
		{"scheme after punctuation", `{"a":"(http://p.example) [https://q.example]"}`, []string{"http://p.example)", "https://q.example]"}},
		{"scheme after digits", `{"a":"1http://d.example"}`, []string{"http://d.example"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := evalStrings(t, "urls(args)", argsInput(c.args))
			// Map iteration order is not specified: compare as sets.
			slices.Sort(got)
			want := slices.Clone(c.want)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("urls(%s) = %q, want %q", c.args, got, want)
			}
		})
	}
	t.Run("other values", func(t *testing.T) {
		if got := evalStrings(t, `urls("a https://x.example b")`, &Input{}); !slices.Equal(got, []string{"https://x.example"}) {
			t.Fatalf("string: %q", got)
		}
		if got := evalStrings(t, `urls(42)`, &Input{}); len(got) != 0 {
			t.Fatalf("int: %q", got)
		}
		if got := evalStrings(t, `urls(["http://a.example", {"k": "http://b.example"}])`, &Input{}); len(got) != 2 {
			t.Fatalf("list: %q", got)
		}
		if got := evalStrings(t, `urls(agent)`, &Input{Caller: agent("a", "t", map[string]any{"home": "https://home.example"})}); !slices.Equal(got, []string{"https://home.example"}) {
			t.Fatalf("agent attributes: %q", got)
		}
	})
	t.Run("depth 60", func(t *testing.T) {
		args := `{"a":` + strings.Repeat("[", 60) + `"http://deep.example"` + strings.Repeat("]", 60) + `}`
		if got := evalStrings(t, "urls(args)", argsInput(args)); !slices.Equal(got, []string{"http://deep.example"}) {
			t.Fatalf("got %q", got)
		}
	})
	t.Run("any depth", func(t *testing.T) {
		// docs/policy.md: "every URL found in any string inside value, keys
		// included, at any depth". Beyond 64 levels the walk stops silently,
		// so a deny rule over urls(args) does not see the URL.
		args := `{"a":` + strings.Repeat("[", 70) + `"http://evil.example"` + strings.Repeat("]", 70) + `}`
		out, err := evalExpr(t, "urls(args)", argsInput(args))
		if err == nil && !types.IsError(out) {
			if got := evalStrings(t, "urls(args)", argsInput(args)); len(got) == 0 {
				t.Fatalf("urls() ignores strings nested deeper than 64 levels (want them found, or an error so that deny rules fail closed)")
			}
		}
	})
	t.Run("URL inside another URL's text", func(t *testing.T) {
		// A tool taking a comma-separated list, or a redirect parameter, gets
		// a second URL that the scan skips: it resumes after the first URL.
		got := evalStrings(t, "urls(args)", argsInput(`{"a":"http://example.com/,https://evil.example/x"}`))
		if !slices.ContainsFunc(got, func(u string) bool { return strings.HasPrefix(u, "https://evil.example") }) {
			t.Fatalf("urls() returns %q for %q: the second URL is not reported, so host() checks miss evil.example",
				got, "http://example.com/,https://evil.example/x")
		}
	})
	t.Run("special schemes without //", func(t *testing.T) {
		// WHATWG URL parsers (Node's fetch, browsers) read these as
		// https://evil.example/x; urls() does not see them.
		for _, s := range []string{`https:/evil.example/x`, `https:\\evil.example/x`, `https:evil.example/x`} {
			b, _ := json.Marshal(map[string]string{"u": s})
			if got := evalStrings(t, "urls(args)", argsInput(string(b))); len(got) == 0 {
				t.Fatalf("urls() does not report %q, which WHATWG URL parsers open as https://evil.example/x", s)
			}
		}
	})
	t.Run("schemes with digits, '+', '-' or '.'", func(t *testing.T) {
		got := evalStrings(t, "urls(args)", argsInput(`{"a":"s3://evil-bucket/x"}`))
		if len(got) == 0 {
			t.Fatalf("urls() does not report %q: the scheme scan only takes letters (RFC 3986 schemes may hold digits, '+', '-', '.')", "s3://evil-bucket/x")
		}
	})
}

func TestFindURLsDirect(t *testing.T) {
	got := findURLs([]string{"kept"}, "a http://x.example b")
	if !slices.Equal(got, []string{"kept", "http://x.example"}) {
		t.Fatalf("appends: %q", got)
	}
	if got := findURLs(nil, ""); got != nil {
		t.Fatalf("empty: %q", got)
	}
}

func TestHost(t *testing.T) {
	cases := []struct{ in, want string }{
		{"https://example.com/x", "example.com"},
		{"https://Example.COM:8443/x", "example.com"},
		{"http://user:pw@host.example/", "host.example"},
		{"http://example.com@evil.example/", "evil.example"},
		{"http://[::1]:8080/", "::1"},
		{"http://[2001:DB8::1]/", "2001:db8::1"},
		{"https://example.com./", "example.com"},
		{"https://EXAMPLE.com.:443", "example.com"},
		{"  https://example.com  ", "example.com"},
		{"//cdn.example/x", "cdn.example"},
		{"ftp://files.example", "files.example"},
		{"http://127.0.0.1:80", "127.0.0.1"},
		{"not a url", ""},
		{"example.com", ""},
		{"example.com/path", ""},
		{"http://%zz", ""},
		{"http://exa mple.com", ""},
		{"mailto:a@b.example", ""},
		{"", ""},
		{"http://", ""},
		{"http://:80", ""},
		{"\x00http://x", ""},
	}
	for _, c := range cases {
		out, err := evalExpr(t, "host(request.method)", &Input{Request: Request{Method: c.in}})
		if err != nil {
			t.Errorf("host(%q): %v", c.in, err)
			continue
		}
		if got := string(out.(types.String)); got != c.want {
			t.Errorf("host(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	if _, err := evalExpr(t, "host(args.n)", argsInput(`{"n":1}`)); err == nil {
		t.Error("host(1): no error")
	}
}

func TestCELExtensions(t *testing.T) {
	c := drivenBy(supportBot(), "alice", "oncall", "staff")
	cases := []struct {
		expr   string
		in     *Input
		want   bool
		errSub string // non-empty: an evaluation error containing this
	}{
		{`sets.intersects(user.groups, ["oncall"])`, &Input{Caller: c}, true, ""},
		{`sets.intersects(user.groups, ["admins"])`, &Input{Caller: c}, false, ""},
		{`sets.contains(user.groups, ["staff", "oncall"])`, &Input{Caller: c}, true, ""},
		{`sets.intersects(user.groups, ["oncall"])`, &Input{Caller: supportBot()}, false, ""},
		{`args.channel.startsWith("#ext-")`, argsInput(`{"channel":"#ext-partners"}`), true, ""},
		{`args.channel.startsWith("#ext-")`, argsInput(`{"channel":"#support"}`), false, ""},
		{`args.s.lowerAscii() == "abc" && args.s.upperAscii() == "ABC"`, argsInput(`{"s":"aBc"}`), true, ""},
		{`"a,b".split(",") == ["a", "b"]`, &Input{}, true, ""},
		{`args.s.matches("^[a-z]+$")`, argsInput(`{"s":"abc"}`), true, ""},
		{`cidr("10.0.0.0/8").containsIP(ip(request.source))`, &Input{Request: Request{Source: "10.1.2.3"}}, true, ""},
		{`cidr("10.0.0.0/8").containsIP(ip(request.source))`, &Input{Request: Request{Source: "192.168.1.1"}}, false, ""},
		{`cidr("2001:db8::/32").containsIP(ip(request.source))`, &Input{Request: Request{Source: "2001:db8::1"}}, true, ""},
		{`ip(request.source).isLoopback()`, &Input{Request: Request{Source: "127.0.0.1"}}, true, ""},
		{`cidr("10.0.0.0/8").containsIP(ip(request.source))`, &Input{Request: Request{Source: ""}}, false, "IP"},
		{`args.?x.orValue(1) == 1`, argsInput(`{}`), true, ""},
		{`[3, 1, 2].sort() == [1, 2, 3]`, &Input{}, true, ""},
		{`has(args.queue) && args.queue in agent.attributes.queues`, &Input{Caller: supportBot(), Args: json.RawMessage(`{"queue":"billing"}`)}, true, ""},
		{`has(args.queue) && args.queue in agent.attributes.queues`, &Input{Caller: supportBot(), Args: json.RawMessage(`{"queue":"legal"}`)}, false, ""},
		{`has(args.queue)`, argsInput(`{}`), false, ""},
		{`session.calls == 2 && "x" in session.labels && session.id == "s"`,
			&Input{Session: Session{ID: "s", Labels: []string{"x"}, Calls: 2}}, true, ""},
		{`size(session.labels) == 0`, &Input{}, true, ""},
		{`size(user.groups) == 0 && user.name == ""`, &Input{Caller: supportBot()}, true, ""},
		{`agent.name == "bot" && agent.team == "support" && agent.id == "agt_bot" && agent.owner == ""`, &Input{Caller: supportBot()}, true, ""},
		{`size(agent.attributes) == 0`, &Input{Caller: salesBot()}, true, ""},
		{`tool.kind == "tool" && tool.name == "x" && tool.upstream == "web" && tool.server == "support" && tool.visible_name == "web_x"`, &Input{}, true, ""},
		{`tool.annotations.readOnlyHint && tool.annotations.title == "T"`,
			&Input{Target: &Target{Kind: KindTool, Annotations: Annotations{ReadOnly: yes, Title: "T"}}}, true, ""},
		{`request.method == "tools/call" && request.time.getFullYear() == 2026`,
			&Input{Request: Request{Method: "tools/call", Time: at(10, 0)}}, true, ""},
		{`sql_read_only(args.sql)`, argsInput(`{"sql":"SELECT 1"}`), true, ""},
		{`sql_read_only(args.sql)`, argsInput(`{"sql":"DELETE FROM t"}`), false, ""},
		{`sql_read_only(args.sql)`, argsInput(`{"sql":42}`), false, "overload"},
		{`args.a.b`, argsInput(`{"a":{}}`), false, "no such key"},
	}
	for _, c := range cases {
		out, err := evalExpr(t, c.expr, c.in)
		if c.errSub != "" {
			if err == nil || !strings.Contains(err.Error(), c.errSub) {
				t.Errorf("%s: got %v, %v; want an error containing %q", c.expr, out, err, c.errSub)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.expr, err)
			continue
		}
		if b, ok := out.(types.Bool); !ok || bool(b) != c.want {
			t.Errorf("%s = %v, want %v", c.expr, out, c.want)
		}
	}
}

// The time-zone accessors replace CEL's own with a cache of zones: they
// must give what Go's time package and the stock cel-go functions give.
func TestTimeZoneAccessors(t *testing.T) {
	accessors := []struct {
		fn   string
		goFn func(time.Time) int64
	}{
		{"getFullYear", func(t time.Time) int64 { return int64(t.Year()) }},
		{"getMonth", func(t time.Time) int64 { return int64(t.Month()) - 1 }},
		{"getDayOfYear", func(t time.Time) int64 { return int64(t.YearDay()) - 1 }},
		{"getDayOfMonth", func(t time.Time) int64 { return int64(t.Day()) - 1 }},
		{"getDate", func(t time.Time) int64 { return int64(t.Day()) }},
		{"getDayOfWeek", func(t time.Time) int64 { return int64(t.Weekday()) }},
		{"getHours", func(t time.Time) int64 { return int64(t.Hour()) }},
		{"getMinutes", func(t time.Time) int64 { return int64(t.Minute()) }},
		{"getSeconds", func(t time.Time) int64 { return int64(t.Second()) }},
		{"getMilliseconds", func(t time.Time) int64 { return int64(t.Nanosecond() / 1e6) }},
	}
	zoneNames := []string{"Europe/Paris", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe", "Pacific/Chatham",
		"America/St_Johns", "UTC", "+05:30", "-03:00", "+00:00", "-00:30", "+14:00", "-23:59", "05:45", ""}
	times := []string{"2026-03-29T00:59:59.999Z", "2026-03-29T01:00:00Z", "2026-11-01T05:59:59Z", "2026-11-01T06:00:00Z",
		"2024-02-29T23:30:00.5Z", "2026-12-31T23:59:59.999Z", "2027-01-01T02:00:00Z", "1970-01-01T00:00:00Z", "2026-11-25T09:00:00Z"}

	stock, err := cel.NewEnv(cel.Variable("t", cel.TimestampType), cel.Variable("z", cel.StringType))
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range accessors {
		ours, err := compileCondition(fmt.Sprintf(`request.time.%s(request.source) == int(request.method)`, a.fn))
		if err != nil {
			t.Fatal(err)
		}
		sast, iss := stock.Compile(fmt.Sprintf(`t.%s(z)`, a.fn))
		if iss.Err() != nil {
			t.Fatal(iss.Err())
		}
		sprog, err := stock.Program(sast)
		if err != nil {
			t.Fatal(err)
		}
		oursRaw, err := evalProgram(t, fmt.Sprintf(`request.time.%s(request.source)`, a.fn))
		if err != nil {
			t.Fatal(err)
		}
		for _, z := range zoneNames {
			loc := goZone(t, z)
			for _, ts := range times {
				tm, err := time.Parse(time.RFC3339Nano, ts)
				if err != nil {
					t.Fatal(err)
				}
				want := a.goFn(tm.In(loc))
				in := &Input{Caller: anonymous(), Target: tt("web", "x"), Request: Request{Time: tm, Source: z, Method: strconv.FormatInt(want, 10)}}
				ok, err := ours.eval(&activation{in: in})
				if err != nil || !ok {
					got, gerr := oursRaw.Eval(&activation{in: in})
					t.Errorf("%s(%q) at %s: got %v (%v), want %d", a.fn, z, ts, got, gerr, want)
				}
				sout, _, err := sprog.Eval(map[string]any{"t": tm, "z": z})
				if err != nil || int64(sout.(types.Int)) != want {
					t.Errorf("stock cel-go %s(%q) at %s: %v (%v), want %d", a.fn, z, ts, sout, err, want)
				}
			}
		}
	}

	// Unknown zones and bad offsets are errors, as in stock cel-go.
	getHours, err := evalProgram(t, `request.time.getHours(request.source)`)
	if err != nil {
		t.Fatal(err)
	}
	shours, _ := stock.Compile(`t.getHours(z)`)
	sprog, _ := stock.Program(shours)
	for _, z := range []string{"Mars/Olympus_Mons", "+25:00", "+05:xx", "xx:00", "+05:60", "-05:-10", "Europe/", "../../etc/passwd", ":"} {
		in := &Input{Caller: anonymous(), Target: tt("web", "x"), Request: Request{Time: at(10, 0), Source: z}}
		out, err := getHours.Eval(&activation{in: in})
		if err == nil {
			t.Errorf("getHours(%q) = %v, want an error", z, out)
		}
		if _, _, serr := sprog.Eval(map[string]any{"t": at(10, 0), "z": z}); serr == nil {
			t.Errorf("stock getHours(%q) has no error: the cases disagree with cel-go", z)
		}
	}
	// Without a zone: UTC.
	out, err := evalExpr(t, `request.time.getHours()`, &Input{Request: Request{Time: time.Date(2026, 1, 1, 7, 0, 0, 0, time.FixedZone("x", 3600))}})
	if err != nil || int64(out.(types.Int)) != 6 {
		t.Errorf("getHours() = %v, %v; want 6 (UTC)", out, err)
	}
}

type program struct{ p cel.Program }

func (p program) Eval(a *activation) (ref.Val, error) {
	out, _, err := p.p.Eval(a)
	return out, err
}

func evalProgram(tb testing.TB, expr string) (program, error) {
	env, err := environment()
	if err != nil {
		return program{}, err
	}
	checked, iss := env.Compile(expr)
	if iss != nil && iss.Err() != nil {
		return program{}, iss.Err()
	}
	p, err := env.Program(checked)
	return program{p}, err
}

// goZone resolves a zone independently of zone(): IANA names with
// time.LoadLocation, "±hh:mm" by hand.
func goZone(tb testing.TB, z string) *time.Location {
	tb.Helper()
	if i := strings.Index(z, ":"); i >= 0 {
		sign := 1
		hh := z[:i]
		if strings.HasPrefix(hh, "-") {
			sign, hh = -1, hh[1:]
		}
		hh = strings.TrimPrefix(hh, "+")
		h, err1 := strconv.Atoi(hh)
		m, err2 := strconv.Atoi(z[i+1:])
		if err1 != nil || err2 != nil {
			tb.Fatalf("bad offset %q", z)
		}
		return time.FixedZone(z, sign*(h*3600+m*60))
	}
	loc, err := time.LoadLocation(z)
	if err != nil {
		tb.Fatal(err)
	}
	return loc
}

// The zone cache returns the same location each time and keeps failures
// out of the cache.
func TestZoneCache(t *testing.T) {
	a, err := zone("Asia/Kathmandu")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := zone("Asia/Kathmandu")
	if a != b {
		t.Error("zone not cached")
	}
	if _, err := zone("No/Such_Zone"); err == nil {
		t.Error("unknown zone")
	}
	if _, ok := zones.Load("No/Such_Zone"); ok {
		t.Error("unknown zone cached")
	}
	loc, err := zone("-09:30")
	if err != nil {
		t.Fatal(err)
	}
	if _, off := time.Date(2026, 1, 1, 0, 0, 0, 0, loc).Zone(); off != -(9*3600 + 30*60) {
		t.Errorf("-09:30 offset %d", off)
	}
}

// Conditions that do not compile, or are not boolean, are configuration
// problems located at the rule's `when`.
func TestCompileProblems(t *testing.T) {
	policy := `
policy:
  organisation:
    deny:
      - name: bad-syntax
        when: 'args.x +'
  teams:
    support:
      allow:
        - name: not-boolean
          when: '1 + 1'
  bundles:
    b:
      allow:
        - name: fine
          when: 'true'
        - name: undeclared
          when: 'nosuch.x == 1'
        - name: string-result
          when: '"yes"'
        - name: map-result
          when: 'args'
        - name: dynamic-is-fine
          when: 'args.x'
        - name: wrong-arity
          when: 'sql_read_only("a", "b")'
`
	text := semBase + policy
	cfg, err := config.Load("policy.yaml", []byte(text), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	_, err = Compile(cfg)
	var ps config.Problems
	if !errors.As(err, &ps) {
		t.Fatalf("got %T %v, want config.Problems", err, err)
	}
	lines := strings.Split(text, "\n")
	lineOf := func(when string) int {
		for i, l := range lines {
			if strings.TrimSpace(l) == "when: "+when {
				return i + 1
			}
		}
		t.Fatalf("no line %q", when)
		return 0
	}
	want := []struct {
		path, when, msg string
	}{
		{"policy.organisation.deny[0].when", `'args.x +'`, "condition does not compile"},
		{"policy.teams.support.allow[0].when", `'1 + 1'`, "must be a boolean expression, not int"},
		{"policy.bundles.b.allow[1].when", `'nosuch.x == 1'`, "undeclared reference"},
		{"policy.bundles.b.allow[2].when", `'"yes"'`, "must be a boolean expression, not string"},
		{"policy.bundles.b.allow[3].when", `'args'`, "must be a boolean expression, not map"},
		{"policy.bundles.b.allow[5].when", `'sql_read_only("a", "b")'`, "condition does not compile"},
	}
	if len(ps) != len(want) {
		t.Errorf("%d problems, want %d:\n%v", len(ps), len(want), err)
	}
	for _, w := range want {
		i := slices.IndexFunc(ps, func(p config.Problem) bool { return p.Path == w.path })
		if i < 0 {
			t.Errorf("no problem at %s:\n%v", w.path, err)
			continue
		}
		p := ps[i]
		if p.File != "policy.yaml" || p.Line != lineOf(w.when) || !strings.Contains(p.Msg, w.msg) {
			t.Errorf("problem %s:%d:%d %s: %s; want line %d and %q", p.File, p.Line, p.Column, p.Path, p.Msg, lineOf(w.when), w.msg)
		}
		if !strings.Contains(p.Error(), fmt.Sprintf("policy.yaml:%d:", lineOf(w.when))) {
			t.Errorf("message %q", p.Error())
		}
	}
	// Compile errors name the column inside the expression.
	if i := slices.IndexFunc(ps, func(p config.Problem) bool { return p.Path == "policy.organisation.deny[0].when" }); i >= 0 &&
		!strings.Contains(ps[i].Msg, "column ") {
		t.Errorf("no column: %s", ps[i].Msg)
	}
}

// Conditions record the variables they read (list filtering depends on it).
func TestConditionUses(t *testing.T) {
	cases := []struct {
		src  string
		uses []string
	}{
		{`args.x == 1`, []string{"args"}},
		{`has(args.x)`, []string{"args"}},
		{`urls(args).exists(u, host(u) == "x")`, []string{"args"}},
		{`agent.team == "a" || user.name == "b"`, []string{"agent", "user"}},
		{`tool.name.startsWith("x") && request.time.getHours() > 1`, []string{"request", "tool"}},
		{`session.calls > 1`, []string{"session"}},
		{`true`, nil},
	}
	vars := []string{"agent", "user", "tool", "args", "request", "session"}
	for _, c := range cases {
		cond, err := compileCondition(c.src)
		if err != nil {
			t.Fatalf("%s: %v", c.src, err)
		}
		var got []string
		for _, v := range vars {
			if cond.uses[v] {
				got = append(got, v)
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, c.uses) {
			t.Errorf("%s uses %q, want %q", c.src, got, c.uses)
		}
	}
}
