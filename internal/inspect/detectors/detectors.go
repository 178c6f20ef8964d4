// Package detectors builds the inspection engine from configuration: the
// built-in detectors (secrets, pii, injection) and the action rules.
package detectors

import (
	"gatehouse/internal/config"
	"gatehouse/internal/inspect"
	"gatehouse/internal/inspect/injection"
	"gatehouse/internal/inspect/pii"
	"gatehouse/internal/inspect/secrets"
)

// SettingError is a detector setting New refused; Path locates it in the
// configuration ("inspect.pii").
type SettingError struct {
	Path string
	Err  error
}

func (e *SettingError) Error() string { return e.Path + ": " + e.Err.Error() }
func (e *SettingError) Unwrap() error { return e.Err }

// New returns the engine the configuration asks for (nil when inspection
// is disabled or every detector is). A refused setting is a *SettingError.
func New(c config.Inspect) (*inspect.Engine, error) {
	if c.Disabled {
		return nil, nil
	}
	ds, errs := build(c)
	if len(errs) > 0 {
		return nil, errs[0]
	}
	if len(ds) == 0 {
		return nil, nil
	}
	return inspect.NewEngine(ds...), nil
}

// Check returns every detector setting New would refuse. Only the
// settings that can be wrong are tried (the defaults always build), so a
// configuration check does not compile the secrets rules for nothing.
func Check(c config.Inspect) []*SettingError {
	var errs []*SettingError
	if !c.Secrets.Disabled && len(c.Secrets.DisabledRules) > 0 {
		if _, err := secrets.New(secrets.Options{DisabledRules: c.Secrets.DisabledRules}); err != nil {
			errs = append(errs, &SettingError{"inspect.secrets.disabled_rules", err})
		}
	}
	if !c.PII.Disabled && c.PII.Region != "" {
		if _, err := pii.New(pii.Options{DefaultRegion: c.PII.Region, Types: c.PII.Types}); err != nil {
			errs = append(errs, &SettingError{"inspect.pii.region", err})
		}
	}
	return errs
}

func build(c config.Inspect) ([]inspect.Detector, []*SettingError) {
	var ds []inspect.Detector
	var errs []*SettingError
	if !c.Secrets.Disabled {
		if d, err := secrets.New(secrets.Options{DisabledRules: c.Secrets.DisabledRules}); err != nil {
			errs = append(errs, &SettingError{"inspect.secrets.disabled_rules", err})
		} else {
			ds = append(ds, d)
		}
	}
	if !c.PII.Disabled {
		// Types are checked by the configuration; the region is the
		// phone library's to judge.
		if d, err := pii.New(pii.Options{DefaultRegion: c.PII.Region, Types: c.PII.Types}); err != nil {
			errs = append(errs, &SettingError{"inspect.pii.region", err})
		} else {
			ds = append(ds, d)
		}
	}
	if !c.Injection.Disabled {
		if d, err := injection.New(injection.Options{}); err != nil {
			errs = append(errs, &SettingError{"inspect.injection", err})
		} else {
			ds = append(ds, d)
		}
	}
	return ds, errs
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
