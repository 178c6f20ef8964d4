// Package detectors builds the inspection engine from configuration: the
// built-in detectors (secrets, pii, injection) and the action rules.
package detectors

import (
	"fmt"

	"gatehouse/internal/config"
	"gatehouse/internal/inspect"
	"gatehouse/internal/inspect/injection"
	"gatehouse/internal/inspect/pii"
	"gatehouse/internal/inspect/secrets"
)

// New returns the engine the configuration asks for (nil when inspection
// is disabled or every detector is).
func New(c config.Inspect) (*inspect.Engine, error) {
	if c.Disabled {
		return nil, nil
	}
	var ds []inspect.Detector
	if !c.Secrets.Disabled {
		d, err := secrets.New(secrets.Options{DisabledRules: c.Secrets.DisabledRules})
		if err != nil {
			return nil, fmt.Errorf("inspect.secrets: %w", err)
		}
		ds = append(ds, d)
	}
	if !c.PII.Disabled {
		d, err := pii.New(pii.Options{DefaultRegion: c.PII.Region, Types: c.PII.Types})
		if err != nil {
			return nil, fmt.Errorf("inspect.pii: %w", err)
		}
		ds = append(ds, d)
	}
	if !c.Injection.Disabled {
		d, err := injection.New(injection.Options{})
		if err != nil {
			return nil, fmt.Errorf("inspect.injection: %w", err)
		}
		ds = append(ds, d)
	}
	if len(ds) == 0 {
		return nil, nil
	}
	return inspect.NewEngine(ds...), nil
}

// Rules turns configured action rules into the engine's, followed by
// base (nil: none).
func Rules(acts []*config.InspectAction, base inspect.Rules) inspect.Rules {
	var out inspect.Rules
	for _, a := range acts {
		if a == nil {
			continue
		}
		r := inspect.Rule{Category: inspect.Category(a.Category), Types: a.Types, Direction: inspect.Direction(a.Direction)}
		if a.MinConfidence != "" {
			r.MinConfidence, _ = inspect.ParseConfidence(a.MinConfidence) // validated by config
		}
		r.Action, _ = inspect.ParseAction(a.Action)
		out = append(out, r)
	}
	return append(out, base...)
}

// GlobalRules are the configuration's action rules, or the defaults.
func GlobalRules(c config.Inspect) inspect.Rules {
	if len(c.Actions) == 0 {
		return inspect.DefaultRules
	}
	return Rules(c.Actions, nil)
}
