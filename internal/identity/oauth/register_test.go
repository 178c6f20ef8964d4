package oauth

import (
	"net/http"
	"strings"
	"testing"
)

func TestRegister(t *testing.T) {
	e := newEnv(t)
	t.Run("public client", func(t *testing.T) {
		m := registerClient(t, e, `{"redirect_uris":["http://localhost:3000/callback","cursor://anysphere.cursor-retrieval/oauth/callback"],
			"client_name":"Cursor","token_endpoint_auth_method":"none","grant_types":["refresh_token","authorization_code"],
			"application_type":"native","logo_uri":"https://example.com/logo.png"}`)
		id, _ := m["client_id"].(string)
		if !strings.HasPrefix(id, "ghc_") || m["client_secret"] != nil || m["client_secret_expires_at"] != nil || m["client_id_issued_at"] == nil {
			t.Fatalf("response %v", m)
		}
		if m["token_endpoint_auth_method"] != "none" || len(m["grant_types"].([]any)) != 2 || m["client_name"] != "Cursor" {
			t.Errorf("response %v", m)
		}
		rec, err := e.st.GetClient(e.ctx, id)
		if err != nil || rec.Kind != "dynamic" || rec.SecretHash != nil || len(rec.RedirectURIs) != 2 {
			t.Fatalf("stored %+v, %v", rec, err)
		}
	})
	t.Run("confidential client by default", func(t *testing.T) {
		m := registerClient(t, e, `{"redirect_uris":["https://app.example.com/cb"]}`)
		secret, _ := m["client_secret"].(string)
		if !strings.HasPrefix(secret, "ghcs_") || m["client_secret_expires_at"] != float64(0) || m["token_endpoint_auth_method"] != "client_secret_basic" {
			t.Fatalf("response %v", m)
		}
		rec, err := e.st.GetClient(e.ctx, m["client_id"].(string))
		if err != nil || len(rec.SecretHash) != 32 || strings.Contains(string(rec.Metadata), secret) {
			t.Fatalf("stored %+v, %v", rec, err)
		}
		e.assertNotLogged(t, secret)
	})

	many := `"https://a.example.com/1"` + strings.Repeat(`,"https://a.example.com/1"`, maxRedirectURIs)
	for _, tc := range []struct {
		name, contentType, body string
		wantStatus              int
		wantCode, wantDesc      string
	}{
		{"no redirect URIs", "application/json", `{"client_name":"x"}`, 400, "invalid_redirect_uri", "redirect_uris is required"},
		{"empty redirect URIs", "application/json", `{"redirect_uris":[]}`, 400, "invalid_redirect_uri", "required"},
		{"http on a public host", "application/json", `{"redirect_uris":["http://app.example.com/cb"]}`, 400, "invalid_redirect_uri", "only on loopback"},
		{"fragment", "application/json", `{"redirect_uris":["https://app.example.com/cb#x"]}`, 400, "invalid_redirect_uri", "fragment"},
		{"relative", "application/json", `{"redirect_uris":["/cb"]}`, 400, "invalid_redirect_uri", "not an absolute URI"},
		{"javascript", "application/json", `{"redirect_uris":["javascript:alert(1)"]}`, 400, "invalid_redirect_uri", "not allowed"},
		{"data", "application/json", `{"redirect_uris":["data:text/html,hi"]}`, 400, "invalid_redirect_uri", "not allowed"},
		{"too many", "application/json", `{"redirect_uris":[` + many + `]}`, 400, "invalid_redirect_uri", "at most"},
		{"private_key_jwt", "application/json", `{"redirect_uris":["https://a.example.com/cb"],"token_endpoint_auth_method":"private_key_jwt"}`, 400, "invalid_client_metadata", "agents only"},
		{"unknown auth method", "application/json", `{"redirect_uris":["https://a.example.com/cb"],"token_endpoint_auth_method":"tls_client_auth"}`, 400, "invalid_client_metadata", "not supported"},
		{"client_credentials grant", "application/json", `{"redirect_uris":["https://a.example.com/cb"],"grant_types":["client_credentials"]}`, 400, "invalid_client_metadata", "not available to registered clients"},
		{"refresh only", "application/json", `{"redirect_uris":["https://a.example.com/cb"],"grant_types":["refresh_token"]}`, 400, "invalid_client_metadata", "must include authorization_code"},
		{"implicit", "application/json", `{"redirect_uris":["https://a.example.com/cb"],"response_types":["token"]}`, 400, "invalid_client_metadata", "not supported"},
		{"application type", "application/json", `{"redirect_uris":["https://a.example.com/cb"],"application_type":"service"}`, 400, "invalid_client_metadata", "web or native"},
		{"control characters in the name", "application/json", `{"redirect_uris":["https://a.example.com/cb"],"client_name":"a\u0007b"}`, 400, "invalid_client_metadata", "control characters"},
		{"long name", "application/json", `{"redirect_uris":["https://a.example.com/cb"],"client_name":"` + strings.Repeat("n", 300) + `"}`, 400, "invalid_client_metadata", "longer than"},
		{"wrong type", "application/json", `{"redirect_uris":"https://a.example.com/cb"}`, 400, "invalid_client_metadata", `"redirect_uris" has the wrong type`},
		{"not JSON", "application/json", `redirect_uris=x`, 400, "invalid_client_metadata", "malformed JSON"},
		{"array", "application/json", `[]`, 400, "invalid_client_metadata", "wrong type"},
		{"form body", "application/x-www-form-urlencoded", `redirect_uris=https://a.example.com/cb`, 400, "invalid_client_metadata", "must be application/json"},
		{"too large", "application/json", `{"redirect_uris":["https://a.example.com/cb"],"x":"` + strings.Repeat("a", 70<<10) + `"}`, 413, "invalid_client_metadata", "larger than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, e.url(pathRegister), strings.NewReader(tc.body))
			req.Header.Set("Content-Type", tc.contentType)
			_, te := doToken(t, req)
			if te == nil || te.Status != tc.wantStatus || te.Code != tc.wantCode || !strings.Contains(te.Description, tc.wantDesc) {
				t.Fatalf("got %+v; want %d %s containing %q", te, tc.wantStatus, tc.wantCode, tc.wantDesc)
			}
		})
	}
	t.Run("GET", func(t *testing.T) {
		resp, err := http.Get(e.url(pathRegister))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Fatalf("status %d", resp.StatusCode)
		}
	})
}
