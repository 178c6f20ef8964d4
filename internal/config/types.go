// Package config defines Gatehouse's configuration file: its schema, loading
// with file positions for every error, environment-variable expansion and
// validation. The gateway compiles a validated Config into an immutable
// runtime snapshot (see internal/gateway); nothing here runs at request time.
package config

import (
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// Config is the root of the configuration file.
type Config struct {
	// Listen is the address of the MCP and admin listener. Default
	// 127.0.0.1:8080: the gateway is reachable only from this machine
	// unless told otherwise.
	Listen string `yaml:"listen"`

	// AllowedOrigins lists the browser origins (scheme://host[:port]) that
	// may call the gateway. Requests with an Origin header not in this list
	// get 403 (DNS-rebinding protection). Loopback origins are allowed when
	// the gateway listens on loopback.
	AllowedOrigins []string `yaml:"allowed_origins"`

	// AllowedHosts lists extra Host header values accepted besides the
	// listen address and loopback names. Use it when a reverse proxy or DNS
	// name fronts the gateway. "*" accepts any host (not recommended).
	AllowedHosts []string `yaml:"allowed_hosts"`

	// Limits bounds what one request may cost the gateway.
	Limits Limits `yaml:"limits"`

	// Sessions configures downstream MCP sessions.
	Sessions Sessions `yaml:"sessions"`

	// Log configures the gateway's own log.
	Log Log `yaml:"log"`

	// Upstreams are the MCP servers the gateway talks to, by name.
	Upstreams map[string]*Upstream `yaml:"upstreams"`

	// Servers are the virtual MCP servers served at /mcp/{name}.
	Servers map[string]*Server `yaml:"servers"`

	// Store is where agents, credentials, keys and vault entries live.
	Store Store `yaml:"store"`
	// Vault configures encryption of upstream credentials and keys.
	Vault Vault `yaml:"vault"`
	// Identity configures authentication of agents and people.
	Identity Identity `yaml:"identity"`
	// Admin configures the admin API (/admin/v1).
	Admin Admin `yaml:"admin"`

	// Policy decides which tools, prompts and resources each caller may
	// see and use. Absent: no tool-level policy (the identity section's
	// server grants still apply). Present: nothing is allowed unless a rule
	// allows it. See docs/policy.md.
	Policy *Policy `yaml:"policy"`

	// Audit configures the audit trail (docs/audit.md).
	Audit Audit `yaml:"audit"`

	// Inspect configures threat detection and DLP (docs/detection.md).
	Inspect Inspect `yaml:"inspect"`

	// loc locates paths in the file this configuration was loaded from,
	// for problems found after loading (see ProblemAt).
	loc *loader
}

// Store selects the database.
type Store struct {
	// Driver is "sqlite" (default) or "postgres".
	Driver string `yaml:"driver"`
	// Path is the SQLite database file (default gatehouse-data/gatehouse.db).
	Path string `yaml:"path"`
	// URL is the PostgreSQL connection URL (may use ${VAR}; a secret).
	URL Secret `yaml:"url"`
}

// Vault configures the key-encryption keys.
type Vault struct {
	// KEK references the key-encryption key: "file:PATH" or "env:NAME"
	// (32 bytes, base64). Default: file:gatehouse-data/kek, created on
	// first start when missing.
	KEK string `yaml:"kek"`
	// PreviousKEKs still decrypt (during a key rotation); they never
	// encrypt.
	PreviousKEKs []string `yaml:"previous_keks"`
}

// Identity configures who may call the gateway.
type Identity struct {
	// Auth is "required" (default: every MCP request carries a valid access
	// token or API key) or "off" (no authentication: development only).
	Auth string `yaml:"auth"`
	// Issuer is the gateway's public base URL, used as the token issuer and
	// to build resource URLs (default http://<listen>).
	Issuer string `yaml:"issuer"`
	// TokenTTL is the access-token lifetime (default 10m; 1m to 1h).
	TokenTTL Duration `yaml:"token_ttl"`
	// SigningAlg is ES256 (default) or EdDSA.
	SigningAlg string `yaml:"signing_alg"`
	// KeyRotation is how often signing keys rotate (default 24h).
	KeyRotation Duration `yaml:"key_rotation"`
	// BootstrapUser is created with a random password (printed once to the
	// log) when the store has no users, so a fresh install can log in.
	// Set "" to disable. Default "admin".
	BootstrapUser *string `yaml:"bootstrap_user"`
	// AllowInsecureMetadataURLs lets client ID metadata documents be
	// fetched over plain http from loopback hosts (for local development).
	AllowInsecureMetadataURLs bool `yaml:"allow_insecure_metadata_urls"`
	// Teams, with the virtual servers their agents may get access to.
	Teams []*Team `yaml:"teams"`
	// Agents declared here are created at load when missing (their
	// secrets are created with the CLI or API: never in this file).
	Agents []*AgentDecl `yaml:"agents"`
	// Groups give people (local users, later SSO groups) access to
	// virtual servers.
	Groups []*Group `yaml:"groups"`
}

// Team is a group of agents with a shared owner policy.
type Team struct {
	Name string `yaml:"name"`
	// Servers are the virtual servers this team's agents may access
	// ("*": all).
	Servers []string `yaml:"servers"`
	// MaxSecretAge bounds the age of client secrets and API keys
	// (default 2160h = 90 days).
	MaxSecretAge Duration `yaml:"max_secret_age"`
}

// AgentDecl declares an agent.
type AgentDecl struct {
	Name  string `yaml:"name"`
	Team  string `yaml:"team"`
	Owner string `yaml:"owner"`
	// Attributes are free-form values for policy (e.g. queues).
	Attributes map[string]any `yaml:"attributes"`
}

// Group maps a group of people to virtual servers.
type Group struct {
	Name    string   `yaml:"name"`
	Servers []string `yaml:"servers"`
}

// Admin configures the admin API (/admin/v1), which the gatehouse
// management commands use.
type Admin struct {
	// Token authenticates admin API calls ("Authorization: Bearer …"); use
	// ${VAR}. When empty, the token is read from TokenFile.
	Token Secret `yaml:"token"`
	// TokenFile holds the admin token; created with a random token on first
	// start when missing (default gatehouse-data/admin-token). The CLI reads
	// the same default file when GATEHOUSE_ADMIN_TOKEN is not set.
	TokenFile string `yaml:"token_file"`
	// Disabled turns the admin API off.
	Disabled bool `yaml:"disabled"`
}

// Limits bounds request sizes.
type Limits struct {
	// MaxBodyBytes is the largest request body accepted (default 4 MiB).
	MaxBodyBytes ByteSize `yaml:"max_body_bytes"`
	// MaxMessageBytes is the largest single message accepted from an
	// upstream (default 64 MiB); larger ones fail the call that caused them.
	MaxMessageBytes ByteSize `yaml:"max_message_bytes"`
}

// Sessions configures downstream sessions of the stateful protocol revisions.
type Sessions struct {
	// IdleTimeout ends a session nobody used for this long (default 30m).
	IdleTimeout Duration `yaml:"idle_timeout"`
	// MaxSessions bounds concurrent sessions (default 10000).
	MaxSessions int `yaml:"max_sessions"`
	// ReplayBuffer is how many SSE events per session are kept for
	// resumption with Last-Event-ID (default 512).
	ReplayBuffer int `yaml:"replay_buffer"`
}

// Log configures logging.
type Log struct {
	// Level is debug, info, warn or error (default info).
	Level string `yaml:"level"`
	// Format is text or json (default text).
	Format string `yaml:"format"`
}

// SlogLevel returns the configured level.
func (l Log) SlogLevel() slog.Level {
	var lv slog.Level
	_ = lv.UnmarshalText([]byte(l.Level))
	return lv
}

// Upstream is one MCP server behind the gateway. Exactly one of Command
// (stdio) or URL (HTTP) is set.
type Upstream struct {
	// Command starts a stdio upstream. The value "gatehouse" means this
	// gatehouse binary itself, so built-in servers work under `go run`.
	Command string `yaml:"command"`
	// Args are the command's arguments.
	Args []string `yaml:"args"`
	// Env adds environment variables for the command; values may use
	// ${VAR} to take them from the gateway's environment. The gateway's own
	// environment is not inherited except PATH, HOME, LANG, TZ and TMPDIR.
	Env map[string]Secret `yaml:"env"`
	// Dir is the command's working directory.
	Dir string `yaml:"dir"`
	// Start is "on_demand" (default: at first use) or "at_startup".
	Start string `yaml:"start"`
	// Sharing is "shared" (default: one process serves every session) or
	// "per_session" (each downstream session gets its own process, started
	// at initialize and stopped when the session ends). Use per_session for
	// servers that keep per-client state: roots, log levels,
	// subscriptions, or sampling and elicitation in concurrent sessions.
	Sharing string `yaml:"sharing"`

	// URL is the endpoint of an HTTP upstream.
	URL string `yaml:"url"`
	// Transport is "streamable-http", "sse" (the 2024-11-05 HTTP+SSE
	// transport) or "auto" (default: try Streamable HTTP, fall back to SSE).
	Transport string `yaml:"transport"`
	// Headers are sent with every request to the upstream. Values may use
	// ${VAR} and {{vault:NAME}}; they are secrets and never logged.
	Headers map[string]Secret `yaml:"headers"`
	// Auth injects an upstream credential from the vault on every request
	// (HTTP) or into the environment (stdio: as the variable named by
	// Env). The agent's own token is never forwarded.
	Auth *UpstreamAuth `yaml:"auth"`

	// Timeouts bound waits on this upstream.
	Timeouts Timeouts `yaml:"timeouts"`
}

// UpstreamAuth is a credential the gateway adds on the way out.
type UpstreamAuth struct {
	// Type is "bearer" (Authorization: Bearer <secret>) or "header" (the
	// secret as the value of Header).
	Type string `yaml:"type"`
	// Secret references the vault entry: "vault:NAME". The calling agent's
	// own entry NAME is used when it has one, else the shared entry.
	Secret string `yaml:"secret"`
	// Header names the header for type "header" (e.g. X-API-Key).
	Header string `yaml:"header"`
	// Env names the environment variable that receives the secret for a
	// stdio upstream (type is then ignored).
	Env string `yaml:"env"`
}

// Timeouts bound how long the gateway waits for an upstream.
type Timeouts struct {
	// ToolCall bounds tools/call (default 60s: agents' tools are slow).
	ToolCall Duration `yaml:"tool_call"`
	// Request bounds every other request (default 30s).
	Request Duration `yaml:"request"`
	// Connect bounds starting the upstream and its initialize handshake
	// (default 20s).
	Connect Duration `yaml:"connect"`
}

// IsStdio reports whether the upstream is a command.
func (u *Upstream) IsStdio() bool { return u.Command != "" }

// Server is a virtual MCP server aggregating upstreams.
type Server struct {
	// Upstreams are the members of this virtual server, in priority order.
	Upstreams []*ServerUpstream `yaml:"upstreams"`
	// Instructions replaces the merged upstream instructions sent at
	// initialize, when set.
	Instructions *string `yaml:"instructions"`
}

// ServerUpstream is one upstream's membership in a virtual server.
type ServerUpstream struct {
	// Upstream names an entry of the top-level upstreams map.
	Upstream string `yaml:"upstream"`
	// Prefix is prepended to the upstream's tool and prompt names. Default
	// "{upstream}_"; set "" to keep names unchanged when they don't collide.
	Prefix *string `yaml:"prefix"`
	// Include keeps only tools and prompts whose upstream names match one of
	// these globs (path.Match syntax). Empty means all.
	Include []string `yaml:"include"`
	// Exclude drops tools and prompts whose upstream names match one of
	// these globs. Exclude wins over Include.
	Exclude []string `yaml:"exclude"`
	// Tools overrides individual tools, keyed by their upstream name.
	Tools map[string]*ToolOverride `yaml:"tools"`
}

// ToolOverride renames a tool or replaces its description.
type ToolOverride struct {
	// Name is the tool's name in the virtual server (the prefix is not
	// added to it).
	Name string `yaml:"name"`
	// Description replaces the upstream's description.
	Description *string `yaml:"description"`
}

// EffectivePrefix returns the name prefix for this membership.
func (su *ServerUpstream) EffectivePrefix() string {
	if su.Prefix != nil {
		return *su.Prefix
	}
	return su.Upstream + "_"
}

// Duration is a time.Duration written as "300ms", "1m30s".
type Duration time.Duration

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("invalid duration %q (use e.g. 500ms, 30s, 2m)", b)
	}
	if v < 0 {
		return fmt.Errorf("duration %q must not be negative", b)
	}
	*d = Duration(v)
	return nil
}

// Std returns the value as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// ByteSize is a size in bytes written as a number or with a unit: 512KiB,
// 4MiB, 1GiB, 10MB.
type ByteSize int64

// UnmarshalText parses a size.
func (s *ByteSize) UnmarshalText(b []byte) error {
	str := strings.TrimSpace(string(b))
	units := []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}, {"B", 1}, {"", 1}}
	for _, u := range units {
		if !strings.HasSuffix(str, u.suffix) {
			continue
		}
		var n int64
		num := strings.TrimSpace(strings.TrimSuffix(str, u.suffix))
		if _, err := fmt.Sscanf(num, "%d", &n); err != nil || n < 0 || fmt.Sprint(n) != num {
			break
		}
		*s = ByteSize(n * u.mult)
		return nil
	}
	return fmt.Errorf("invalid size %q (use e.g. 65536, 512KiB, 4MiB)", b)
}

// Secret is a configuration string that must never appear in logs.
type Secret string

// String redacts the value.
func (Secret) String() string { return "[redacted]" }

// LogValue redacts the value in slog output.
func (Secret) LogValue() slog.Value { return slog.StringValue("[redacted]") }

// Reveal returns the secret's value for use on the wire.
func (s Secret) Reveal() string { return string(s) }
