package e2e

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"gatehouse/internal/vault"
)

// postgresURL returns the test server's URL, or skips (fails under CI).
func postgresURL(t *testing.T) string {
	t.Helper()
	u := os.Getenv("GATEHOUSE_TEST_POSTGRES")
	if u == "" {
		if os.Getenv("GATEHOUSE_CI") == "1" {
			t.Fatal("GATEHOUSE_TEST_POSTGRES is not set, and CI must not skip PostgreSQL tests")
		}
		t.Skip("GATEHOUSE_TEST_POSTGRES not set: PostgreSQL tests need a server")
	}
	return u
}

// freshDatabase creates an empty database for one test and drops it after.
func freshDatabase(t *testing.T, base string) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connecting to PostgreSQL: %v", err)
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "gatehouse_e2e_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), base)
		if err == nil {
			_, _ = c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			c.Close(context.Background())
		}
	})
	u, _ := url.Parse(base)
	u.Path = "/" + name
	return u.String()
}

// replica is one `gatehouse serve` process.
type replica struct {
	addr string
	cmd  *exec.Cmd
}

var listenRE = regexp.MustCompile(`gatehouse listening" addr=http://([0-9.:]+)`)

// startReplica runs the gatehouse binary with cfg and returns its address.
func startReplica(t *testing.T, cfgPath string, env []string) *replica {
	t.Helper()
	return startReplicaLogging(t, cfgPath, env, "")
}

// startReplicaLogging is startReplica that also copies the log to logPath.
func startReplicaLogging(t *testing.T, cfgPath string, env []string, logPath string) *replica {
	t.Helper()
	var logFile *os.File
	if logPath != "" {
		f, err := os.Create(logPath)
		if err != nil {
			t.Fatal(err)
		}
		logFile = f
		t.Cleanup(func() { f.Close() })
	}
	cmd := exec.Command(gatehouseBin, "serve", "--config", cfgPath, "--listen", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), env...)
	cmd.Dir = filepath.Dir(cfgPath)
	out, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
		}
	})
	addr := make(chan string, 1)
	var log strings.Builder
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			log.WriteString(line + "\n")
			if logFile != nil {
				_, _ = logFile.WriteString(line + "\n")
			}
			if m := listenRE.FindStringSubmatch(line); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			}
		}
		close(addr)
	}()
	select {
	case a, ok := <-addr:
		if !ok {
			t.Fatalf("gatehouse exited before listening:\n%s", log.String())
		}
		return &replica{addr: a, cmd: cmd}
	case <-time.After(60 * time.Second):
		t.Fatalf("gatehouse did not start:\n%s", log.String())
	}
	return nil
}

func postJSON(t *testing.T, url, token, body string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// TestRevocationAcrossReplicas runs two gateway processes on one
// PostgreSQL database: an agent revoked through one is refused by the
// other, with a token the other had already accepted and cached, within
// moments — the change travels by LISTEN/NOTIFY, not at token expiry.
func TestRevocationAcrossReplicas(t *testing.T) {
	db := freshDatabase(t, postgresURL(t))
	kek, err := vault.GenerateKEK()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	const issuer = "http://gateway.test"
	cfg := render(t, `
upstreams:
  crm: {command: "{{gatehouse}}", args: [demo-server, crm]}
servers:
  crm: {upstreams: [{upstream: crm, prefix: ""}]}
store: {driver: postgres, url: "${E2E_DB}"}
vault: {kek: "env:E2E_KEK"}
admin: {token: "${E2E_ADMIN}"}
identity:
  issuer: `+issuer+`
  bootstrap_user: ""
  teams: [{name: ops, servers: [crm]}]
`)
	path := filepath.Join(dir, "gatehouse.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	adminTok := "e2e-admin-token-0123456789"
	env := []string{"E2E_DB=" + db, "E2E_KEK=" + kek, "E2E_ADMIN=" + adminTok}
	a := startReplica(t, path, env)
	b := startReplica(t, path, env)

	// Create an agent on A and get a token from A.
	st, body := postJSON(t, "http://"+a.addr+"/admin/v1/agents", adminTok, `{"name":"ops-bot","team":"ops","owner":"ops@example.com"}`)
	if st != http.StatusCreated {
		t.Fatalf("creating the agent: %d %s", st, body)
	}
	var created struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	if err := json.Unmarshal(body, &created); err != nil {
		t.Fatal(err)
	}
	form := url.Values{"grant_type": {"client_credentials"}, "resource": {issuer + "/mcp/crm"}}
	req, _ := http.NewRequest(http.MethodPost, "http://"+a.addr+"/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(created.ClientID, created.ClientSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	if tok.AccessToken == "" {
		t.Fatalf("no token: %d", resp.StatusCode)
	}

	initialize := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"e2e","version":"1"}}}`
	// B accepts (and caches) the token A issued: same keys, same store.
	eventually(t, "replica B to accept the token", func() error {
		if st, body := postJSON(t, "http://"+b.addr+"/mcp/crm", tok.AccessToken, initialize); st != http.StatusOK {
			return fmt.Errorf("status %d: %s", st, body)
		}
		return nil
	})

	// Revoke on A; B must refuse the same token soon after.
	if st, body := postJSON(t, "http://"+a.addr+"/admin/v1/agents/ops-bot/revoke", adminTok, `{}`); st != http.StatusOK {
		t.Fatalf("revoking: %d %s", st, body)
	}
	revoked := time.Now()
	var last string
	eventually(t, "replica B to refuse the revoked agent", func() error {
		st, body := postJSON(t, "http://"+b.addr+"/mcp/crm", tok.AccessToken, initialize)
		last = string(body)
		if st != http.StatusUnauthorized {
			return fmt.Errorf("status %d", st)
		}
		return nil
	})
	t.Logf("replica B refused the revoked agent %s after the revocation on A", time.Since(revoked).Round(time.Microsecond))
	if !strings.Contains(last, "revoked") {
		t.Fatalf("refusal does not say why: %s", last)
	}
}

// authedGateway starts one gateway process with authentication on (SQLite)
// and returns it with a way to get tokens for new agents of team ops.
func authedGateway(t *testing.T) (*replica, func(name string) string) {
	t.Helper()
	kek, err := vault.GenerateKEK()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := render(t, `
