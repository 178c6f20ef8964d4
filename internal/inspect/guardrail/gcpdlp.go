package guardrail

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"

	"gatehouse/internal/inspect"
)

// GCPDLPOptions configure the Google Cloud DLP (Sensitive Data Protection)
// adapter.
type GCPDLPOptions struct {
	// Name identifies the guardrail (required).
	Name string
	// Project is the Google Cloud project id (required).
	Project string
	// Location is the processing location (default "global").
	Location string
	// InfoTypes to look for, e.g. "EMAIL_ADDRESS", "CREDIT_CARD_NUMBER"
	// (default: DLP's default set).
	InfoTypes []string
	// MinLikelihood is the lowest likelihood that counts: VERY_UNLIKELY,
	// UNLIKELY, POSSIBLE (default), LIKELY or VERY_LIKELY.
	MinLikelihood string
	// Deidentify, when true, redacts findings (content:deidentify,
	// replacing each with its info type, "[EMAIL_ADDRESS]") and mutates
	// instead of denying.
	Deidentify bool
	// CredentialsJSON is a service-account (or other Google credentials)
	// JSON key. Token is a static OAuth2 access token, for tests and
	// short-lived setups. With neither, Application Default Credentials
	// are used.
	CredentialsJSON string
	Token           string
	// BaseURL overrides https://dlp.googleapis.com (regional endpoints,
	// tests).
	BaseURL string
	// HTTPClient is the base client (its transport is kept).
	HTTPClient *http.Client
}

// GCPDLP checks content with Cloud DLP's content:inspect: findings at or
// above MinLikelihood deny, or, with Deidentify, are redacted by
// content:deidentify and the call goes on with the redacted text.
type GCPDLP struct {
	name       string
	inspectURL string
	deidURL    string
	infoTypes  []dlpInfoType
	minLike    string
	deidentify bool
	client     *http.Client
}

var _ Guardrail = (*GCPDLP)(nil)

// dlpLikelihoods in increasing order.
var dlpLikelihoods = []string{"VERY_UNLIKELY", "UNLIKELY", "POSSIBLE", "LIKELY", "VERY_LIKELY"}

func dlpLikelihoodRank(s string) int {
	for i, l := range dlpLikelihoods {
		if l == s {
			return i
		}
	}
	return -1
}

const dlpScope = "https://www.googleapis.com/auth/cloud-platform"

// NewGCPDLP validates o and sets up the token source. Credentials are
// parsed here; tokens are fetched on first use.
func NewGCPDLP(ctx context.Context, o GCPDLPOptions) (*GCPDLP, error) {
	if o.Name == "" {
		return nil, errors.New("gcpdlp guardrail: name is required")
	}
	errf := func(format string, a ...any) error {
		return fmt.Errorf("guardrail %q (gcpdlp): "+format, append([]any{o.Name}, a...)...)
	}
	if o.Project == "" {
		return nil, errf("project is required")
	}
	if o.Location == "" {
		o.Location = "global"
	}
	if o.MinLikelihood == "" {
		o.MinLikelihood = "POSSIBLE"
	}
	if dlpLikelihoodRank(o.MinLikelihood) < 0 {
		return nil, errf("min likelihood %q: want one of %s", o.MinLikelihood, strings.Join(dlpLikelihoods, ", "))
	}
	base, err := parseBaseURL(o.BaseURL, "https://dlp.googleapis.com")
	if err != nil {
		return nil, errf("%w", err)
	}
	var ts oauth2.TokenSource
	switch {
	case o.CredentialsJSON != "" && o.Token != "":
		return nil, errf("set credentials json or token, not both")
	case o.Token != "":
		ts = oauth2.StaticTokenSource(&oauth2.Token{AccessToken: o.Token, TokenType: "Bearer"})
	default:
		// The token source outlives ctx: its HTTP client comes from a
		// context that is never cancelled, with the response limit.
		tctx := context.WithValue(context.WithoutCancel(ctx), oauth2.HTTPClient, newHTTPClient(o.HTTPClient))
		var creds *google.Credentials
		if o.CredentialsJSON != "" {
			if err := checkServiceAccountKey([]byte(o.CredentialsJSON)); err != nil {
				return nil, errf("credentials: %w", err)
			}
			creds, err = google.CredentialsFromJSONWithType(tctx, []byte(o.CredentialsJSON), credentialsType([]byte(o.CredentialsJSON)), dlpScope)
		} else {
			creds, err = google.FindDefaultCredentials(tctx, dlpScope)
		}
		if err != nil {
			// The google package's parse errors describe the JSON's
			// shape, not its values.
			return nil, errf("credentials: %w", err)
		}
		ts = creds.TokenSource
	}
	base0 := newHTTPClient(o.HTTPClient)
	client := &http.Client{
		Timeout:   base0.Timeout,
		Transport: &oauth2.Transport{Source: oauth2.ReuseTokenSource(nil, ts), Base: base0.Transport},
	}
	parent := fmt.Sprintf("/v2/projects/%s/locations/%s/", url.PathEscape(o.Project), url.PathEscape(o.Location))
	g := &GCPDLP{
		name:       o.Name,
		inspectURL: base.String() + parent + "content:inspect",
		deidURL:    base.String() + parent + "content:deidentify",
		minLike:    o.MinLikelihood,
		deidentify: o.Deidentify,
		client:     client,
	}
	for _, t := range o.InfoTypes {
		g.infoTypes = append(g.infoTypes, dlpInfoType{Name: t})
	}
	return g, nil
}

