package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"

	"gatehouse/internal/inspect"
)

// Masking modes for arguments and results.
const (
	MaskFull    = "full"
	MaskMasked  = "masked"
	MaskHashed  = "hashed"
	MaskOmitted = "omitted"
)

// defaultSensitiveFields are argument names whose values are always
// masked (compared case-insensitively, ignoring '-' and '_').
var defaultSensitiveFields = []string{
	"password", "passwd", "secret", "clientsecret", "token", "accesstoken", "refreshtoken", "apikey", "apitoken",
	"authorization", "auth", "cookie", "privatekey", "credential", "credentials", "ssn", "cardnumber", "cvv", "cvc", "pin",
}

// Masker applies a masking mode to JSON values.
type Masker struct {
	fields map[string]bool
}

// NewMasker returns a masker that also masks the given field names.
func NewMasker(extraFields []string) *Masker {
	m := &Masker{fields: map[string]bool{}}
	for _, f := range append(defaultSensitiveFields, extraFields...) {
		m.fields[normField(f)] = true
	}
	return m
}

var fieldSeparators = strings.NewReplacer("-", "", "_", "", ".", "")

func normField(s string) string {
	return fieldSeparators.Replace(strings.ToLower(s))
}

// Sensitive reports whether values of the field name are always masked.
func (m *Masker) Sensitive(name string) bool { return m.fields[normField(name)] }

// Apply returns v as mode says (and the mode applied). In mode masked, the
// inspection detectors of eng replace what they find with typed
// placeholders ("[masked:email]") and values of sensitive field names
// become "[masked:secret]"; scan false skips the detectors (the caller
// inspected v already and found nothing); a nil eng masks field names
// only. Invalid JSON is treated as one string.
func (m *Masker) Apply(v json.RawMessage, mode string, eng *inspect.Engine, scan bool) (json.RawMessage, string) {
	if len(v) == 0 {
		return nil, mode
	}
	switch mode {
	case MaskFull:
		return v, mode
	case MaskOmitted:
		return nil, mode
	case MaskHashed:
		var c bytes.Buffer
		if json.Compact(&c, v) != nil {
			c.Reset()
			c.Write(v)
		}
		sum := sha256.Sum256(c.Bytes())
		out, _ := json.Marshal(map[string]string{"sha256": hex.EncodeToString(sum[:])})
		return out, mode
	}
	if eng == nil {
		eng = fieldsOnly
	}
	return eng.Mask(v, m.Sensitive, scan), MaskMasked
}

// fieldsOnly masks sensitive field names without detectors.
var fieldsOnly = inspect.NewEngine()