upstreams:
  crm: {command: "{{gatehouse}}", args: [demo-server, crm]}
servers:
  crm: {upstreams: [{upstream: crm, prefix: ""}]}
  other: {upstreams: [{upstream: crm, prefix: ""}]}
store: {path: "`+filepath.Join(dir, "gh.db")+`"}
vault: {kek: "env:E2E_KEK"}
admin: {token: "${E2E_ADMIN}"}
identity:
  issuer: http://gateway.test
  bootstrap_user: ""
  teams: [{name: ops, servers: [crm]}]
`)
	path := filepath.Join(dir, "gatehouse.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	adminTok := "e2e-admin-token-0123456789"
	g := startReplica(t, path, []string{"E2E_KEK=" + kek, "E2E_ADMIN=" + adminTok})
	token := func(name string) string {
		st, body := postJSON(t, "http://"+g.addr+"/admin/v1/agents", adminTok, `{"name":"`+name+`","team":"ops","owner":"ops@example.com"}`)
		if st != http.StatusCreated {
			t.Fatalf("creating %s: %d %s", name, st, body)
		}
		var c struct{ ClientID, ClientSecret string }
		var raw map[string]any
		_ = json.Unmarshal(body, &raw)
		c.ClientID, _ = raw["client_id"].(string)
		c.ClientSecret, _ = raw["client_secret"].(string)
		form := url.Values{"grant_type": {"client_credentials"}, "resource": {"http://gateway.test/mcp/crm"}}
		req, _ := http.NewRequest(http.MethodPost, "http://"+g.addr+"/oauth/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(c.ClientID, c.ClientSecret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var tok struct {
			AccessToken string `json:"access_token"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&tok)
		if tok.AccessToken == "" {
			t.Fatalf("no token for %s: %d", name, resp.StatusCode)
		}
		return tok.AccessToken
	}
	return g, token
}

