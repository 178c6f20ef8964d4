package vault

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// RefPrefix starts a reference to a secret: vault:NAME.
const RefPrefix = "vault:"

// Ref is a reference to a secret in configuration.
type Ref struct {
	Name string
}

// String returns the reference as written: vault:NAME.
func (r Ref) String() string { return RefPrefix + r.Name }

// ParseRef parses a whole string of the form vault:NAME, where NAME is a
// valid secret name. It reports false for anything else, which callers
// treat as a literal value.
func ParseRef(s string) (Ref, bool) {
	name, ok := strings.CutPrefix(s, RefPrefix)
	if !ok || ValidateName(name) != nil {
		return Ref{}, false
	}
	return Ref{Name: name}, true
}

// ErrTemplate: a template has a {{ that is neither {{vault:NAME}} nor the
// escape {{{{.
var ErrTemplate = errors.New("invalid template")

// Refs returns the references in a template, in order, with repeats; an
// error if the template is malformed. Use it to check configuration without
// resolving anything.
func Refs(template string) ([]Ref, error) {
	var refs []Ref
	err := walkTemplate(template, func(string) {}, func(r Ref) error {
		refs = append(refs, r)
		return nil
	})
	return refs, err
}

// Expand replaces every {{vault:NAME}} in template with the value resolve
// returns for (NAME, agentID); spaces inside the braces are allowed
// ({{ vault:NAME }}). {{{{ stands for a literal {{; any other {{ is an
// error, so a mistyped reference is never sent as literal text. A template
// without {{ is returned as it is. Errors name the reference that failed
// and never contain a value.
//
// The result holds the secrets in a Go string, which cannot be zeroed; keep
// it no longer than the request that needs it.
func Expand(ctx context.Context, template string, agentID string, resolve func(ctx context.Context, name, agent string) ([]byte, error)) (string, error) {
	if !strings.Contains(template, "{{") {
		return template, nil
	}
	var b strings.Builder
	b.Grow(len(template) + 64)
	err := walkTemplate(template, func(lit string) { b.WriteString(lit) }, func(r Ref) error {
		v, err := resolve(ctx, r.Name, agentID)
		if err != nil {
			return fmt.Errorf("expanding {{%s}}: %w", r, err)
		}
		b.Write(v)
		return nil
	})
	if err != nil {
		return "", err
	}
	return b.String(), nil
}

// walkTemplate calls lit for each literal part and ref for each reference,
// in order.
func walkTemplate(t string, lit func(string), ref func(Ref) error) error {
	off := 0 // offset of t in the original template
	for {
		i := strings.Index(t, "{{")
		if i < 0 {
			lit(t)
			return nil
		}
		lit(t[:i])
		rest := t[i:]
		if strings.HasPrefix(rest, "{{{{") {
			lit("{{")
			t, off = rest[4:], off+i+4
			continue
		}
		j := strings.Index(rest[2:], "}}")
		if j < 0 {
			return fmt.Errorf("%w: {{ at offset %d is not closed by }} (write {{{{ for a literal {{)", ErrTemplate, off+i)
		}
		inner := strings.TrimSpace(rest[2 : 2+j])
		name, isRef := strings.CutPrefix(inner, RefPrefix)
		if !isRef {
			// The text is not shown: it may be a credential written inline.
			return fmt.Errorf("%w: {{ at offset %d does not start a {{vault:NAME}} reference (write {{{{ for a literal {{)", ErrTemplate, off+i)
		}
		if err := ValidateName(name); err != nil {
			return fmt.Errorf("%w: reference at offset %d: %w", ErrTemplate, off+i, err)
		}
		if err := ref(Ref{Name: name}); err != nil {
			return err
		}
		t, off = rest[2+j+2:], off+i+2+j+2
	}
}
