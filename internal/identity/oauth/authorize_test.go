package oauth

import (
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"gatehouse/internal/identity"
	"gatehouse/internal/store"
)

func TestAuthorizeRequestErrors(t *testing.T) {
	e := newEnv(t)
	redirect := "http://127.0.0.1:7000/cb"
	id := registerClient(t, e, `{"redirect_uris":["`+redirect+`","https://app.example.com/cb?x=1"],"token_endpoint_auth_method":"none"}`)["client_id"].(string)
	_, challenge := pkce()
	res := e.resource("support")
	base := func(extra ...string) string { return e.authorizeURL(id, redirect, challenge, res, "st", extra...) }

	// Problems with the client or its redirect URI are shown, never
	// redirected.
	for _, tc := range []struct {
		name, url, want string
	}{
		{"unknown client", e.authorizeURL("ghc_nobody", redirect, challenge, res, "st"), "unknown client"},
		{"missing client_id", base("client_id", ""), "client_id is missing"},
		{"redirect_uri not registered", base("redirect_uri", "https://evil.example.com/cb"), "is not registered for the application"},
		{"redirect_uri differs in path", base("redirect_uri", "http://127.0.0.1:7000/cb2"), "is not registered"},
		{"redirect_uri differs in query", base("redirect_uri", "https://app.example.com/cb?x=2"), "is not registered"},
		{"redirect_uri on another port of a non-loopback host", base("redirect_uri", "https://app.example.com:8443/cb?x=1"), "is not registered"},
		{"missing redirect_uri", base("redirect_uri", ""), "redirect_uri is missing"},
		{"repeated client_id", base() + "&client_id=" + id, "more than one client_id"},
		{"agent without redirect URIs", e.authorizeURL(botClient, redirect, challenge, res, "st"), "has no registered redirect URIs"},
		{"disabled agent", e.authorizeURL(disabledClient, redirect, challenge, res, "st"), "agent off-bot is disabled"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, resp := getLogin(t, newBrowser(t), tc.url)
			if f.Status != http.StatusBadRequest || resp.Header.Get("Location") != "" {
				t.Fatalf("status %d, Location %q; want 400 and no redirect", f.Status, resp.Header.Get("Location"))
			}
			if !strings.Contains(f.Body, tc.want) || !strings.Contains(f.Body, `role="alert"`) {
				t.Fatalf("page lacks %q:\n%s", tc.want, f.Body)
			}
			if f.Fields.Get("form_token") != "" {
				t.Fatal("an error page has a login form")
			}
		})
	}

	// The rest go back to the client, with state and iss.
	for _, tc := range []struct {
		name, url, wantErr, wantDesc string
	}{
		{"plain PKCE", base("code_challenge_method", "plain"), "invalid_request", "plain is not allowed"},
		{"no PKCE method", base("code_challenge_method", ""), "invalid_request", "must be S256"},
		{"no code_challenge", base("code_challenge", ""), "invalid_request", "code_challenge is missing"},
		{"malformed code_challenge", base("code_challenge", "abc"), "invalid_request", "not a base64url SHA-256"},
		{"missing resource", e.authorizeURL(id, redirect, challenge, "", "st"), "invalid_target", "resource is missing"},
		{"missing resource, two scopes", e.authorizeURL(id, redirect, challenge, "", "st", "scope", "mcp:support mcp:crm"), "invalid_target", "resource is missing"},
		{"unknown resource", base("resource", e.resource("nosuch")), "invalid_target", "not a virtual server"},
		{"foreign resource", base("resource", "https://other.example.com/mcp/support"), "invalid_target", "not a virtual server"},
		{"two resources", base() + "&resource=" + url.QueryEscape(e.resource("crm")), "invalid_target", "one resource"},
		{"scope of another server", base("scope", "mcp:crm"), "invalid_scope", "not available"},
		{"unknown scope", base("scope", "openid"), "invalid_scope", "not available"},
		{"implicit flow", base("response_type", "token"), "unsupported_response_type", "must be code"},
		{"no response_type", base("response_type", ""), "invalid_request", "response_type is missing"},
		{"repeated state", base() + "&state=other", "invalid_request", `"state" is repeated`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, resp := getLogin(t, newBrowser(t), tc.url)
			if resp.StatusCode != http.StatusFound {
				t.Fatalf("status %d; want 302", resp.StatusCode)
			}
			loc, err := url.Parse(resp.Header.Get("Location"))
			if err != nil || !strings.HasPrefix(loc.String(), redirect+"?") {
				t.Fatalf("Location %q", resp.Header.Get("Location"))
			}
			q := loc.Query()
			if q.Get("error") != tc.wantErr || !strings.Contains(q.Get("error_description"), tc.wantDesc) || q.Get("iss") != e.issuer || q.Get("code") != "" {
				t.Fatalf("redirect query %v; want error %s containing %q", q, tc.wantErr, tc.wantDesc)
			}
			if !strings.Contains(tc.name, "state") && q.Get("state") != "st" {
				t.Errorf("state %q", q.Get("state"))
			}
		})
	}
	t.Run("redirect keeps the registered query", func(t *testing.T) {
		_, resp := getLogin(t, newBrowser(t), base("redirect_uri", "https://app.example.com/cb?x=1", "response_type", "token"))
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if loc.Host != "app.example.com" || loc.Query().Get("x") != "1" || loc.Query().Get("error") == "" {
			t.Fatalf("Location %s", loc)
		}
	})
}