// sessionPost sends body in a session with a token and returns the status.
func sessionPost(t *testing.T, url, token, session, body string) (int, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if session != "" {
		req.Header.Set("Mcp-Session-Id", session)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header
}

// TestSessionsBelongToTheirIdentity: a session opened by one agent is
// unknown (404) to another agent presenting its id, and keeps working for
// its owner; unauthenticated and wrong-server requests get the answers MCP
// clients need to find the authorization server.
func TestSessionsBelongToTheirIdentity(t *testing.T) {
	g, token := authedGateway(t)
	alice, bob := token("alice-bot"), token("bob-bot")
	base := "http://" + g.addr + "/mcp/crm"
	initialize := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"e2e","version":"1"}}}`
	list := `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`

	st, h := sessionPost(t, base, alice, "", initialize)
	sid := h.Get("Mcp-Session-Id")
	if st != http.StatusOK || sid == "" {
		t.Fatalf("initialize: %d, session %q", st, sid)
	}
	if st, _ := sessionPost(t, base, bob, sid, list); st != http.StatusNotFound {
		t.Fatalf("another agent using alice's session: status %d, want 404", st)
	}
	if st, _ := sessionPost(t, base, alice, sid, list); st != http.StatusOK {
		t.Fatalf("alice in her own session: status %d", st)
	}

	// No credential: 401 pointing at the protected resource metadata.
	st, h = sessionPost(t, base, "", "", initialize)
	wa := h.Get("Www-Authenticate")
	if st != http.StatusUnauthorized || !strings.Contains(wa, `resource_metadata="http://gateway.test/.well-known/oauth-protected-resource/mcp/crm"`) {
		t.Fatalf("unauthenticated: %d %q", st, wa)
	}
	// A token for crm used on another server: its audience does not match.
	st, h = sessionPost(t, "http://"+g.addr+"/mcp/other", alice, "", initialize)
	wa = h.Get("Www-Authenticate")
	if st != http.StatusUnauthorized || !strings.Contains(wa, `error="invalid_token"`) || !strings.Contains(wa, "audience") {
		t.Fatalf("wrong audience: %d %q", st, wa)
	}
}

// TestVaultSecretsNeverAtRestOrInLogs stores an upstream credential through
// the admin API of a real gateway process, makes the gateway use it (an
// HTTP upstream that records what it receives), and checks the plaintext
// appears in none of the database files nor the gateway's log.
func TestVaultSecretsNeverAtRestOrInLogs(t *testing.T) {
	const secret = "sk-live-THIS-MUST-NEVER-BE-STORED-IN-CLEAR-8472"
	got := make(chan string, 4)
	up := newRecordingUpstream(t, got)
	kek, err := vault.GenerateKEK()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := `
upstreams:
  remote:
    url: ` + up + `
    auth: {type: bearer, secret: "vault:remote-token"}
servers:
  remote: {upstreams: [{upstream: remote, prefix: ""}]}
store: {path: "` + filepath.Join(dir, "gh.db") + `"}
vault: {kek: "env:E2E_KEK"}
admin: {token: "${E2E_ADMIN}"}
identity:
  auth: "off"
  bootstrap_user: ""
`
	path := filepath.Join(dir, "gatehouse.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	adminTok := "e2e-admin-token-0123456789"
	logPath := filepath.Join(dir, "gateway.log")
	g := startReplicaLogging(t, path, []string{"E2E_KEK=" + kek, "E2E_ADMIN=" + adminTok}, logPath)

	req, _ := http.NewRequest(http.MethodPut, "http://"+g.addr+"/admin/v1/vault/secrets/remote-token", strings.NewReader(`{"value":"`+secret+`"}`))
	req.Header.Set("Authorization", "Bearer "+adminTok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("storing the secret: %d", resp.StatusCode)
	}
	initialize := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"e2e","version":"1"}}}`
	if st, body := postJSON(t, "http://"+g.addr+"/mcp/remote", "", initialize); st != http.StatusOK {
		t.Fatalf("initialize: %d %s", st, body)
	}
	select {
	case auth := <-got:
		if auth != "Bearer "+secret {
			t.Fatalf("upstream got Authorization %q", auth)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the upstream never received a request")
	}
	files, _ := filepath.Glob(filepath.Join(dir, "gh.db*"))
	files = append(files, logPath)
	nameSeen := false
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), secret) {
			t.Errorf("%s contains the secret in clear", filepath.Base(f))
		}
		// The entry's name is stored in clear: finding it proves the scan
		// reads the bytes the record went to.
		nameSeen = nameSeen || (f != logPath && strings.Contains(string(b), "remote-token"))
	}
	if !nameSeen {
		t.Fatal("the vault entry was not found in any database file: the scan proves nothing")
	}
	if len(files) < 2 {
		t.Fatalf("no database files found: %v", files)
	}
}

// newRecordingUpstream serves an MCP server over Streamable HTTP that
// reports the Authorization header of each request on got.
func newRecordingUpstream(t *testing.T, got chan<- string) string {
	t.Helper()
	srv := sdk.NewServer(&sdk.Implementation{Name: "recorder", Version: "1"}, nil)
	h := sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return srv }, nil)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case got <- r.Header.Get("Authorization"):
		default:
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	return ts.URL
}
