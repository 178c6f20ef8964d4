package inspect

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Printable returns s, from a guardrail, a script or a provider, fit for a
// JSON-RPC error message and a log line: control and format characters
// (bidi overrides, zero-width) and invalid UTF-8 become spaces, the ends
// are trimmed, and more than max bytes are cut at a rune boundary and
// marked with "…".
func Printable(s string, max int) string {
	s = strings.TrimSpace(strings.Map(func(r rune) rune {
		if r == utf8.RuneError || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return ' '
		}
		return r
	}, s))
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
