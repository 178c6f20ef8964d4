package oauth

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"gatehouse/internal/identity"
)

func TestClientCredentialsGrant(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name      string
		clientID  string
		secret    string
		style     oauth2.AuthStyle
		resources []string
		scopes    []string
		// wantAud are the servers the token must authenticate for;
		// notAud the ones it must not.
		wantAud, notAud []string
		wantScope       string
	}{
		{"basic, everything granted", botClient, e.secrets["bot"], oauth2.AuthStyleInHeader, nil, nil,
			[]string{"support", "crm"}, []string{"billing"}, "mcp:support mcp:crm"},
		{"post, everything granted", botClient, e.secrets["bot"], oauth2.AuthStyleInParams, nil, nil,
			[]string{"support", "crm"}, []string{"billing"}, "mcp:support mcp:crm"},
		{"second secret of the rotation overlap", botClient, e.secrets["bot2"], oauth2.AuthStyleInHeader, nil, nil,
			[]string{"support", "crm"}, nil, "mcp:support mcp:crm"},
		{"one resource", botClient, e.secrets["bot"], oauth2.AuthStyleInParams, []string{"support"}, nil,
			[]string{"support"}, []string{"crm", "billing"}, "mcp:support"},
		{"resource with upper-case host and trailing slash", botClient, e.secrets["bot"], oauth2.AuthStyleInParams,
			[]string{strings.Replace(e.resource("crm"), "http://", "HTTP://", 1) + "/"}, nil,
			[]string{"crm"}, []string{"support"}, "mcp:crm"},
		{"scope only", botClient, e.secrets["bot"], oauth2.AuthStyleInHeader, nil, []string{"mcp:crm"},
			[]string{"crm"}, []string{"support"}, "mcp:crm"},
		{"resource and scope", botClient, e.secrets["bot"], oauth2.AuthStyleInHeader, []string{"support", "crm"}, []string{"mcp:support"},
			[]string{"support"}, nil, "mcp:support"},
		{"team granted *", opsClient, e.secrets["ops"], oauth2.AuthStyleInHeader, nil, nil,
			[]string{"support", "crm", "billing"}, nil, "mcp:support mcp:crm mcp:billing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := clientcredentials.Config{ClientID: tc.clientID, ClientSecret: tc.secret, TokenURL: e.url(pathToken),
				AuthStyle: tc.style, Scopes: tc.scopes, EndpointParams: url.Values{}}
			for _, r := range tc.resources {
				if !strings.Contains(r, "://") {
					r = e.resource(r)
				}
				cfg.EndpointParams.Add("resource", r)
			}
			tok, err := cfg.Token(e.ctx)
			if err != nil {
				t.Fatal(err)
			}
			if tok.TokenType != "Bearer" || tok.RefreshToken != "" || tok.Expiry.IsZero() {
				t.Errorf("token type %q, refresh %q, expiry %v", tok.TokenType, tok.RefreshToken, tok.Expiry)
			}
			if got := tok.Extra("scope"); got != tc.wantScope {
				t.Errorf("scope = %v, want %q", got, tc.wantScope)
			}
			for _, server := range tc.wantAud {
				p, aerr := e.authenticate(tok.AccessToken, server)
				if aerr != nil {
					t.Fatalf("token refused for %s: %v", server, aerr)
				}
				if p.Kind != identity.KindAgent || p.ClientID != tc.clientID || p.AgentName == "" {
					t.Errorf("principal %+v", p)
				}
			}
			for _, server := range tc.notAud {
				if _, aerr := e.authenticate(tok.AccessToken, server); aerr == nil {
					t.Errorf("token accepted for %s", server)
				}
			}
			e.assertNotLogged(t, tc.secret, tok.AccessToken)
		})
	}
}