// credentialsType reads the "type" of a Google credentials JSON, so that
// CredentialsFromJSONWithType accepts exactly the kind it is given.
func credentialsType(b []byte) google.CredentialsType {
	var f struct {
		Type string `json:"type"`
	}
	_ = json.Unmarshal(b, &f)
	return google.CredentialsType(f.Type)
}

// checkServiceAccountKey parses a service-account key's private key now,
// so a broken key fails at load rather than on the first call (the google
// package parses it only when it fetches a token).
func checkServiceAccountKey(b []byte) error {
	var f struct {
		Type       string `json:"type"`
		PrivateKey string `json:"private_key"`
	}
	if json.Unmarshal(b, &f) != nil {
		return errors.New("not valid JSON")
	}
	if f.Type != "service_account" {
		return nil
	}
	block, _ := pem.Decode([]byte(f.PrivateKey))
	if block == nil {
		return errors.New("service account private_key is not PEM")
	}
	if _, err := x509.ParsePKCS8PrivateKey(block.Bytes); err != nil {
		if _, err1 := x509.ParsePKCS1PrivateKey(block.Bytes); err1 != nil {
			return errors.New("service account private_key is neither PKCS#8 nor PKCS#1")
		}
	}
	return nil
}

// Name implements Guardrail.
func (g *GCPDLP) Name() string { return g.name }

type dlpInfoType struct {
	Name string `json:"name"`
}

type dlpInspectConfig struct {
	InfoTypes     []dlpInfoType `json:"infoTypes,omitempty"`
	MinLikelihood string        `json:"minLikelihood"`
	IncludeQuote  bool          `json:"includeQuote"`
}

type dlpItem struct {
	Value string `json:"value"`
}

type dlpInspectRequest struct {
	Item          dlpItem          `json:"item"`
	InspectConfig dlpInspectConfig `json:"inspectConfig"`
}

type dlpDeidentifyRequest struct {
	Item             dlpItem          `json:"item"`
	InspectConfig    dlpInspectConfig `json:"inspectConfig"`
	DeidentifyConfig json.RawMessage  `json:"deidentifyConfig"`
}

// dlpReplaceWithInfoType redacts every finding as "[INFO_TYPE]".
var dlpReplaceWithInfoType = json.RawMessage(`{"infoTypeTransformations":{"transformations":[{"primitiveTransformation":{"replaceWithInfoTypeConfig":{}}}]}}`)

