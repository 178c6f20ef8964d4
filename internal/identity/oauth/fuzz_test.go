package oauth

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// errTransport fails every request at once: fuzzed client ids must not
// reach the network.
type errTransport struct{}

func (errTransport) RoundTrip(*http.Request) (*http.Response, error) {
	return nil, errors.New("no network in fuzzing")
}

// fuzzEnv is an environment with one public registered client whose id
// replaces {{CLIENT}} in fuzz inputs; {{BOT}} becomes a valid agent secret
// and {{ISSUER}} the issuer, so that seeds reach the successful paths.
func fuzzEnv(f *testing.F) (*env, func(string) string, []string) {
	e := newEnv(f, envOptions{insecureMetadata: true, httpClient: &http.Client{Transport: errTransport{}}})
	redirects := []string{"http://127.0.0.1:7000/cb", "https://app.example.com/cb?x=1"}
	b, _ := json.Marshal(map[string]any{"redirect_uris": redirects, "token_endpoint_auth_method": "none",
		"grant_types": []string{"authorization_code", "refresh_token"}})
	resp, err := http.Post(e.url(pathRegister), "application/json", strings.NewReader(string(b)))
	if err != nil {
		f.Fatal(err)
	}
	var reg struct {
		ClientID string `json:"client_id"`
	}
	err = json.NewDecoder(resp.Body).Decode(&reg)
	resp.Body.Close()
	if err != nil || reg.ClientID == "" {
		f.Fatalf("registering the fuzz client: %v", err)
	}
	subst := strings.NewReplacer("{{CLIENT}}", reg.ClientID, "{{BOT}}", url.QueryEscape(e.secrets["bot"]),
		"{{ISSUER}}", url.QueryEscape(e.issuer)).Replace
	return e, subst, append(redirects, reg.ClientID)
}

var tokenErrorCodes = []string{errInvalidRequest, errInvalidClient, errInvalidGrant, errUnauthorizedClient,
	errUnsupportedGrantType, errInvalidScope, errInvalidTarget, errTemporarilyUnavailable}

// FuzzTokenForm posts arbitrary bodies, content types and Authorization
// headers to the token endpoint: it never panics or fails internally, and
// always answers JSON that is a token or an RFC 6749 error.
func FuzzTokenForm(f *testing.F) {
	e, subst, _ := fuzzEnv(f)
	f.Fuzz(func(t *testing.T, contentType string, body []byte, authorization string) {
		req := httptest.NewRequest(http.MethodPost, pathToken, strings.NewReader(subst(string(body))))
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		if authorization != "" {
			req.Header.Set("Authorization", subst(authorization))
		}
		rec := httptest.NewRecorder()
		e.srv.handleToken(rec, req)
		if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
			t.Fatalf("Content-Type %q", ct)
		}
		if rec.Header().Get("Cache-Control") != "no-store" {
			t.Fatal("no Cache-Control: no-store")
		}
		var m map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
			t.Fatalf("answer is not JSON: %v: %s", err, rec.Body)
		}
		switch rec.Code {
		case http.StatusOK:
			if tok, _ := m["access_token"].(string); tok == "" || m["token_type"] != "Bearer" {
				t.Fatalf("200 without a token: %s", rec.Body)
			}
		case http.StatusBadRequest, http.StatusUnauthorized, http.StatusRequestEntityTooLarge, http.StatusServiceUnavailable:
			code, _ := m["error"].(string)
			if !slices.Contains(tokenErrorCodes, code) {
				t.Fatalf("status %d with error %q", rec.Code, code)
			}
			if rec.Code == http.StatusUnauthorized && code != errInvalidClient {
				t.Fatalf("401 with error %q", code)
			}
		default:
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	})
}

// FuzzAuthorizeQuery sends arbitrary authorization requests: the endpoint
// never panics, and it redirects only to a redirect URI registered for the
// client named in the request.
func FuzzAuthorizeQuery(f *testing.F) {
	e, subst, known := fuzzEnv(f)
	clientID := known[len(known)-1]
	registered := map[string][]string{
		clientID:       known[:len(known)-1],
		delegateClient: {"http://127.0.0.1:9/callback", "https://app.example.com/cb"},
	}
	f.Fuzz(func(t *testing.T, query string) {
		raw := subst(query)
		req := httptest.NewRequest(http.MethodGet, "/oauth/authorize", nil)
		req.URL.RawQuery = raw
		rec := httptest.NewRecorder()
		e.srv.handleAuthorize(rec, req)
		switch rec.Code {
		case http.StatusOK, http.StatusBadRequest:
			if ct := rec.Header().Get("Content-Type"); ct != "text/html; charset=utf-8" {
				t.Fatalf("status %d with Content-Type %q", rec.Code, ct)
			}
		case http.StatusFound:
			q, err := url.ParseQuery(raw)
			if err != nil {
				// The endpoint read what it could; the client and redirect
				// URI it used are still the first values.
				q, _ = url.ParseQuery(strings.Join(validPairs(raw), "&"))
			}
			redirect := q.Get("redirect_uri")
			if !redirectAllowed(registered[q.Get("client_id")], redirect) {
				t.Fatalf("redirected for client %q to unregistered %q", q.Get("client_id"), redirect)
			}
			loc, err := url.Parse(rec.Header().Get("Location"))
			want, _ := url.Parse(redirect)
			if err != nil || loc.Scheme != want.Scheme || loc.Host != want.Host || loc.Path != want.Path {
				t.Fatalf("Location %q does not go to %q", rec.Header().Get("Location"), redirect)
			}
			if lq := loc.Query(); lq.Get("error") == "" || lq.Get("iss") != e.issuer || lq.Has("code") {
				t.Fatalf("redirect without an error: %s", loc)
			}
		default:
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	})
}

// validPairs keeps the key=value pairs of a query that parse.
func validPairs(raw string) []string {
	var out []string
	for _, p := range strings.Split(raw, "&") {
		if _, err := url.ParseQuery(p); err == nil {
			out = append(out, p)
		}
	}
	return out
}