func TestClientCredentialsErrors(t *testing.T) {
	e := newEnv(t)
	reg := registerClient(t, e, `{"redirect_uris":["http://127.0.0.1:9/cb"],"token_endpoint_auth_method":"client_secret_basic"}`)
	form := func(kv ...string) url.Values {
		v := url.Values{"grant_type": {"client_credentials"}}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Add(kv[i], kv[i+1])
		}
		return v
	}
	for _, tc := range []struct {
		name        string
		form        url.Values
		user, pass  string // HTTP Basic
		wantStatus  int
		wantCode    string
		wantDesc    string // substring
		wantBasicWA bool   // WWW-Authenticate: Basic
	}{
		{"wrong secret (basic)", form(), botClient, e.secrets["bot"] + "x", 401, "invalid_client", "invalid client secret", true},
		{"wrong secret (post)", form("client_id", botClient, "client_secret", "ghs_nope"), "", "", 401, "invalid_client", "invalid client secret", false},
		{"secret of another agent", form(), botClient, e.secrets["ops"], 401, "invalid_client", "invalid client secret", true},
		{"revoked secret", form(), botClient, e.secrets["bot-revoked"], 401, "invalid_client", "is revoked", true},
		{"expired secret", form("client_id", botClient, "client_secret", e.secrets["bot-expired"]), "", "", 401, "invalid_client", "expired at", false},
		{"disabled agent", form(), disabledClient, e.secrets["disabled"], 401, "invalid_client", "agent off-bot is disabled", true},
		{"revoked agent", form("client_id", revokedClient, "client_secret", e.secrets["revoked"]), "", "", 401, "invalid_client", "agent gone-bot is revoked", false},
		{"unknown client", form(), "cli_nobody", "ghs_whatever", 401, "invalid_client", "unknown client", true},
		{"no authentication", form("client_id", botClient), "", "", 401, "invalid_client", "requires client authentication", false},
		{"no client at all", form(), "", "", 401, "invalid_client", "no client authentication", false},
		{"two methods", form("client_id", botClient, "client_secret", e.secrets["bot"]), botClient, e.secrets["bot"], 400, "invalid_request", "more than one client authentication", false},
		{"resource of another team", form("resource", e.resource("billing")), botClient, e.secrets["bot"], 400, "invalid_target", "agent bot (team support) may not use server billing", false},
		{"unknown resource", form("resource", e.resource("nosuch")), botClient, e.secrets["bot"], 400, "invalid_target", "is not a virtual server", false},
		{"foreign resource", form("resource", "https://evil.example.com/mcp/support"), botClient, e.secrets["bot"], 400, "invalid_target", "is not a virtual server", false},
		{"one good one bad resource", form("resource", e.resource("support"), "resource", e.resource("billing")), botClient, e.secrets["bot"], 400, "invalid_target", "billing", false},
		{"scope of another team", form("scope", "mcp:billing"), botClient, e.secrets["bot"], 400, "invalid_scope", "may not use server billing", false},
		{"unknown scope", form("scope", "admin"), botClient, e.secrets["bot"], 400, "invalid_scope", `unknown scope "admin"`, false},
		{"scope outside the resources", form("resource", e.resource("support"), "scope", "mcp:crm"), botClient, e.secrets["bot"], 400, "invalid_scope", "not among the requested resources", false},
		{"team granted nothing", form(), emptyClient, e.secrets["empty"], 400, "invalid_scope", "not granted any virtual server", false},
		{"registered client", form(), reg["client_id"].(string), reg["client_secret"].(string), 400, "unauthorized_client", "only agents", false},
		{"repeated parameter", form("scope", "mcp:crm", "scope", "mcp:support"), botClient, e.secrets["bot"], 400, "invalid_request", `"scope" is repeated`, false},
		{"unsupported assertion type", form("client_assertion_type", "urn:x", "client_assertion", "a.b.c"), "", "", 401, "invalid_client", "unsupported client_assertion_type", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok, te := e.postToken(t, tc.form, tc.user, tc.pass)
			if te == nil {
				t.Fatalf("got a token: %v", tok)
			}
			if te.Status != tc.wantStatus || te.Code != tc.wantCode || !strings.Contains(te.Description, tc.wantDesc) {
				t.Fatalf("got %d %s %q; want %d %s containing %q", te.Status, te.Code, te.Description, tc.wantStatus, tc.wantCode, tc.wantDesc)
			}
			wa := te.Header.Get("WWW-Authenticate")
			if tc.wantBasicWA != strings.HasPrefix(wa, `Basic realm="gatehouse"`) {
				t.Errorf("WWW-Authenticate %q (want Basic: %v)", wa, tc.wantBasicWA)
			}
		})
	}
	e.assertNotLogged(t, e.secrets["bot"], e.secrets["bot-revoked"], e.secrets["ops"])
}

