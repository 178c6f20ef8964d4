// Package pin detects changed tool definitions (a "rug pull": a server
// that was approved with one tool description and later serves another).
//
// The gateway pins each tool's definition when it is first approved
// ([Fingerprint]), compares what a server lists now with the pin
// ([Decide]), and quarantines a changed tool until an operator has read
// the difference ([Diff], [Render]) and approved the new version. This
// package is only that logic: storing pins and the CLI live elsewhere.
//
// What counts as the definition: every top-level member of the MCP Tool
// object except "_meta" and "icons". Name, title, description, inputSchema,
// outputSchema and annotations obviously count. Members this package does
// not know (a newer protocol revision's, a server's own) count too, since a
// client may pass them to the model and an unknown field changing is worth
// an operator's look. "_meta" is left out because it is protocol metadata
// for software, not the model, and servers put volatile values in it
// (versions, timestamps) that would quarantine tools for nothing; "icons"
// is left out because it is presentation the model never reads.
package pin

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf8"
)

// Pinned is a tool definition in canonical form, as pinned when approved
// or as fingerprinted from a server's tools/list.
type Pinned struct {
	Name      string          `json:"name"`
	Hash      string          `json:"hash"`      // hex SHA-256 of Canonical
	Canonical json.RawMessage `json:"canonical"` // see Fingerprint
}

// IsZero reports whether p is the zero Pinned (no pin).
func (p Pinned) IsZero() bool { return p.Hash == "" && p.Name == "" && len(p.Canonical) == 0 }

// excluded are the top-level Tool members that are not part of the
// definition (see the package comment).
var excluded = []string{"_meta", "icons"}

// maxDepth bounds nesting; real tool schemas are a few levels deep, and
// the bound keeps a hostile definition from costing deep recursion.
const maxDepth = 200

// Errors Fingerprint returns (wrapped) for definitions it cannot pin.
var (
	ErrNotObject    = errors.New("tool definition is not a JSON object")
	ErrNoName       = errors.New("tool definition has no name")
	ErrDuplicateKey = errors.New("duplicate key")
	ErrTooDeep      = errors.New("nesting too deep")
)

// Fingerprint computes the canonical form of an MCP Tool object and its
// SHA-256.
//
// The canonical form is the definition (see the package comment) written
// as JSON with object keys sorted bytewise (the UTF-8 order of their
// decoded text, which is code point order), no whitespace between tokens,
// numbers exactly as written ("1.0" and "1" differ), and strings re-escaped
// one way: only '"', '\\' and control characters are escaped (\b \f \n \r
// \t or \u00xx), everything else is written as UTF-8, so "\u00e9" and "é"
// are the same. Invalid UTF-8 becomes U+FFFD, as encoding/json reads it.
//
// A definition with a duplicate key anywhere is refused: parsers disagree
// on which of the two wins, so the pinned text could differ from what a
// client shows the model.
func Fingerprint(tool json.RawMessage) (Pinned, error) {
	v, err := parse(tool)
	if err != nil {
		return Pinned{}, fmt.Errorf("reading tool definition: %w", err)
	}
	obj, ok := v.(object)
	if !ok {
		return Pinned{}, ErrNotObject
	}
	name, _ := obj.get("name")
	nameStr, ok := name.(string)
	if !ok || nameStr == "" {
		return Pinned{}, ErrNoName
	}
	obj = slices.DeleteFunc(obj, func(m member) bool { return slices.Contains(excluded, m.key) })
	canon := appendCanonical(nil, obj)
	sum := sha256.Sum256(canon)
	return Pinned{Name: nameStr, Hash: hex.EncodeToString(sum[:]), Canonical: canon}, nil
}

// A parsed JSON value is one of: object, []any, string, json.Number, bool
// or nil.
type object []member // sorted by key, keys unique

type member struct {
	key string
	val any
}

func (o object) get(key string) (any, bool) {
	i, ok := slices.BinarySearchFunc(o, key, func(m member, k string) int { return strings.Compare(m.key, k) })
	if !ok {
		return nil, false
	}
	return o[i].val, true
}

// parse reads exactly one JSON value.
func parse(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := parseValue(dec, 0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the JSON value")
	}
	return v, nil
}

func parseValue(dec *json.Decoder, depth int) (any, error) {
	if depth > maxDepth {
		return nil, ErrTooDeep
	}
	tok, err := dec.Token()
	if err == io.EOF {
		return nil, io.ErrUnexpectedEOF
	}
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			var obj object
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				key, ok := kt.(string)
				if !ok {
					return nil, fmt.Errorf("object key is %T", kt)
				}
				val, err := parseValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				obj = append(obj, member{key, val})
			}
			if _, err := dec.Token(); err != nil { // '}'
				return nil, err
			}
			slices.SortStableFunc(obj, func(a, b member) int { return strings.Compare(a.key, b.key) })
			for i := 1; i < len(obj); i++ {
				if obj[i].key == obj[i-1].key {
					return nil, fmt.Errorf("%w %q", ErrDuplicateKey, obj[i].key)
				}
			}
			return obj, nil
		case '[':
			arr := []any{}
			for dec.More() {
				val, err := parseValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				arr = append(arr, val)
			}
			if _, err := dec.Token(); err != nil { // ']'
				return nil, err
			}
			return arr, nil
		}
		return nil, fmt.Errorf("unexpected %v", t)
	case string, json.Number, bool, nil:
		return t, nil
	}
	return nil, fmt.Errorf("unexpected token %T", tok)
}

// appendCanonical writes v in canonical form (see Fingerprint).
func appendCanonical(b []byte, v any) []byte {
	switch v := v.(type) {
	case object:
		b = append(b, '{')
		for i, m := range v {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, m.key)
			b = append(b, ':')
			b = appendCanonical(b, m.val)
		}
		return append(b, '}')
	case []any:
		b = append(b, '[')
		for i, e := range v {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendCanonical(b, e)
		}
		return append(b, ']')
	case string:
		return appendString(b, v)
	case json.Number:
		return append(b, v...)
	case bool:
		if v {
			return append(b, "true"...)
		}
		return append(b, "false"...)
	case nil:
		return append(b, "null"...)
	}
	panic(fmt.Sprintf("pin: unexpected value %T", v)) // parse produces no other type
}

const hexDigits = "0123456789abcdef"

// appendString writes s quoted, escaping only what JSON requires.
func appendString(b []byte, s string) []byte {
	if !utf8.ValidString(s) { // encoding/json already replaced these; stay safe
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			b = append(b, '\\', '"')
		case c == '\\':
			b = append(b, '\\', '\\')
		case c >= 0x20:
			b = append(b, c)
		case c == '\b':
			b = append(b, '\\', 'b')
		case c == '\f':
			b = append(b, '\\', 'f')
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '\r':
			b = append(b, '\\', 'r')
		case c == '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
	}
	return append(b, '"')
}
