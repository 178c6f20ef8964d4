package config

import (
	"fmt"
	"net/url"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/goccy/go-yaml/ast"

	"gatehouse/internal/inspect/script"
)

// External guardrails and script hooks (docs/guardrails.md): inspect.guardrails
// lists services asked about tool arguments and results, inspect.scripts
// JavaScript hooks run on them. Both run after the built-in detectors,
// scripts first.

// Guardrail types.
const (
	GuardrailWebhook   = "webhook"
	GuardrailBedrock   = "bedrock"
	GuardrailGCPDLP    = "gcp_dlp"
	GuardrailNightfall = "nightfall"
)

// InspectGuardrail is one external guardrail. Only the settings of its
// type may be set. Secret settings take ${VAR} (expanded at load) and
// {{vault:NAME}} (resolved when the gateway applies the configuration).
type InspectGuardrail struct {
	// Name identifies the guardrail in errors, logs and audit records
	// (required, unique).
	Name string `yaml:"name"`
	// Type: webhook, bedrock, gcp_dlp or nightfall.
	Type string `yaml:"type"`
	// Timeout bounds one check, retries included (default 2s).
	Timeout Duration `yaml:"timeout"`
	// Fail says what an error, a timeout or a malformed answer means:
	// closed (default) denies, open allows.
	Fail string `yaml:"fail"`
	// Directions: request (tool arguments), response (results); default
	// both.
	Directions []string `yaml:"directions"`
	// MaxResponseBytes caps a provider's answer (default 1MiB).
	MaxResponseBytes ByteSize `yaml:"max_response_bytes"`
	// Servers and Tools restrict the guardrail to virtual servers and tool
	// names (as clients see them) matching these globs; empty: all. With
	// Tools set, the guardrail only sees tools/call.
	Servers []string `yaml:"servers"`
	Tools   []string `yaml:"tools"`

	// webhook: the receiver's URL, the HMAC-SHA256 signing key (at least
	// 16 bytes) and an optional bearer token.
	URL         string `yaml:"url"`
	Key         Secret `yaml:"key"`
	BearerToken Secret `yaml:"bearer_token"`

	// bedrock: the guardrail, its version (a number or DRAFT), the region,
	// optional static credentials (default: the AWS SDK's chain) and the
	// SDK's attempts per check (default 2).
	GuardrailID      string `yaml:"guardrail_id"`
	GuardrailVersion string `yaml:"guardrail_version"`
	Region           string `yaml:"region"`
	AccessKeyID      Secret `yaml:"access_key_id"`
	SecretAccessKey  Secret `yaml:"secret_access_key"`
	SessionToken     Secret `yaml:"session_token"`
	MaxAttempts      int    `yaml:"max_attempts"`

	// gcp_dlp: the project, the location (default global), the info types
	// (default DLP's set), the lowest likelihood that counts (default
	// POSSIBLE), deidentify (redact instead of deny), and a service-account
	// key or a static access token (default: Application Default
	// Credentials).
	Project         string   `yaml:"project"`
	Location        string   `yaml:"location"`
	InfoTypes       []string `yaml:"info_types"`
	MinLikelihood   string   `yaml:"min_likelihood"`
	Deidentify      bool     `yaml:"deidentify"`
	CredentialsJSON Secret   `yaml:"credentials_json"`
	Token           Secret   `yaml:"token"`

	// nightfall: the API key, dashboard policies or an inline
	// detectionRules array (exactly one), the lowest confidence that
	// counts (default LIKELY) and redact (mutate instead of deny).
	APIKey         Secret   `yaml:"api_key"`
	PolicyUUIDs    []string `yaml:"policy_uuids"`
	DetectionRules []any    `yaml:"detection_rules"`
	MinConfidence  string   `yaml:"min_confidence"`
	Redact         bool     `yaml:"redact"`

	// BaseURL overrides the provider's endpoint (bedrock, gcp_dlp,
	// nightfall): regional or VPC endpoints, proxies, tests.
	BaseURL string `yaml:"base_url"`
}

