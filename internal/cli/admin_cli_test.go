package cli

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/spf13/cobra"

	"gatehouse/internal/admin"
	"gatehouse/internal/admin/admintest"
	"gatehouse/internal/identity"
	"gatehouse/internal/store"
)

// cliRun is one CLI invocation's result.
type cliRun struct {
	out, errOut string
	err         error
}

// run executes a management command group in-process against s, with
// stdin as standard input.
func run(t *testing.T, s *admintest.Server, newCmd func() *cobra.Command, stdin string, args ...string) cliRun {
	t.Helper()
	cmd := newCmd()
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	if s != nil {
		args = append(args, "--admin-url", s.URL, "--admin-token", admintest.Token)
	}
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return cliRun{out: out.String(), errOut: errOut.String(), err: err}
}

// ok runs a command that must succeed and returns its output.
func ok(t *testing.T, s *admintest.Server, newCmd func() *cobra.Command, stdin string, args ...string) string {
	t.Helper()
	r := run(t, s, newCmd, stdin, args...)
	if r.err != nil {
		t.Fatalf("%v: %v\nstdout: %s\nstderr: %s", args, r.err, r.out, r.errOut)
	}
	return r.out
}

var secretRE = regexp.MustCompile(`ghs_[A-Za-z0-9_-]{43}`)

