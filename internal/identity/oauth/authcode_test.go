package oauth

import (
	"errors"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"gatehouse/internal/identity"
)

// callback is a client's redirect endpoint that records what it receives.
type callback struct {
	*httptest.Server
	mu   sync.Mutex
	last url.Values
}

func newCallback(t *testing.T) *callback {
	cb := &callback{}
	cb.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cb.mu.Lock()
		cb.last = r.URL.Query()
		cb.mu.Unlock()
		_, _ = w.Write([]byte("signed in; you can close this window"))
	}))
	t.Cleanup(cb.Close)
	return cb
}

func (cb *callback) query() url.Values {
	cb.mu.Lock()
	defer cb.mu.Unlock()
	return cb.last
}

// login runs the authorization endpoint in a browser that does not follow
// redirects: GET the page, post the credentials, return the redirect.
func login(t *testing.T, e *env, authURL, user, pw string) *url.URL {
	t.Helper()
	b := newBrowser(t)
	f, _ := getLogin(t, b, authURL)
	if f.Status != http.StatusOK || f.Fields.Get("form_token") == "" {
		t.Fatalf("login page: %d %s", f.Status, f.Body)
	}
	resp, body := postLogin(t, b, e.issuer, f.Fields, user, pw)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login post: %d %s", resp.StatusCode, body)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func TestAuthorizationCodeFlow(t *testing.T) {
	e := newEnv(t)
	cb := newCallback(t)
	redirect := cb.URL + "/callback"
	reg := registerClient(t, e, `{"redirect_uris":["`+redirect+`"],"client_name":"Test MCP Client","token_endpoint_auth_method":"none",
		"grant_types":["authorization_code","refresh_token"],"application_type":"native"}`)
	clientID := reg["client_id"].(string)
	if _, ok := reg["client_secret"]; ok {
		t.Fatal("a public client got a secret")
	}
	cfg := oauth2.Config{ClientID: clientID, RedirectURL: redirect, Scopes: []string{"mcp:support"},
		Endpoint: oauth2.Endpoint{AuthURL: e.url(pathAuthorize), TokenURL: e.url(pathToken), AuthStyle: oauth2.AuthStyleInParams}}
	verifier := oauth2.GenerateVerifier()
	resource := e.resource("support")
	authURL := cfg.AuthCodeURL("st-123", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("resource", resource))

	// A browser that follows redirects, as a person's would.
	jar, _ := cookiejar.New(nil)
	b := &http.Client{Jar: jar}
	f, resp := getLogin(t, b, authURL)
	if f.Status != http.StatusOK {
		t.Fatalf("login page: %d %s", f.Status, f.Body)
	}
	for _, want := range []string{"Test MCP Client", "<strong>support</strong>", `autocomplete="username"`,
		`autocomplete="current-password"`, `<label for="password">`, "Continue only if you started it yourself"} {
		if !strings.Contains(f.Body, want) {
			t.Errorf("login page lacks %q", want)
		}
	}
	if strings.Contains(f.Body, "<script") {
		t.Error("login page has a script")
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("Content-Security-Policy %q", csp)
	}
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == formCookie {
			cookie = c
		}
	}
	if cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode {
		t.Fatalf("login cookie %+v", cookie)
	}

	resp2, body := postLogin(t, b, e.issuer, f.Fields, "alice", alicePW)
	if resp2.StatusCode != http.StatusOK || resp2.Request.URL.Path != "/callback" {
		t.Fatalf("after login: %d at %s: %s", resp2.StatusCode, resp2.Request.URL, body)
	}
	q := cb.query()
	if q.Get("state") != "st-123" || q.Get("iss") != e.issuer || q.Get("code") == "" {
		t.Fatalf("callback query %v", q)
	}
	code := q.Get("code")

	tok, err := cfg.Exchange(e.ctx, code, oauth2.VerifierOption(verifier), oauth2.SetAuthURLParam("resource", resource))
	if err != nil {
		t.Fatal(err)
	}
	if tok.RefreshToken == "" || tok.Extra("scope") != "mcp:support" {
		t.Fatalf("token: refresh %q scope %v", tok.RefreshToken, tok.Extra("scope"))
	}
	p, aerr := e.authenticate(tok.AccessToken, "support")
	if aerr != nil {
		t.Fatal(aerr)
	}
	if p.Kind != identity.KindUser || p.Username != "alice" || p.ClientID != clientID || p.Actor != "" {
		t.Errorf("principal %+v", p)
	}
	if _, aerr := e.authenticate(tok.AccessToken, "crm"); aerr == nil {
		t.Error("the token works for another server")
	}

	// Refresh rotates.
	refresh := func(rt string) (*oauth2.Token, error) {
		return cfg.TokenSource(e.ctx, &oauth2.Token{RefreshToken: rt, Expiry: time.Now().Add(-time.Hour)}).Token()
	}
	tok2, err := refresh(tok.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	if tok2.RefreshToken == "" || tok2.RefreshToken == tok.RefreshToken || tok2.AccessToken == tok.AccessToken {
		t.Fatal("refresh did not rotate")
	}
	if _, aerr := e.authenticate(tok2.AccessToken, "support"); aerr != nil {
		t.Fatal(aerr)
	}
	// Reusing the old refresh token fails and revokes the family: the new
	// one stops working too.
	_, err = refresh(tok.RefreshToken)
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
		t.Fatalf("reused refresh token: %v", err)
	}
	_, err = refresh(tok2.RefreshToken)
	if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
		t.Fatalf("refresh token of a revoked family: %v", err)
	}

	// The code is single use.
	_, err = cfg.Exchange(e.ctx, code, oauth2.VerifierOption(verifier))
	if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
		t.Fatalf("second use of the code: %v", err)
	}
	e.assertNotLogged(t, alicePW, code, verifier, tok.AccessToken, tok.RefreshToken, tok2.AccessToken, tok2.RefreshToken, f.Fields.Get("form_token"))
}

