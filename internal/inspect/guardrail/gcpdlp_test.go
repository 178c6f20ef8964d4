package guardrail

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"gatehouse/internal/inspect"
)

const testGCPToken = "ya29.gcp-token-do-not-leak"

// dlpFake follows Cloud DLP's REST shapes: content:inspect and
// content:deidentify under /v2/projects/{project}/locations/{location}/,
// a bearer token, proto3 JSON with int64s as strings. When tokenKey is
// set it also serves a service-account token endpoint at /token.
type dlpFake struct {
	t              *testing.T
	inspectAnswer  string
	deidAnswer     string
	status         int
	inspected      dlpInspectRequest
	deidentified   dlpDeidentifyRequest
	deidCalls      atomic.Int32
	tokenCalls     atomic.Int32
	wantBearer     string
	serviceAccount bool
}

func (f *dlpFake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	t := f.t
	body, _ := io.ReadAll(r.Body)
	if r.URL.Path == "/token" {
		f.tokenCalls.Add(1)
		form, _ := url.ParseQuery(string(body))
		if form.Get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" || strings.Count(form.Get("assertion"), ".") != 2 {
			t.Errorf("token request %q is not a JWT bearer grant", body)
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"access_token":"`+testGCPToken+`","token_type":"Bearer","expires_in":3600}`)
		return
	}
	if a := r.Header.Get("Authorization"); a != "Bearer "+f.wantBearer {
		t.Errorf("Authorization %q", a)
	}
	w.Header().Set("Content-Type", "application/json")
	if f.status != 0 {
		w.WriteHeader(f.status)
		io.WriteString(w, `{"error":{"code":400,"message":"bad request","status":"INVALID_ARGUMENT"}}`)
		return
	}
	switch r.URL.Path {
	case "/v2/projects/acme-prod/locations/europe-west1/content:inspect":
		if err := json.Unmarshal(body, &f.inspected); err != nil {
			t.Errorf("inspect body: %v", err)
		}
		io.WriteString(w, f.inspectAnswer)
	case "/v2/projects/acme-prod/locations/europe-west1/content:deidentify":
		f.deidCalls.Add(1)
		if err := json.Unmarshal(body, &f.deidentified); err != nil {
			t.Errorf("deidentify body: %v", err)
		}
		if !strings.Contains(string(body), `"replaceWithInfoTypeConfig":{}`) {
			t.Errorf("deidentify body %s has no replaceWithInfoTypeConfig", body)
		}
		io.WriteString(w, f.deidAnswer)
	default:
		t.Errorf("unexpected %s %s", r.Method, r.URL.Path)
		w.WriteHeader(http.StatusNotFound)
	}
}

func TestGCPDLP(t *testing.T) {
	text := "mail jane@example.com, card 4111111111111111"
	twoFindings := `{"result":{"findings":[
		{"infoType":{"name":"EMAIL_ADDRESS"},"likelihood":"LIKELY","location":{"byteRange":{"start":"5","end":"21"},"codepointRange":{"start":"5","end":"21"}},"createTime":"2026-01-01T00:00:00Z"},
		{"infoType":{"name":"CREDIT_CARD_NUMBER"},"likelihood":"VERY_LIKELY","location":{"byteRange":{"start":"28","end":"44"}}},
		{"infoType":{"name":"PERSON_NAME"},"likelihood":"UNLIKELY","location":{"byteRange":{"end":"4"}}}]}}`
	findings := []inspect.Finding{
		{Category: inspect.CategoryPII, Type: "email-address", Start: 5, End: 21, Confidence: inspect.High},
		{Category: inspect.CategoryPII, Type: "credit-card-number", Start: 28, End: 44, Confidence: inspect.High},
	}
	tests := []struct {
		name       string
		deidentify bool
		status     int
		inspect    string
		deid       string
		want       Verdict
		wantDeid   int32
		err        string
	}{
		{"clean_allows", false, 0, `{"result":{}}`, "", Verdict{Action: Allow}, 0, ""},
		{"below_threshold_allows", false, 0, `{"result":{"findings":[{"infoType":{"name":"PERSON_NAME"},"likelihood":"UNLIKELY"}]}}`, "", Verdict{Action: Allow}, 0, ""},
		{"findings_deny", false, 0, twoFindings, "",
			Verdict{Action: Deny, Reason: "blocked by guardrail dlp (EMAIL_ADDRESS, CREDIT_CARD_NUMBER)", Findings: findings}, 0, ""},
		{"deidentify_mutates", true, 0, twoFindings,
			`{"item":{"value":"mail [EMAIL_ADDRESS], card [CREDIT_CARD_NUMBER]"},"overview":{"transformedBytes":"32"}}`,
			Verdict{Action: Mutate, Text: "mail [EMAIL_ADDRESS], card [CREDIT_CARD_NUMBER]", Findings: findings}, 1, ""},
		{"clean_skips_deidentify", true, 0, `{"result":{}}`, "", Verdict{Action: Allow}, 0, ""},
		{"error_status", false, 400, "", "", Verdict{}, 0, "HTTP 400"},
		{"bad_offsets", false, 0, `{"result":{"findings":[{"infoType":{"name":"X"},"likelihood":"LIKELY","location":{"byteRange":{"start":"a"}}}]}}`, "", Verdict{}, 0, "decoding response"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := &dlpFake{t: t, inspectAnswer: tt.inspect, deidAnswer: tt.deid, status: tt.status, wantBearer: testGCPToken}
			srv := httptest.NewServer(fake)
			defer srv.Close()
			g, err := NewGCPDLP(context.Background(), GCPDLPOptions{
				Name: "dlp", Project: "acme-prod", Location: "europe-west1", InfoTypes: []string{"EMAIL_ADDRESS", "CREDIT_CARD_NUMBER"},
				Deidentify: tt.deidentify, Token: testGCPToken, BaseURL: srv.URL,
			})
			if err != nil {
				t.Fatal(err)
			}
			v, err := g.Check(context.Background(), &Request{Direction: DirectionResponse, Text: text})
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want one containing %q", err, tt.err)
				}
				assertNoLeak(t, err, testGCPToken, "jane@")
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if a, b := mustJSON(t, v), mustJSON(t, tt.want); a != b {
				t.Errorf("verdict = %s, want %s", a, b)
			}
			want := dlpInspectRequest{Item: dlpItem{Value: text}, InspectConfig: dlpInspectConfig{
				InfoTypes: []dlpInfoType{{"EMAIL_ADDRESS"}, {"CREDIT_CARD_NUMBER"}}, MinLikelihood: "POSSIBLE"}}
			if a, b := mustJSON(t, fake.inspected), mustJSON(t, want); a != b {
				t.Errorf("inspect request %s, want %s", a, b)
			}
			if n := fake.deidCalls.Load(); n != tt.wantDeid {
				t.Errorf("%d deidentify calls, want %d", n, tt.wantDeid)
			}
			if tt.wantDeid > 0 && fake.deidentified.Item.Value != text {
				t.Errorf("deidentify item %q", fake.deidentified.Item.Value)
			}
		})
	}
}

// TestGCPDLPServiceAccount goes through golang.org/x/oauth2/google with a
// service-account key whose token_uri is the fake.
func TestGCPDLPServiceAccount(t *testing.T) {
	fake := &dlpFake{t: t, inspectAnswer: `{"result":{}}`, wantBearer: testGCPToken}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: must(x509.MarshalPKCS8PrivateKey(key))})
	creds, _ := json.Marshal(map[string]string{
		"type": "service_account", "project_id": "acme-prod", "private_key_id": "k1",
		"private_key": string(keyPEM), "client_email": "gatehouse@acme-prod.iam.gserviceaccount.com",
		"client_id": "1", "token_uri": srv.URL + "/token",
	})
	g, err := NewGCPDLP(context.Background(), GCPDLPOptions{
		Name: "dlp", Project: "acme-prod", Location: "europe-west1", CredentialsJSON: string(creds), BaseURL: srv.URL,
	})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		v, err := g.Check(context.Background(), &Request{Direction: DirectionRequest, Text: "hello"})
		if err != nil || v.Action != Allow {
			t.Fatalf("verdict %+v, err %v", v, err)
		}
	}
	if n := fake.tokenCalls.Load(); n != 1 {
		t.Errorf("%d token requests, want 1 (the token is reused)", n)
	}
}

func TestGCPDLPOptions(t *testing.T) {
	for name, o := range map[string]GCPDLPOptions{
		"no_name":        {Project: "p", Token: "t"},
		"no_project":     {Name: "d", Token: "t"},
		"bad_likelihood": {Name: "d", Project: "p", Token: "t", MinLikelihood: "SURE"},
		"both_creds":     {Name: "d", Project: "p", Token: "t", CredentialsJSON: "{}"},
		"bad_creds":      {Name: "d", Project: "p", CredentialsJSON: `{"type":"service_account","private_key":"` + testGCPToken + `"}`},
	} {
		_, err := NewGCPDLP(context.Background(), o)
		if err == nil {
			t.Errorf("%s: NewGCPDLP succeeded", name)
			continue
		}
		assertNoLeak(t, err, testGCPToken)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
