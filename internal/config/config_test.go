package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func noEnv(string) (string, bool) { return "", false }

func TestLoadValid(t *testing.T) {
	src := `
listen: 127.0.0.1:9000
upstreams:
  crm:
    command: gatehouse
    args: [demo-server, crm]
    env: {TOKEN: "${CRM_TOKEN}", LITERAL: "a$$b"}
  remote:
    url: http://127.0.0.1:9100/mcp
    headers:
      Authorization: Bearer ${REMOTE_TOKEN}
    timeouts: {tool_call: 90s}
servers:
  support:
    upstreams:
      - upstream: crm
        include: ["get_*", "search_*"]
        tools:
          get_invoice: {name: invoice, description: "Fetch one invoice"}
      - upstream: remote
        prefix: ""
`
	env := map[string]string{"CRM_TOKEN": "s3cret", "REMOTE_TOKEN": "tok"}
	cfg, err := Load("t.yaml", []byte(src), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	u := cfg.Upstreams["crm"]
	if u.Env["TOKEN"].Reveal() != "s3cret" || u.Env["LITERAL"].Reveal() != "a$b" {
		t.Fatalf("env not expanded: %#v", u.Env)
	}
	if got := cfg.Upstreams["remote"].Headers["Authorization"].Reveal(); got != "Bearer tok" {
		t.Fatalf("header = %q", got)
	}
	if cfg.Upstreams["remote"].Timeouts.ToolCall.Std() != 90*time.Second || u.Timeouts.ToolCall.Std() != DefaultToolCallTimeout {
		t.Fatal("timeouts wrong")
	}
	if cfg.Upstreams["remote"].Transport != "auto" || u.Start != "on_demand" {
		t.Fatal("defaults missing")
	}
	s := cfg.Servers["support"]
	if s.Upstreams[0].EffectivePrefix() != "crm_" || s.Upstreams[1].EffectivePrefix() != "" {
		t.Fatal("prefixes wrong")
	}
	if strings.Contains(strings.Join([]string{u.Env["TOKEN"].String()}, ""), "s3cret") {
		t.Fatal("secret printed")
	}
}

func TestLoadReportsEveryProblemWithPosition(t *testing.T) {
	src := `listen: nonsense
bogus: 1
upstreams:
  crm:
    command: gatehouse
    url: http://x
    colour: red
  web:
    url: ftp://x
    args: [a]
servers:
  support:
    upstreams:
      - upstream: crmm
      - upstream: web
        prefix: "bad prefix"
        include: ["[x"]
        tools:
          t1: {name: "has space"}
`
	_, err := Load("cfg.yaml", []byte(src), noEnv)
	var ps Problems
	if !errors.As(err, &ps) {
		t.Fatalf("want Problems, got %v", err)
	}
	// Unknown fields are reported first, all of them, before decoding.
	wantFirst := []string{
		`cfg.yaml:2:1: bogus: unknown field "bogus"`,
		`cfg.yaml:7:5: upstreams.crm.colour: unknown field "colour"`,
	}
	got := ps.Error()
	for _, w := range wantFirst {
		if !strings.Contains(got, w) {
			t.Errorf("missing %q in:\n%s", w, got)
		}
	}
	// Fix the unknown fields and every semantic problem shows up.
	src = strings.Replace(strings.Replace(src, "bogus: 1\n", "", 1), "    colour: red\n", "", 1)
	_, err = Load("cfg.yaml", []byte(src), noEnv)
	got = err.Error()
	for _, w := range []string{
		`cfg.yaml:1:9: listen: invalid address "nonsense"`,
		`upstreams.crm: set either command (stdio) or url (HTTP), not both`,
		`cfg.yaml:7:10: upstreams.web.url: invalid URL "ftp://x"`,
		`upstreams.web.args: args applies only to stdio upstreams`,
		`cfg.yaml:12:19: servers.support.upstreams[0].upstream: unknown upstream "crmm" (declared: crm, web)`,
		`servers.support.upstreams[1].prefix: prefix "bad prefix"`,
		`servers.support.upstreams[1].include[0]: invalid glob "[x"`,
		`servers.support.upstreams[1].tools.t1: tool name "has space" breaks the MCP tool-name rules`,
	} {
		if !strings.Contains(got, w) {
			t.Errorf("missing %q in:\n%s", w, got)
		}
	}
}

func TestLoadCollisions(t *testing.T) {
	src := `
upstreams:
  a: {command: x}
  b: {command: y}
servers:
  s:
    upstreams:
      - upstream: a
        prefix: p_
        tools: {t: {name: same}}
      - upstream: b
        prefix: p_
        tools: {u: {name: same}}
`
	_, err := Load("c.yaml", []byte(src), noEnv)
	if err == nil {
		t.Fatal("want error")
	}
	for _, w := range []string{
		`prefix "p_" collides with upstreams[0] (a)`,
		`tool name "same" is used by both a tool "t" and b tool "u"`,
	} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("missing %q in:\n%s", w, err)
		}
	}
}

func TestLoadEnvMissing(t *testing.T) {
	src := `
upstreams:
  r: {url: "http://h/mcp", headers: {X-Key: "${NOPE}"}}
servers: {s: {upstreams: [{upstream: r}]}}
`
	_, err := Load("c.yaml", []byte(src), noEnv)
	if err == nil || !strings.Contains(err.Error(), "upstreams.r.headers.X-Key: environment variable NOPE is not set") {
		t.Fatalf("got %v", err)
	}
}

func TestLoadSyntaxError(t *testing.T) {
	_, err := Load("c.yaml", []byte("servers:\n  a: [\n"), noEnv)
	if err == nil || !strings.HasPrefix(err.Error(), "c.yaml:") {
		t.Fatalf("got %v", err)
	}
}

func TestExamplesLoad(t *testing.T) {
	files, _ := filepath.Glob("../../examples/*.yaml")
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			if _, err := LoadFile(f); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func FuzzLoad(f *testing.F) {
	seeds, _ := filepath.Glob("../../examples/*.yaml")
	for _, s := range seeds {
		b, _ := os.ReadFile(s)
		f.Add(b)
	}
	f.Add([]byte("servers: {s: {upstreams: [{upstream: a, prefix: ''}]}}\nupstreams: {a: {command: x}}"))
	f.Add([]byte("listen: [\n"))
	f.Add([]byte("upstreams: {a: {url: 'http://x', headers: {K: '${V}'}}}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		cfg, err := Load("f.yaml", b, func(k string) (string, bool) { return "v", k == "V" })
		if err == nil && cfg == nil {
			t.Fatal("nil config without error")
		}
		if err != nil && cfg != nil {
			t.Fatal("config returned with error")
		}
	})
}
