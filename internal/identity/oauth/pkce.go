package oauth

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
)

// PKCE (RFC 7636): only S256; a verifier is 43 to 128 unreserved
// characters, a challenge the unpadded base64url SHA-256 of one (43
// characters).
const (
	minVerifierLen = 43
	maxVerifierLen = 128
	challengeLen   = 43
)

// validVerifier reports whether v is a syntactically valid code_verifier.
func validVerifier(v string) bool {
	if len(v) < minVerifierLen || len(v) > maxVerifierLen {
		return false
	}
	for i := 0; i < len(v); i++ {
		if !unreserved(v[i]) {
			return false
		}
	}
	return true
}

// validChallenge reports whether c can be an S256 code_challenge.
func validChallenge(c string) bool {
	if len(c) != challengeLen {
		return false
	}
	b, err := base64.RawURLEncoding.DecodeString(c)
	return err == nil && len(b) == sha256.Size
}

// verifyPKCE reports whether verifier matches an S256 challenge.
func verifyPKCE(verifier, challenge string) bool {
	if !validVerifier(verifier) {
		return false
	}
	sum := sha256.Sum256([]byte(verifier))
	got := base64.RawURLEncoding.EncodeToString(sum[:])
	return subtle.ConstantTimeCompare([]byte(got), []byte(challenge)) == 1
}

// unreserved is RFC 3986's unreserved character set.
func unreserved(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}
