package guardrail

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"gatehouse/internal/inspect"
	"gatehouse/internal/webhooksig"
)

const (
	testWebhookKey = "0123456789abcdef-webhook-key"
	testBearer     = "bearer-token-do-not-leak"
)

// webhookFake is a receiver that follows the contract: it verifies the
// signature, timestamp and bearer token, records the request and answers
// with answer (or status, when set).
func webhookFake(t *testing.T, now time.Time, status int, answer string) (*httptest.Server, *webhookRequest) {
	t.Helper()
	got := new(webhookRequest)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || r.URL.Path != "/check" {
			t.Errorf("request %s %s, want POST /check", r.Method, r.URL.Path)
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type %q", ct)
		}
		if a := r.Header.Get("Authorization"); a != "Bearer "+testBearer {
			t.Errorf("Authorization %q", a)
		}
		if err := webhooksig.Verify([]byte(testWebhookKey), r.Header.Get(webhooksig.TimestampHeader), r.Header.Get(webhooksig.SignatureHeader), body, now, 5*time.Minute); err != nil {
			t.Errorf("signature: %v", err)
		}
		if err := json.Unmarshal(body, got); err != nil {
			t.Errorf("body: %v", err)
		}
		if status != 0 {
			w.WriteHeader(status)
		}
		io.WriteString(w, answer)
	}))
	t.Cleanup(srv.Close)
	return srv, got
}

func TestWebhook(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	req := &Request{
		Direction: DirectionRequest, Server: "files", Upstream: "fs-1", Method: "tools/call", Tool: "read_file",
		Agent: "build-bot", Team: "platform", JSON: json.RawMessage(`{"path":"/etc/shadow"}`), Text: "/etc/shadow",
	}
	tests := []struct {
		name   string
		status int
		answer string
		want   Verdict
		err    string
	}{
		{"allow", 0, `{"action":"allow"}`, Verdict{Action: Allow}, ""},
		{"deny", 0, `{"action":"deny","reason":"system files are off limits","findings":[{"category":"secret","type":"path","start":0,"end":11,"confidence":"high"}]}`,
			Verdict{Action: Deny, Reason: "system files are off limits", Findings: []inspect.Finding{{Category: inspect.CategorySecret, Type: "path", Start: 0, End: 11, Confidence: inspect.High}}}, ""},
		{"mutate_json", 0, `{"action":"mutate","json":{"path":"/tmp/x"}}`, Verdict{Action: Mutate, JSON: json.RawMessage(`{"path":"/tmp/x"}`)}, ""},
		{"mutate_text", 0, `{"action":"mutate","text":"[redacted]"}`, Verdict{Action: Mutate, Text: "[redacted]"}, ""},
		{"finding_default_confidence", 0, `{"action":"allow","findings":[{"category":"pii","type":"x","start":1,"end":2}]}`,
			Verdict{Action: Allow, Findings: []inspect.Finding{{Category: inspect.CategoryPII, Type: "x", Start: 1, End: 2, Confidence: inspect.Medium}}}, ""},
		{"unknown_action", 0, `{"action":"shrug"}`, Verdict{}, "bad verdict"},
		{"not_json", 0, `<html>oops</html>`, Verdict{}, "decoding response"},
		{"echoed_confidence", 0, `{"action":"allow","findings":[{"start":0,"end":1,"confidence":"/etc/shadow"}]}`, Verdict{}, "decoding response"},
		{"echoed_number", 0, `{"action":"allow","findings":[{"start":1e999,"end":1}]}`, Verdict{}, "decoding response"},
		{"server_error", 500, `{"error":"/etc/shadow is bad"}`, Verdict{}, "HTTP 500"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, got := webhookFake(t, now, tt.status, tt.answer)
			w, err := NewWebhook(WebhookOptions{Name: "corp", URL: srv.URL + "/check", Key: testWebhookKey, BearerToken: testBearer, Now: func() time.Time { return now }})
			if err != nil {
				t.Fatal(err)
			}
			v, err := w.Check(context.Background(), req)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want one containing %q", err, tt.err)
				}
				assertNoLeak(t, err, testWebhookKey, testBearer, "/etc/shadow", "1e999")
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if a, b := mustJSON(t, v), mustJSON(t, tt.want); a != b {
				t.Errorf("verdict = %s, want %s", a, b)
			}
			want := webhookRequest{Direction: "request", Server: "files", Upstream: "fs-1", Method: "tools/call", Tool: "read_file",
				Agent: "build-bot", Team: "platform", Text: "/etc/shadow", JSON: json.RawMessage(`{"path":"/etc/shadow"}`)}
			if a, b := mustJSON(t, got), mustJSON(t, want); a != b {
				t.Errorf("receiver got %s, want %s", a, b)
			}
		})
	}
}

func TestWebhookOptions(t *testing.T) {
	for _, o := range []WebhookOptions{
		{URL: "https://x/y", Key: testWebhookKey},
		{Name: "a", URL: "ftp://x/y", Key: testWebhookKey},
		{Name: "a", URL: "https://user:pw@x/y", Key: testWebhookKey},
		{Name: "a", URL: "https://x/y", Key: "short"},
	} {
		_, err := NewWebhook(o)
		if err == nil {
			t.Errorf("NewWebhook(%+v) succeeded", o)
			continue
		}
		assertNoLeak(t, err, "pw", "short")
	}
}

// TestResponseLimit checks that Wrap's response cap reaches the adapter's
// HTTP client.
func TestResponseLimit(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"action":"mutate","text":"`+strings.Repeat("x", 4096)+`"}`)
	}))
	defer srv.Close()
	wh, err := NewWebhook(WebhookOptions{Name: "big", URL: srv.URL, Key: testWebhookKey})
	if err != nil {
		t.Fatal(err)
	}
	var reported error
	w, err := Wrap(wh, Settings{MaxResponseBytes: 1024, Logger: discardLogger, OnFailure: func(_ string, err error) { reported = err }})
	if err != nil {
		t.Fatal(err)
	}
	v, _ := w.Check(context.Background(), &Request{Direction: DirectionResponse, Text: "t"})
	if v.Action != Deny || !errors.Is(reported, ErrResponseTooLarge) {
		t.Errorf("verdict %+v, reported %v; want deny and ErrResponseTooLarge", v, reported)
	}
	// Without the cap the same answer is fine.
	w, _ = Wrap(wh, Settings{Logger: discardLogger})
	if v, _ := w.Check(context.Background(), &Request{Direction: DirectionResponse, Text: "t"}); v.Action != Mutate {
		t.Errorf("uncapped verdict %+v, want mutate", v)
	}
}

// assertNoLeak fails when err's text contains any of secrets.
func assertNoLeak(t *testing.T, err error, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(err.Error(), s) {
			t.Errorf("error %q contains %q", err, s)
		}
	}
}
