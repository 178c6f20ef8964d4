// Package inspect finds secrets, personal data and prompt injection in the
// text that crosses the gateway, and decides what to do about each finding.
//
// Detectors live in subpackages (secrets, pii, injection); this package holds
// the types they share and the engine that runs them over MCP messages.
package inspect

import "fmt"

// Category groups finding types.
type Category string

// Finding categories.
const (
	CategorySecret    Category = "secret"
	CategoryPII       Category = "pii"
	CategoryInjection Category = "injection"
)

// Confidence says how sure a detector is that a finding is real.
type Confidence int8

// Confidence levels, ordered: a threshold of Medium admits Medium and High.
const (
	Low Confidence = iota + 1
	Medium
	High
)

func (c Confidence) String() string {
	switch c {
	case Low:
		return "low"
	case Medium:
		return "medium"
	case High:
		return "high"
	}
	return fmt.Sprintf("confidence(%d)", int8(c))
}

// ParseConfidence reads "low", "medium" or "high".
func ParseConfidence(s string) (Confidence, error) {
	switch s {
	case "low":
		return Low, nil
	case "medium":
		return Medium, nil
	case "high":
		return High, nil
	}
	return 0, fmt.Errorf("confidence %q: want low, medium or high", s)
}

// MarshalText writes the confidence as its name.
func (c Confidence) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// UnmarshalText reads a confidence name.
func (c *Confidence) UnmarshalText(b []byte) error {
	v, err := ParseConfidence(string(b))
	if err != nil {
		return err
	}
	*c = v
	return nil
}

// Finding is one thing a detector found in a text. Start and End are byte
// offsets into the scanned text (UTF-8), End exclusive. A finding never
// carries the matched text itself, so it can be logged and audited safely.
type Finding struct {
	Category   Category   `json:"category"`
	Type       string     `json:"type"` // e.g. "aws-access-token", "email", "hidden-unicode"
	Start      int        `json:"start"`
	End        int        `json:"end"`
	Confidence Confidence `json:"confidence"`
}

// Detector scans text. Implementations must be safe for concurrent use and
// must not retain text after Scan returns.
type Detector interface {
	// Name is the detector's name in configuration and metrics
	// ("secrets", "pii", "injection").
	Name() string
	// Scan appends the findings in text to dst and returns the result.
	Scan(text string, dst []Finding) []Finding
}
