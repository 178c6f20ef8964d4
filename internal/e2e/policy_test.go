package e2e

// Least-privilege policy end to end: the three roles of
// examples/roles.yaml (support, sales, engineering) on the built-in demo
// servers, through a real gateway (internal/app in-process on SQLite, or
// `gatehouse serve` replicas on PostgreSQL), driven by the go-sdk client
// with client-credentials tokens. The configuration is the shipped example
// itself, adapted to a temporary directory (see rolesConfig), so the tests
// prove what the example promises.
//
// Nothing asserts on elapsed time: held calls, grant expiries and the
// decision record are polled for with bounded deadlines.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	sdkjsonrpc "github.com/modelcontextprotocol/go-sdk/jsonrpc"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"golang.org/x/oauth2"

	"gatehouse/internal/app"
	"gatehouse/internal/policy"
	"gatehouse/internal/store"
	"gatehouse/internal/store/sqlite"
	"gatehouse/internal/vault"
)

const (
	// policyIssuer is fixed so that tokens stay valid across a restart and
	// across replicas, whatever port each listens on.
	policyIssuer   = "http://gateway.test"
	policyAdminTok = "e2e-policy-admin-token-0123456789"
	policyServer   = "work"

	// JSON-RPC codes of the gateway's policy answers.
	codePolicyDenied    = -31010
	codeApprovalPending = -31011
	codeInvalidParams   = -32602
)

// The tools each role's tools/list shows, derived from examples/roles.yaml
// and the demo servers (server work prefixes them with the upstream's
// name).
var (
	allWorkTools = []string{
		"chat_list_channels", "chat_post_message",
		"crm_get_customer", "crm_get_invoice", "crm_search_customers",
		"tickets_create_ticket", "tickets_get_ticket", "tickets_list_tickets",
	}
	// support: every crm tool (all read-only), its own queues, tickets, chat.
	supportTools = allWorkTools
	// sales: find-customers, sales-chat, and the organisation's channel list.
	salesTools = []string{"chat_list_channels", "chat_post_message", "crm_get_customer", "crm_search_customers"}
	// engineering: read-only tickets, on-call chat, the channel list;
	// create_ticket needs a person in group oncall, which a bot is not.
	engTools = []string{"chat_list_channels", "chat_post_message", "tickets_get_ticket", "tickets_list_tickets"}
)

// rolesConfig returns examples/roles.yaml adapted to dir: listen on any
// port, the demo servers from the test build, approvals.wait as given, the
// decision record in dir, a fixed issuer, no bootstrap user, and the tail
// (store, vault, admin sections). Every adaptation must apply exactly as
// often as expected, so a change to the example fails here instead of
// silently testing something else.
func rolesConfig(t *testing.T, dir, approvalWait, tail string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "examples", "roles.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(b)
	replace := func(old, new string, n int) {
		t.Helper()
		if got := strings.Count(cfg, old); got != n {
			t.Fatalf("examples/roles.yaml: %q occurs %d times, want %d: update rolesConfig", old, got, n)
		}
		cfg = strings.ReplaceAll(cfg, old, new)
	}
	replace("\nlisten: 127.0.0.1:8080\n", "\nlisten: 127.0.0.1:0\n", 1)
	replace("    command: gatehouse\n", "    command: "+strconv.Quote(gatehouseBin)+"\n", 3)
	replace("approvals: {wait: 2m, ttl: 1h}", "approvals: {wait: "+approvalWait+", ttl: 1h}", 1)
	replace("record: gatehouse-data/decisions.jsonl", "record: "+strconv.Quote(filepath.Join(dir, "decisions.jsonl")), 1)
	replace("\nidentity:\n", "\nidentity:\n  issuer: "+policyIssuer+"\n  bootstrap_user: \"\"\n", 1)
	return cfg + "\n" + tail
}

// sqliteTail is the configuration tail of a gateway on SQLite in dir.
func sqliteTail(dir string) string {
	return fmt.Sprintf("store: {path: %s}\nvault: {kek: %s}\nadmin: {token: %s, token_file: %s}\n",
		strconv.Quote(filepath.Join(dir, "gatehouse.db")), strconv.Quote("file:"+filepath.Join(dir, "kek")),
		strconv.Quote(policyAdminTok), strconv.Quote(filepath.Join(dir, "admin-token")))
}

// rolesGateway is internal/app serving a configuration in-process.
type rolesGateway struct {
	dir, cfgPath string
	base         string // http://127.0.0.1:port
	logs         *logBuffer
	stop         func()
}

// newRolesDir writes the SQLite configuration into a new directory.
func newRolesDir(t *testing.T, approvalWait string) (dir, cfgPath string) {
	t.Helper()
	dir = t.TempDir()
	cfgPath = filepath.Join(dir, "gatehouse.yaml")
	if err := os.WriteFile(cfgPath, []byte(rolesConfig(t, dir, approvalWait, sqliteTail(dir))), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir, cfgPath
}

// startRolesApp runs the gateway of cfgPath in-process until stop (or
// the end of the test).
func startRolesApp(t *testing.T, dir, cfgPath string) *rolesGateway {
	t.Helper()
	logs := &logBuffer{}
	ready := make(chan string, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- app.Run(ctx, app.Options{ConfigPath: cfgPath, Listen: "127.0.0.1:0", LogOutput: logs, Ready: ready})
	}()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("gateway exited before listening: %v\n%s", err, logs.tail(50))
	case <-time.After(wait):
		cancel()
		t.Fatalf("gateway did not start:\n%s", logs.tail(50))
	}
	g := &rolesGateway{dir: dir, cfgPath: cfgPath, base: "http://" + addr, logs: logs}
	g.stop = sync.OnceFunc(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("gateway: %v", err)
			}
		case <-time.After(wait):
			t.Errorf("gateway did not stop within %s", wait)
		}
	})
	t.Cleanup(func() {
		g.stop()
		if t.Failed() || os.Getenv("E2E_VERBOSE") != "" {
			t.Logf("gateway log (last lines):\n%s", logs.tail(150))
		}
	})
	return g
}

