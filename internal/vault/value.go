package vault

import (
	"fmt"
	"io"
	"log/slog"
)

// Redacted is what a Value shows instead of its bytes.
const Redacted = "[REDACTED]"

// Value is a secret value that redacts itself: formatting it with any fmt
// verb, logging it with slog or marshalling it as text or JSON yields
// Redacted. Convert it to []byte (or call Bytes) to use it, and Zero it when
// done.
type Value []byte

// Bytes returns the secret bytes (not a copy).
func (v Value) Bytes() []byte { return v }

// Zero overwrites the bytes with zeros.
func (v Value) Zero() { clear(v) }

// String returns Redacted.
func (v Value) String() string { return Redacted }

// GoString returns Redacted.
func (v Value) GoString() string { return Redacted }

// Format writes Redacted whatever the verb.
func (v Value) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, Redacted) }

// LogValue returns Redacted.
func (v Value) LogValue() slog.Value { return slog.StringValue(Redacted) }

// MarshalText returns Redacted, so JSON, YAML and text encoders never see
// the bytes.
func (v Value) MarshalText() ([]byte, error) { return []byte(Redacted), nil }

var (
	_ fmt.Formatter  = Value(nil)
	_ fmt.Stringer   = Value(nil)
	_ fmt.GoStringer = Value(nil)
	_ slog.LogValuer = Value(nil)
)
