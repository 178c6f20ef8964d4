package config

import (
	"fmt"
	"path"
)

// Inspect configures threat detection and data-loss prevention: the
// detectors run over tool arguments, tool results, resource contents and
// prompt messages, and what happens to each finding (docs/detection.md).
type Inspect struct {
	// Disabled turns inspection off.
	Disabled bool `yaml:"disabled"`
	// Secrets: the gitleaks rule set plus Gatehouse's own credential
	// formats.
	Secrets InspectSecrets `yaml:"secrets"`
	// PII: emails, phones, payment cards, SSNs, IBANs, national ids, IP
	// addresses, dates of birth.
	PII InspectPII `yaml:"pii"`
	// Injection: instructions aimed at the model, hidden Unicode,
	// exfiltration links in results; tool poisoning in tool descriptions.
	Injection InspectInjection `yaml:"injection"`
	// Tools guards tool definitions: pins them against drift and scans
	// their descriptions for tool poisoning.
	Tools InspectTools `yaml:"tools"`
	// Actions map findings to block, redact, alert, flag or none; the
	// first matching rule wins. Bundles may put their own in front
	// (policy.bundles.<name>.inspect). Default: high-confidence secrets
	// block, PII in results is redacted, everything else is flagged.
	Actions []*InspectAction `yaml:"actions"`
	// Alerts: where alerts go besides the log (a signed webhook).
	Alerts InspectAlerts `yaml:"alerts"`
	// Anomaly: per-agent baselines of activity, and alerts when an agent
	// departs from its own (off by default).
	Anomaly InspectAnomaly `yaml:"anomaly"`
	// Guardrails are external services asked about tool arguments and
	// results after the built-in detectors (docs/guardrails.md).
	Guardrails []*InspectGuardrail `yaml:"guardrails"`
	// Scripts are JavaScript hooks run on tool calls and results, after
	// the built-in detectors and before the guardrails.
	Scripts []*InspectScript `yaml:"scripts"`
}

// InspectSecrets configures the secrets detector.
type InspectSecrets struct {
	Disabled bool `yaml:"disabled"`
	// DisabledRules are gitleaks rule ids not to run ("generic-api-key").
	DisabledRules []string `yaml:"disabled_rules"`
}

// InspectPII configures the personal-data detector.
type InspectPII struct {
	Disabled bool `yaml:"disabled"`
	// Region reads national phone numbers (ISO 3166, default US).
	Region string `yaml:"region"`
	// Types enabled (default all): email, phone, card, ssn, iban,
	// national-id, ip-address, date-of-birth.
	Types []string `yaml:"types"`
}

// InspectInjection configures the prompt-injection detector.
type InspectInjection struct {
	Disabled bool `yaml:"disabled"`
}

// InspectTools configures the checks on tool definitions listed by
// upstreams (tools/list).
type InspectTools struct {
	// Pin: first_use (default) pins a tool's definition the first time
	// the gateway sees it; approval holds a new tool back until an
	// operator approves it (gatehouse tools approve); off turns pinning
	// off.
	Pin string `yaml:"pin"`
	// Quarantine is what happens to a tool whose definition changed since
	// it was pinned, until an operator approves the new one: hide
	// (default: not listed, calls refused) or flag (served, its calls'
	// audit records marked for review).
	Quarantine string `yaml:"quarantine"`
	// Poisoning is what happens to a tool whose description or schema
	// carries instructions aimed at the model: flag (default: listed, the
	// listing's audit record marked and an alert logged), hide (not
	// listed, calls refused) or off.
	Poisoning string `yaml:"poisoning"`
}

// Tool-definition check modes.
const (
	PinFirstUse = "first_use"
	PinApproval = "approval"
	PinOff      = "off"
)

// PinMode is the pin mode in force.
func (t InspectTools) PinMode() string { return or(t.Pin, PinFirstUse) }

