package oauth

import (
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

func getJSON(t *testing.T, u string) (*http.Response, map[string]any) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("GET %s: %v: %s", u, err, body)
	}
	return resp, m
}

func strs(v ...string) []any {
	out := make([]any, len(v))
	for i, s := range v {
		out[i] = s
	}
	return out
}

func TestServerMetadata(t *testing.T) {
	e := newEnv(t)
	want := map[string]any{
		"issuer":                                           e.issuer,
		"authorization_endpoint":                           e.issuer + "/oauth/authorize",
		"token_endpoint":                                   e.issuer + "/oauth/token",
		"registration_endpoint":                            e.issuer + "/oauth/register",
		"jwks_uri":                                         e.issuer + "/oauth/jwks",
		"response_types_supported":                         strs("code"),
		"response_modes_supported":                         strs("query"),
		"grant_types_supported":                            strs("authorization_code", "client_credentials", "refresh_token"),
		"code_challenge_methods_supported":                 strs("S256"),
		"token_endpoint_auth_methods_supported":            strs("client_secret_basic", "client_secret_post", "private_key_jwt", "none"),
		"token_endpoint_auth_signing_alg_values_supported": strs("ES256", "EdDSA", "RS256"),
		"scopes_supported":                                 strs("mcp:support", "mcp:crm", "mcp:billing"),
		"client_id_metadata_document_supported":            true,
		"authorization_response_iss_parameter_supported":   true,
	}
	for _, path := range []string{"/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"} {
		t.Run(path, func(t *testing.T) {
			resp, got := getJSON(t, e.url(path))
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("status %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("metadata:\n got %v\nwant %v", got, want)
			}
			if resp.Header.Get("Access-Control-Allow-Origin") != "*" {
				t.Error("metadata is not readable cross-origin")
			}
		})
	}
}

func TestResourceMetadata(t *testing.T) {
	e := newEnv(t)
	for _, server := range testServers {
		t.Run(server, func(t *testing.T) {
			u := ResourceMetadataURL(e.issuer, server)
			if want := e.issuer + "/.well-known/oauth-protected-resource/mcp/" + server; u != want {
				t.Fatalf("ResourceMetadataURL = %s, want %s", u, want)
			}
			resp, got := getJSON(t, u)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d", resp.StatusCode)
			}
			want := map[string]any{
				"resource":                 e.issuer + "/mcp/" + server,
				"authorization_servers":    strs(e.issuer),
				"scopes_supported":         strs("mcp:" + server),
				"bearer_methods_supported": strs("header"),
				"resource_name":            "Gatehouse MCP server " + server,
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("metadata:\n got %v\nwant %v", got, want)
			}
		})
	}
	for _, path := range []string{"/mcp/nosuch", "/mcp/", "/mcp/support/extra"} {
		t.Run("unknown "+path, func(t *testing.T) {
			resp, err := http.Get(e.url("/.well-known/oauth-protected-resource" + path))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusNotFound {
				t.Fatalf("status %d, want 404", resp.StatusCode)
			}
		})
	}
}

func TestJWKS(t *testing.T) {
	e := newEnv(t)
	resp, err := http.Get(e.url("/oauth/jwks"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); ct != "application/jwk-set+json" {
		t.Errorf("Content-Type %q", ct)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "max-age=300" {
		t.Errorf("Cache-Control %q", cc)
	}
	if string(body) != string(e.keys.JWKS()) {
		t.Errorf("JWKS body differs from KeyManager.JWKS()")
	}
	_, kid, _ := e.keys.Current()
	if !strings.Contains(string(body), kid) {
		t.Errorf("the current key %s is not published", kid)
	}
}

func TestNewChecksConfig(t *testing.T) {
	e := newEnv(t)
	good := e.srv.cfg
	for _, tc := range []struct {
		name   string
		mutate func(*Config)
	}{
		{"no store", func(c *Config) { c.Store = nil }},
		{"no tokens", func(c *Config) { c.Tokens = nil }},
		{"no keys", func(c *Config) { c.Keys = nil }},
		{"no directory", func(c *Config) { c.Directory = nil }},
		{"no servers", func(c *Config) { c.Servers = nil }},
		{"empty issuer", func(c *Config) { c.Issuer = "" }},
		{"trailing slash", func(c *Config) { c.Issuer += "/" }},
		{"path", func(c *Config) { c.Issuer += "/gatehouse" }},
		{"query", func(c *Config) { c.Issuer += "?x=1" }},
		{"no scheme", func(c *Config) { c.Issuer = "127.0.0.1:8080" }},
		{"ftp", func(c *Config) { c.Issuer = "ftp://example.com" }},
		{"upper case", func(c *Config) { c.Issuer = "https://Gatehouse.example.com" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := good
			tc.mutate(&c)
			if _, err := New(c); err == nil {
				t.Fatal("New accepted a bad configuration")
			}
		})
	}
}
