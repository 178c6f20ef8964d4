package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"regexp"
	"strings"
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

// patterns of well-known secrets and PII inside strings, each replaced by
// a typed placeholder. (The inspection detectors will take over here.)
var maskPatterns = []struct {
	kind string
	re   *regexp.Regexp
}{
	{"private_key", regexp.MustCompile(`-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(-----END [A-Z ]*PRIVATE KEY-----|$)`)},
	{"jwt", regexp.MustCompile(`\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*`)},
	{"bearer_token", regexp.MustCompile(`(?i)\bbearer\s+[A-Za-z0-9._~+/=-]{12,}`)},
	{"aws_access_key", regexp.MustCompile(`\b(AKIA|ASIA)[0-9A-Z]{16}\b`)},
	{"github_token", regexp.MustCompile(`\b(gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{40,})\b`)},
	{"slack_token", regexp.MustCompile(`\bxox[abprs]-[A-Za-z0-9-]{10,}`)},
	{"stripe_key", regexp.MustCompile(`\b[rs]k_(live|test)_[A-Za-z0-9]{16,}`)},
	{"gatehouse_secret", regexp.MustCompile(`\bg[hs][aks]_[A-Za-z0-9_-]{20,}`)},
	{"email", regexp.MustCompile(`\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b`)},
	{"ssn", regexp.MustCompile(`\b\d{3}-\d{2}-\d{4}\b`)},
	{"card_number", regexp.MustCompile(`\b(?:\d[ -]?){12,18}\d\b`)},
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

// Apply returns v as mode says (and the mode applied). Invalid JSON is
// treated as one string.
func (m *Masker) Apply(v json.RawMessage, mode string) (json.RawMessage, string) {
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
	var x any
	if err := json.Unmarshal(v, &x); err != nil {
		x = string(v)
	}
	out, _ := json.Marshal(m.mask(x, false))
	return out, MaskMasked
}

func (m *Masker) mask(x any, sensitive bool) any {
	switch t := x.(type) {
	case map[string]any:
		for k, v := range t {
			t[k] = m.mask(v, sensitive || m.fields[normField(k)])
		}
		return t
	case []any:
		for i, v := range t {
			t[i] = m.mask(v, sensitive)
		}
		return t
	case string:
		if sensitive {
			return "[masked:secret]"
		}
		return MaskString(t)
	case float64, bool:
		if sensitive {
			return "[masked:secret]"
		}
	}
	return x
}

// MaskString replaces well-known secrets and PII inside s with typed
// placeholders such as [masked:email].
func MaskString(s string) string {
	for _, p := range maskPatterns {
		if p.kind == "card_number" {
			s = p.re.ReplaceAllStringFunc(s, func(m string) string {
				if luhn(m) {
					return "[masked:card_number]"
				}
				return m
			})
			continue
		}
		s = p.re.ReplaceAllString(s, "[masked:"+p.kind+"]")
	}
	return s
}

func luhn(s string) bool {
	sum, n, double := 0, 0, false
	for i := len(s) - 1; i >= 0; i-- {
		c := s[i]
		if c < '0' || c > '9' {
			continue
		}
		d := int(c - '0')
		if double {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
		n++
	}
	return n >= 13 && sum%10 == 0
}
