package policy

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"

	"cel.dev/cel-go/common/types"
)

// FuzzSQLReadOnly: SQLReadOnly never panics, and when it says read-only,
// the query is one statement starting with a reading keyword in which no
// writing keyword (nor INTO, FOR, EXPLAIN ANALYZE) appears as a bare word
// outside literals, quoted identifiers and comments, as an independent
// reading of the same rules (sqlReference) finds them.
func FuzzSQLReadOnly(f *testing.F) {
	for _, s := range []string{
		"SELECT 1", "SELECT 1;", "select * from t where a = 'x''y' -- c", `SELECT 'it\'s' FROM t`, "SELECT `a` FROM \"b\"",
		"WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d", "SELECT 1; DROP TABLE x", "EXPLAIN ANALYZE SELECT 1",
		"SELECT * FROM t FOR UPDATE", "SELECT * INTO n FROM t", "SELECT pg_sleep(1)", "SELECT $1, $$x$$", "SHOW GRANTS FOR a",
		"SELECT 1 /* x */ # y\n-- z", "SELECT 'unterminated", "SELECT 1 /* open", "VALUES (1)", "DESC t", "TABLE t",
		"SELECT 1 # 1, pg_sleep(10)", "SELECT \"pg_sleep\"(1)", "SELECT 'a\\'; DELETE FROM t; --'", "1SHOW FOR",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		if msg := checkSQLReadOnly(q); msg != "" {
			t.Fatalf("SQLReadOnly(%q): %s", q, msg)
		}
	})
}

// FuzzFindURLs: findURLs never panics; every URL it finds is part of the
// input, starts with a scheme (a letter, then RFC 3986 scheme characters)
// and a colon, is followed by "//" and something when the scheme is not a
// web scheme (http, https, ws, wss, ftp: those count without "//"), holds
// no character that ends a URL; host() reads each without panicking.
func FuzzFindURLs(f *testing.F) {
	for _, s := range []string{
		"see https://example.com/a and http://b.example", "HTTPS://X.example", "://", "a://b", "ab://", "http://",
		"http://example.com/,https://evil.example", "<a href='http://q.example'>", "s3://bucket/x", "git+ssh://h/x",
		"http://[::1]:80/x", "http://u:p@h.example:8080/p?q#f", "é://x", "x\x00://y", strings.Repeat("a://", 20),
		"https:evil.example", `https:\\evil.example`, "https:/evil.example", "note: http: nothing",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := findURLs(nil, s)
		if len(got) > strings.Count(s, ":") {
			t.Fatalf("%d URLs from %d ':' in %q", len(got), strings.Count(s, ":"), s)
		}
		for _, u := range got {
			if !strings.Contains(s, u) {
				t.Fatalf("%q is not in %q", u, s)
			}
			i := strings.IndexByte(u, ':')
			if i < 1 || !isLetter(u[0]) {
				t.Fatalf("%q (from %q): no scheme", u, s)
			}
			for j := 0; j < i; j++ {
				if !isSchemeChar(u[j]) {
					t.Fatalf("%q: scheme character %q", u, u[j])
				}
			}
			if strings.HasPrefix(u[i+1:], "//") {
				if i < 2 || len(u) == i+3 {
					t.Fatalf("%q: scheme shorter than two characters, or nothing after ://", u)
				}
			} else if !webScheme(u[:i]) || len(u) == i+1 {
				t.Fatalf("%q: neither scheme:// nor a web scheme with something after it", u)
			}
			for j := i + 1; j < len(u); j++ {
				if isURLEnd(u[j]) {
					t.Fatalf("%q: holds %q, which ends a URL", u, u[j])
				}
			}
			_ = celHost(types.String(u))
		}
		out, err := celURLs(types.String(s)).ConvertToNative(reflect.TypeOf([]string{}))
		if err != nil || !slices.Equal(out.([]string), nonNil(got)) {
			t.Fatalf("urls(%q) = %v (%v), findURLs = %q", s, out, err, got)
		}
	})
}