// Check implements Guardrail.
func (g *GCPDLP) Check(ctx context.Context, r *Request) (Verdict, error) {
	if r.Text == "" {
		return Verdict{Action: Allow}, nil
	}
	ic := dlpInspectConfig{InfoTypes: g.infoTypes, MinLikelihood: g.minLike}
	body, err := json.Marshal(dlpInspectRequest{Item: dlpItem{Value: r.Text}, InspectConfig: ic})
	if err != nil {
		return Verdict{}, fmt.Errorf("encoding request: %w", err)
	}
	rb, err := postJSON(ctx, g.client, g.inspectURL, nil, body)
	if err != nil {
		return Verdict{}, fmt.Errorf("content:inspect: %w", err)
	}
	findings, types, err := parseDLPInspect(rb, g.minLike)
	if err != nil {
		return Verdict{}, fmt.Errorf("content:inspect: %w", err)
	}
	if len(types) == 0 {
		return Verdict{Action: Allow}, nil
	}
	if !g.deidentify {
		return Verdict{Action: Deny, Reason: "blocked by guardrail " + g.name + " (" + strings.Join(types, ", ") + ")", Findings: findings}, nil
	}
	body, err = json.Marshal(dlpDeidentifyRequest{Item: dlpItem{Value: r.Text}, InspectConfig: ic, DeidentifyConfig: dlpReplaceWithInfoType})
	if err != nil {
		return Verdict{}, fmt.Errorf("encoding request: %w", err)
	}
	if rb, err = postJSON(ctx, g.client, g.deidURL, nil, body); err != nil {
		return Verdict{}, fmt.Errorf("content:deidentify: %w", err)
	}
	text, err := parseDLPDeidentify(rb)
	if err != nil {
		return Verdict{}, fmt.Errorf("content:deidentify: %w", err)
	}
	return Verdict{Action: Mutate, Text: text, Findings: findings}, nil
}

// dlpInt64 reads a proto3 int64, which JSON carries as a string ("10")
// though a number is accepted too.
type dlpInt64 int64

func (n *dlpInt64) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return errors.New("bad int64")
	}
	*n = dlpInt64(v)
	return nil
}

type dlpInspectResponse struct {
	Result struct {
		Findings []struct {
			InfoType   dlpInfoType `json:"infoType"`
			Likelihood string      `json:"likelihood"`
			Location   struct {
				ByteRange *struct {
					Start dlpInt64 `json:"start"`
					End   dlpInt64 `json:"end"`
				} `json:"byteRange"`
			} `json:"location"`
		} `json:"findings"`
	} `json:"result"`
}

// parseDLPInspect returns the findings at or above minLike, and their
// distinct info types in order of appearance (at most 8, for the reason).
func parseDLPInspect(b []byte, minLike string) ([]inspect.Finding, []string, error) {
	var resp dlpInspectResponse
	if err := decodeResponse(b, &resp); err != nil {
		return nil, nil, err
	}
	minRank := dlpLikelihoodRank(minLike)
	var fs []inspect.Finding
	var types []string
	for _, f := range resp.Result.Findings {
		rank := dlpLikelihoodRank(f.Likelihood)
		if rank < minRank {
			continue
		}
		name := cleanName(f.InfoType.Name)
		if len(types) < 8 && !slices.Contains(types, name) {
			types = append(types, name)
		}
		br := f.Location.ByteRange
		if br == nil || br.Start < 0 || br.End < br.Start || br.End > 1<<40 {
			continue
		}
		fs = append(fs, inspect.Finding{
			Category:   dlpCategory(f.InfoType.Name),
			Type:       bedrockType(name),
			Start:      int(br.Start),
			End:        int(br.End),
			Confidence: dlpConfidence(rank),
		})
	}
	return fs, types, nil
}

func parseDLPDeidentify(b []byte) (string, error) {
	var resp struct {
		Item *struct {
			Value *string `json:"value"`
		} `json:"item"`
	}
	if err := decodeResponse(b, &resp); err != nil {
		return "", err
	}
	if resp.Item == nil || resp.Item.Value == nil {
		return "", fmt.Errorf("%w: no item value in the response", errBadVerdict)
	}
	return *resp.Item.Value, nil
}

// cleanName keeps a provider-supplied name (an info type, a detector)
// short and free of anything but name characters, since it may end up
// in a deny reason.
func cleanName(s string) string {
	if len(s) > 64 {
		s = s[:64]
	}
	return strings.Map(func(r rune) rune {
		if r == '_' || r == '-' || r == '.' || r == ' ' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, s)
}

// dlpConfidence maps a likelihood rank: LIKELY and VERY_LIKELY are High,
// POSSIBLE Medium, below Low.
func dlpConfidence(rank int) inspect.Confidence {
	switch {
	case rank >= 3:
		return inspect.High
	case rank == 2:
		return inspect.Medium
	}
	return inspect.Low
}

// dlpCategory sorts DLP's info types: credentials and tokens are secrets,
// the rest personal data.
func dlpCategory(infoType string) inspect.Category {
	for _, k := range []string{"CREDENTIAL", "TOKEN", "KEY", "PASSWORD", "SECRET", "AUTH", "COOKIE", "CERTIFICATE", "SIGNED_URL"} {
		if strings.Contains(infoType, k) {
			return inspect.CategorySecret
		}
	}
	return inspect.CategoryPII
}
