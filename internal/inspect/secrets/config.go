package secrets

import (
	"fmt"

	toml "github.com/pelletier/go-toml/v2"
	gitleaks "github.com/zricethezav/gitleaks/v8/config"
)

// The gitleaks configuration is read as data, straight from the TOML string
// the gitleaks module embeds, rather than through gitleaks' own loader
// (viper, and the standard library's regexp for every pattern).

// gitleaksConfig is the part of a gitleaks TOML configuration we use.
type gitleaksConfig struct {
	Allowlist  tomlAllowlist   `toml:"allowlist"`
	Allowlists []tomlAllowlist `toml:"allowlists"`
	Rules      []tomlRule      `toml:"rules"`
}

type tomlRule struct {
	ID          string          `toml:"id"`
	Regex       string          `toml:"regex"`
	Path        string          `toml:"path"`
	SecretGroup int             `toml:"secretGroup"`
	Entropy     float64         `toml:"entropy"`
	Keywords    []string        `toml:"keywords"`
	Allowlists  []tomlAllowlist `toml:"allowlists"`
	Allowlist   *tomlAllowlist  `toml:"allowlist"` // older single form
	SkipReport  bool            `toml:"skipReport"`
}

type tomlAllowlist struct {
	Condition   string   `toml:"condition"`   // "OR" (default) or "AND"
	RegexTarget string   `toml:"regexTarget"` // "" (the secret), "match" or "line"
	Regexes     []string `toml:"regexes"`
	StopWords   []string `toml:"stopwords"`
	Paths       []string `toml:"paths"`
	Commits     []string `toml:"commits"`
}

// gitleaksVersion names the rule set, for documentation and tests.
const gitleaksVersion = "v8.30.1"

// loadGitleaksConfig parses the default configuration of the gitleaks module.
func loadGitleaksConfig() (*gitleaksConfig, error) {
	var c gitleaksConfig
	if err := toml.Unmarshal([]byte(gitleaks.DefaultConfig), &c); err != nil {
		return nil, fmt.Errorf("parsing the gitleaks %s default config: %w", gitleaksVersion, err)
	}
	if len(c.Rules) == 0 {
		return nil, fmt.Errorf("the gitleaks %s default config has no rules", gitleaksVersion)
	}
	return &c, nil
}
