package guardrail

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	brtypes "github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"

	"gatehouse/internal/inspect"
)

// BedrockOptions configure the AWS Bedrock Guardrails adapter
// (ApplyGuardrail).
type BedrockOptions struct {
	// Name identifies the guardrail (required).
	Name string
	// GuardrailID is the guardrail's identifier or ARN (required).
	GuardrailID string
	// GuardrailVersion is a version number or "DRAFT" (required).
	GuardrailVersion string
	// Region is the AWS region (required).
	Region string
	// AccessKeyID, SecretAccessKey and SessionToken are static
	// credentials. When AccessKeyID is empty, the SDK's default chain is
	// used (environment, shared config, IMDS, …).
	AccessKeyID, SecretAccessKey, SessionToken string
	// BaseURL overrides the regional endpoint
	// (https://bedrock-runtime.<region>.amazonaws.com), e.g. for a VPC
	// endpoint.
	BaseURL string
	// MaxAttempts bounds the SDK's attempts per check (default 2); Wrap's
	// timeout bounds them all.
	MaxAttempts int
	// HTTPClient replaces the default client (its transport is kept).
	HTTPClient *http.Client
}

// Bedrock checks content with an AWS Bedrock guardrail. Content going up
// (DirectionRequest) is sent as source INPUT, results as OUTPUT. NONE
// allows; GUARDRAIL_INTERVENED denies when a policy BLOCKED, and mutates
// (Verdict.Text) when the guardrail only masked sensitive information
// (ANONYMIZED).
type Bedrock struct {
	name    string
	id, ver string
	client  *bedrockruntime.Client
}

var _ Guardrail = (*Bedrock)(nil)

// NewBedrock validates o and builds the SDK client. With no static
// credentials it loads the default AWS configuration, which reads files
// and the environment but makes no network call.
func NewBedrock(ctx context.Context, o BedrockOptions) (*Bedrock, error) {
	if o.Name == "" {
		return nil, errors.New("bedrock guardrail: name is required")
	}
	errf := func(format string, a ...any) error {
		return fmt.Errorf("guardrail %q (bedrock): "+format, append([]any{o.Name}, a...)...)
	}
	switch {
	case o.GuardrailID == "":
		return nil, errf("guardrail id is required")
	case o.GuardrailVersion == "":
		return nil, errf("guardrail version is required")
	case o.Region == "":
		return nil, errf("region is required")
	case o.AccessKeyID != "" && o.SecretAccessKey == "":
		return nil, errf("secret access key is required with an access key id")
	case o.MaxAttempts < 0:
		return nil, errf("max attempts must not be negative")
	}
	if o.MaxAttempts == 0 {
		o.MaxAttempts = 2
	}
	var cfg aws.Config
	if o.AccessKeyID != "" {
		cfg = aws.Config{
			Region:      o.Region,
			Credentials: credentials.NewStaticCredentialsProvider(o.AccessKeyID, o.SecretAccessKey, o.SessionToken),
		}
	} else {
		var err error
		if cfg, err = config.LoadDefaultConfig(ctx, config.WithRegion(o.Region)); err != nil {
			return nil, errf("loading AWS configuration: %w", err)
		}
	}
	var base *string
	if o.BaseURL != "" {
		u, err := parseBaseURL(o.BaseURL, "")
		if err != nil {
			return nil, errf("%w", err)
		}
		base = aws.String(u.String())
	}
	client := bedrockruntime.NewFromConfig(cfg, func(bo *bedrockruntime.Options) {
		bo.BaseEndpoint = base
		bo.HTTPClient = newHTTPClient(o.HTTPClient)
		bo.RetryMaxAttempts = o.MaxAttempts
	})
	return &Bedrock{name: o.Name, id: o.GuardrailID, ver: o.GuardrailVersion, client: client}, nil
}

// Name implements Guardrail.
func (b *Bedrock) Name() string { return b.name }

// Check implements Guardrail.
func (b *Bedrock) Check(ctx context.Context, r *Request) (Verdict, error) {
	source := brtypes.GuardrailContentSourceInput
	if r.Direction == DirectionResponse {
		source = brtypes.GuardrailContentSourceOutput
	}
	if r.Text == "" {
		return Verdict{Action: Allow}, nil // nothing to assess; Bedrock rejects empty text
	}
	out, err := b.client.ApplyGuardrail(ctx, &bedrockruntime.ApplyGuardrailInput{
		GuardrailIdentifier: aws.String(b.id),
		GuardrailVersion:    aws.String(b.ver),
		Source:              source,
		Content: []brtypes.GuardrailContentBlock{
			&brtypes.GuardrailContentBlockMemberText{Value: brtypes.GuardrailTextBlock{Text: aws.String(r.Text)}},
		},
	})
	if err != nil {
		// SDK errors name the operation, the HTTP status, the request id
		// and the service's error code and message; none carry the
		// credentials, and Bedrock's messages do not quote the content.
		return Verdict{}, fmt.Errorf("ApplyGuardrail: %w", err)
	}
	return bedrockVerdict(b.name, r.Text, out)
}