func agentState(t *testing.T, s *admintest.Server, name string) (status string, active int) {
	t.Helper()
	ctx := context.Background()
	a, err := s.Store.GetAgentByName(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	v, err := s.Manager.Describe(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range v.Credentials {
		if c.Active {
			active++
		}
	}
	return a.Status, active
}

func TestAgentCommands(t *testing.T) {
	s := admintest.New(t)

	out := ok(t, s, newAgentCmd, "", "create", "support-bot", "--team", "support", "--owner", "alice@example.com", "--attributes", `{"queue":"billing"}`)
	secret := secretRE.FindString(out)
	if secret == "" || !strings.Contains(out, "client_id:") || !strings.Contains(out, "shown once") {
		t.Fatalf("create output:\n%s", out)
	}
	ok(t, s, newAgentCmd, "", "create", "brief", "--team", admintest.ShortTeam, "--owner", "bob@example.com")

	out = ok(t, s, newAgentCmd, "", "list")
	for _, want := range []string{"NAME", "TEAM", "OWNER", "STATUS", "ACTIVE CREDENTIALS", "WARNINGS", "support-bot", "alice@example.com"} {
		if !strings.Contains(out, want) {
			t.Errorf("list output lacks %q:\n%s", want, out)
		}
	}
	if !regexp.MustCompile(`brief\s+short-lived\s+bob@example.com\s+active\s+1\s+secret ghs_\S+… expires in`).MatchString(out) {
		t.Errorf("list does not warn about the short-lived team's expiring secret:\n%s", out)
	}
	if strings.Contains(out, secret) {
		t.Error("list shows a secret")
	}

	out = ok(t, s, newAgentCmd, "", "show", "support-bot")
	for _, want := range []string{"Name:", "support-bot", "Client ID:", `{"queue":"billing"}`, "Credentials:", "secret", "active"} {
		if !strings.Contains(out, want) {
			t.Errorf("show output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, secret) {
		t.Error("show prints the secret again")
	}

	out = ok(t, s, newAgentCmd, "", "rotate", "support-bot", "--overlap", "24h")
	if next := secretRE.FindString(out); next == "" || next == secret || !strings.Contains(out, "keep working for 24h") {
		t.Errorf("rotate output:\n%s", out)
	}
	if _, n := agentState(t, s, "support-bot"); n != 2 {
		t.Errorf("after rotate with overlap: %d active credentials, want 2", n)
	}
	out = ok(t, s, newAgentCmd, "", "list", "--team", "support")
	if !regexp.MustCompile(`support-bot\s+support\s+alice@example.com\s+active\s+2\s`).MatchString(out) || strings.Contains(out, "brief") {
		t.Errorf("list --team support:\n%s", out)
	}

	out = ok(t, s, newAgentCmd, "", "api-key", "support-bot", "--ttl", "72h")
	if !regexp.MustCompile(`api_key: ghk_\S+`).MatchString(out) || !strings.Contains(out, "shown once") {
		t.Errorf("api-key output:\n%s", out)
	}

	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	jwk, _ := jose.JSONWebKey{Key: pub}.MarshalJSON()
	jwkFile := filepath.Join(t.TempDir(), "key.jwk")
	if err := os.WriteFile(jwkFile, jwk, 0o600); err != nil {
		t.Fatal(err)
	}
	if out = ok(t, s, newAgentCmd, "", "add-key", "support-bot", "--jwk", jwkFile); !strings.Contains(out, "Registered public key jwk_") {
		t.Errorf("add-key output:\n%s", out)
	}

	if out = ok(t, s, newAgentCmd, "", "disable", "support-bot"); !strings.Contains(out, "is disabled") {
		t.Errorf("disable output: %s", out)
	}
	if out = ok(t, s, newAgentCmd, "", "list", "--status", "disabled"); !strings.Contains(out, "support-bot") || strings.Contains(out, "brief") {
		t.Errorf("list --status disabled:\n%s", out)
	}
	if out = ok(t, s, newAgentCmd, "", "enable", "support-bot"); !strings.Contains(out, "is active") {
		t.Errorf("enable output: %s", out)
	}

	// Revoking asks first; no answer (or "n") is no.
	for _, answer := range []string{"", "n\n"} {
		r := run(t, s, newAgentCmd, answer, "revoke", "support-bot")
		if r.err == nil || !strings.Contains(r.err.Error(), "not revoked") || !strings.Contains(r.errOut, "cannot be undone") {
			t.Errorf("revoke answered %q: err %v, stderr %q", answer, r.err, r.errOut)
		}
	}
	if st, _ := agentState(t, s, "support-bot"); st != store.AgentActive {
		t.Fatalf("revoked without confirmation: %s", st)
	}
	if out = ok(t, s, newAgentCmd, "yes\n", "revoke", "support-bot"); !strings.Contains(out, "Revoked agent support-bot") {
		t.Errorf("revoke output: %s", out)
	}
	if st, n := agentState(t, s, "support-bot"); st != store.AgentRevoked || n != 0 {
		t.Errorf("after revoke: status %s, %d active credentials", st, n)
	}
	ok(t, s, newAgentCmd, "", "revoke", "brief", "--yes")
	if st, _ := agentState(t, s, "brief"); st != store.AgentRevoked {
		t.Errorf("revoke --yes: status %s", st)
	}
	assertNoSecretsLogged(t, s, secret)
}

func TestAgentCommandErrors(t *testing.T) {
	s := admintest.New(t)
	ok(t, s, newAgentCmd, "", "create", "bot", "--team", "support", "--owner", "alice@example.com")
	tests := []struct {
		name string
		args []string
		want string // the error message, or a part of it
	}{
		{"unknown agent", []string{"show", "ghost"}, `agent "ghost" not found`},
		{"duplicate", []string{"create", "bot", "--team", "t", "--owner", "o"}, `agent "bot" already exists`},
		{"invalid name", []string{"create", "no good", "--team", "t", "--owner", "o"}, "must be 1-64 characters"},
		{"missing team", []string{"create", "x", "--owner", "o"}, `required flag(s) "team" not set`},
		{"attributes not an object", []string{"create", "x", "--team", "t", "--owner", "o", "--attributes", "[1]"}, "--attributes must be a JSON object"},
		{"bad overlap", []string{"rotate", "bot", "--overlap", "soon"}, "invalid argument"},
		{"bad status filter", []string{"list", "--status", "sleeping"}, "status must be active, disabled or revoked"},
		{"unknown agent rotate", []string{"rotate", "ghost"}, `agent "ghost" not found`},
		{"missing jwk file", []string{"add-key", "bot", "--jwk", "/nonexistent/key.jwk"}, "reading the key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := run(t, s, newAgentCmd, "", tt.args...)
			if r.err == nil || !strings.Contains(r.err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", r.err, tt.want)
			}
		})
	}
	// The API's message is the whole error: exactly what the user sees
	// after "gatehouse: ".
	r := run(t, s, newAgentCmd, "", "show", "ghost")
	var ae *apiError
	if !errors.As(r.err, &ae) || r.err.Error() != `agent "ghost" not found` || ae.status != 404 {
		t.Errorf("error %#v", r.err)
	}
}

func TestAdminFlagsAndAuth(t *testing.T) {
	s := admintest.New(t)
	t.Run("no token", func(t *testing.T) {
		t.Setenv(envAdminToken, "")
		t.Chdir(t.TempDir())
		r := run(t, nil, newAgentCmd, "", "list", "--admin-url", s.URL)
		if r.err == nil || !strings.Contains(r.err.Error(), "no admin token") {
			t.Errorf("error %v", r.err)
		}
	})
	t.Run("token file", func(t *testing.T) {
		t.Setenv(envAdminToken, "")
		dir := t.TempDir()
		t.Chdir(dir)
		if err := os.MkdirAll(filepath.Join(dir, "gatehouse-data"), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, defaultAdminTokenFile), []byte(admintest.Token+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if r := run(t, nil, newAgentCmd, "", "list", "--admin-url", s.URL); r.err != nil {
			t.Errorf("with the token file: %v", r.err)
		}
	})
	t.Run("wrong token", func(t *testing.T) {
		r := run(t, nil, newAgentCmd, "", "list", "--admin-url", s.URL, "--admin-token", "wrong")
		var ae *apiError
		if !errors.As(r.err, &ae) || ae.status != 401 || !strings.Contains(r.err.Error(), "admin token is required") {
			t.Errorf("error %v", r.err)
		}
	})
	t.Run("bad URL", func(t *testing.T) {
		r := run(t, nil, newAgentCmd, "", "list", "--admin-url", "ftp://x", "--admin-token", "t")
		if r.err == nil || !strings.Contains(r.err.Error(), "--admin-url") {
			t.Errorf("error %v", r.err)
		}
	})
	t.Run("nothing listening", func(t *testing.T) {
		r := run(t, nil, newAgentCmd, "", "list", "--admin-url", "http://127.0.0.1:1", "--admin-token", "t")
		if r.err == nil || !strings.Contains(r.err.Error(), "cannot reach the gateway") {
			t.Errorf("error %v", r.err)
		}
	})
	t.Run("environment", func(t *testing.T) {
		t.Setenv(envAdminURL, s.URL)
		t.Setenv(envAdminToken, admintest.Token)
		if r := run(t, nil, newAgentCmd, "", "list"); r.err != nil || !strings.Contains(r.out, "No agents") {
			t.Errorf("with the environment: %v %s", r.err, r.out)
		}
		// Help never shows the token.
		for _, newCmd := range []func() *cobra.Command{newAgentCmd, newTeamCmd, newUserCmd, newVaultCmd, newKeysCmd} {
			r := run(t, nil, newCmd, "", "--help")
			if strings.Contains(r.out+r.errOut, admintest.Token) || !strings.Contains(r.out, "--admin-token") {
				t.Errorf("help:\n%s", r.out)
			}
		}
	})
	t.Run("json", func(t *testing.T) {
		ok(t, s, newAgentCmd, "", "create", "bot", "--team", "support", "--owner", "alice@example.com")
		var agents []admin.Agent
		out := ok(t, s, newAgentCmd, "", "list", "--json")
		if err := json.Unmarshal([]byte(out), &agents); err != nil || len(agents) != 1 || agents[0].Name != "bot" {
			t.Errorf("list --json: %v\n%s", err, out)
		}
		// Errors in JSON too, and the message on the error.
		r := run(t, s, newAgentCmd, "", "show", "ghost", "--json")
		var eb admin.ErrorBody
		if json.Unmarshal([]byte(r.out), &eb) != nil || eb.Error.Code != "not_found" || r.err == nil {
			t.Errorf("show ghost --json: %v %s", r.err, r.out)
		}
	})
}

func TestTeamRotateCommand(t *testing.T) {
	s := admintest.New(t)
	var old []string
	for _, name := range []string{"ops-1", "ops-2"} {
		old = append(old, secretRE.FindString(ok(t, s, newAgentCmd, "", "create", name, "--team", "ops", "--owner", "alice@example.com")))
	}
	ok(t, s, newAgentCmd, "", "api-key", "ops-1")

	out := ok(t, s, newTeamCmd, "", "rotate", "ops")
	if got := secretRE.FindAllString(out, -1); len(got) != 2 || got[0] == old[0] || got[1] == old[1] {
		t.Fatalf("team rotate output:\n%s", out)
	}
	if !strings.Contains(out, "ops-1") || !strings.Contains(out, "stopped working now") || !strings.Contains(out, "shown once") {
		t.Errorf("team rotate output:\n%s", out)
	}
	for _, name := range []string{"ops-1", "ops-2"} {
		if _, n := agentState(t, s, name); n != 1 {
			t.Errorf("%s: %d active credentials after the emergency rotation, want 1 (the new secret)", name, n)
		}
	}
	if r := run(t, s, newTeamCmd, "", "rotate", "nobody"); r.err == nil || !strings.Contains(r.err.Error(), `team "nobody" has no agents`) {
		t.Errorf("unknown team: %v", r.err)
	}
	out = ok(t, s, newTeamCmd, "", "rotate", "ops", "--overlap", "1h")
	if !strings.Contains(out, "keep working for 1h") {
		t.Errorf("team rotate with overlap:\n%s", out)
	}
}

func TestUserCommands(t *testing.T) {
	s := admintest.New(t)
	const pw, pw2 = "correct horse battery", "staple gun sandwich"
	out := ok(t, s, newUserCmd, pw+"\n", "create", "alice@example.com", "--group", "support", "--group", "admins", "--password-stdin")
	if !strings.Contains(out, "Created user alice@example.com (groups: support, admins)") {
		t.Errorf("create output: %s", out)
	}
	// Not a terminal: the password is read from standard input anyway.
	ok(t, s, newUserCmd, pw, "create", "bob")
	if r := run(t, s, newUserCmd, "short\n", "create", "carol", "--password-stdin"); r.err == nil || !strings.Contains(r.err.Error(), "at least 12 characters") {
		t.Errorf("short password: %v", r.err)
	}
	if r := run(t, s, newUserCmd, "", "create", "carol", "--password-stdin"); r.err == nil || !strings.Contains(r.err.Error(), "no password") {
		t.Errorf("no password: %v", r.err)
	}
	if r := run(t, s, newUserCmd, pw+"\n", "create", "bob", "--password-stdin"); r.err == nil || !strings.Contains(r.err.Error(), "already exists") {
		t.Errorf("duplicate: %v", r.err)
	}

	ok(t, s, newUserCmd, pw2+"\r\n", "set-password", "bob", "--password-stdin")
	u, err := s.Store.GetUser(context.Background(), "bob")
	if err != nil {
		t.Fatal(err)
	}
	if good, _ := identity.VerifyPassword(u.PasswordHash, pw2); !good {
		t.Error("set-password did not set the password (line ending included?)")
	}
	if r := run(t, s, newUserCmd, pw2+"\n", "set-password", "nobody"); r.err == nil || !strings.Contains(r.err.Error(), `user "nobody" not found`) {
		t.Errorf("unknown user: %v", r.err)
	}

	ok(t, s, newUserCmd, "", "disable", "bob")
	out = ok(t, s, newUserCmd, "", "list")
	if !regexp.MustCompile(`alice@example.com\s+support,admins\s+active`).MatchString(out) || !regexp.MustCompile(`bob\s+-\s+disabled`).MatchString(out) {
		t.Errorf("list:\n%s", out)
	}
	ok(t, s, newUserCmd, "", "enable", "bob")
	if u, _ := s.Store.GetUser(context.Background(), "bob"); u.Disabled {
		t.Error("enable left the user disabled")
	}
	if strings.Contains(out, "argon2") {
		t.Error("list shows password hashes")
	}
	assertNoSecretsLogged(t, s, pw, pw2)
}

func TestVaultAndKeysCommands(t *testing.T) {
	s := admintest.New(t)
	ctx := context.Background()
	ok(t, s, newAgentCmd, "", "create", "bot", "--team", "support", "--owner", "alice@example.com")
	const shared, mine = "xoxb-shared-value-123", "-----BEGIN KEY-----\nabc\n-----END KEY-----\n"

	out := ok(t, s, newVaultCmd, shared+"\n", "put", "slack-token", "--value-stdin")
	if !strings.Contains(out, "Stored secret slack-token (shared), version 1") {
		t.Errorf("put output: %s", out)
	}
	if v, err := s.Vault.Get(ctx, "slack-token", ""); err != nil || string(v) != shared {
		t.Errorf("stored value %q, %v (the trailing newline must be dropped)", v, err)
	}
	file := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(file, []byte(mine), 0o600); err != nil {
		t.Fatal(err)
	}
	out = ok(t, s, newVaultCmd, "", "put", "github/app-key", "--agent", "bot", "--from-file", file)
	if !strings.Contains(out, "Stored secret github/app-key for agent bot, version 1") {
		t.Errorf("put --from-file output: %s", out)
	}
	a, _ := s.Store.GetAgentByName(ctx, "bot")
	if v, err := s.Vault.Get(ctx, "github/app-key", a.ID); err != nil || string(v) != mine {
		t.Errorf("stored file value %q, %v (files are used byte for byte)", v, err)
	}

	out = ok(t, s, newVaultCmd, "", "list")
	if !regexp.MustCompile(`github/app-key\s+bot\s+1\s`).MatchString(out) || !regexp.MustCompile(`slack-token\s+\(shared\)\s+1\s`).MatchString(out) {
		t.Errorf("list:\n%s", out)
	}
	jsonOut := ok(t, s, newVaultCmd, "", "list", "--json")
	for _, o := range []string{out, jsonOut} {
		if strings.Contains(o, shared) || strings.Contains(o, "BEGIN KEY") {
			t.Errorf("vault list shows a value:\n%s", o)
		}
	}

	errTests := []struct {
		name  string
		stdin string
		args  []string
		want  string
	}{
		{"no source", "", []string{"put", "x"}, "at least one of the flags"},
		{"two sources", "v", []string{"put", "x", "--value-stdin", "--from-file", file}, "none of the others can be"},
		{"empty value", "\n", []string{"put", "x", "--value-stdin"}, "the value is empty"},
		{"unknown agent", "v", []string{"put", "x", "--agent", "ghost", "--value-stdin"}, `agent "ghost" not found`},
		{"bad name", "v", []string{"put", "bad name", "--value-stdin"}, "invalid secret name"},
		{"binary value", "\xff\xfe", []string{"put", "x", "--value-stdin"}, "not UTF-8"},
		{"too large", strings.Repeat("a", admin.MaxBodyBytes), []string{"put", "x", "--value-stdin"}, "too large"},
		{"delete unknown", "", []string{"delete", "nothing"}, "not found"},
	}
	for _, tt := range errTests {
		t.Run(tt.name, func(t *testing.T) {
			r := run(t, s, newVaultCmd, tt.stdin, tt.args...)
			if r.err == nil || !strings.Contains(r.err.Error(), tt.want) {
				t.Errorf("error %v, want %q", r.err, tt.want)
			}
		})
	}

	if out = ok(t, s, newVaultCmd, "", "delete", "github/app-key", "--agent", "bot"); !strings.Contains(out, "Deleted secret github/app-key for agent bot") {
		t.Errorf("delete output: %s", out)
	}
	if _, err := s.Vault.Get(ctx, "github/app-key", a.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("after delete: %v", err)
	}
	if out = ok(t, s, newVaultCmd, "", "rotate"); !strings.Contains(out, "Re-wrapped 0 secrets") {
		t.Errorf("rotate output: %s", out)
	}

	out = ok(t, s, newKeysCmd, "", "rotate")
	kid := regexp.MustCompile(`New signing key (\S+):`).FindStringSubmatch(out)
	if kid == nil || !strings.Contains(string(s.Keys.JWKS()), kid[1]) {
		t.Errorf("keys rotate output: %s", out)
	}
	assertNoSecretsLogged(t, s, shared, "BEGIN KEY")
}

func assertNoSecretsLogged(t *testing.T, s *admintest.Server, secrets ...string) {
	t.Helper()
	logs := s.Logs.String()
	for _, sec := range append(secrets, admintest.Token) {
		if sec != "" && strings.Contains(logs, sec) {
			t.Errorf("the gateway's log holds the secret %.6s…", sec)
		}
	}
}