// InspectScript is a JavaScript hook: onToolCall and/or onToolResult
// (docs/guardrails.md#script-hooks).
type InspectScript struct {
	// Name identifies the script (required, unique).
	Name string `yaml:"name"`
	// Version is logged with the script's messages and failures.
	Version string `yaml:"version"`
	// Source is the JavaScript, inline: scripts are versioned with the
	// configuration.
	Source string `yaml:"source"`
	// Timeout bounds one hook call (default 50ms).
	Timeout Duration `yaml:"timeout"`
	// InitTimeout bounds the top-level code, run once per runtime
	// (default 1s).
	InitTimeout Duration `yaml:"init_timeout"`
	// MaxCallStack limits the call depth (default 1000).
	MaxCallStack int `yaml:"max_call_stack"`
	// MaxValueBytes caps the JSON of a mutate value (default 1MiB).
	MaxValueBytes ByteSize `yaml:"max_value_bytes"`
	// PoolSize is the number of runtimes, hence of concurrent calls
	// (default GOMAXPROCS).
	PoolSize int `yaml:"pool_size"`
	// Servers and Tools restrict the script to virtual servers and tool
	// names (as clients see them) matching these globs; empty: all.
	Servers []string `yaml:"servers"`
	Tools   []string `yaml:"tools"`
}

// ScriptOptions returns the script's limits as script.Options (without
// logger and failure callback).
func (s *InspectScript) ScriptOptions() script.Options {
	return script.Options{Timeout: s.Timeout.Std(), InitTimeout: s.InitTimeout.Std(), MaxCallStackSize: s.MaxCallStack,
		MaxValueBytes: int(s.MaxValueBytes), PoolSize: s.PoolSize}
}

// Secrets returns the guardrail's secret settings by their YAML names
// (empty ones included), for resolving vault references.
func (g *InspectGuardrail) Secrets() map[string]*Secret {
	return map[string]*Secret{"key": &g.Key, "bearer_token": &g.BearerToken, "access_key_id": &g.AccessKeyID,
		"secret_access_key": &g.SecretAccessKey, "session_token": &g.SessionToken,
		"credentials_json": &g.CredentialsJSON, "token": &g.Token, "api_key": &g.APIKey}
}

// expandHooks replaces ${VAR} in the guardrails' URLs and secrets.
func (l *loader) expandHooks(c *Config, lookup func(string) (string, bool)) {
	for i, g := range c.Inspect.Guardrails {
		if g == nil {
			continue
		}
		p := fmt.Sprintf("inspect.guardrails[%d]", i)
		g.URL = l.expand(g.URL, p+".url", lookup)
		g.BaseURL = l.expand(g.BaseURL, p+".base_url", lookup)
		secrets := g.Secrets()
		for _, k := range sortedKeys(secrets) {
			s := secrets[k]
			*s = Secret(l.expand(string(*s), p+"."+k, lookup))
		}
	}
}

// fields of InspectGuardrail that only some types take, by YAML name.
var guardrailFields = map[string][]string{
	GuardrailWebhook: {"url", "key", "bearer_token"},
	GuardrailBedrock: {"guardrail_id", "guardrail_version", "region", "access_key_id", "secret_access_key", "session_token",
		"max_attempts", "base_url"},
	GuardrailGCPDLP: {"project", "location", "info_types", "min_likelihood", "deidentify", "credentials_json", "token",
		"base_url"},
	GuardrailNightfall: {"api_key", "policy_uuids", "detection_rules", "min_confidence", "redact", "base_url"},
}

// set reports which type-specific fields are set.
func (g *InspectGuardrail) set() map[string]bool {
	return map[string]bool{
		"url": g.URL != "", "key": g.Key != "", "bearer_token": g.BearerToken != "",
		"guardrail_id": g.GuardrailID != "", "guardrail_version": g.GuardrailVersion != "", "region": g.Region != "",
		"access_key_id": g.AccessKeyID != "", "secret_access_key": g.SecretAccessKey != "",
		"session_token": g.SessionToken != "", "max_attempts": g.MaxAttempts != 0,
		"project": g.Project != "", "location": g.Location != "", "info_types": len(g.InfoTypes) > 0,
		"min_likelihood": g.MinLikelihood != "", "deidentify": g.Deidentify,
		"credentials_json": g.CredentialsJSON != "", "token": g.Token != "",
		"api_key": g.APIKey != "", "policy_uuids": len(g.PolicyUUIDs) > 0, "detection_rules": len(g.DetectionRules) > 0,
		"min_confidence": g.MinConfidence != "", "redact": g.Redact, "base_url": g.BaseURL != "",
	}
}

var likelihoods = []string{"VERY_UNLIKELY", "UNLIKELY", "POSSIBLE", "LIKELY", "VERY_LIKELY"}

// validateHooks checks inspect.guardrails and inspect.scripts.
func (l *loader) validateHooks(c *Config) {
	names := map[string]int{}
	for i, g := range c.Inspect.Guardrails {
		p := fmt.Sprintf("inspect.guardrails[%d]", i)
		if g == nil {
			l.addAt(p, "empty entry")
			continue
		}
		l.hookName(p, "guardrail", g.Name, names, i, "inspect.guardrails")
		l.validateGuardrail(c, p, g)
	}
	names = map[string]int{}
	for i, s := range c.Inspect.Scripts {
		p := fmt.Sprintf("inspect.scripts[%d]", i)
		if s == nil {
			l.addAt(p, "empty entry")
			continue
		}
		l.hookName(p, "script", s.Name, names, i, "inspect.scripts")
		l.hookScope(c, p, s.Servers, s.Tools)
		l.validateScript(p, s)
	}
}