func TestLogin(t *testing.T) {
	e := newEnv(t)
	redirect := "http://127.0.0.1:7000/cb"
	id := registerClient(t, e, `{"redirect_uris":["`+redirect+`"],"token_endpoint_auth_method":"none","client_name":"Login Test"}`)["client_id"].(string)
	_, challenge := pkce()
	authURL := e.authorizeURL(id, redirect, challenge, e.resource("support"), "st")
	page := func(t *testing.T) (*http.Client, *loginForm) {
		b := newBrowser(t)
		f, _ := getLogin(t, b, authURL)
		if f.Status != http.StatusOK {
			t.Fatalf("login page %d", f.Status)
		}
		return b, f
	}
	wantPage := func(t *testing.T, resp *http.Response, body string, status int, text string) {
		t.Helper()
		if resp.StatusCode != status || !strings.Contains(body, text) || resp.Header.Get("Location") != "" {
			t.Fatalf("got %d (Location %q); want %d with %q:\n%s", resp.StatusCode, resp.Header.Get("Location"), status, text, body)
		}
	}

	t.Run("wrong password", func(t *testing.T) {
		b, f := page(t)
		resp, body := postLogin(t, b, e.issuer, f.Fields, "alice", "not it")
		wantPage(t, resp, body, http.StatusOK, "Wrong username or password.")
		// The page comes back with a new form that works.
		g := url.Values{}
		for _, m := range hiddenRE.FindAllStringSubmatch(body, -1) {
			g.Set(m[1], html.UnescapeString(m[2]))
		}
		if g.Get("form_token") == "" || g.Get("form_token") == f.Fields.Get("form_token") {
			t.Fatal("no fresh form token")
		}
		resp, body = postLogin(t, b, e.issuer, g, "alice", alicePW)
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("second try: %d %s", resp.StatusCode, body)
		}
	})
	for _, tc := range []struct{ name, user, pw string }{
		{"unknown user", "mallory", "whatever"},
		{"disabled user with the right password", "carol", carolPW},
		{"empty password", "alice", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, f := page(t)
			fields := f.Fields
			if tc.pw == "" {
				fields = cloneValues(fields)
				fields.Set("username", tc.user)
			}
			resp, body := postLogin(t, b, e.issuer, fields, tc.user, tc.pw)
			want := "Wrong username or password."
			if tc.pw == "" {
				want = "Enter your username and password."
			}
			wantPage(t, resp, body, http.StatusOK, want)
		})
	}
	t.Run("user without access", func(t *testing.T) {
		b, f := page(t)
		resp, body := postLogin(t, b, e.issuer, f.Fields, "bob", bobPW)
		wantPage(t, resp, body, http.StatusForbidden, "is not granted the MCP server support")
	})
	t.Run("cancel", func(t *testing.T) {
		b, f := page(t)
		fields := cloneValues(f.Fields)
		fields.Set("action", "cancel")
		resp, _ := postLogin(t, b, e.issuer, fields, "", "")
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusSeeOther || loc.Query().Get("error") != "access_denied" || loc.Query().Get("state") != "st" {
			t.Fatalf("cancel: %d %s", resp.StatusCode, loc)
		}
	})

	// Cross-site request forgery.
	t.Run("form token missing", func(t *testing.T) {
		b, f := page(t)
		fields := cloneValues(f.Fields)
		fields.Del("form_token")
		resp, body := postLogin(t, b, e.issuer, fields, "alice", alicePW)
		wantPage(t, resp, body, http.StatusForbidden, "not valid for this request")
	})
	t.Run("form token wrong", func(t *testing.T) {
		b, f := page(t)
		fields := cloneValues(f.Fields)
		tok := []byte(fields.Get("form_token"))
		tok[len(tok)-2] ^= 1
		fields.Set("form_token", string(tok))
		resp, body := postLogin(t, b, e.issuer, fields, "alice", alicePW)
		wantPage(t, resp, body, http.StatusForbidden, "not valid for this request")
	})
	t.Run("form token of another request", func(t *testing.T) {
		b, f := page(t)
		fields := cloneValues(f.Fields)
		fields.Set("state", "forged")
		resp, body := postLogin(t, b, e.issuer, fields, "alice", alicePW)
		wantPage(t, resp, body, http.StatusForbidden, "not valid for this request")
	})
	t.Run("form token replayed", func(t *testing.T) {
		b, f := page(t)
		resp, body := postLogin(t, b, e.issuer, f.Fields, "alice", "wrong")
		wantPage(t, resp, body, http.StatusOK, "Wrong username or password.")
		resp, body = postLogin(t, b, e.issuer, f.Fields, "alice", alicePW)
		wantPage(t, resp, body, http.StatusForbidden, "already submitted")
	})
	t.Run("cookie missing (cross-site post)", func(t *testing.T) {
		_, f := page(t)
		resp, body := postLogin(t, newBrowser(t), e.issuer, f.Fields, "alice", alicePW)
		wantPage(t, resp, body, http.StatusForbidden, "did not send the sign-in cookie")
	})
	t.Run("cookie of another browser", func(t *testing.T) {
		_, f := page(t)
		other, _ := page(t) // has a cookie of its own
		resp, body := postLogin(t, other, e.issuer, f.Fields, "alice", alicePW)
		wantPage(t, resp, body, http.StatusForbidden, "not valid for this request")
	})
	t.Run("form expired", func(t *testing.T) {
		b, f := page(t)
		e.clock.Advance(formLifetime + time.Second)
		resp, body := postLogin(t, b, e.issuer, f.Fields, "alice", alicePW)
		wantPage(t, resp, body, http.StatusForbidden, "expired")
	})
	t.Run("GET with a body-less method", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPut, authURL, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Fatalf("PUT: %d", resp.StatusCode)
		}
	})
	e.assertNotLogged(t, alicePW, bobPW, carolPW)
}

