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
	// Actions map findings to block, redact, alert, flag or none; the
	// first matching rule wins. Bundles may put their own in front
	// (policy.bundles.<name>.inspect). Default: high-confidence secrets
	// block, PII in results is redacted, everything else is flagged.
	Actions []*InspectAction `yaml:"actions"`
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
	if c.Policy != nil {
		for _, name := range sortedKeys(c.Policy.Bundles) {
			if b := c.Policy.Bundles[name]; b != nil {
				l.validateInspectActions("policy.bundles."+name+".inspect", b.Inspect)
			}
		}
	}
}
