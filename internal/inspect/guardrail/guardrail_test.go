package guardrail

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"gatehouse/internal/inspect"
)

func TestTextOf(t *testing.T) {
	tests := []struct {
		name, doc, want string
	}{
		{"object_values_not_keys", `{"path":"/etc/passwd","mode":"r"}`, "/etc/passwd\nr"},
		{"nested", `{"a":{"b":["x",{"c":"y"}],"d":1,"e":"z"},"f":true}`, "x\ny\nz"},
		{"keys_after_composites", `{"a":[1,2],"b":"v","c":{"k":"w"},"d":"u"}`, "v\nw\nu"},
		{"array_of_strings", `["a","b"]`, "a\nb"},
		{"string", `"just text"`, "just text"},
		{"no_strings", `{"n":1,"b":false,"z":null}`, ""},
		{"escapes", `{"t":"line\nnext \u00e9"}`, "line\nnext é"},
		{"invalid_keeps_prefix", `{"a":"b","c":`, "b"},
		{"empty", ``, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := TextOf(json.RawMessage(tt.doc)); got != tt.want {
				t.Errorf("TextOf(%s) = %q, want %q", tt.doc, got, tt.want)
			}
		})
	}
}

// checkFunc is a Guardrail made of a function, to exercise Wrap.
type checkFunc func(ctx context.Context, r *Request) (Verdict, error)

func (checkFunc) Name() string { return "test-guard" }
func (f checkFunc) Check(ctx context.Context, r *Request) (Verdict, error) {
	return f(ctx, r)
}

