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

const testNightfallKey = "NF-nightfall-key-do-not-leak"

// nightfallFake follows POST /v3/scan: bearer API key, body
// {"payload":[…],"policy":{…}} or {"payload":[…],"policyUUIDs":[…]}.
func nightfallFake(t *testing.T, status int, answer string) (*httptest.Server, *map[string]json.RawMessage) {
	t.Helper()
	got := new(map[string]json.RawMessage)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || r.URL.Path != "/v3/scan" {
			t.Errorf("request %s %s", r.Method, r.URL.Path)
		}
		if a := r.Header.Get("Authorization"); a != "Bearer "+testNightfallKey {
			t.Errorf("Authorization %q", a)
		}
		if err := json.Unmarshal(body, got); err != nil {
			t.Errorf("body: %v", err)
		}
		w.Header().Set("Content-Type", "application/json")
		if status != 0 {
			w.WriteHeader(status)
		}
		io.WriteString(w, answer)
	}))
	t.Cleanup(srv.Close)
	return srv, got
}

func TestNightfall(t *testing.T) {
	text := "key AKIAIOSFODNN7EXAMPLE and ssn 123-45-6789"
	rules := json.RawMessage(`[{"name":"creds","logicalOp":"ANY","detectors":[{"detectorType":"NIGHTFALL_DETECTOR","nightfallDetector":"API_KEY","minConfidence":"LIKELY","minNumFindings":1,"displayName":"API key"}]}]`)
	found := `{"findings":[[
		{"finding":"AKIAIOSFODNN7EXAMPLE","detector":{"name":"API key","uuid":"u1"},"confidence":"VERY_LIKELY","location":{"byteRange":{"start":4,"end":24},"codepointRange":{"start":4,"end":24}},"matchedDetectionRules":["creds"]},
		{"finding":"123-45-6789","detector":{"name":"US Social Security Number","uuid":"u2"},"confidence":"POSSIBLE","location":{"byteRange":{"start":33,"end":44}}}
	]],"redactedPayload":[%s]}`
	apiKey := inspect.Finding{Category: inspect.CategorySecret, Type: "api-key", Start: 4, End: 24, Confidence: inspect.High}
	tests := []struct {
		name   string
		opts   NightfallOptions
		status int
		answer string
		want   Verdict
		field  string // the policy member the request must carry
		err    string
	}{
		{"clean_allows", NightfallOptions{DetectionRules: rules}, 0, `{"findings":[[]],"redactedPayload":[""]}`, Verdict{Action: Allow}, "policy", ""},
		{"finding_denies", NightfallOptions{DetectionRules: rules}, 0, strings.Replace(found, "%s", `""`, 1),
			Verdict{Action: Deny, Reason: "blocked by guardrail nf (API key)", Findings: []inspect.Finding{apiKey}}, "policy", ""},
		{"policy_uuids", NightfallOptions{PolicyUUIDs: []string{"9f3b1b5c-0000-4000-8000-000000000001"}}, 0, strings.Replace(found, "%s", `""`, 1),
			Verdict{Action: Deny, Reason: "blocked by guardrail nf (API key)", Findings: []inspect.Finding{apiKey}}, "policyUUIDs", ""},
		{"low_threshold_counts_possible", NightfallOptions{DetectionRules: rules, MinConfidence: "POSSIBLE"}, 0, strings.Replace(found, "%s", `""`, 1),
			Verdict{Action: Deny, Reason: "blocked by guardrail nf (API key, US Social Security Number)", Findings: []inspect.Finding{apiKey,
				{Category: inspect.CategoryPII, Type: "us-social-security-number", Start: 33, End: 44, Confidence: inspect.Medium}}}, "policy", ""},
		{"redact_mutates", NightfallOptions{DetectionRules: rules, Redact: true}, 0, strings.Replace(found, "%s", `"key [REDACTED] and ssn 123-45-6789"`, 1),
			Verdict{Action: Mutate, Text: "key [REDACTED] and ssn 123-45-6789", Findings: []inspect.Finding{apiKey}}, "policy", ""},
		{"redact_without_payload_denies", NightfallOptions{DetectionRules: rules, Redact: true}, 0, strings.Replace(found, "%s", `""`, 1),
			Verdict{Action: Deny, Reason: "blocked by guardrail nf (API key)", Findings: []inspect.Finding{apiKey}}, "policy", ""},
		{"unauthorized", NightfallOptions{DetectionRules: rules}, 401, `{"code":40100,"message":"Unauthenticated"}`, Verdict{}, "policy", "HTTP 401"},
		{"too_many_payloads", NightfallOptions{DetectionRules: rules}, 0, `{"findings":[[],[]]}`, Verdict{}, "policy", "bad verdict"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, got := nightfallFake(t, tt.status, tt.answer)
			o := tt.opts
			o.Name, o.APIKey, o.BaseURL = "nf", testNightfallKey, srv.URL
			n, err := NewNightfall(o)
			if err != nil {
				t.Fatal(err)
			}
			v, err := n.Check(context.Background(), &Request{Direction: DirectionResponse, Text: text})
			if string((*got)["payload"]) != mustJSON(t, []string{text}) || (*got)[tt.field] == nil {
				t.Errorf("request %v: want the payload and %q", *got, tt.field)
			}
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want one containing %q", err, tt.err)
				}
				assertNoLeak(t, err, testNightfallKey, "AKIA")
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if a, b := mustJSON(t, v), mustJSON(t, tt.want); a != b {
				t.Errorf("verdict = %s, want %s", a, b)
			}
			if strings.Contains(mustJSON(t, v), "AKIA") && v.Action != Mutate {
				t.Errorf("verdict carries the finding text")
			}
		})
	}
}

func TestNightfallOptions(t *testing.T) {
	for name, o := range map[string]NightfallOptions{
		"no_name":         {APIKey: testNightfallKey, PolicyUUIDs: []string{"x"}},
		"no_key":          {Name: "nf", PolicyUUIDs: []string{"x"}},
		"no_policy":       {Name: "nf", APIKey: testNightfallKey},
		"both_policies":   {Name: "nf", APIKey: testNightfallKey, PolicyUUIDs: []string{"x"}, DetectionRules: json.RawMessage(`[{}]`)},
		"rules_not_array": {Name: "nf", APIKey: testNightfallKey, DetectionRules: json.RawMessage(`{}`)},
		"bad_confidence":  {Name: "nf", APIKey: testNightfallKey, PolicyUUIDs: []string{"x"}, MinConfidence: "MAYBE"},
	} {
		_, err := NewNightfall(o)
		if err == nil {
			t.Errorf("%s: NewNightfall succeeded", name)
			continue
		}
		assertNoLeak(t, err, testNightfallKey)
	}
}
