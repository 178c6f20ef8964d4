package guardrail

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"gatehouse/internal/inspect"
)

// NightfallOptions configure the Nightfall adapter (scan API v3).
type NightfallOptions struct {
	// Name identifies the guardrail (required).
	Name string
	// APIKey is the Nightfall API key (required).
	APIKey string
	// PolicyUUIDs name policies defined in the Nightfall dashboard.
	// Exactly one of PolicyUUIDs and DetectionRules is required.
	PolicyUUIDs []string
	// DetectionRules is an inline policy's "detectionRules" array, as
	// Nightfall documents it (passed through unchanged).
	DetectionRules json.RawMessage
	// MinConfidence is the lowest confidence that counts: VERY_UNLIKELY,
	// UNLIKELY, POSSIBLE, LIKELY (default) or VERY_LIKELY.
	MinConfidence string
	// Redact, when true, mutates with Nightfall's redactedPayload (the
	// detection rules must configure a redaction) instead of denying.
	// Without a redacted payload in the answer, findings still deny.
	Redact bool
	// BaseURL overrides https://api.nightfall.ai (tests).
	BaseURL string
	// HTTPClient replaces the default client (its transport is kept).
	HTTPClient *http.Client
}

// Nightfall checks content with Nightfall's POST /v3/scan. Findings at or
// above MinConfidence deny, or are redacted with Redact. The matched text
// Nightfall returns ("finding") is never decoded, so it cannot reach a log
// or an error.
type Nightfall struct {
	name    string
	url     string
	auth    string
	policy  json.RawMessage // the "policy" or "policyUUIDs" member
	minConf string
	redact  bool
	client  *http.Client
}

var _ Guardrail = (*Nightfall)(nil)

// NewNightfall validates o.
func NewNightfall(o NightfallOptions) (*Nightfall, error) {
	if o.Name == "" {
		return nil, errors.New("nightfall guardrail: name is required")
	}
	errf := func(format string, a ...any) error {
		return fmt.Errorf("guardrail %q (nightfall): "+format, append([]any{o.Name}, a...)...)
	}
	if o.APIKey == "" {
		return nil, errf("api key is required")
	}
	if o.MinConfidence == "" {
		o.MinConfidence = "LIKELY"
	}
	if dlpLikelihoodRank(o.MinConfidence) < 0 {
		return nil, errf("min confidence %q: want one of %s", o.MinConfidence, strings.Join(dlpLikelihoods, ", "))
	}
	n := &Nightfall{name: o.Name, auth: "Bearer " + o.APIKey, minConf: o.MinConfidence, redact: o.Redact, client: newHTTPClient(o.HTTPClient)}
	var err error
	switch {
	case len(o.PolicyUUIDs) > 0 && len(o.DetectionRules) > 0:
		return nil, errf("set policy uuids or detection rules, not both")
	case len(o.PolicyUUIDs) > 0:
		n.policy, err = json.Marshal(o.PolicyUUIDs)
	case len(o.DetectionRules) > 0:
		var rules []json.RawMessage
		if json.Unmarshal(o.DetectionRules, &rules) != nil || len(rules) == 0 {
			return nil, errf("detection rules: want a non-empty JSON array")
		}
		n.policy, err = json.Marshal(struct {
			DetectionRules json.RawMessage `json:"detectionRules"`
		}{o.DetectionRules})
	default:
		return nil, errf("policy uuids or detection rules are required")
	}
	if err != nil {
		return nil, errf("encoding policy: %w", err)
	}
	base, err := parseBaseURL(o.BaseURL, "https://api.nightfall.ai")
	if err != nil {
		return nil, errf("%w", err)
	}
	n.url = base.String() + "/v3/scan"
	return n, nil
}

// Name implements Guardrail.
func (n *Nightfall) Name() string { return n.name }

// Check implements Guardrail.
func (n *Nightfall) Check(ctx context.Context, r *Request) (Verdict, error) {
	if r.Text == "" {
		return Verdict{Action: Allow}, nil
	}
	req := struct {
		Payload     []string        `json:"payload"`
		Policy      json.RawMessage `json:"policy,omitempty"`
		PolicyUUIDs json.RawMessage `json:"policyUUIDs,omitempty"`
	}{Payload: []string{r.Text}}
	if n.policy[0] == '[' {
		req.PolicyUUIDs = n.policy
	} else {
		req.Policy = n.policy
	}
	body, err := json.Marshal(req)
	if err != nil {
		return Verdict{}, fmt.Errorf("encoding request: %w", err)
	}
	rb, err := postJSON(ctx, n.client, n.url, http.Header{"Authorization": {n.auth}}, body)
	if err != nil {
		return Verdict{}, fmt.Errorf("scan: %w", err)
	}
	res, err := parseNightfall(rb, n.minConf)
	if err != nil {
		return Verdict{}, fmt.Errorf("scan: %w", err)
	}
	switch {
	case len(res.detectors) == 0:
		return Verdict{Action: Allow, Findings: res.findings}, nil
	case n.redact && res.redacted != nil && *res.redacted != "":
		return Verdict{Action: Mutate, Text: *res.redacted, Findings: res.findings}, nil
	}
	return Verdict{Action: Deny, Reason: "blocked by guardrail " + n.name + " (" + strings.Join(res.detectors, ", ") + ")", Findings: res.findings}, nil
}

// nightfallResponse is the part of a scan answer we read. Each finding's
// "finding" member (the matched text) is deliberately absent.
type nightfallResponse struct {
	Findings [][]struct {
		Detector struct {
			Name string `json:"name"`
		} `json:"detector"`
		Confidence string `json:"confidence"`
		Location   struct {
			ByteRange *struct {
				Start int64 `json:"start"`
				End   int64 `json:"end"`
			} `json:"byteRange"`
		} `json:"location"`
	} `json:"findings"`
	RedactedPayload []string `json:"redactedPayload"`
}

type nightfallResult struct {
	findings  []inspect.Finding
	detectors []string // distinct names of the counted findings' detectors, at most 8
	redacted  *string
}

func parseNightfall(b []byte, minConf string) (nightfallResult, error) {
	var resp nightfallResponse
	if err := decodeResponse(b, &resp); err != nil {
		return nightfallResult{}, err
	}
	if len(resp.Findings) > 1 {
		return nightfallResult{}, fmt.Errorf("%w: findings for %d payloads, sent 1", errBadVerdict, len(resp.Findings))
	}
	var res nightfallResult
	minRank := dlpLikelihoodRank(minConf)
	if len(resp.Findings) == 1 {
		for _, f := range resp.Findings[0] {
			rank := dlpLikelihoodRank(f.Confidence)
			if rank < minRank {
				continue
			}
			name := cleanName(f.Detector.Name)
			if name == "" {
				name = "detector"
			}
			if len(res.detectors) < 8 && !slices.Contains(res.detectors, name) {
				res.detectors = append(res.detectors, name)
			}
			br := f.Location.ByteRange
			if br == nil || br.Start < 0 || br.End < br.Start || br.End > 1<<40 {
				continue
			}
			res.findings = append(res.findings, inspect.Finding{
				Category:   dlpCategory(strings.ToUpper(strings.ReplaceAll(name, " ", "_"))),
				Type:       bedrockType(strings.ReplaceAll(name, " ", "_")),
				Start:      int(br.Start),
				End:        int(br.End),
				Confidence: dlpConfidence(rank),
			})
		}
	}
	if len(resp.RedactedPayload) == 1 {
		res.redacted = &resp.RedactedPayload[0]
	}
	return res, nil
}
