package config

import (
	"fmt"
	"net"
	"net/url"
	"path"
	"regexp"
	"sort"
	"strings"
	"time"
)

// Defaults applied by applyDefaults.
const (
	DefaultListen          = "127.0.0.1:8080"
	DefaultMaxBodyBytes    = 4 << 20
	DefaultMaxMessageBytes = 64 << 20
	DefaultIdleTimeout     = 30 * time.Minute
	DefaultMaxSessions     = 10000
	DefaultReplayBuffer    = 512
	DefaultToolCallTimeout = 60 * time.Second
	DefaultRequestTimeout  = 30 * time.Second
	DefaultConnectTimeout  = 20 * time.Second
)

func applyDefaults(c *Config) {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.Limits.MaxBodyBytes == 0 {
		c.Limits.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.Limits.MaxMessageBytes == 0 {
		c.Limits.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if c.Sessions.IdleTimeout == 0 {
		c.Sessions.IdleTimeout = Duration(DefaultIdleTimeout)
	}
	if c.Sessions.MaxSessions == 0 {
		c.Sessions.MaxSessions = DefaultMaxSessions
	}
	if c.Sessions.ReplayBuffer == 0 {
		c.Sessions.ReplayBuffer = DefaultReplayBuffer
	}
	if c.Store.Driver == "" {
		c.Store.Driver = "sqlite"
	}
	if c.Store.Driver == "sqlite" && c.Store.Path == "" {
		c.Store.Path = "gatehouse-data/gatehouse.db"
	}
	if c.Admin.TokenFile == "" {
		c.Admin.TokenFile = "gatehouse-data/admin-token"
	}
	if c.Vault.KEK == "" {
		c.Vault.KEK = "file:gatehouse-data/kek"
	}
	applyPolicyDefaults(c.Policy)
	applyAuditDefaults(c)
	id := &c.Identity
	if id.Auth == "" {
		id.Auth = "required"
	}
	if id.Issuer == "" {
		id.Issuer = "http://" + c.Listen
	}
	id.Issuer = strings.TrimSuffix(id.Issuer, "/")
	if id.TokenTTL == 0 {
		id.TokenTTL = Duration(10 * time.Minute)
	}
	if id.SigningAlg == "" {
		id.SigningAlg = "ES256"
	}
	if id.KeyRotation == 0 {
		id.KeyRotation = Duration(24 * time.Hour)
	}
	if id.BootstrapUser == nil {
		admin := "admin"
		id.BootstrapUser = &admin
	}
	for _, t := range id.Teams {
		if t != nil && t.MaxSecretAge == 0 {
			t.MaxSecretAge = Duration(90 * 24 * time.Hour)
		}
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "text"
	}
	for _, u := range c.Upstreams {
		if u == nil {
			continue
		}
		if u.Start == "" {
			u.Start = "on_demand"
		}
		if u.Command != "" && u.Sharing == "" {
			u.Sharing = "shared"
		}
		if u.URL != "" && u.Command == "" && u.Transport == "" {
			u.Transport = "auto"
		}
		if u.Timeouts.ToolCall == 0 {
			u.Timeouts.ToolCall = Duration(DefaultToolCallTimeout)
		}
		if u.Timeouts.Request == 0 {
			u.Timeouts.Request = Duration(DefaultRequestTimeout)
		}
		if u.Timeouts.Connect == 0 {
			u.Timeouts.Connect = Duration(DefaultConnectTimeout)
		}
	}
}

var envRef = regexp.MustCompile(`\$\$|\$\{[^}]*\}`)
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// expand replaces ${VAR} with the variable's value and $$ with $.
func (l *loader) expand(s, path string, lookup func(string) (string, bool)) string {
	if !strings.Contains(s, "$") {
		return s
	}
	return envRef.ReplaceAllStringFunc(s, func(ref string) string {
		if ref == "$$" {
			return "$"
		}
		name := ref[2 : len(ref)-1]
		if !envName.MatchString(name) {
			l.addAt(path, "invalid environment reference %q (use ${NAME}; write $$ for a literal $)", ref)
			return ""
		}
		v, ok := lookup(name)
		if !ok {
			l.addAt(path, "environment variable %s is not set", name)
			return ""
		}
		return v
	})
}

func (l *loader) expandEnv(c *Config, lookup func(string) (string, bool)) {
	c.Store.URL = Secret(l.expand(string(c.Store.URL), "store.url", lookup))
	c.Store.Path = l.expand(c.Store.Path, "store.path", lookup)
	c.Admin.Token = Secret(l.expand(string(c.Admin.Token), "admin.token", lookup))
	c.Identity.Issuer = l.expand(c.Identity.Issuer, "identity.issuer", lookup)
	l.expandAudit(c, lookup)
	l.expandAlerts(c, lookup)
	l.expandHooks(c, lookup)
	for name, u := range c.Upstreams {
		if u == nil {
			continue
		}
		p := joinPath("upstreams", name)
		u.Command = l.expand(u.Command, p+".command", lookup)
		for i := range u.Args {
			u.Args[i] = l.expand(u.Args[i], fmt.Sprintf("%s.args[%d]", p, i), lookup)
		}
		u.Dir = l.expand(u.Dir, p+".dir", lookup)
		u.URL = l.expand(u.URL, p+".url", lookup)
		for k, v := range u.Env {
			u.Env[k] = Secret(l.expand(string(v), joinPath(p+".env", k), lookup))
		}
		for k, v := range u.Headers {
			u.Headers[k] = Secret(l.expand(string(v), joinPath(p+".headers", k), lookup))
		}
	}
}

// nameRE is the MCP tool-name rule (2025-11-25): 1-128 characters of
// ASCII letters, digits, underscore, hyphen and dot.
var nameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,128}$`)

// ValidToolName reports whether s follows the MCP tool-name rules.
func ValidToolName(s string) bool { return nameRE.MatchString(s) }

var prefixRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{0,64}$`)

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (l *loader) validate(c *Config) {
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		l.addAt("listen", "invalid address %q: %v", c.Listen, err)
	}
	for i, o := range c.AllowedOrigins {
		u, err := url.Parse(o)
		if o == "*" {
			continue
		}
		if err != nil || u.Scheme == "" || u.Host == "" || (u.Path != "" && u.Path != "/") {
			l.addAt(fmt.Sprintf("allowed_origins[%d]", i), "invalid origin %q (want scheme://host[:port] or *)", o)
		}
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		l.addAt("log.level", "unknown level %q (debug, info, warn, error)", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		l.addAt("log.format", "unknown format %q (text, json)", c.Log.Format)
	}
	if c.Sessions.MaxSessions < 0 {
		l.addAt("sessions.max_sessions", "must not be negative")
	}
	if c.Sessions.ReplayBuffer < 0 {
		l.addAt("sessions.replay_buffer", "must not be negative")
	}
	for _, name := range sortedKeys(c.Upstreams) {
		l.validateUpstream(name, c.Upstreams[name])
	}
	l.validateIdentity(c)
	l.validatePolicy(c)
	l.validateAudit(c)
	l.validateInspect(c)
	if len(c.Servers) == 0 {
		l.addAt("servers", "no virtual servers: declare at least one under servers:")
	}
	for _, name := range sortedKeys(c.Servers) {
		l.validateServer(c, name, c.Servers[name])
	}
}

var segmentRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

func (l *loader) validateUpstream(name string, u *Upstream) {
	p := joinPath("upstreams", name)
	if !segmentRE.MatchString(name) {
		l.addAt(p, "upstream name %q must be 1-64 characters of letters, digits, '_', '-' and '.'", name)
	}
	if u == nil {
		l.addAt(p, "upstream is empty: set command (stdio) or url (HTTP)")
		return
	}
	switch {
	case u.Command != "" && u.URL != "":
		l.addAt(p, "set either command (stdio) or url (HTTP), not both")
		return
	case u.Command == "" && u.URL == "":
		l.addAt(p, "set command (stdio) or url (HTTP)")
		return
	}
	if u.URL != "" {
		pu, err := url.Parse(u.URL)
		if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			l.addAt(p+".url", "invalid URL %q (want http:// or https://)", u.URL)
		}
		for _, f := range []struct {
			set  bool
			name string
		}{{len(u.Args) > 0, "args"}, {len(u.Env) > 0, "env"}, {u.Dir != "", "dir"}} {
			if f.set {
				l.addAt(p+"."+f.name, "%s applies only to stdio upstreams (command)", f.name)
			}
		}
		switch u.Transport {
		case "auto", "streamable-http", "sse":
		default:
			l.addAt(p+".transport", "unknown transport %q (auto, streamable-http, sse)", u.Transport)
		}
		for _, k := range sortedKeys(u.Headers) {
			if !validHeaderName(k) {
				l.addAt(joinPath(p+".headers", k), "invalid header name %q", k)
			}
			if strings.ContainsAny(string(u.Headers[k]), "\r\n\x00") {
				l.addAt(joinPath(p+".headers", k), "header value contains a line break or NUL")
			}
		}
	}
	if u.Command != "" {
		if u.Transport != "" {
			l.addAt(p+".transport", "transport applies only to HTTP upstreams (url)")
		}
		if len(u.Headers) > 0 {
			l.addAt(p+".headers", "headers apply only to HTTP upstreams (url)")
		}
		for _, k := range sortedKeys(u.Env) {
			if !envName.MatchString(k) {
				l.addAt(joinPath(p+".env", k), "invalid environment variable name %q", k)
			}
		}
		switch u.Sharing {
		case "shared", "per_session":
		default:
			l.addAt(p+".sharing", "unknown sharing %q (shared, per_session)", u.Sharing)
		}
		if u.Sharing == "per_session" && u.Start == "at_startup" {
			l.addAt(p+".start", "at_startup does not apply to a per_session upstream (its processes start with each session)")
		}
	}
	if u.URL != "" && u.Sharing != "" {
		l.addAt(p+".sharing", "sharing applies only to stdio upstreams (HTTP upstreams always get one upstream session per client session)")
	}
	if a := u.Auth; a != nil {
		if !strings.HasPrefix(a.Secret, "vault:") || len(a.Secret) == len("vault:") {
			l.addAt(p+".auth.secret", "secret must reference the vault: vault:NAME")
		}
		if u.IsStdio() {
			if !envName.MatchString(a.Env) {
				l.addAt(p+".auth.env", "a stdio upstream receives its credential in an environment variable: set env (e.g. GITHUB_TOKEN)")
			}
		} else {
			switch a.Type {
			case "bearer":
			case "header":
				if !validHeaderName(a.Header) {
					l.addAt(p+".auth.header", "type header needs a header name (e.g. X-API-Key)")
				}
			default:
				l.addAt(p+".auth.type", "unknown auth type %q (bearer, header)", a.Type)
			}
		}
	}
	switch u.Start {
	case "on_demand", "at_startup":
	default:
		l.addAt(p+".start", "unknown start mode %q (on_demand, at_startup)", u.Start)
	}
}

