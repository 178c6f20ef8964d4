package jsonrpc

import (
	"encoding/json"
	"errors"
	"fmt"
)

// This file holds a small validating JSON scanner. It is hand-written because
// it sits on the data path of every message: the gateway needs a handful of
// top-level members and their byte spans (to splice rewritten values into the
// original bytes), never a decoded tree. One pass validates and locates.

// MaxDepth bounds the nesting of arrays and objects, like encoding/json's
// limit, so hostile input cannot exhaust memory.
const MaxDepth = 10000

// ErrSyntax is wrapped by every parse error of this package.
var ErrSyntax = errors.New("invalid JSON")

func syntaxErr(off int, what string) error {
	return fmt.Errorf("%w at offset %d: %s", ErrSyntax, off, what)
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// skipString validates the string starting at b[i] == '"' and returns the
// offset just past its closing quote, and whether it contained escapes.
func skipString(b []byte, i int) (int, bool, error) {
	start := i
	i++
	escaped := false
	for i < len(b) {
		c := b[i]
		switch {
		case c == '"':
			return i + 1, escaped, nil
		case c == '\\':
			escaped = true
			if i+1 >= len(b) {
				return 0, false, syntaxErr(i, "unterminated escape")
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) {
					return 0, false, syntaxErr(i, "short unicode escape")
				}
				for _, h := range b[i+2 : i+6] {
					if !isHex(h) {
						return 0, false, syntaxErr(i, "bad unicode escape")
					}
				}
				i += 6
			default:
				return 0, false, syntaxErr(i, "bad escape")
			}
		case c < 0x20:
			return 0, false, syntaxErr(i, "control character in string")
		default:
			// Invalid UTF-8 is accepted, as encoding/json does: the gateway
			// forwards bytes and must not be stricter than its peers.
			i++
		}
	}
	return 0, false, syntaxErr(start, "unterminated string")
}