func TestWrapFailModes(t *testing.T) {
	failing := checkFunc(func(context.Context, *Request) (Verdict, error) {
		return Verdict{}, errors.New("connection refused")
	})
	hanging := checkFunc(func(ctx context.Context, _ *Request) (Verdict, error) {
		<-ctx.Done() // returns only when Wrap's timeout fires
		return Verdict{}, ctx.Err()
	})
	badAction := checkFunc(func(context.Context, *Request) (Verdict, error) {
		return Verdict{Action: "maybe"}, nil
	})
	tests := []struct {
		name       string
		g          Guardrail
		mode       FailMode
		wantAction Action
		wantReason string
		wantErr    string
		timeout    time.Duration
	}{
		{"error_closed", failing, "", Deny, "guardrail test-guard failed: error", "connection refused", 0},
		{"error_open", failing, FailOpen, Allow, "", "connection refused", 0},
		{"timeout_closed", hanging, FailClosed, Deny, "guardrail test-guard failed: timeout", "timed out", 1},
		{"timeout_open", hanging, FailOpen, Allow, "", "timed out", 1},
		{"bad_verdict_closed", badAction, FailClosed, Deny, "guardrail test-guard failed: bad response", "unknown action", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var reported []error
			w, err := Wrap(tt.g, Settings{
				FailMode: tt.mode, Timeout: tt.timeout, // 1ns: the hanging guardrail's context is done at once
				Logger: discardLogger,
				OnFailure: func(name string, err error) {
					if name != "test-guard" {
						t.Errorf("reported name %q", name)
					}
					reported = append(reported, err)
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			v, err := w.Check(context.Background(), &Request{Direction: DirectionRequest, Text: "x"})
			if err != nil {
				t.Fatalf("Check error: %v", err)
			}
			if v.Action != tt.wantAction || v.Reason != tt.wantReason {
				t.Errorf("verdict = %+v, want %s %q", v, tt.wantAction, tt.wantReason)
			}
			if len(reported) != 1 || !strings.Contains(reported[0].Error(), tt.wantErr) {
				t.Errorf("reported %v, want one error containing %q", reported, tt.wantErr)
			}
			// Decide gives the same verdict and the failure behind it.
			v2, f := w.Decide(context.Background(), &Request{Direction: DirectionRequest, Text: "x"})
			wantKind := strings.TrimPrefix(tt.wantReason, "guardrail test-guard failed: ")
			if tt.wantReason == "" {
				wantKind = map[string]string{"connection refused": "error", "timed out": "timeout"}[tt.wantErr]
			}
			if v2.Action != v.Action || v2.Reason != v.Reason || f == nil || f.Kind != wantKind || f.Guardrail != "test-guard" {
				t.Errorf("Decide = %+v, %+v; want the same verdict and a %q failure", v2, f, wantKind)
			}
		})
	}
}

func TestWrapDirections(t *testing.T) {
	calls := 0
	g := checkFunc(func(context.Context, *Request) (Verdict, error) {
		calls++
		return Verdict{Action: Deny, Reason: "no"}, nil
	})
	w, err := Wrap(g, Settings{Directions: []Direction{DirectionResponse}})
	if err != nil {
		t.Fatal(err)
	}
	v, _ := w.Check(context.Background(), &Request{Direction: DirectionRequest})
	if v.Action != Allow || calls != 0 {
		t.Errorf("request direction: verdict %+v after %d calls, want allow without a call", v, calls)
	}
	v, _ = w.Check(context.Background(), &Request{Direction: DirectionResponse})
	if v.Action != Deny || v.Reason != "no" || calls != 1 {
		t.Errorf("response direction: verdict %+v after %d calls, want deny after one call", v, calls)
	}
}

func TestWrapCleansVerdicts(t *testing.T) {
	text := "mail bob@example.com now"
	tests := []struct {
		name string
		in   Verdict
		want Verdict
		bad  bool
	}{
		{"deny_default_reason", Verdict{Action: Deny}, Verdict{Action: Deny, Reason: "denied by guardrail test-guard"}, false},
		{"deny_reason_controls", Verdict{Action: Deny, Reason: "bad\x1b[31m\nthing\u202e"}, Verdict{Action: Deny, Reason: "bad [31m thing"}, false},
		{"deny_reason_long", Verdict{Action: Deny, Reason: strings.Repeat("é", 200)}, Verdict{Action: Deny, Reason: strings.Repeat("é", 128) + "…"}, false},
		{"findings_out_of_range_dropped", Verdict{Action: Allow, Findings: []inspect.Finding{
			{Category: inspect.CategoryPII, Type: "email", Start: 5, End: 20, Confidence: inspect.High},
			{Category: inspect.CategoryPII, Type: "email", Start: 5, End: 99, Confidence: inspect.High},
			{Category: inspect.CategoryPII, Type: "email", Start: 6, End: 5, Confidence: inspect.High},
		}}, Verdict{Action: Allow, Findings: []inspect.Finding{{Category: inspect.CategoryPII, Type: "email", Start: 5, End: 20, Confidence: inspect.High}}}, false},
		{"finding_names_cleaned", Verdict{Action: Allow, Findings: []inspect.Finding{
			{Category: "pii\n\x1b[31m", Type: strings.Repeat("x", 100) + "\u202e", Start: 0, End: 4, Confidence: inspect.High},
		}}, Verdict{Action: Allow, Findings: []inspect.Finding{{Category: "pii31m", Type: strings.Repeat("x", 64), Start: 0, End: 4, Confidence: inspect.High}}}, false},
		{"mutate_json", Verdict{Action: Mutate, JSON: json.RawMessage(`{"a":1}`)}, Verdict{Action: Mutate, JSON: json.RawMessage(`{"a":1}`)}, false},
		{"mutate_invalid_json", Verdict{Action: Mutate, JSON: json.RawMessage(`{"a":`)}, Verdict{}, true},
		{"mutate_both", Verdict{Action: Mutate, JSON: json.RawMessage(`1`), Text: "x"}, Verdict{}, true},
		{"mutate_nothing", Verdict{Action: Mutate}, Verdict{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := checkFunc(func(context.Context, *Request) (Verdict, error) { return tt.in, nil })
			failed := false
			w, err := Wrap(g, Settings{Logger: discardLogger, OnFailure: func(string, error) { failed = true }})
			if err != nil {
				t.Fatal(err)
			}
			v, _ := w.Check(context.Background(), &Request{Direction: DirectionResponse, Text: text})
			if failed != tt.bad {
				t.Fatalf("failure reported = %v, want %v (verdict %+v)", failed, tt.bad, v)
			}
			if tt.bad {
				return
			}
			if got, want := mustJSON(t, v), mustJSON(t, tt.want); got != want {
				t.Errorf("verdict = %s, want %s", got, want)
			}
		})
	}
}

func TestWrapSettingsValidation(t *testing.T) {
	g := checkFunc(nil)
	for _, s := range []Settings{
		{FailMode: "sideways"},
		{Timeout: -1},
		{MaxResponseBytes: -1},
		{Directions: []Direction{"up"}},
	} {
		if _, err := Wrap(g, s); err == nil {
			t.Errorf("Wrap(%+v) succeeded, want an error", s)
		}
	}
}

var discardLogger = slog.New(slog.DiscardHandler)

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