// fuzzTargets are the tools FuzzDecideArgs decides, under rolesConfig.
var fuzzTargets = []*Target{
	workTool("tickets", "create_ticket", nil), workTool("tickets", "list_tickets", nil), workTool("tickets", "get_ticket", nil),
	workTool("crm", "get_invoice", yes), workTool("crm", "update_customer", nil), workTool("crm", "search_customers", yes),
	workTool("chat", "post_message", nil), workTool("chat", "list_channels", yes),
}

// FuzzDecideArgs: any arguments through Decide under the roles policy
// never panic and always give allow, deny or approve; the decision does
// not depend on explain; lists never hold for approval; and arguments
// that are not a JSON object are denied by the organisation's URL rule,
// which reads every call's arguments (fail closed).
func FuzzDecideArgs(f *testing.F) {
	p := rolesPolicy(f)
	callers := []*Caller{
		agent("support-bot", "support", map[string]any{"queues": []any{"billing", "technical"}}),
		agent("sales-bot", "sales", map[string]any{"regions": []any{"EMEA"}}),
		drivenBy(agent("eng-bot", "engineering", nil), "carol", "oncall"),
		person("root", "admins"),
		anonymous(),
	}
	for _, s := range []struct {
		args        string
		pick        uint8
		readFinance bool
		list        bool
	}{
		{`{"queue":"billing","subject":"x"}`, 0, false, false},
		{`{"queue":"billing","priority":"urgent"}`, 0, false, false},
		{`{"channel":"#support","text":"see https://docs.example.com/a"}`, 6, true, false},
		{`{"channel":"#ext-acme","text":"http://evil.example"}`, 6, false, false},
		{`{"channel":"#sales"}`, 6 + 8, false, false},
		{`{"a":[{"b":{"c":"ftp://x.example"}}]}`, 3, false, false},
		{`[1,2,3]`, 2, false, false},
		{`"text"`, 4, false, true},
		{`{`, 5, true, false},
		{``, 7, false, true},
		{`null`, 1, false, false},
		{`{"queue":{"nested":true}}`, 0, false, false},
		{`{"channel":1}`, 6, false, false},
		{`{"xs":[` + strings.Repeat(`"http://a.example/ `, 50) + `"]}`, 3, false, false},
	} {
		f.Add(s.args, s.pick, s.readFinance, s.list)
	}
	f.Fuzz(func(t *testing.T, args string, pick uint8, readFinance, list bool) {
		c := callers[int(pick/8)%len(callers)]
		tg := fuzzTargets[int(pick%8)]
		in := func() *Input {
			i := &Input{Caller: c, Target: tg, Args: json.RawMessage(args), List: list,
				Request: Request{Time: at(10, 0), Source: "10.0.0.1", Method: "tools/call"}}
			if readFinance {
				i.Session.Labels = []string{"customer_data", "customer_financial"}
			}
			return i
		}
		d := p.Decide(in(), false)
		switch d.Effect {
		case Allow, Deny, Approve:
		default:
			t.Fatalf("effect %q", d.Effect)
		}
		if list && d.Effect == Approve {
			t.Fatalf("a list held for approval: %+v", d)
		}
		d2 := p.Decide(in(), true)
		if d2.Effect != d.Effect || d2.Rule != d.Rule || d2.Reason != d.Reason || d2.WouldDeny != d.WouldDeny {
			t.Fatalf("explain changes the decision: %+v vs %+v", d2, d)
		}
		if !list {
			if _, err := decodeArgs(json.RawMessage(args)); err != nil && (d.Effect != Deny || d.Rule != "no-foreign-links") {
				t.Fatalf("arguments %q (%v): %s by %q, want deny by no-foreign-links", args, err, d.Effect, d.Rule)
			}
		}
		_ = ArgsHash(json.RawMessage(args))
		_ = p.Explain(in())
	})
}