func isHex(c byte) bool {
	return ('0' <= c && c <= '9') || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F')
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func skipNumber(b []byte, i int) (int, error) {
	start := i
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	default:
		return 0, syntaxErr(start, "bad number")
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || !isDigit(b[i]) {
			return 0, syntaxErr(start, "bad fraction")
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || !isDigit(b[i]) {
			return 0, syntaxErr(start, "bad exponent")
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	return i, nil
}

func skipLiteral(b []byte, i int, lit string) (int, error) {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return 0, syntaxErr(i, "bad literal")
	}
	return i + len(lit), nil
}

// skipValue validates the JSON value starting at b[i] (no leading space) and
// returns the offset just past it. Nesting is tracked with an explicit stack
// instead of recursion.
func skipValue(b []byte, i int) (int, error) {
	var stackBuf [32]byte
	stack := stackBuf[:0] // '{' or '['
	for {
		if i >= len(b) {
			return 0, syntaxErr(i, "unexpected end of input")
		}
		// Parse one value (opening a container counts as starting a value).
		switch c := b[i]; {
		case c == '{' || c == '[':
			if len(stack) >= MaxDepth {
				return 0, syntaxErr(i, "nesting too deep")
			}
			stack = append(stack, c)
			i = skipSpace(b, i+1)
			if i < len(b) && (b[i] == '}' && c == '{' || b[i] == ']' && c == '[') {
				stack = stack[:len(stack)-1]
				i++
				break
			}
			if c == '{' {
				var err error
				if i, err = skipMemberName(b, i); err != nil {
					return 0, err
				}
			}
			continue
		case c == '"':
			var err error
			if i, _, err = skipString(b, i); err != nil {
				return 0, err
			}
		case c == '-' || isDigit(c):
			var err error
			if i, err = skipNumber(b, i); err != nil {
				return 0, err
			}
		case c == 't':
			var err error
			if i, err = skipLiteral(b, i, "true"); err != nil {
				return 0, err
			}
		case c == 'f':
			var err error
			if i, err = skipLiteral(b, i, "false"); err != nil {
				return 0, err
			}
		case c == 'n':
			var err error
			if i, err = skipLiteral(b, i, "null"); err != nil {
				return 0, err
			}
		default:
			return 0, syntaxErr(i, "unexpected character")
		}
		// After a value: close containers or move to the next element.
		for {
			if len(stack) == 0 {
				return i, nil
			}
			i = skipSpace(b, i)
			if i >= len(b) {
				return 0, syntaxErr(i, "unexpected end of input")
			}
			top := stack[len(stack)-1]
			if b[i] == ',' {
				i = skipSpace(b, i+1)
				if top == '{' {
					var err error
					if i, err = skipMemberName(b, i); err != nil {
						return 0, err
					}
				}
				break
			}
			if top == '{' && b[i] == '}' || top == '[' && b[i] == ']' {
				stack = stack[:len(stack)-1]
				i++
				continue
			}
			return 0, syntaxErr(i, "expected ',' or closing bracket")
		}
	}
}

// skipMemberName consumes `"name" :` and following space.
func skipMemberName(b []byte, i int) (int, error) {
	if i >= len(b) || b[i] != '"' {
		return 0, syntaxErr(i, "expected member name")
	}
	i, _, err := skipString(b, i)
	if err != nil {
		return 0, err
	}
	i = skipSpace(b, i)
	if i >= len(b) || b[i] != ':' {
		return 0, syntaxErr(i, "expected ':'")
	}
	return skipSpace(b, i+1), nil
}

// Valid reports whether b is exactly one valid JSON value (with optional
// surrounding space).
func Valid(b []byte) bool {
	i := skipSpace(b, 0)
	end, err := skipValue(b, i)
	return err == nil && skipSpace(b, end) == len(b)
}

// Member is one member of a JSON object: the unquoted-raw name (between the
// quotes, escapes untouched) and the span of its value within the object.
type Member struct {
	Name       []byte // raw bytes between the quotes
	Escaped    bool   // Name contains escape sequences
	Start, End int    // value span, relative to the object slice
	KeyStart   int    // offset of the opening quote of the name
}

// Members calls fn for each member of the object obj, in order, stopping
// early when fn returns false. obj must be a complete object (leading and
// trailing space allowed). The whole object is validated even when fn stops.
func Members(obj []byte, fn func(m Member) bool) error {
	i := skipSpace(obj, 0)
	if i >= len(obj) || obj[i] != '{' {
		return syntaxErr(i, "expected object")
	}
	i = skipSpace(obj, i+1)
	if i < len(obj) && obj[i] == '}' {
		if skipSpace(obj, i+1) != len(obj) {
			return syntaxErr(i+1, "trailing data")
		}
		return nil
	}
	calling := true
	for {
		if i >= len(obj) || obj[i] != '"' {
			return syntaxErr(i, "expected member name")
		}
		keyStart := i
		end, esc, err := skipString(obj, i)
		if err != nil {
			return err
		}
		name := obj[i+1 : end-1]
		i = skipSpace(obj, end)
		if i >= len(obj) || obj[i] != ':' {
			return syntaxErr(i, "expected ':'")
		}
		i = skipSpace(obj, i+1)
		vstart := i
		if i, err = skipValue(obj, i); err != nil {
			return err
		}
		if calling && !fn(Member{Name: name, Escaped: esc, Start: vstart, End: i, KeyStart: keyStart}) {
			calling = false
		}
		i = skipSpace(obj, i)
		if i >= len(obj) {
			return syntaxErr(i, "unexpected end of object")
		}
		if obj[i] == '}' {
			if skipSpace(obj, i+1) != len(obj) {
				return syntaxErr(i+1, "trailing data")
			}
			return nil
		}
		if obj[i] != ',' {
			return syntaxErr(i, "expected ',' or '}'")
		}
		i = skipSpace(obj, i+1)
	}
}

// NameIs reports whether the member's name equals key, decoding escapes when
// the raw name has them (rare, but a client may legally write "n\u0061me").
func (m Member) NameIs(key string) bool {
	if !m.Escaped {
		return string(m.Name) == key
	}
	s, ok := unquote(append(append([]byte{'"'}, m.Name...), '"'))
	return ok && s == key
}

// Get returns the raw value of member key in object obj. It does not validate
// the remainder of the object after the member is found; callers validate
// once with Parse or Valid.
func Get(obj []byte, key string) ([]byte, bool) {
	var v []byte
	found := false
	_ = Members(obj, func(m Member) bool {
		if m.NameIs(key) {
			v, found = obj[m.Start:m.End], true
			return false
		}
		return true
	})
	return v, found
}

// Elements calls fn with the span of each element of the JSON array arr.
func Elements(arr []byte, fn func(start, end int) bool) error {
	i := skipSpace(arr, 0)
	if i >= len(arr) || arr[i] != '[' {
		return syntaxErr(i, "expected array")
	}
	i = skipSpace(arr, i+1)
	if i < len(arr) && arr[i] == ']' {
		if skipSpace(arr, i+1) != len(arr) {
			return syntaxErr(i+1, "trailing data")
		}
		return nil
	}
	calling := true
	for {
		start := i
		end, err := skipValue(arr, i)
		if err != nil {
			return err
		}
		if calling && !fn(start, end) {
			calling = false
		}
		i = skipSpace(arr, end)
		if i >= len(arr) {
			return syntaxErr(i, "unexpected end of array")
		}
		if arr[i] == ']' {
			if skipSpace(arr, i+1) != len(arr) {
				return syntaxErr(i+1, "trailing data")
			}
			return nil
		}
		if arr[i] != ',' {
			return syntaxErr(i, "expected ',' or ']'")
		}
		i = skipSpace(arr, i+1)
	}
}

// String decodes the JSON string raw (with quotes). It avoids strconv for
// the common escape-free case.
func String(raw []byte) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return "", false
	}
	inner := raw[1 : len(raw)-1]
	simple := true
	for _, c := range inner {
		if c == '\\' || c == '"' || c < 0x20 {
			simple = false
			break
		}
	}
	if simple {
		return string(inner), true
	}
	return unquote(raw)
}

func unquote(raw []byte) (string, bool) {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false
	}
	return s, true
}