// TestScopeNamesResource: a client that sends no resource but exactly one
// server's scope gets a token for that server.
func TestScopeNamesResource(t *testing.T) {
	e := newEnv(t)
	redirect := "http://127.0.0.1:7000/cb"
	id := registerClient(t, e, `{"redirect_uris":["`+redirect+`"],"token_endpoint_auth_method":"none"}`)["client_id"].(string)
	verifier, challenge := pkce()
	loc := login(t, e, e.authorizeURL(id, redirect, challenge, "", "s", "scope", "mcp:support"), "alice", alicePW)
	tok, te := e.postToken(t, url.Values{"grant_type": {"authorization_code"}, "client_id": {id}, "code": {loc.Query().Get("code")},
		"code_verifier": {verifier}, "redirect_uri": {redirect}}, "", "")
	if te != nil {
		t.Fatal(te)
	}
	if _, aerr := e.authenticate(tok["access_token"].(string), "support"); aerr != nil {
		t.Fatal(aerr)
	}
}

func TestConfidentialClientFlow(t *testing.T) {
	e := newEnv(t)
	redirect := "http://127.0.0.1:8765/cb"
	reg := registerClient(t, e, `{"redirect_uris":["`+redirect+`"],"client_name":"Confidential","token_endpoint_auth_method":"client_secret_basic","grant_types":["authorization_code"]}`)
	id, secret := reg["client_id"].(string), reg["client_secret"].(string)
	if reg["client_secret_expires_at"] != float64(0) {
		t.Errorf("client_secret_expires_at = %v", reg["client_secret_expires_at"])
	}
	verifier, challenge := pkce()
	newCode := func() string {
		loc := login(t, e, e.authorizeURL(id, redirect, challenge, e.resource("support"), "s"), "alice", alicePW)
		return loc.Query().Get("code")
	}
	cfg := oauth2.Config{ClientID: id, ClientSecret: secret, RedirectURL: redirect,
		Endpoint: oauth2.Endpoint{TokenURL: e.url(pathToken), AuthStyle: oauth2.AuthStyleInHeader}}
	tok, err := cfg.Exchange(e.ctx, newCode(), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	if tok.RefreshToken != "" {
		t.Error("a client not registered for refresh_token got a refresh token")
	}
	if _, aerr := e.authenticate(tok.AccessToken, "support"); aerr != nil {
		t.Fatal(aerr)
	}
	// Without its secret the client is refused.
	_, te := e.postToken(t, url.Values{"grant_type": {"authorization_code"}, "client_id": {id}, "code": {newCode()},
		"code_verifier": {verifier}, "redirect_uri": {redirect}}, "", "")
	if te == nil || te.Code != "invalid_client" || !strings.Contains(te.Description, "confidential") {
		t.Fatalf("no secret: %+v", te)
	}
	// With a wrong one too, with a Basic challenge.
	_, te = e.postToken(t, url.Values{"grant_type": {"authorization_code"}, "code": {newCode()},
		"code_verifier": {verifier}, "redirect_uri": {redirect}}, id, secret+"x")
	if te == nil || te.Status != 401 || te.Code != "invalid_client" || te.Header.Get("WWW-Authenticate") == "" {
		t.Fatalf("wrong secret: %+v", te)
	}
	e.assertNotLogged(t, secret, tok.AccessToken)
}

func TestDelegatedAgentFlow(t *testing.T) {
	e := newEnv(t)
	// The agent registered http://127.0.0.1:9/callback; a native client may
	// use any port on a loopback redirect URI.
	redirect := "http://127.0.0.1:41234/callback"
	verifier, challenge := pkce()
	b := newBrowser(t)
	f, _ := getLogin(t, b, e.authorizeURL(delegateClient, redirect, challenge, e.resource("support"), "d"))
	if !strings.Contains(f.Body, "as the agent <strong>helper</strong>") {
		t.Errorf("the page does not say which agent: %s", f.Body)
	}
	resp, body := postLogin(t, b, e.issuer, f.Fields, "alice", alicePW)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login: %d %s", resp.StatusCode, body)
	}
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if loc.Host != "127.0.0.1:41234" || loc.Query().Get("code") == "" {
		t.Fatalf("redirect %s", loc)
	}
	cfg := oauth2.Config{ClientID: delegateClient, ClientSecret: e.secrets["delegate"], RedirectURL: redirect,
		Endpoint: oauth2.Endpoint{TokenURL: e.url(pathToken), AuthStyle: oauth2.AuthStyleInHeader}}
	tok, err := cfg.Exchange(e.ctx, loc.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	p, aerr := e.authenticate(tok.AccessToken, "support")
	if aerr != nil {
		t.Fatal(aerr)
	}
	if p.Kind != identity.KindAgent || p.AgentID != "agt_helper" || p.Actor != "alice" {
		t.Errorf("principal %+v", p)
	}
	// Agents are confidential: a public-style exchange is refused.
	_, te := e.postToken(t, url.Values{"grant_type": {"refresh_token"}, "client_id": {delegateClient}, "refresh_token": {tok.RefreshToken}}, "", "")
	if te == nil || te.Code != "invalid_client" {
		t.Fatalf("unauthenticated agent refresh: %+v", te)
	}
	// Refresh re-checks the agent: once disabled, the grant ends.
	a, err := e.st.GetAgent(e.ctx, "agt_helper")
	if err != nil {
		t.Fatal(err)
	}
	a.Status = "disabled"
	if err := e.st.UpdateAgent(e.ctx, a); err != nil {
		t.Fatal(err)
	}
	_, te = e.postToken(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}, delegateClient, e.secrets["delegate"])
	if te == nil || te.Code != "invalid_client" || !strings.Contains(te.Description, "disabled") {
		t.Fatalf("refresh for a disabled agent: %+v", te)
	}
}

