package admin_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"gatehouse/internal/admin"
	"gatehouse/internal/admin/admintest"
)

// client calls a test server's admin API.
type client struct {
	t     *testing.T
	base  string
	token string
}

func newClient(t *testing.T, s *admintest.Server) client {
	return client{t: t, base: s.URL, token: admintest.Token}
}

// do sends body (nil: none; a string: as is; else JSON-encoded) and
// returns the status and the response body.
func (c client) do(method, path string, body any) (int, []byte) {
	c.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			c.t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return resp.StatusCode, out
}

// call is do that expects status and decodes the response into out (if
// not nil).
func (c client) call(method, path string, body any, status int, out any) []byte {
	c.t.Helper()
	got, raw := c.do(method, path, body)
	if got != status {
		c.t.Fatalf("%s %s: status %d, want %d; body %s", method, path, got, status, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			c.t.Fatalf("%s %s: decoding %s: %v", method, path, raw, err)
		}
	}
	return raw
}

// createAgent registers an agent and returns the response.
func (c client) createAgent(name, team string) admin.CreateAgentResponse {
	c.t.Helper()
	var res admin.CreateAgentResponse
	c.call("POST", "/admin/v1/agents", admin.CreateAgentRequest{Name: name, Team: team, Owner: "alice@example.com"}, http.StatusCreated, &res)
	return res
}

func (c client) agent(name string) admin.Agent {
	c.t.Helper()
	var a admin.Agent
	c.call("GET", "/admin/v1/agents/"+name, nil, http.StatusOK, &a)
	return a
}

func errorCode(t *testing.T, raw []byte) string {
	t.Helper()
	var e admin.ErrorBody
	if err := json.Unmarshal(raw, &e); err != nil {
		t.Fatalf("error body %s: %v", raw, err)
	}
	if e.Error.Message == "" {
		t.Errorf("error body %s has no message", raw)
	}
	return e.Error.Code
}

// assertNeverShown fails if any of secrets appears in the logs.
func assertNotLogged(t *testing.T, s *admintest.Server, secrets ...string) {
	t.Helper()
	logs := s.Logs.String()
	for _, sec := range secrets {
		if sec != "" && strings.Contains(logs, sec) {
			t.Errorf("the log contains the secret %.8s…", sec)
		}
	}
}

func countActive(a admin.Agent, kind string) int {
	n := 0
	for _, c := range a.Credentials {
		if c.Active && (kind == "" || c.Kind == kind) {
			n++
		}
	}
	return n
}