func (l *loader) hookName(p, what, name string, seen map[string]int, i int, list string) {
	switch {
	case name == "":
		l.addAt(p+".name", "a %s needs a name", what)
	case !segmentRE.MatchString(name):
		l.addAt(p+".name", "%s name %q must be 1-64 characters of letters, digits, '_', '-' and '.'", what, name)
	default:
		if j, dup := seen[name]; dup {
			l.addAt(p+".name", "%s %q is already declared at %s[%d]", what, name, list, j)
		}
		seen[name] = i
	}
}

// hookScope checks the servers and tools globs; a server named without
// a wildcard must be declared.
func (l *loader) hookScope(c *Config, p string, servers, tools []string) {
	for j, s := range servers {
		sp := fmt.Sprintf("%s.servers[%d]", p, j)
		if _, err := path.Match(s, ""); err != nil {
			l.addAt(sp, "invalid glob %q", s)
			continue
		}
		if !strings.ContainsAny(s, `*?[\`) {
			if _, ok := c.Servers[s]; !ok {
				l.addAt(sp, "unknown virtual server %q (declared: %s)", s, strings.Join(sortedKeys(c.Servers), ", "))
			}
		}
	}
	for j, t := range tools {
		if _, err := path.Match(t, ""); err != nil {
			l.addAt(fmt.Sprintf("%s.tools[%d]", p, j), "invalid glob %q", t)
		}
	}
}

func (l *loader) validateGuardrail(c *Config, p string, g *InspectGuardrail) {
	l.hookScope(c, p, g.Servers, g.Tools)
	switch g.Fail {
	case "", "closed", "open":
	default:
		l.addAt(p+".fail", "unknown fail mode %q (closed, open)", g.Fail)
	}
	seenDir := map[string]bool{}
	for j, d := range g.Directions {
		dp := fmt.Sprintf("%s.directions[%d]", p, j)
		switch {
		case d != "request" && d != "response":
			l.addAt(dp, "unknown direction %q (request, response)", d)
		case seenDir[d]:
			l.addAt(dp, "direction %q is listed twice", d)
		}
		seenDir[d] = true
	}
	own, known := guardrailFields[g.Type]
	switch {
	case g.Type == "":
		l.addAt(p+".type", "missing (webhook, bedrock, gcp_dlp, nightfall)")
		return
	case !known:
		l.addAt(p+".type", "unknown guardrail type %q (webhook, bedrock, gcp_dlp, nightfall)", g.Type)
		return
	}
	allowed := map[string]bool{}
	for _, f := range own {
		allowed[f] = true
	}
	set := g.set()
	var wrong []string
	for f, on := range set {
		if on && !allowed[f] {
			wrong = append(wrong, f)
		}
	}
	sort.Strings(wrong)
	for _, f := range wrong {
		var types []string
		for _, t := range sortedKeys(guardrailFields) {
			for _, tf := range guardrailFields[t] {
				if tf == f {
					types = append(types, t)
				}
			}
		}
		l.addAt(p+"."+f, "%s does not apply to type %s (only %s)", f, g.Type, strings.Join(types, ", "))
	}
	if g.BaseURL != "" {
		if u, err := url.Parse(g.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			u.User != nil || u.RawQuery != "" || u.Fragment != "" {
			l.addAt(p+".base_url", "invalid base URL (want http(s)://host[/path], without credentials, query or fragment)")
		}
	}
	required := func(f string, ok bool, hint string) {
		if !ok {
			l.addAt(p+"."+f, "type %s needs %s%s", g.Type, f, hint)
		}
	}
	switch g.Type {
	case GuardrailWebhook:
		required("url", g.URL != "", " (the receiver, http(s)://…)")
		if g.URL != "" {
			if u, err := url.Parse(g.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
				l.addAt(p+".url", "invalid URL (want http(s)://host/path without credentials)")
			}
		}
		required("key", g.Key != "", ` (the HMAC signing key: 32 random bytes, e.g. "{{vault:guard-key}}")`)
		if k := g.Key.Reveal(); k != "" && !strings.Contains(k, "{{") && len(k) < 16 {
			l.addAt(p+".key", "the signing key must be at least 16 bytes (use 32 random bytes)")
		}
	case GuardrailBedrock:
		required("guardrail_id", g.GuardrailID != "", " (the guardrail's id or ARN)")
		required("guardrail_version", g.GuardrailVersion != "", ` (a version number or "DRAFT")`)
		required("region", g.Region != "", "")
		if g.AccessKeyID != "" && g.SecretAccessKey == "" {
			l.addAt(p+".secret_access_key", "access_key_id needs secret_access_key")
		}
		if g.AccessKeyID == "" && (g.SecretAccessKey != "" || g.SessionToken != "") {
			l.addAt(p+".access_key_id", "static credentials need access_key_id")
		}
		if g.MaxAttempts < 0 {
			l.addAt(p+".max_attempts", "must not be negative")
		}
	case GuardrailGCPDLP:
		required("project", g.Project != "", " (the Google Cloud project id)")
		if g.MinLikelihood != "" && !contains(likelihoods, g.MinLikelihood) {
			l.addAt(p+".min_likelihood", "unknown likelihood %q (%s)", g.MinLikelihood, strings.Join(likelihoods, ", "))
		}
		if g.CredentialsJSON != "" && g.Token != "" {
			l.addAt(p+".token", "set credentials_json or token, not both")
		}
		for j, t := range g.InfoTypes {
			if t == "" {
				l.addAt(fmt.Sprintf("%s.info_types[%d]", p, j), "empty info type")
			}
		}
	case GuardrailNightfall:
		required("api_key", g.APIKey != "", "")
		switch {
		case len(g.PolicyUUIDs) > 0 && len(g.DetectionRules) > 0:
			l.addAt(p+".detection_rules", "set policy_uuids or detection_rules, not both")
		case len(g.PolicyUUIDs) == 0 && len(g.DetectionRules) == 0:
			l.addAt(p, "type nightfall needs policy_uuids or detection_rules")
		}
		if g.MinConfidence != "" && !contains(likelihoods, g.MinConfidence) {
			l.addAt(p+".min_confidence", "unknown confidence %q (%s)", g.MinConfidence, strings.Join(likelihoods, ", "))
		}
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// validateScript checks a script's limits and loads it (compiling it and
// running its top-level code once), so that a syntax error is reported
// with its line.
func (l *loader) validateScript(p string, s *InspectScript) {
	bad := false
	for _, f := range []struct {
		name string
		neg  bool
	}{{"max_call_stack", s.MaxCallStack < 0}, {"max_value_bytes", s.MaxValueBytes < 0}, {"pool_size", s.PoolSize < 0}} {
		if f.neg {
			l.addAt(p+"."+f.name, "must not be negative")
			bad = true
		}
	}
	if strings.TrimSpace(s.Source) == "" {
		l.addAt(p+".source", "missing: the script's JavaScript, defining onToolCall(ctx) and/or onToolResult(ctx)")
		return
	}
	if bad || s.Name == "" {
		return
	}
	o := s.ScriptOptions()
	o.PoolSize = 1
	if o.InitTimeout == 0 || o.InitTimeout > 5*time.Second {
		o.InitTimeout = min(max(o.InitTimeout, script.DefaultInitTimeout), 5*time.Second)
	}
	if _, err := script.Load(script.Script{Name: s.Name, Version: s.Version, Source: s.Source}, o); err != nil {
		l.scriptProblem(p+".source", s.Source, err)
	}
}

// scriptProblem reports a script's load error. When the source is a
// block scalar (source: |), the problem is placed on the line of the file
// the script's error points to.
func (l *loader) scriptProblem(p, source string, err error) {
	msg := err.Error()
	node := l.lookup(p)
	line, col, ok := scriptPosition(msg)
	lit, isLit := node.(*ast.LiteralNode)
	if !ok || !isLit || lit.Value == nil || lit.Value.GetToken() == nil {
		l.add(node, p, "%s", msg)
		return
	}
	// The literal's value starts on the line after the indicator; its
	// lines are indented by the value token's column - 1.
	start := lit.Start.Position.Line + 1
	indent := lit.Value.GetToken().Position.Column - 1
	if indent < 0 {
		indent = 0
	}
	l.problems = append(l.problems, Problem{File: l.name, Line: start + line - 1, Column: indent + col, Path: p, Msg: msg})
}

// scriptPosition reads "syntax error at L:C" from a script load error.
func scriptPosition(msg string) (line, col int, ok bool) {
	_, rest, found := strings.Cut(msg, "syntax error at ")
	if !found {
		return 0, 0, false
	}
	if _, err := fmt.Sscanf(rest, "%d:%d", &line, &col); err != nil || line < 1 || col < 1 {
		return 0, 0, false
	}
	return line, col, true
}