func TestCodeExchangeErrors(t *testing.T) {
	e := newEnv(t)
	redirect := "http://127.0.0.1:7000/cb"
	reg := registerClient(t, e, `{"redirect_uris":["`+redirect+`"],"token_endpoint_auth_method":"none","grant_types":["authorization_code","refresh_token"]}`)
	other := registerClient(t, e, `{"redirect_uris":["`+redirect+`"],"token_endpoint_auth_method":"none"}`)
	id := reg["client_id"].(string)
	verifier, challenge := pkce()
	newCode := func() string {
		return login(t, e, e.authorizeURL(id, redirect, challenge, e.resource("support"), "s"), "alice", alicePW).Query().Get("code")
	}
	exchange := func(code string, kv ...string) (map[string]any, *tokenError) {
		f := url.Values{"grant_type": {"authorization_code"}, "client_id": {id}, "code": {code},
			"code_verifier": {verifier}, "redirect_uri": {redirect}}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == "" {
				f.Del(kv[i])
			} else {
				f.Set(kv[i], kv[i+1])
			}
		}
		return e.postToken(t, f, "", "")
	}

	t.Run("reuse revokes the first grant", func(t *testing.T) {
		code := newCode()
		tok, te := exchange(code)
		if te != nil {
			t.Fatal(te)
		}
		_, te = exchange(code)
		if te == nil || te.Code != "invalid_grant" || !strings.Contains(te.Description, "already used") {
			t.Fatalf("reuse: %+v", te)
		}
		_, te = e.postToken(t, url.Values{"grant_type": {"refresh_token"}, "client_id": {id}, "refresh_token": {tok["refresh_token"].(string)}}, "", "")
		if te == nil || te.Code != "invalid_grant" {
			t.Fatalf("refresh token of a reused code: %+v", te)
		}
	})
	for _, tc := range []struct {
		name     string
		kv       []string
		wantCode string
		wantDesc string
	}{
		{"wrong verifier", []string{"code_verifier", oauth2.GenerateVerifier()}, "invalid_grant", "does not match the code_challenge"},
		{"malformed verifier", []string{"code_verifier", "short"}, "invalid_grant", "does not match"},
		{"missing verifier", []string{"code_verifier", ""}, "invalid_request", "code_verifier is missing"},
		{"redirect mismatch", []string{"redirect_uri", "http://127.0.0.1:7000/other"}, "invalid_grant", "redirect_uri does not match"},
		{"missing redirect", []string{"redirect_uri", ""}, "invalid_request", "redirect_uri is missing"},
		{"another client", []string{"client_id", other["client_id"].(string)}, "invalid_grant", "issued to another client"},
		{"other resource", []string{"resource", e.resource("crm")}, "invalid_target", "differs from the one authorized"},
		{"wider scope", []string{"scope", "mcp:crm"}, "invalid_scope", "was not granted"},
		{"unknown code", []string{"code", "ghac_nope"}, "invalid_grant", "unknown authorization code"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, te := exchange(newCode(), tc.kv...)
			if te == nil || te.Status != 400 || te.Code != tc.wantCode || !strings.Contains(te.Description, tc.wantDesc) {
				t.Fatalf("got %+v; want %s containing %q", te, tc.wantCode, tc.wantDesc)
			}
		})
	}
	t.Run("expired code", func(t *testing.T) {
		code := newCode()
		e.clock.Advance(61 * time.Second)
		_, te := exchange(code)
		if te == nil || te.Code != "invalid_grant" {
			t.Fatalf("expired code: %+v", te)
		}
	})
	t.Run("refresh by another client revokes", func(t *testing.T) {
		tok, te := exchange(newCode())
		if te != nil {
			t.Fatal(te)
		}
		rt := tok["refresh_token"].(string)
		reg3 := registerClient(t, e, `{"redirect_uris":["`+redirect+`"],"token_endpoint_auth_method":"none","grant_types":["authorization_code","refresh_token"]}`)
		_, te = e.postToken(t, url.Values{"grant_type": {"refresh_token"}, "client_id": {reg3["client_id"].(string)}, "refresh_token": {rt}}, "", "")
		if te == nil || te.Code != "invalid_grant" {
			t.Fatalf("refresh by another client: %+v", te)
		}
	})
	t.Run("refresh after the user lost access", func(t *testing.T) {
		tok, te := exchange(newCode())
		if te != nil {
			t.Fatal(te)
		}
		u, _ := e.st.GetUser(e.ctx, "alice")
		u.Disabled = true
		if err := e.st.UpdateUser(e.ctx, u); err != nil {
			t.Fatal(err)
		}
		defer func() {
			u.Disabled = false
			_ = e.st.UpdateUser(e.ctx, u)
		}()
		_, te = e.postToken(t, url.Values{"grant_type": {"refresh_token"}, "client_id": {id}, "refresh_token": {tok["refresh_token"].(string)}}, "", "")
		if te == nil || te.Code != "invalid_grant" || !strings.Contains(te.Description, "user alice is disabled") {
			t.Fatalf("refresh of a disabled user: %+v", te)
		}
	})
	t.Run("downscoped refresh", func(t *testing.T) {
		tok, te := exchange(newCode())
		if te != nil {
			t.Fatal(te)
		}
		got, te := e.postToken(t, url.Values{"grant_type": {"refresh_token"}, "client_id": {id}, "scope": {"mcp:support"},
			"resource": {e.resource("support")}, "refresh_token": {tok["refresh_token"].(string)}}, "", "")
		if te != nil || got["scope"] != "mcp:support" {
			t.Fatalf("refresh: %v %+v", got, te)
		}
	})
}