func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

func (l *loader) validateServer(c *Config, name string, s *Server) {
	p := joinPath("servers", name)
	if !segmentRE.MatchString(name) {
		l.addAt(p, "server name %q must be 1-64 characters of letters, digits, '_', '-' and '.' (it is a URL path segment)", name)
	}
	if s == nil || len(s.Upstreams) == 0 {
		l.addAt(p, "virtual server has no upstreams")
		return
	}
	seen := map[string]int{}
	prefixOwner := map[string]int{}
	renamed := map[string]string{} // virtual tool name -> source description
	for i, su := range s.Upstreams {
		mp := fmt.Sprintf("%s.upstreams[%d]", p, i)
		if su == nil {
			l.addAt(mp, "empty entry")
			continue
		}
		if su.Upstream == "" {
			l.addAt(mp, "missing upstream: name an entry of upstreams")
			continue
		}
		if _, ok := c.Upstreams[su.Upstream]; !ok {
			l.addAt(mp+".upstream", "unknown upstream %q (declared: %s)", su.Upstream, strings.Join(sortedKeys(c.Upstreams), ", "))
		}
		if j, dup := seen[su.Upstream]; dup {
			l.addAt(mp+".upstream", "upstream %q is already a member at upstreams[%d]", su.Upstream, j)
		}
		seen[su.Upstream] = i
		prefix := su.EffectivePrefix()
		if !prefixRE.MatchString(prefix) {
			l.addAt(mp+".prefix", "prefix %q must be at most 64 characters of letters, digits, '_', '-' and '.'", prefix)
		}
		if prefix != "" {
			if j, dup := prefixOwner[prefix]; dup {
				l.addAt(mp+".prefix", "prefix %q collides with upstreams[%d] (%s): their names would clash", prefix, j, s.Upstreams[j].Upstream)
			}
			prefixOwner[prefix] = i
		}
		for k, g := range su.Include {
			if _, err := path.Match(g, ""); err != nil {
				l.addAt(fmt.Sprintf("%s.include[%d]", mp, k), "invalid glob %q", g)
			}
		}
		for k, g := range su.Exclude {
			if _, err := path.Match(g, ""); err != nil {
				l.addAt(fmt.Sprintf("%s.exclude[%d]", mp, k), "invalid glob %q", g)
			}
		}
		for _, tool := range sortedKeys(su.Tools) {
			tp := joinPath(mp+".tools", tool)
			o := su.Tools[tool]
			if o == nil {
				l.addAt(tp, "empty override: set name or description")
				continue
			}
			final := prefix + tool
			if o.Name != "" {
				final = o.Name
			}
			if !ValidToolName(final) {
				l.addAt(tp, "tool name %q breaks the MCP tool-name rules (1-128 characters of letters, digits, '_', '-', '.')", final)
			}
			src := fmt.Sprintf("%s tool %q", su.Upstream, tool)
			if other, dup := renamed[final]; dup {
				l.addAt(tp, "tool name %q is used by both %s and %s", final, other, src)
			}
			renamed[final] = src
		}
	}
}

