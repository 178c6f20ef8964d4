package guardrail

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"gatehouse/internal/inspect"
)

const (
	testAWSKeyID  = "AKIDGATEHOUSETEST"
	testAWSSecret = "aws-secret-do-not-leak"
	testAWSToken  = "aws-session-token-do-not-leak"
)

// bedrockFake follows the ApplyGuardrail REST shape: POST
// /guardrail/{id}/version/{version}/apply with a SigV4 signature, body
// {"source":…,"content":[{"text":{"text":…}}]}.
func bedrockFake(t *testing.T, status int, answer string) (*httptest.Server, *bedrockFakeRequest) {
	t.Helper()
	got := new(bedrockFakeRequest)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || r.URL.Path != "/guardrail/gr-123/version/2/apply" {
			t.Errorf("request %s %s", r.Method, r.URL.Path)
		}
		auth := r.Header.Get("Authorization")
		if !strings.HasPrefix(auth, "AWS4-HMAC-SHA256 Credential="+testAWSKeyID+"/") ||
			!strings.Contains(auth, "/eu-west-1/bedrock/aws4_request") || !strings.Contains(auth, "Signature=") {
			t.Errorf("Authorization %q is not a SigV4 signature for bedrock in eu-west-1", auth)
		}
		if tok := r.Header.Get("X-Amz-Security-Token"); tok != testAWSToken {
			t.Errorf("X-Amz-Security-Token %q", tok)
		}
		if err := json.Unmarshal(body, got); err != nil {
			t.Errorf("body %s: %v", body, err)
		}
		w.Header().Set("Content-Type", "application/json")
		if status != 0 {
			w.Header().Set("X-Amzn-Errortype", "ValidationException")
			w.WriteHeader(status)
		}
		io.WriteString(w, answer)
	}))
	t.Cleanup(srv.Close)
	return srv, got
}

type bedrockFakeRequest struct {
	Source  string `json:"source"`
	Content []struct {
		Text struct {
			Text string `json:"text"`
		} `json:"text"`
	} `json:"content"`
}

func TestBedrock(t *testing.T) {
	text := "contact jane@example.com about the merger"
	tests := []struct {
		name       string
		dir        Direction
		status     int
		answer     string
		wantSource string
		want       Verdict
		err        string
	}{
		{"none_allows", DirectionRequest, 0, `{"action":"NONE","outputs":[],"assessments":[{}]}`, "INPUT", Verdict{Action: Allow}, ""},
		{"blocked_denies", DirectionResponse, 0, `{"action":"GUARDRAIL_INTERVENED","actionReason":"Guardrail blocked.",
			"outputs":[{"text":"Sorry, I can't help with that."}],
			"assessments":[{"contentPolicy":{"filters":[{"type":"PROMPT_ATTACK","confidence":"HIGH","filterStrength":"HIGH","action":"BLOCKED","detected":true}]},
			"topicPolicy":{"topics":[{"name":"Mergers","type":"DENY","action":"BLOCKED","detected":true}]}}]}`,
			"OUTPUT", Verdict{Action: Deny, Reason: "blocked by guardrail aws (content:PROMPT_ATTACK, topic:Mergers)"}, ""},
		{"anonymized_mutates", DirectionResponse, 0, `{"action":"GUARDRAIL_INTERVENED",
			"outputs":[{"text":"contact {EMAIL} about the merger"}],
			"assessments":[{"sensitiveInformationPolicy":{"piiEntities":[{"match":"jane@example.com","type":"EMAIL","action":"ANONYMIZED","detected":true}]}}]}`,
			"OUTPUT", Verdict{Action: Mutate, Text: "contact {EMAIL} about the merger", Findings: []inspect.Finding{
				{Category: inspect.CategoryPII, Type: "email", Start: 8, End: 24, Confidence: inspect.High}}}, ""},
		{"pii_blocked_denies_without_echo", DirectionRequest, 0, `{"action":"GUARDRAIL_INTERVENED","outputs":[{"text":"blocked"}],
			"assessments":[{"sensitiveInformationPolicy":{"piiEntities":[{"match":"jane@example.com","type":"EMAIL","action":"BLOCKED","detected":true}],
			"regexes":[{"name":"deal-code","regex":"M-[0-9]+","match":"nowhere","action":"BLOCKED","detected":true}]}}]}`,
			"INPUT", Verdict{Action: Deny, Reason: "blocked by guardrail aws (sensitive:EMAIL, sensitive:deal-code)", Findings: []inspect.Finding{
				{Category: inspect.CategoryPII, Type: "email", Start: 8, End: 24, Confidence: inspect.High}}}, ""},
		{"unknown_action", DirectionRequest, 0, `{"action":"PONDERING"}`, "INPUT", Verdict{}, "bad verdict"},
		{"service_error", DirectionRequest, 400, `{"message":"The guardrail identifier is invalid."}`, "INPUT", Verdict{}, "ValidationException"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, got := bedrockFake(t, tt.status, tt.answer)
			b, err := NewBedrock(context.Background(), BedrockOptions{
				Name: "aws", GuardrailID: "gr-123", GuardrailVersion: "2", Region: "eu-west-1",
				AccessKeyID: testAWSKeyID, SecretAccessKey: testAWSSecret, SessionToken: testAWSToken,
				BaseURL: srv.URL, MaxAttempts: 1,
			})
			if err != nil {
				t.Fatal(err)
			}
			v, err := b.Check(context.Background(), &Request{Direction: tt.dir, Text: text})
			if got.Source != tt.wantSource || len(got.Content) != 1 || got.Content[0].Text.Text != text {
				t.Errorf("fake got %+v, want source %s and the text", got, tt.wantSource)
			}
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want one containing %q", err, tt.err)
				}
				assertNoLeak(t, err, testAWSSecret, testAWSToken, "jane@")
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if a, b := mustJSON(t, v), mustJSON(t, tt.want); a != b {
				t.Errorf("verdict = %s, want %s", a, b)
			}
			if strings.Contains(v.Reason, "jane") {
				t.Errorf("reason %q echoes the match", v.Reason)
			}
		})
	}
}

func TestBedrockOptions(t *testing.T) {
	ok := BedrockOptions{Name: "aws", GuardrailID: "g", GuardrailVersion: "1", Region: "us-east-1", AccessKeyID: testAWSKeyID, SecretAccessKey: testAWSSecret}
	for name, mod := range map[string]func(*BedrockOptions){
		"no_name":         func(o *BedrockOptions) { o.Name = "" },
		"no_id":           func(o *BedrockOptions) { o.GuardrailID = "" },
		"no_version":      func(o *BedrockOptions) { o.GuardrailVersion = "" },
		"no_region":       func(o *BedrockOptions) { o.Region = "" },
		"key_no_secret":   func(o *BedrockOptions) { o.SecretAccessKey = "" },
		"bad_base_url":    func(o *BedrockOptions) { o.BaseURL = "https://u:" + testAWSSecret + "@x" },
		"negative_tries":  func(o *BedrockOptions) { o.MaxAttempts = -1 },
		"base_url_scheme": func(o *BedrockOptions) { o.BaseURL = "gopher://x" },
	} {
		o := ok
		mod(&o)
		_, err := NewBedrock(context.Background(), o)
		if err == nil {
			t.Errorf("%s: NewBedrock succeeded", name)
			continue
		}
		assertNoLeak(t, err, testAWSSecret)
	}
	if _, err := NewBedrock(context.Background(), ok); err != nil {
		t.Errorf("valid options: %v", err)
	}
}