func TestLoginBackoff(t *testing.T) {
	e := newEnv(t)
	redirect := "http://127.0.0.1:7000/cb"
	id := registerClient(t, e, `{"redirect_uris":["`+redirect+`"],"token_endpoint_auth_method":"none"}`)["client_id"].(string)
	_, challenge := pkce()
	authURL := e.authorizeURL(id, redirect, challenge, e.resource("support"), "st")
	try := func(user, pw string) (*http.Response, string) {
		b := newBrowser(t)
		f, _ := getLogin(t, b, authURL)
		return postLogin(t, b, e.issuer, f.Fields, user, pw)
	}
	for i := 0; i < freeFailures; i++ {
		if resp, body := try("alice", "wrong"); resp.StatusCode != http.StatusOK || !strings.Contains(body, "Wrong username") {
			t.Fatalf("failure %d: %d", i+1, resp.StatusCode)
		}
	}
	// The next failures start the backoff (1 s, then 2 s): even the right
	// password must wait, without being checked.
	try("alice", "wrong")
	try("alice", "wrong")
	resp, body := try("ALICE", alicePW)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || !strings.Contains(body, "Too many failed sign-ins") {
		t.Fatalf("during backoff: %d %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	// Other usernames are not affected; unknown ones are throttled alike.
	if resp, _ := try("bob", "wrong"); resp.StatusCode != http.StatusOK {
		t.Fatalf("other user: %d", resp.StatusCode)
	}
	e.clock.Advance(3 * time.Second)
	if resp, body := try("alice", alicePW); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("after the backoff: %d %s", resp.StatusCode, body)
	}
}

// TestLoginDefaultHash signs in a user whose password was hashed by
// identity.HashPassword at the production cost.
func TestLoginDefaultHash(t *testing.T) {
	e := newEnv(t)
	h, err := identity.HashPassword("dora's password")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.st.CreateUser(e.ctx, store.User{Username: "dora", PasswordHash: h, Groups: []string{"staff"}}); err != nil {
		t.Fatal(err)
	}
	redirect := "http://127.0.0.1:7000/cb"
	id := registerClient(t, e, `{"redirect_uris":["`+redirect+`"],"token_endpoint_auth_method":"none"}`)["client_id"].(string)
	_, challenge := pkce()
	loc := login(t, e, e.authorizeURL(id, redirect, challenge, e.resource("support"), "st"), "dora", "dora's password")
	if loc.Query().Get("code") == "" {
		t.Fatalf("redirect %s", loc)
	}
}

func cloneValues(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}