// TestClientCredentialsWithLibraryErrors checks what golang.org/x/oauth2
// reports for refused requests: the RFC 6749 error code.
func TestClientCredentialsWithLibraryErrors(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name, id, secret string
		style            oauth2.AuthStyle
		params           url.Values
		want             string
	}{
		{"wrong secret", botClient, "ghs_wrong", oauth2.AuthStyleInHeader, nil, "invalid_client"},
		{"disabled agent", disabledClient, e.secrets["disabled"], oauth2.AuthStyleInParams, nil, "invalid_client"},
		{"resource not allowed", botClient, e.secrets["bot"], oauth2.AuthStyleInParams, url.Values{"resource": {e.resource("billing")}}, "invalid_target"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := clientcredentials.Config{ClientID: tc.id, ClientSecret: tc.secret, TokenURL: e.url(pathToken), AuthStyle: tc.style, EndpointParams: tc.params}
			_, err := cfg.Token(e.ctx)
			var re *oauth2.RetrieveError
			if !errors.As(err, &re) || re.ErrorCode != tc.want {
				t.Fatalf("err = %v, want RetrieveError %s", err, tc.want)
			}
		})
	}
}

func TestTokenEndpointRequestErrors(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name        string
		method      string
		contentType string
		body        string
		wantStatus  int
		wantCode    string
	}{
		{"GET", http.MethodGet, "", "", 405, "invalid_request"},
		{"JSON body", http.MethodPost, "application/json", `{"grant_type":"client_credentials"}`, 400, "invalid_request"},
		{"no content type", http.MethodPost, "", "grant_type=client_credentials", 400, "invalid_request"},
		{"malformed form", http.MethodPost, "application/x-www-form-urlencoded", "grant_type=%zz", 400, "invalid_request"},
		{"too large", http.MethodPost, "application/x-www-form-urlencoded", "grant_type=client_credentials&x=" + strings.Repeat("a", 70<<10), 413, "invalid_request"},
		{"no grant type", http.MethodPost, "application/x-www-form-urlencoded", "client_id=x", 400, "invalid_request"},
		{"password grant", http.MethodPost, "application/x-www-form-urlencoded", "grant_type=password&username=a&password=b", 400, "unsupported_grant_type"},
		{"implicit-era grant", http.MethodPost, "application/x-www-form-urlencoded; charset=utf-8", "grant_type=urn:ietf:params:oauth:grant-type:device_code", 400, "unsupported_grant_type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, e.url(pathToken), strings.NewReader(tc.body))
			if tc.contentType != "" {
				req.Header.Set("Content-Type", tc.contentType)
			}
			_, te := doToken(t, req)
			if te == nil || te.Status != tc.wantStatus || te.Code != tc.wantCode {
				t.Fatalf("got %+v; want %d %s", te, tc.wantStatus, tc.wantCode)
			}
		})
	}
	t.Run("CORS preflight", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodOptions, e.url(pathToken), nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != "*" ||
			!slices.Contains(strings.Split(resp.Header.Get("Access-Control-Allow-Headers"), ", "), "Authorization") {
			t.Fatalf("preflight: %d %v", resp.StatusCode, resp.Header)
		}
	})
}

// registerClient registers a client and fails the test unless it worked.
func registerClient(t *testing.T, e *env, body string) map[string]any {
	t.Helper()
	status, m := e.register(t, body)
	if status != http.StatusCreated {
		t.Fatalf("registration: %d %v", status, m)
	}
	return m
}
