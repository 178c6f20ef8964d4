package identity

import (
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzAuthenticate feeds arbitrary bearer credentials through the whole
// verification path: it must never panic, and must never accept anything
// but the one valid token.
func FuzzAuthenticate(f *testing.F) {
	fx := newFixture(f)
	valid := fx.token(f, Grant{Kind: KindAgent, Subject: "agt_ok", ClientID: "agt_ok", Audience: []string{testResource}, Scopes: []string{"mcp:support"}})
	parts := strings.Split(valid, ".")
	for _, s := range []string{
		valid,
		parts[0] + "." + parts[1] + ".",
		parts[0] + ".." + parts[2],
		"eyJhbGciOiJub25lIiwidHlwIjoiYXQrand0In0.e30.",
		"eyJhbGciOiJIUzI1NiIsInR5cCI6ImF0K2p3dCIsImtpZCI6IngifQ.e30.AAAA",
		"a.b.c", "...", "", "ghk_", APIKeyTag + strings.Repeat("k", 43), "Bearer", "not a token",
		parts[0] + "." + parts[1] + "." + strings.Repeat("A", len(parts[2])),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, cred string) {
		r := httptest.NewRequest("POST", testResource, nil)
		r.Header["Authorization"] = []string{"Bearer " + cred}
		p, aerr := fx.auth.Authenticate(r, "support", testResource)
		if aerr == nil {
			if cred != valid && cred != fx.apiKey {
				t.Fatalf("accepted a credential that is neither the valid token nor the API key: %q (%+v)", cred, p)
			}
			return
		}
		if aerr.Status != 401 && aerr.Status != 403 {
			t.Fatalf("status %d", aerr.Status)
		}
		if aerr.Description == "" {
			t.Fatal("an error without a description")
		}
	})
}
