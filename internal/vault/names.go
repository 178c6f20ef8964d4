package vault

import (
	"errors"
	"fmt"
	"unicode"
	"unicode/utf8"
)

// Limits on what a secret holds and how it is named.
const (
	// MaxNameLen is the longest secret name.
	MaxNameLen = 128
	// MaxAgentLen is the longest agent id of a secret entry.
	MaxAgentLen = 256
	// MaxValueSize is the largest secret value: credentials are small
	// (tokens, PEM keys, service-account JSON).
	MaxValueSize = 64 << 10
)

// Errors of invalid arguments.
var (
	// ErrInvalidName: a secret name is empty, too long or has a character
	// outside A-Z a-z 0-9 _ . : / -.
	ErrInvalidName = errors.New("invalid secret name")
	// ErrInvalidAgent: an agent id is too long, not UTF-8 or has control
	// characters.
	ErrInvalidAgent = errors.New("invalid agent id")
	// ErrInvalidValue: a secret value is empty or larger than MaxValueSize.
	ErrInvalidValue = errors.New("invalid secret value")
)

// ValidateName checks a secret name: 1 to MaxNameLen characters of
// A-Z a-z 0-9 _ . : / -.
func ValidateName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty (use 1 to %d of A-Z a-z 0-9 _ . : / -)", ErrInvalidName, MaxNameLen)
	}
	if len(name) > MaxNameLen {
		return fmt.Errorf("%w %q…: %d characters, longer than %d", ErrInvalidName, name[:32], len(name), MaxNameLen)
	}
	for i := 0; i < len(name); i++ {
		if !nameChar(name[i]) {
			r, _ := utf8.DecodeRuneInString(name[i:])
			return fmt.Errorf("%w %q: %q at offset %d is not allowed (use A-Z a-z 0-9 _ . : / -)", ErrInvalidName, name, r, i)
		}
	}
	return nil
}

func nameChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '_', '.', ':', '/', '-':
		return true
	}
	return false
}

// validateAgent checks an agent id ("" is the shared entry).
func validateAgent(agent string) error {
	if len(agent) > MaxAgentLen {
		return fmt.Errorf("%w: %d bytes, longer than %d", ErrInvalidAgent, len(agent), MaxAgentLen)
	}
	if !utf8.ValidString(agent) {
		return fmt.Errorf("%w %q: not UTF-8", ErrInvalidAgent, agent)
	}
	for _, r := range agent {
		if unicode.IsControl(r) {
			return fmt.Errorf("%w %q: has control characters", ErrInvalidAgent, agent)
		}
	}
	return nil
}

// validateEntry checks the key of a secret entry.
func validateEntry(name, agent string) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	return validateAgent(agent)
}

// describe names a secret entry in errors and logs.
func describe(name, agent string) string {
	if agent == "" {
		return fmt.Sprintf("secret %q (shared)", name)
	}
	return fmt.Sprintf("secret %q for agent %q", name, agent)
}