// bedrockVerdict maps an ApplyGuardrail answer to a verdict.
func bedrockVerdict(name, text string, out *bedrockruntime.ApplyGuardrailOutput) (Verdict, error) {
	a := assessBedrock(text, out.Assessments)
	switch out.Action {
	case brtypes.GuardrailActionNone:
		return Verdict{Action: Allow, Findings: a.findings}, nil
	case brtypes.GuardrailActionGuardrailIntervened:
	default:
		return Verdict{}, fmt.Errorf("%w: action %.32q", errBadVerdict, out.Action)
	}
	if len(a.blocked) == 0 && len(out.Outputs) > 0 {
		var texts []string
		for _, o := range out.Outputs {
			texts = append(texts, aws.ToString(o.Text))
		}
		return Verdict{Action: Mutate, Text: strings.Join(texts, "\n"), Findings: a.findings}, nil
	}
	reason := "blocked by guardrail " + name
	if len(a.blocked) > 0 {
		reason += " (" + strings.Join(a.blocked, ", ") + ")"
	}
	return Verdict{Action: Deny, Reason: reason, Findings: a.findings}, nil
}

type bedrockAssessment struct {
	blocked  []string // "content:PROMPT_ATTACK", "topic:Investment advice", …
	findings []inspect.Finding
}

// assessBedrock lists the policies that blocked, by type and configured
// name (never the matched text), and turns sensitive-information matches
// into findings. Bedrock gives no offsets, so a match is located at its
// first occurrence in the text; a match not found there is skipped.
func assessBedrock(text string, as []brtypes.GuardrailAssessment) bedrockAssessment {
	var a bedrockAssessment
	block := func(s string) {
		if !slices.Contains(a.blocked, s) && len(a.blocked) < 8 {
			a.blocked = append(a.blocked, s)
		}
	}
	find := func(cat inspect.Category, typ string, match *string) {
		m := aws.ToString(match)
		if m == "" {
			return
		}
		if i := strings.Index(text, m); i >= 0 {
			a.findings = append(a.findings, inspect.Finding{Category: cat, Type: typ, Start: i, End: i + len(m), Confidence: inspect.High})
		}
	}
	for _, as := range as {
		if p := as.ContentPolicy; p != nil {
			for _, f := range p.Filters {
				if f.Action == brtypes.GuardrailContentPolicyActionBlocked {
					block("content:" + string(f.Type))
				}
			}
		}
		if p := as.TopicPolicy; p != nil {
			for _, t := range p.Topics {
				if t.Action == brtypes.GuardrailTopicPolicyActionBlocked {
					block("topic:" + aws.ToString(t.Name))
				}
			}
		}
		if p := as.WordPolicy; p != nil {
			for _, w := range p.CustomWords {
				if w.Action == brtypes.GuardrailWordPolicyActionBlocked {
					block("word:custom")
				}
			}
			for _, w := range p.ManagedWordLists {
				if w.Action == brtypes.GuardrailWordPolicyActionBlocked {
					block("word:" + string(w.Type))
				}
			}
		}
		if p := as.SensitiveInformationPolicy; p != nil {
			for _, e := range p.PiiEntities {
				typ := bedrockType(string(e.Type))
				if e.Action == brtypes.GuardrailSensitiveInformationPolicyActionBlocked {
					block("sensitive:" + string(e.Type))
				}
				find(inspect.CategoryPII, typ, e.Match)
			}
			for _, re := range p.Regexes {
				if re.Action == brtypes.GuardrailSensitiveInformationPolicyActionBlocked {
					block("sensitive:" + aws.ToString(re.Name))
				}
				find(inspect.CategoryPII, "regex-"+bedrockType(aws.ToString(re.Name)), re.Match)
			}
		}
		if p := as.ContextualGroundingPolicy; p != nil {
			for _, f := range p.Filters {
				if f.Action == brtypes.GuardrailContextualGroundingPolicyActionBlocked {
					block("grounding:" + string(f.Type))
				}
			}
		}
		if p := as.AutomatedReasoningPolicy; p != nil && len(p.Findings) > 0 {
			block("automated-reasoning")
		}
	}
	return a
}

// bedrockType turns "EMAIL" or "US_SOCIAL_SECURITY_NUMBER" into a finding
// type ("email", "us-social-security-number").
func bedrockType(s string) string {
	return strings.ReplaceAll(strings.ToLower(s), "_", "-")
}
