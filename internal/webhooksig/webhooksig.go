// Package webhooksig signs the HTTP requests Gatehouse sends to webhooks
// (audit sinks, guardrails) and checks them on the receiving side: an
// HMAC-SHA256 over the timestamp header's value, a dot, and the raw body,
// so a receiver can reject replays by the timestamp.
package webhooksig

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"time"
)

// The request headers.
const (
	SignatureHeader = "X-Gatehouse-Signature" // "sha256=" + hex HMAC
	TimestampHeader = "X-Gatehouse-Timestamp" // unix seconds
)

// MinKey is the shortest key accepted (32 random bytes are recommended).
const MinKey = 16

// Sign returns the signature header's value for a body sent at timestamp.
func Sign(key []byte, timestamp string, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify checks a request's signature and that its timestamp is within
// maxSkew of now: what a receiver written in Go does before trusting it.
func Verify(key []byte, timestamp, signature string, body []byte, now time.Time, maxSkew time.Duration) error {
	sec, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return errors.New("webhook: bad timestamp")
	}
	if d := now.Sub(time.Unix(sec, 0)); d > maxSkew || d < -maxSkew {
		return errors.New("webhook: timestamp outside the allowed skew")
	}
	if !hmac.Equal([]byte(signature), []byte(Sign(key, timestamp, body))) {
		return errors.New("webhook: bad signature")
	}
	return nil
}