func (l *loader) validateIdentity(c *Config) {
	switch c.Store.Driver {
	case "sqlite":
		if c.Store.URL != "" {
			l.addAt("store.url", "url applies to driver postgres; sqlite uses path")
		}
	case "postgres":
		if c.Store.URL == "" {
			l.addAt("store.url", "driver postgres needs url (e.g. ${GATEHOUSE_POSTGRES_URL})")
		}
	default:
		l.addAt("store.driver", "unknown driver %q (sqlite, postgres)", c.Store.Driver)
	}
	for i, ref := range append([]string{c.Vault.KEK}, c.Vault.PreviousKEKs...) {
		p := "vault.kek"
		if i > 0 {
			p = fmt.Sprintf("vault.previous_keks[%d]", i-1)
		}
		if !strings.HasPrefix(ref, "file:") && !strings.HasPrefix(ref, "env:") {
			l.addAt(p, "key reference %q must be file:PATH or env:NAME", ref)
		}
	}
	id := c.Identity
	switch id.Auth {
	case "required", "off":
	default:
		l.addAt("identity.auth", "unknown auth mode %q (required, off)", id.Auth)
	}
	if u, err := url.Parse(id.Issuer); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		l.addAt("identity.issuer", "issuer %q must be an http(s) URL without query or fragment", id.Issuer)
	}
	if ttl := id.TokenTTL.Std(); ttl < time.Minute || ttl > time.Hour {
		l.addAt("identity.token_ttl", "token lifetime %s must be between 1m and 1h (short-lived tokens: 5m to 15m is typical)", ttl)
	}
	switch id.SigningAlg {
	case "ES256", "EdDSA":
	default:
		l.addAt("identity.signing_alg", "unknown signing algorithm %q (ES256, EdDSA)", id.SigningAlg)
	}
	if id.KeyRotation.Std() < time.Hour {
		l.addAt("identity.key_rotation", "key rotation interval must be at least 1h")
	}
	checkServers := func(path string, servers []string) {
		for j, s := range servers {
			if s == "*" {
				continue
			}
			if _, ok := c.Servers[s]; !ok {
				l.addAt(fmt.Sprintf("%s[%d]", path, j), "unknown virtual server %q (declared: %s)", s, strings.Join(sortedKeys(c.Servers), ", "))
			}
		}
	}
	teams := map[string]int{}
	for i, t := range id.Teams {
		p := fmt.Sprintf("identity.teams[%d]", i)
		if t == nil || t.Name == "" {
			l.addAt(p, "a team needs a name")
			continue
		}
		if !segmentRE.MatchString(t.Name) {
			l.addAt(p+".name", "team name %q must be 1-64 characters of letters, digits, '_', '-' and '.'", t.Name)
		}
		if j, dup := teams[t.Name]; dup {
			l.addAt(p+".name", "team %q is already declared at identity.teams[%d]", t.Name, j)
		}
		teams[t.Name] = i
		checkServers(p+".servers", t.Servers)
	}
	agents := map[string]int{}
	for i, a := range id.Agents {
		p := fmt.Sprintf("identity.agents[%d]", i)
		if a == nil || a.Name == "" {
			l.addAt(p, "an agent needs a name")
			continue
		}
		if !segmentRE.MatchString(a.Name) {
			l.addAt(p+".name", "agent name %q must be 1-64 characters of letters, digits, '_', '-' and '.'", a.Name)
		}
		if j, dup := agents[a.Name]; dup {
			l.addAt(p+".name", "agent %q is already declared at identity.agents[%d]", a.Name, j)
		}
		agents[a.Name] = i
		if _, ok := teams[a.Team]; !ok {
			l.addAt(p+".team", "unknown team %q: declare it under identity.teams", a.Team)
		}
		if a.Owner == "" {
			l.addAt(p+".owner", "every agent needs an owning person (e.g. alice@example.com)")
		}
	}
	for i, g := range id.Groups {
		p := fmt.Sprintf("identity.groups[%d]", i)
		if g == nil || g.Name == "" {
			l.addAt(p, "a group needs a name")
			continue
		}
		checkServers(p+".servers", g.Servers)
	}
	if tok := c.Admin.Token.Reveal(); tok != "" && len(tok) < 16 {
		l.addAt("admin.token", "the admin token must be at least 16 characters")
	}
}