// QuarantineMode is the quarantine mode in force.
func (t InspectTools) QuarantineMode() string { return or(t.Quarantine, "hide") }

// PoisoningMode is the tool-poisoning action in force.
func (t InspectTools) PoisoningMode() string { return or(t.Poisoning, "flag") }

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// InspectAction is one rule of the action table.
type InspectAction struct {
	// Category: secret, pii or injection (empty: any).
	Category string `yaml:"category"`
	// Types are finding types, globs allowed ("aws-*", "email").
	Types []string `yaml:"types"`
	// MinConfidence: low (default), medium or high.
	MinConfidence string `yaml:"min_confidence"`
	// Direction: request (arguments going up), response (results coming
	// back) or empty for both.
	Direction string `yaml:"direction"`
	// Action: block, redact, alert, flag or none.
	Action string `yaml:"action"`
}

func (l *loader) validateInspectActions(p string, acts []*InspectAction) {
	for i, a := range acts {
		ap := fmt.Sprintf("%s[%d]", p, i)
		if a == nil {
			l.addAt(ap, "empty entry")
			continue
		}
		switch a.Category {
		case "", "secret", "pii", "injection":
		default:
			l.addAt(ap+".category", "unknown category %q (secret, pii, injection)", a.Category)
		}
		switch a.MinConfidence {
		case "", "low", "medium", "high":
		default:
			l.addAt(ap+".min_confidence", "unknown confidence %q (low, medium, high)", a.MinConfidence)
		}
		switch a.Direction {
		case "", "request", "response":
		default:
			l.addAt(ap+".direction", "unknown direction %q (request, response)", a.Direction)
		}
		switch a.Action {
		case "block", "redact", "alert", "flag", "none":
		case "":
			l.addAt(ap+".action", "missing (block, redact, alert, flag, none)")
		default:
			l.addAt(ap+".action", "unknown action %q (block, redact, alert, flag, none)", a.Action)
		}
		for j, t := range a.Types {
			if _, err := path.Match(t, ""); err != nil {
				l.addAt(fmt.Sprintf("%s.types[%d]", ap, j), "bad pattern %q: %v", t, err)
			}
		}
	}
}

var piiTypes = map[string]bool{"email": true, "phone": true, "card": true, "ssn": true, "iban": true,
	"national-id": true, "ip-address": true, "date-of-birth": true}

func (l *loader) validateInspect(c *Config) {
	in := &c.Inspect
	for i, t := range in.PII.Types {
		if !piiTypes[t] {
			l.addAt(fmt.Sprintf("inspect.pii.types[%d]", i), "unknown type %q (email, phone, card, ssn, iban, national-id, ip-address, date-of-birth)", t)
		}
	}
	l.validateInspectActions("inspect.actions", in.Actions)
	l.validateHooks(c)
	l.validateAlerts(in)
	switch in.Tools.Pin {
	case "", PinFirstUse, PinOff:
	case PinApproval:
		if c.Admin.Disabled {
			l.addAt("inspect.tools.pin", "approval needs the admin API to approve tools (admin.disabled is true)")
		}
	default:
		l.addAt("inspect.tools.pin", "unknown mode %q (first_use, approval, off)", in.Tools.Pin)
	}
	switch in.Tools.Quarantine {
	case "", "hide", "flag":
	default:
		l.addAt("inspect.tools.quarantine", "unknown mode %q (hide, flag)", in.Tools.Quarantine)
	}
	switch in.Tools.Poisoning {
	case "", "hide", "flag", "off":
	default:
		l.addAt("inspect.tools.poisoning", "unknown action %q (flag, hide, off)", in.Tools.Poisoning)
	}
	if c.Policy != nil {
		for _, name := range sortedKeys(c.Policy.Bundles) {
			if b := c.Policy.Bundles[name]; b != nil {
				l.validateInspectActions("policy.bundles."+name+".inspect", b.Inspect)
			}
		}
	}
}