// ---------------------------------------------------------------------------
// HTTP: the admin API, tokens, clients

// httpJSON sends a JSON request (body nil: none) and returns the status
// and the response body.
func httpJSON(t *testing.T, method, url, bearer string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = strings.NewReader(string(b))
	}
	req, err := http.NewRequestWithContext(ctxT(t), method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// adminCall calls the admin API of the gateway at base.
func adminCall(t *testing.T, base, method, path string, body any) (int, []byte) {
	t.Helper()
	return httpJSON(t, method, base+path, policyAdminTok, body)
}

// mustAdmin calls the admin API and decodes a response of status want.
func mustAdmin(t *testing.T, base, method, path string, body any, want int, out any) {
	t.Helper()
	st, b := adminCall(t, base, method, path, body)
	if st != want {
		t.Fatalf("%s %s: HTTP %d, want %d: %s", method, path, st, want, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: decoding %s: %v", method, path, b, err)
		}
	}
}

// agentToken gives a declared agent a secret (admin API) and returns an
// access token for server work from the client-credentials grant.
func agentToken(t *testing.T, base, agent string) string {
	t.Helper()
	var ag struct {
		ClientID string `json:"client_id"`
	}
	mustAdmin(t, base, http.MethodGet, "/admin/v1/agents/"+agent, nil, http.StatusOK, &ag)
	var rot struct {
		ClientSecret string `json:"client_secret"`
	}
	mustAdmin(t, base, http.MethodPost, "/admin/v1/agents/"+agent+"/rotate", map[string]any{}, http.StatusOK, &rot)
	if ag.ClientID == "" || rot.ClientSecret == "" {
		t.Fatalf("agent %s: no client id or secret", agent)
	}
	form := url.Values{"grant_type": {"client_credentials"}, "resource": {policyIssuer + "/mcp/" + policyServer}}
	req, _ := http.NewRequestWithContext(ctxT(t), http.MethodPost, base+"/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(ag.ClientID, rot.ClientSecret)
	return tokenResponse(t, req)
}

func tokenResponse(t *testing.T, req *http.Request) string {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	_ = json.Unmarshal(b, &tok)
	if resp.StatusCode != http.StatusOK || tok.AccessToken == "" {
		t.Fatalf("token endpoint: HTTP %d %s", resp.StatusCode, b)
	}
	return tok.AccessToken
}

var hiddenInputRE = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)

// personToken creates a local user in group admins (admin API) and logs
// them in through the authorization code flow with PKCE, as an MCP client
// with a browser would; it returns their access token for server work.
func personToken(t *testing.T, base, user string) string {
	t.Helper()
	pw := "correct-horse-battery-" + user
	mustAdmin(t, base, http.MethodPost, "/admin/v1/users",
		map[string]any{"username": user, "password": pw, "groups": []string{"admins"}}, http.StatusCreated, nil)
	const redirect = "http://127.0.0.1:7/callback"
	st, b := httpJSON(t, http.MethodPost, base+"/oauth/register", "",
		map[string]any{"redirect_uris": []string{redirect}, "token_endpoint_auth_method": "none", "client_name": "e2e person"})
	var reg struct {
		ClientID string `json:"client_id"`
	}
	if err := json.Unmarshal(b, &reg); err != nil || st/100 != 2 || reg.ClientID == "" {
		t.Fatalf("registering a client: HTTP %d %s", st, b)
	}
	verifier := oauth2.GenerateVerifier()
	resource := policyIssuer + "/mcp/" + policyServer
	q := url.Values{"response_type": {"code"}, "client_id": {reg.ClientID}, "redirect_uri": {redirect},
		"code_challenge": {oauth2.S256ChallengeFromVerifier(verifier)}, "code_challenge_method": {"S256"},
		"state": {"e2e-state"}, "resource": {resource}}
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := browser.Get(base + "/oauth/authorize?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("login page: HTTP %d %s", resp.StatusCode, page)
	}
	form := url.Values{}
	for _, m := range hiddenInputRE.FindAllStringSubmatch(string(page), -1) {
		form.Set(html.UnescapeString(m[1]), html.UnescapeString(m[2]))
	}
	form.Set("username", user)
	form.Set("password", pw)
	if form.Get("action") == "" {
		form.Set("action", "login")
	}
	resp, err = browser.PostForm(base+"/oauth/authorize", form)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusSeeOther || loc == nil || loc.Query().Get("code") == "" || loc.Query().Get("state") != "e2e-state" {
		t.Fatalf("login: HTTP %d (Location %q) %s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	tf := url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")}, "redirect_uri": {redirect},
		"client_id": {reg.ClientID}, "code_verifier": {verifier}, "resource": {resource}}
	req, _ := http.NewRequestWithContext(ctxT(t), http.MethodPost, base+"/oauth/token", strings.NewReader(tf.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return tokenResponse(t, req)
}

// bearerTransport adds an access token to every request of a go-sdk
// client.
type bearerTransport struct{ token string }

func (b bearerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return http.DefaultTransport.RoundTrip(r)
}

// connectAs opens a go-sdk client session with server work as the holder
// of token ("" version: the SDK's default, the stateless 2026-07-28
// revision; workflow rules need a stateful session, e.g. v20251125).
func connectAs(t *testing.T, base, token, version string, opts *sdk.ClientOptions) *sdk.ClientSession {
	t.Helper()
	return connectTransport(t, &sdk.StreamableClientTransport{
		Endpoint:   base + "/mcp/" + policyServer,
		HTTPClient: &http.Client{Transport: bearerTransport{token}},
		MaxRetries: -1,
	}, version, opts)
}

// callError makes a call that must fail with a JSON-RPC error.
func callError(t *testing.T, cs *sdk.ClientSession, name string, args any) *sdkjsonrpc.Error {
	t.Helper()
	res, err := cs.CallTool(ctxT(t), &sdk.CallToolParams{Name: name, Arguments: args})
	if err == nil {
		t.Fatalf("tools/call %s succeeded (%s), want an error", name, contentText(res.Content))
	}
	return rpcError(t, err)
}

// errData decodes a JSON-RPC error's data (nil when there is none).
func errData(t *testing.T, e *sdkjsonrpc.Error) map[string]any {
	t.Helper()
	if len(e.Data) == 0 || string(e.Data) == "null" {
		return nil
	}
	var m map[string]any
	if err := json.Unmarshal(e.Data, &m); err != nil {
		t.Fatalf("error data %s: %v", e.Data, err)
	}
	return m
}

// wantDenied checks a -31010 answer: its message, and the rule and origin
// in its data.
func wantDenied(t *testing.T, e *sdkjsonrpc.Error, msg, rule, origin string) {
	t.Helper()
	if e.Code != codePolicyDenied || !strings.Contains(e.Message, msg) {
		t.Fatalf("got %d %q, want %d with %q", e.Code, e.Message, codePolicyDenied, msg)
	}
	d := errData(t, e)
	if d["rule"] != rule || d["origin"] != origin {
		t.Fatalf("error data %s: want rule %q, origin %q", e.Data, rule, origin)
	}
}

// listNames lists every tool, prompt, resource and resource template.
func listNames(t *testing.T, cs *sdk.ClientSession) (tools, prompts, resources, templates []string) {
	t.Helper()
	ctx := ctxT(t)
	for tool, err := range cs.Tools(ctx, nil) {
		if err != nil {
			t.Fatalf("tools/list: %v", err)
		}
		tools = append(tools, tool.Name)
	}
	for p, err := range cs.Prompts(ctx, nil) {
		if err != nil {
			t.Fatalf("prompts/list: %v", err)
		}
		prompts = append(prompts, p.Name)
	}
	for r, err := range cs.Resources(ctx, nil) {
		if err != nil {
			t.Fatalf("resources/list: %v", err)
		}
		resources = append(resources, r.URI)
	}
	for r, err := range cs.ResourceTemplates(ctx, nil) {
		if err != nil {
			t.Fatalf("resources/templates/list: %v", err)
		}
		templates = append(templates, r.URITemplate)
	}
	slices.Sort(tools)
	return tools, prompts, resources, templates
}

// ---------------------------------------------------------------------------
// Approvals: through the admin API, or the store when the API is not wired

// approvalView is an approval as the admin API shows it.
type approvalView struct {
	ID         string          `json:"id"`
	Status     string          `json:"status"`
	Caller     string          `json:"caller"`
	CallerName string          `json:"caller_name"`
	Server     string          `json:"server"`
	Tool       string          `json:"tool"`
	Args       json.RawMessage `json:"args"`
	Rule       string          `json:"rule"`
	DecidedBy  string          `json:"decided_by"`
	Note       string          `json:"note"`
	ExpiresAt  time.Time       `json:"expires_at"`
}

// adminDesk is where an approver decides held calls: the admin API of a
// gateway (what `gatehouse approvals` uses).
type adminDesk struct{ base string }

func (d adminDesk) list(t *testing.T, status string) []approvalView {
	t.Helper()
	var out []approvalView
	mustAdmin(t, d.base, http.MethodGet, "/admin/v1/approvals?status="+status, nil, http.StatusOK, &out)
	return out
}

func (d adminDesk) get(t *testing.T, id string) approvalView {
	t.Helper()
	var out approvalView
	mustAdmin(t, d.base, http.MethodGet, "/admin/v1/approvals/"+id, nil, http.StatusOK, &out)
	return out
}

func (d adminDesk) decide(t *testing.T, id string, approve bool, by, note string) approvalView {
	t.Helper()
	verb := "deny"
	if approve {
		verb = "approve"
	}
	var out approvalView
	mustAdmin(t, d.base, http.MethodPost, "/admin/v1/approvals/"+id+"/"+verb, map[string]string{"by": by, "note": note}, http.StatusOK, &out)
	return out
}

// openSQLite opens the gateway's SQLite store beside it.
func openSQLite(t *testing.T, dir string) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(ctxT(t), filepath.Join(dir, "gatehouse.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// awaitPending waits for the pending approval of support-bot's
// chat_post_message whose arguments contain text.
func awaitPending(t *testing.T, desk adminDesk, text string) approvalView {
	t.Helper()
	var found approvalView
	eventually(t, "a pending approval for "+text, func() error {
		for _, a := range desk.list(t, store.ApprovalPending) {
			if a.Tool == "chat_post_message" && strings.Contains(string(a.Args), text) {
				found = a
				return nil
			}
		}
		return errNotYet
	})
	if found.CallerName != "support-bot" || found.Server != policyServer || found.Rule != "financial-data-to-communications" ||
		!strings.HasPrefix(found.Caller, "agent:") {
		t.Fatalf("pending approval %+v: want support-bot's call on %s held by financial-data-to-communications", found, policyServer)
	}
	return found
}

// heldCall is a tools/call running in the background.
type heldCall struct {
	done chan struct{}
	res  *sdk.CallToolResult
	err  error
}

func callInBackground(t *testing.T, cs *sdk.ClientSession, name string, args any) *heldCall {
	h := &heldCall{done: make(chan struct{})}
	ctx := ctxT(t)
	go func() {
		defer close(h.done)
		h.res, h.err = cs.CallTool(ctx, &sdk.CallToolParams{Name: name, Arguments: args})
	}()
	return h
}

func (h *heldCall) wait(t *testing.T) (*sdk.CallToolResult, error) {
	t.Helper()
	select {
	case <-h.done:
		return h.res, h.err
	case <-time.After(wait):
		t.Fatalf("the held call did not return within %s", wait)
		return nil, nil
	}
}

// returned reports whether the call has returned already.
func (h *heldCall) returned() bool {
	select {
	case <-h.done:
		return true
	default:
		return false
	}
}

func postArgs(channel, text string) map[string]any {
	return map[string]any{"channel": channel, "text": text}
}

// uniq makes texts unique per run, so that approvals (bound to the exact
// arguments) and records of one test never match another's.
func uniq(s string) string { return fmt.Sprintf("%s %d", s, time.Now().UnixNano()) }

// ---------------------------------------------------------------------------
// Tests

// TestPolicyRoles runs examples/roles.yaml and checks, with real go-sdk
// clients, what each role sees and may call, the monitor-mode rule, the
// decision record, explanations, and the approval workflow.
func TestPolicyRoles(t *testing.T) {
	dir, cfgPath := newRolesDir(t, "2m")
	g := startRolesApp(t, dir, cfgPath)
	tokens := map[string]string{}
	for _, a := range []string{"support-bot", "sales-bot", "eng-bot"} {
		tokens[a] = agentToken(t, g.base, a)
	}

	t.Run("lists", func(t *testing.T) {
		for _, tc := range []struct {
			agent string
			tools []string
		}{
			{"support-bot", supportTools},
			{"sales-bot", salesTools},
			{"eng-bot", engTools},
		} {
			for _, version := range []string{"", v20251125} {
				t.Run(tc.agent+"/"+orDefault(version, "2026-07-28"), func(t *testing.T) {
					cs := connectAs(t, g.base, tokens[tc.agent], version, nil)
					tools, prompts, resources, templates := listNames(t, cs)
					if !slices.Equal(tools, tc.tools) {
						t.Errorf("tools/list = %q\nwant          %q", tools, tc.tools)
					}
					// Only the admins bundle grants prompts and resources, and
					// bots are in no group.
					if len(prompts)+len(resources)+len(templates) > 0 {
						t.Errorf("prompts %q, resources %q, templates %q: want none", prompts, resources, templates)
					}
				})
			}
		}

		// A person in group admins (bundle admins, rule everything) sees all
		// of it: the filtering above is the policy's, not an empty server.
		t.Run("person in admins", func(t *testing.T) {
			cs := connectAs(t, g.base, personToken(t, g.base, "dana"), v20251125, nil)
			tools, prompts, resources, templates := listNames(t, cs)
			if !slices.Equal(tools, allWorkTools) {
				t.Errorf("tools/list = %q\nwant          %q", tools, allWorkTools)
			}
			if !slices.Contains(prompts, "crm_summarize_account") || !slices.Contains(resources, "crm://customers") ||
				!slices.Contains(templates, "crm://customers/{id}") {
				t.Errorf("prompts %q, resources %q, templates %q: want the crm demo's", prompts, resources, templates)
			}
			res, err := cs.GetPrompt(ctxT(t), &sdk.GetPromptParams{Name: "crm_summarize_account", Arguments: map[string]string{"customer_id": "CUST-1001"}})
			if err != nil || len(res.Messages) == 0 {
				t.Errorf("prompts/get as an admin: %v", err)
			}
		})

		// What a bot cannot list, it cannot use either, and the answer is
		// the one for a name that does not exist.
		t.Run("hidden prompts and resources", func(t *testing.T) {
			cs := connectAs(t, g.base, tokens["support-bot"], v20251125, nil)
			_, err := cs.GetPrompt(ctxT(t), &sdk.GetPromptParams{Name: "crm_summarize_account", Arguments: map[string]string{"customer_id": "CUST-1001"}})
			hidden := rpcError(t, err)
			_, err = cs.GetPrompt(ctxT(t), &sdk.GetPromptParams{Name: "crm_no_such_prompt", Arguments: map[string]string{"customer_id": "CUST-1001"}})
			missing := rpcError(t, err)
			if hidden.Code != missing.Code || hidden.Message != strings.ReplaceAll(missing.Message, "crm_no_such_prompt", "crm_summarize_account") ||
				string(hidden.Data) != string(missing.Data) {
				t.Errorf("hidden prompt: %d %q; nonexistent prompt: %d %q: want the same answer", hidden.Code, hidden.Message, missing.Code, missing.Message)
			}
			complete := func(prompt string) *sdkjsonrpc.Error {
				_, err := cs.Complete(ctxT(t), &sdk.CompleteParams{Ref: &sdk.CompleteReference{Type: "ref/prompt", Name: prompt},
					Argument: sdk.CompleteParamsArgument{Name: "customer_id", Value: "CUST-10"}})
				return rpcError(t, err)
			}
			hidden, missing = complete("crm_summarize_account"), complete("crm_no_such_prompt")
			if hidden.Code != missing.Code || hidden.Message != strings.ReplaceAll(missing.Message, "crm_no_such_prompt", "crm_summarize_account") {
				t.Errorf("completing a hidden prompt: %d %q; a nonexistent one: %d %q: want the same answer", hidden.Code, hidden.Message, missing.Code, missing.Message)
			}
			_, err = cs.ReadResource(ctxT(t), &sdk.ReadResourceParams{URI: "crm://customers"})
			hidden = rpcError(t, err)
			_, err = cs.ReadResource(ctxT(t), &sdk.ReadResourceParams{URI: "crm://nonexistent"})
			missing = rpcError(t, err)
			if hidden.Code != missing.Code || hidden.Message != strings.ReplaceAll(missing.Message, "crm://nonexistent", "crm://customers") ||
				string(hidden.Data) != string(missing.Data) {
				t.Errorf("hidden resource: %d %q; nonexistent resource: %d %q: want the same answer", hidden.Code, hidden.Message, missing.Code, missing.Message)
			}
		})
	})

	t.Run("calls", func(t *testing.T) {
		sessions := map[string]*sdk.ClientSession{}
		for a, tok := range tokens {
			sessions[a] = connectAs(t, g.base, tok, "", nil)
		}
		ticket := func(queue, body string) map[string]any {
			return map[string]any{"queue": queue, "subject": "e2e: customer asks about a refund", "body": body}
		}
		const defaultDenial = "denied by policy: no rule allows this for the caller"
		for _, tc := range []struct {
			name        string
			agent, tool string
			args        map[string]any
			// want: "" succeeds; "unknown": the answer for a nonexistent
			// tool; "deny": -31010 with msg, rule and origin.
			want              string
			msg, rule, origin string
		}{
			{name: "support files a ticket in its own queue", agent: "support-bot", tool: "tickets_create_ticket",
				args: ticket("billing", "Refund for INV-24002, see https://docs.example.com/refunds")},
			{name: "support cannot file in a queue it does not own", agent: "support-bot", tool: "tickets_create_ticket",
				args: ticket("onboarding", "Refund for INV-24002"), want: "deny", msg: defaultDenial},
			{name: "a link outside the allow list is denied by the organisation", agent: "support-bot", tool: "tickets_create_ticket",
				args: ticket("billing", "Refund, details at https://evil.example.net/refund?id=1"), want: "deny",
				msg:  `denied by policy rule "no-foreign-links" (organisation): arguments may only link to example.com sites`,
				rule: "no-foreign-links", origin: "organisation"},
			{name: "support posts to #support", agent: "support-bot", tool: "chat_post_message", args: postArgs("#support", "hello from e2e")},
			{name: "support cannot post to an external channel", agent: "support-bot", tool: "chat_post_message",
				args: postArgs("#ext-northwind", "hello Northwind"), want: "deny",
				msg:  `denied by policy rule "no-external-channels" (bundle support (v1)): support agents do not post to channels shared outside the company`,
				rule: "no-external-channels", origin: "bundle support (v1)"},
			{name: "sales may post to an external channel", agent: "sales-bot", tool: "chat_post_message", args: postArgs("#ext-northwind", "hello Northwind")},
			{name: "the organisation's deny wins over sales' allow", agent: "sales-bot", tool: "chat_post_message",
				args: postArgs("#sales", "deal room: http://deals.attacker.test/x"), want: "deny",
				msg: `denied by policy rule "no-foreign-links"`, rule: "no-foreign-links", origin: "organisation"},
			{name: "sales cannot post to #support", agent: "sales-bot", tool: "chat_post_message", args: postArgs("#support", "hi"),
				want: "deny", msg: defaultDenial},
			{name: "sales finds customers", agent: "sales-bot", tool: "crm_search_customers", args: map[string]any{"query": "Northwind"}},
			{name: "sales cannot see invoices", agent: "sales-bot", tool: "crm_get_invoice", args: map[string]any{"id": "INV-24002"}, want: "unknown"},
			{name: "eng posts to #eng-oncall", agent: "eng-bot", tool: "chat_post_message", args: postArgs("#eng-oncall", "paging")},
			{name: "eng reads tickets", agent: "eng-bot", tool: "tickets_list_tickets", args: map[string]any{"queue": "technical"}},
			{name: "a bot of the engineering team cannot file tickets (people on call can)", agent: "eng-bot", tool: "tickets_create_ticket",
				args: ticket("technical", "disk full"), want: "unknown"},
			{name: "eng cannot read customers", agent: "eng-bot", tool: "crm_get_customer", args: map[string]any{"id": "CUST-1001"}, want: "unknown"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				cs := sessions[tc.agent]
				switch tc.want {
				case "":
					callText(t, cs, tc.tool, tc.args)
				case "deny":
					wantDenied(t, callError(t, cs, tc.tool, tc.args), tc.msg, tc.rule, tc.origin)
				case "unknown":
					hidden := callError(t, cs, tc.tool, tc.args)
					missing := callError(t, cs, tc.tool+"_nonexistent", tc.args)
					if hidden.Code != codeInvalidParams || hidden.Message != "Unknown tool: "+tc.tool {
						t.Fatalf("got %d %q, want %d %q", hidden.Code, hidden.Message, codeInvalidParams, "Unknown tool: "+tc.tool)
					}
					if missing.Code != hidden.Code || missing.Message != "Unknown tool: "+tc.tool+"_nonexistent" ||
						string(missing.Data) != string(hidden.Data) {
						t.Fatalf("a hidden tool answers %d %q %s; a nonexistent one %d %q %s: want the same answer",
							hidden.Code, hidden.Message, hidden.Data, missing.Code, missing.Message, missing.Data)
					}
				}
			})
		}
	})

	// The support team's no-urgent-tickets-by-bots is in monitor mode: the
	// call goes through, and the record and the log say it would have been
	// denied.
	t.Run("monitor mode", func(t *testing.T) {
		cs := connectAs(t, g.base, tokens["support-bot"], v20251125, nil)
		subject := uniq("e2e: site down for CUST-1001")
		got := callText(t, cs, "tickets_create_ticket", map[string]any{"queue": "technical", "subject": subject,
			"body": "Customer reports an outage.", "priority": "urgent", "customer_id": "CUST-1001"})
		if !strings.Contains(got, "Created ticket") {
			t.Fatalf("create_ticket: %s", got)
		}
		var rec policy.Record
		recordPath := filepath.Join(dir, "decisions.jsonl")
		eventually(t, "the decision record of the urgent ticket", func() error {
			for _, l := range lines(recordPath) {
				var r policy.Record
				if json.Unmarshal([]byte(l), &r) == nil && r.Target.Name == "create_ticket" && strings.Contains(string(r.Args), subject) {
					rec = r
					return nil
				}
			}
			return errNotYet
		})
		if rec.Effect != policy.Allow || !rec.WouldDeny || rec.Rule != "no-urgent-tickets-by-bots" || rec.Origin != "team support" ||
			rec.Caller.AgentName != "support-bot" || rec.Target.Server != policyServer || rec.Target.Upstream != "tickets" ||
			rec.Request.Method != "tools/call" || rec.PolicyVersion == "" {
			t.Fatalf("record %+v: want an allowed would_deny by no-urgent-tickets-by-bots (team support) for support-bot", rec)
		}
		logged := g.logs.String()
		if !strings.Contains(logged, `msg="policy (monitor mode) would deny"`) || !strings.Contains(logged, "rule=no-urgent-tickets-by-bots") {
			t.Fatalf("no would-deny line for no-urgent-tickets-by-bots in the log")
		}

		// Every tools/call decision is recorded, denials included (the
		// calls subtest's, by then flushed).
		var denied, plain bool
		for _, l := range lines(recordPath) {
			var r policy.Record
			if json.Unmarshal([]byte(l), &r) != nil {
				t.Fatalf("record line is not a decision: %s", l)
			}
			denied = denied || (r.Effect == policy.Deny && r.Rule == "no-external-channels")
			plain = plain || (r.Effect == policy.Allow && !r.WouldDeny && r.Target.Name == "post_message")
		}
		if !denied || !plain {
			t.Fatalf("the record lacks the earlier denial (%v) or allowed call (%v)", denied, plain)
		}
	})

	t.Run("explain", func(t *testing.T) {
		explain := func(t *testing.T, q map[string]any) policy.Explanation {
			t.Helper()
			st, b := adminCall(t, g.base, http.MethodPost, "/admin/v1/policy/explain", q)
			if st != http.StatusOK {
				t.Fatalf("explain: HTTP %d %s", st, b)
			}
			var ex policy.Explanation
			if err := json.Unmarshal(b, &ex); err != nil {
				t.Fatalf("explain: %s: %v", b, err)
			}
			return ex
		}
		t.Run("support files in another queue", func(t *testing.T) {
			ex := explain(t, map[string]any{"agent": "support-bot", "server": policyServer, "tool": "tickets_create_ticket",
				"args": map[string]any{"queue": "legal", "subject": "s", "body": "b"}})
			if ex.Decision != "deny" || !ex.Visible || ex.Rule != "" || !slices.Contains(ex.Bundles, "support") {
				t.Fatalf("explanation %+v: want a default denial of a visible tool, bundle support", ex)
			}
			i := slices.IndexFunc(ex.Steps, func(s policy.Step) bool { return s.Rule == "own-queues" })
			if i < 0 || ex.Steps[i].Result != "no_match" || ex.Steps[i].Kind != "allow" || ex.Steps[i].Origin != "bundle support (v1)" {
				t.Fatalf("steps %+v: want own-queues (bundle support (v1)) as an allow that did not match", ex.Steps)
			}
		})
		t.Run("sales reads an invoice", func(t *testing.T) {
			ex := explain(t, map[string]any{"agent": "sales-bot", "tool": "crm_get_invoice", "args": map[string]any{"id": "INV-24002"}})
			if ex.Decision != "deny" || ex.Visible || !slices.Contains(ex.Labels, "customer_financial") {
				t.Fatalf("explanation %+v: want deny, not visible, labelled customer_financial", ex)
			}
		})
		t.Run("support posts after reading invoices", func(t *testing.T) {
			ex := explain(t, map[string]any{"agent": "support-bot", "tool": "chat_post_message",
				"args": postArgs("#support", "x"), "session_labels": []string{"customer_financial"}})
			if ex.Decision != "approve" || ex.Rule != "financial-data-to-communications" {
				t.Fatalf("explanation %+v: want approve by financial-data-to-communications", ex)
			}
		})
	})

	// support-bot reads an invoice, then posts to #support: the workflow
	// rule holds the post for a person's decision.
	t.Run("approval workflow", func(t *testing.T) {
		desk := adminDesk{g.base}
		readInvoice := func(t *testing.T, opts *sdk.ClientOptions) *sdk.ClientSession {
			t.Helper()
			cs := connectAs(t, g.base, tokens["support-bot"], v20251125, opts)
			if got := callText(t, cs, "crm_get_invoice", map[string]any{"id": "INV-24002"}); !strings.Contains(got, "INV-24002") {
				t.Fatalf("get_invoice: %s", got)
			}
			return cs
		}

		t.Run("approved while held", func(t *testing.T) {
			// A client that can elicit is told what its call waits for.
			told := make(chan string, 1)
			cs := readInvoice(t, &sdk.ClientOptions{ElicitationHandler: func(_ context.Context, req *sdk.ElicitRequest) (*sdk.ElicitResult, error) {
				select {
				case told <- req.Params.Message:
				default:
				}
				return &sdk.ElicitResult{Action: "cancel"}, nil
			}})
			text := uniq("Northwind's invoice INV-24002 is overdue")
			call := callInBackground(t, cs, "chat_post_message", postArgs("#support", text))
			a := awaitPending(t, desk, text)
			if call.returned() {
				res, err := call.wait(t)
				t.Fatalf("the call returned before any decision: %v %v", res, err)
			}
			select {
			case msg := <-told:
				if !strings.Contains(msg, a.ID) {
					t.Errorf("the client was told %q, which does not name approval %s", msg, a.ID)
				}
			case <-time.After(wait):
				t.Error("the client (which can elicit) was not told that its call is held")
			}
			if d := desk.decide(t, a.ID, true, "erin@example.com", "ok to share internally"); d.Status != store.ApprovalApproved {
				t.Fatalf("approve: %+v", d)
			}
			res, err := call.wait(t)
			if err != nil || res.IsError || !strings.Contains(contentText(res.Content), "#support") {
				t.Fatalf("the approved call: %v %v", err, res)
			}
			if got := desk.get(t, a.ID); got.Status != store.ApprovalUsed {
				t.Fatalf("approval after the call: %s, want used", got.Status)
			}
		})

		t.Run("denied while held", func(t *testing.T) {
			cs := readInvoice(t, nil)
			text := uniq("Posting the card number of INV-24002")
			call := callInBackground(t, cs, "chat_post_message", postArgs("#support", text))
			a := awaitPending(t, desk, text)
			desk.decide(t, a.ID, false, "erin@example.com", "no card data in chat")
			_, err := call.wait(t)
			e := rpcError(t, err)
			if e.Code != codePolicyDenied || !strings.Contains(e.Message, "approval "+a.ID+" was denied by erin@example.com: no card data in chat") ||
				!strings.Contains(e.Message, "financial-data-to-communications") {
				t.Fatalf("got %d %q, want %d naming the denied approval %s", e.Code, e.Message, codePolicyDenied, a.ID)
			}
			if d := errData(t, e); d["approval_id"] != a.ID || d["rule"] != "financial-data-to-communications" || d["origin"] != "workflow" {
				t.Fatalf("error data %s", e.Data)
			}
		})

		// The stateless revision has no sessions: what a caller read is kept
		// per caller, so the rule holds its later post all the same.
		t.Run("stateless caller is held too", func(t *testing.T) {
			cs := connectAs(t, g.base, tokens["support-bot"], "", nil)
			if got := callText(t, cs, "crm_get_invoice", map[string]any{"id": "INV-24002"}); !strings.Contains(got, "INV-24002") {
				t.Fatalf("get_invoice: %s", got)
			}
			text := uniq("Stateless post after reading INV-24002")
			call := callInBackground(t, cs, "chat_post_message", postArgs("#support", text))
			a := awaitPending(t, desk, text)
			desk.decide(t, a.ID, false, "erin@example.com", "not from a stateless bot")
			if e := rpcError(t, func() error { _, err := call.wait(t); return err }()); e.Code != codePolicyDenied {
				t.Fatalf("got %d %q, want %d", e.Code, e.Message, codePolicyDenied)
			}
		})

		t.Run("a session that read no invoice is not held", func(t *testing.T) {
			cs := connectAs(t, g.base, tokens["support-bot"], v20251125, nil)
			callText(t, cs, "crm_get_customer", map[string]any{"id": "CUST-1002"}) // customer_data, not financial
			text := uniq("Northwind called about their account")
			callText(t, cs, "chat_post_message", postArgs("#support", text))
			for _, a := range desk.list(t, "all") {
				if strings.Contains(string(a.Args), text) {
					t.Fatalf("an approval was opened for a session that read no invoice: %+v", a)
				}
			}
		})
	})
}

// orDefault returns a, or b when a is empty.
func orDefault(a, b string) string {
	if a == "" {
		return b
	}
	return a
}

// TestPolicyApprovalTimeout: with a short approvals.wait, a held call
// fails with -31011 and the approval id; once approved, the same call
// succeeds when retried; the approval is single-use, so the next retry is
// held again under a new id.
func TestPolicyApprovalTimeout(t *testing.T) {
	dir, cfgPath := newRolesDir(t, "1s")
	g := startRolesApp(t, dir, cfgPath)
	desk := adminDesk{g.base}
	cs := connectAs(t, g.base, agentToken(t, g.base, "support-bot"), v20251125, nil)
	callText(t, cs, "crm_get_invoice", map[string]any{"id": "INV-24001"})
	args := postArgs("#support", uniq("Acme paid INV-24001"))

	pending := func(t *testing.T) (string, map[string]any) {
		t.Helper()
		e := callError(t, cs, "chat_post_message", args)
		d := errData(t, e)
		id, _ := d["approval_id"].(string)
		if e.Code != codeApprovalPending || !strings.HasPrefix(id, "apr_") || !strings.Contains(e.Message, id) {
			t.Fatalf("got %d %q (data %s), want %d naming an approval", e.Code, e.Message, e.Data, codeApprovalPending)
		}
		exp, err := time.Parse(time.RFC3339Nano, fmt.Sprint(d["expires_at"]))
		if err != nil || !exp.After(time.Now()) {
			t.Fatalf("expires_at %v: want a time in the future", d["expires_at"])
		}
		return id, d
	}
	first, _ := pending(t)
	if a := desk.get(t, first); a.Status != store.ApprovalPending || a.CallerName != "support-bot" {
		t.Fatalf("approval %s: %+v", first, a)
	}
	desk.decide(t, first, true, "erin@example.com", "")
	if got := callText(t, cs, "chat_post_message", args); !strings.Contains(got, "#support") {
		t.Fatalf("the approved retry: %s", got)
	}
	if a := desk.get(t, first); a.Status != store.ApprovalUsed {
		t.Fatalf("approval %s after the retry: %s, want used", first, a.Status)
	}
	second, _ := pending(t)
	if second == first {
		t.Fatalf("the second retry reused approval %s: approvals must be single-use", first)
	}
	if a := desk.get(t, second); a.Status != store.ApprovalPending {
		t.Fatalf("approval %s: %s, want pending", second, a.Status)
	}
}

// TestPolicyGrantExpiry: a time-bounded grant of bundle billing-escalation
// lets eng-bot post to #support while it lasts; when it expires the agent
// is denied again and the expiry is audited (grant.expired).
//
// The admin API refuses grants shorter than a minute (checked first, with
// a grant it creates and revokes), so the short grant is written to the
// store while the gateway is stopped and the gateway is started again (a
// SQLite store's change feed does not cross processes).
func TestPolicyGrantExpiry(t *testing.T) {
	dir, cfgPath := newRolesDir(t, "2m")
	g := startRolesApp(t, dir, cfgPath)
	token := agentToken(t, g.base, "eng-bot")
	post := postArgs("#support", "eng joining the escalation")
	const notAllowed = "denied by policy: no rule allows this for the caller"
	cs := connectAs(t, g.base, token, "", nil)
	wantDenied(t, callError(t, cs, "chat_post_message", post), notAllowed, "", "")

	// Through the admin API: grants last at least a minute; one can be
	// revoked early.
	code, b := adminCall(t, g.base, http.MethodPost, "/admin/v1/grants",
		map[string]any{"agent": "eng-bot", "bundle": "billing-escalation", "for": "5s", "reason": "INC-1"})
	if code != http.StatusBadRequest {
		t.Errorf("a 5s grant: HTTP %d %s, want 400 (grants last 1m to 90 days)", code, b)
	}
	var gr struct {
		ID, Status string
	}
	mustAdmin(t, g.base, http.MethodPost, "/admin/v1/grants",
		map[string]any{"agent": "eng-bot", "bundle": "billing-escalation", "for": "1m", "reason": "INC-1"}, http.StatusCreated, &gr)
	callText(t, cs, "chat_post_message", post)
	mustAdmin(t, g.base, http.MethodDelete, "/admin/v1/grants/"+gr.ID, nil, http.StatusOK, &gr)
	if gr.Status != "revoked" {
		t.Fatalf("revoked grant: status %q", gr.Status)
	}
	wantDenied(t, callError(t, cs, "chat_post_message", post), notAllowed, "", "")
	if !strings.Contains(g.logs.String(), "event=grant.created") || !strings.Contains(g.logs.String(), "event=grant.revoked") {
		t.Error("grant.created or grant.revoked missing from the audit log")
	}
	g.stop()

	// A grant that ends a few seconds after the gateway is back. Long
	// enough for a loaded machine to start it and make one call; a failure
	// below says when that was not enough.
	const life = 5 * time.Second
	st := openSQLite(t, dir)
	ag, err := st.GetAgentByName(ctxT(t), "eng-bot")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	grant := store.Grant{ID: "grt_e2e" + strconv.FormatInt(now.UnixNano(), 36), AgentID: ag.ID, Bundle: "billing-escalation",
		Reason: "INC-2: e2e escalation", CreatedBy: "e2e", CreatedAt: now, ExpiresAt: now.Add(life)}
	if err := st.CreateGrant(ctxT(t), grant); err != nil {
		t.Fatal(err)
	}
	st.Close()

	g = startRolesApp(t, dir, cfgPath)
	cs = connectAs(t, g.base, token, "", nil)
	res, err := cs.CallTool(ctxT(t), &sdk.CallToolParams{Name: "chat_post_message", Arguments: post})
	if err != nil || res.IsError {
		if time.Now().After(grant.ExpiresAt) {
			t.Fatalf("the grant expired (after %s) before the restarted gateway made its first call: this machine is too slow for the test", life)
		}
		t.Fatalf("eng-bot with an active billing-escalation grant: %v %v", err, res)
	}
	t.Logf("first call allowed %s before the grant's expiry", time.Until(grant.ExpiresAt).Round(time.Millisecond))
	eventually(t, "eng-bot to lose the expired grant", func() error {
		res, err := cs.CallTool(ctxT(t), &sdk.CallToolParams{Name: "chat_post_message", Arguments: post})
		if err == nil {
			if res.IsError {
				return fmt.Errorf("tool error: %s", contentText(res.Content))
			}
			return errNotYet
		}
		var e *sdkjsonrpc.Error
		if !errors.As(err, &e) || e.Code != codePolicyDenied || !strings.Contains(e.Message, notAllowed) {
			return err
		}
		return nil
	})
	if now := time.Now(); now.Before(grant.ExpiresAt) {
		t.Fatalf("denied at %s, before the grant's expiry at %s", now, grant.ExpiresAt)
	}
	eventually(t, "the grant.expired audit line", func() error {
		for _, l := range strings.Split(g.logs.String(), "\n") {
			if strings.Contains(l, "event=grant.expired") && strings.Contains(l, "grant="+grant.ID) && strings.Contains(l, "bundle=billing-escalation") {
				return nil
			}
		}
		return errNotYet
	})
}

// TestPolicyApprovalAcrossReplicas: two `gatehouse serve` processes on one
// PostgreSQL database. A call held on replica A is approved through the
// admin API of replica B, and A proceeds at once: the decision travels by
// the store's change feed (LISTEN/NOTIFY).
func TestPolicyApprovalAcrossReplicas(t *testing.T) {
	db := freshDatabase(t, postgresURL(t))
	kek, err := vault.GenerateKEK()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	tail := "store: {driver: postgres, url: \"${E2E_DB}\"}\nvault: {kek: \"env:E2E_KEK\"}\n" +
		"admin: {token: " + strconv.Quote(policyAdminTok) + ", token_file: " + strconv.Quote(filepath.Join(dir, "admin-token")) + "}\n"
	path := filepath.Join(dir, "gatehouse.yaml")
	if err := os.WriteFile(path, []byte(rolesConfig(t, dir, "1m", tail)), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"E2E_DB=" + db, "E2E_KEK=" + kek}
	logA := filepath.Join(dir, "a.log")
	a := startReplicaLogging(t, path, env, logA)
	b := startReplicaLogging(t, path, env, filepath.Join(dir, "b.log"))
	baseA, baseB := "http://"+a.addr, "http://"+b.addr

	desk := adminDesk{baseB} // the approver uses the other replica

	cs := connectAs(t, baseA, agentToken(t, baseA, "support-bot"), v20251125, nil)
	callText(t, cs, "crm_get_invoice", map[string]any{"id": "INV-24002"})
	text := uniq("Northwind's invoice INV-24002 is overdue")
	call := callInBackground(t, cs, "chat_post_message", postArgs("#support", text))
	ap := awaitPending(t, desk, text)
	decided := time.Now()
	desk.decide(t, ap.ID, true, "erin@example.com", "")
	res, err := call.wait(t)
	if err != nil || res.IsError {
		t.Fatalf("the call held on A, approved through B: %v %v", err, res)
	}
	t.Logf("replica A proceeded %s after the approval on replica B", time.Since(decided).Round(time.Millisecond))
	eventually(t, "replica A to log the approval's use", func() error {
		for _, l := range lines(logA) {
			if strings.Contains(l, "event=approval.used") && strings.Contains(l, "approval="+ap.ID) {
				return nil
			}
		}
		return errNotYet
	})
}
