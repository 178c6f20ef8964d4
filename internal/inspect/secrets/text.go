package secrets

import (
	"math"
	"strings"
	"unicode/utf8"
)

// isASCII reports whether s has no byte >= 0x80.
func isASCII(s string) bool {
	i := 0
	for ; i+8 <= len(s); i += 8 {
		x := uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
			uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
		if x&0x8080808080808080 != 0 {
			return false
		}
	}
	for ; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// shannonEntropy is the Shannon entropy of s in bits per character, computed
// as gitleaks does (character counts over the length in bytes), so the
// rules' entropy minimums mean what they mean there.
func shannonEntropy(s string) float64 {
	if s == "" {
		return 0
	}
	inv := 1 / float64(len(s))
	var h float64
	if isASCII(s) {
		var counts [128]int
		for i := 0; i < len(s); i++ {
			counts[s[i]]++
		}
		for _, c := range counts {
			if c > 0 {
				f := float64(c) * inv
				h -= f * math.Log2(f)
			}
		}
		return h
	}
	counts := map[rune]int{}
	for _, r := range s {
		counts[r]++
	}
	for _, c := range counts {
		f := float64(c) * inv
		h -= f * math.Log2(f)
	}
	return h
}

// trimNewlines drops leading and trailing newlines of a match, as gitleaks
// does before applying "match" allowlists.
func trimNewlines(s string) string { return strings.Trim(s, "\n") }

// lineAround returns the full lines of text that hold text[start:end].
func lineAround(text string, start, end int) string {
	lo := strings.LastIndexByte(text[:start], '\n') + 1
	hi := strings.IndexByte(text[end:], '\n')
	if hi < 0 {
		return text[lo:]
	}
	return text[lo : end+hi]
}
