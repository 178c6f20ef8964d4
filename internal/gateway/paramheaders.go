package gateway

import (
	"encoding/base64"
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"strings"

	"gatehouse/internal/jsonrpc"
)

// paramHeader is one x-mcp-header annotation of a tool (2026-07-28): the
// argument at Path is mirrored in the HTTP header Mcp-Param-{Header}.
type paramHeader struct {
	Header string
	Path   []string
}

// paramHeadersOf reads the x-mcp-header annotations of a tool's
// inputSchema: properties reachable from the root through "properties"
// keys only, as the transport defines.
func paramHeadersOf(tool []byte) []paramHeader {
	schema, ok := jsonrpc.Get(tool, "inputSchema")
	if !ok {
		return nil
	}
	var out []paramHeader
	var walk func(schema []byte, path []string, depth int)
	walk = func(schema []byte, path []string, depth int) {
		if depth > 16 || len(schema) == 0 || schema[0] != '{' {
			return
		}
		props, ok := jsonrpc.Get(schema, "properties")
		if !ok || len(props) == 0 || props[0] != '{' {
			return
		}
		_ = jsonrpc.Members(props, func(m jsonrpc.Member) bool {
			name, ok := jsonrpc.String(append(append([]byte{'"'}, m.Name...), '"'))
			if !ok {
				return true
			}
			prop := props[m.Start:m.End]
			p := append(append([]string(nil), path...), name)
			if h, ok := jsonrpc.Get(prop, "x-mcp-header"); ok {
				if hs, ok := jsonrpc.String(h); ok && hs != "" {
					out = append(out, paramHeader{Header: hs, Path: p})
				}
			}
			walk(prop, p, depth+1)
			return true
		})
	}
	walk(schema, nil, 0)
	return out
}

// checkParamHeaders validates the Mcp-Param-* headers of a tools/call
// against its arguments: a present, non-null annotated argument needs its
// header with an equal value; an absent one must not have a header.
func checkParamHeaders(annotations []paramHeader, header map[string]string, params []byte) *jsonrpc.Error {
	if len(annotations) == 0 {
		return nil
	}
	args, _ := jsonrpc.Get(params, "arguments")
	for _, a := range annotations {
		name := http.CanonicalHeaderKey("Mcp-Param-" + a.Header)
		hv, hasHeader := header[name]
		val, present := lookupPath(args, a.Path)
		if !present || string(val) == "null" {
			if hasHeader {
				return mismatch("unexpected " + name + " header for an absent parameter " + strings.Join(a.Path, "."))
			}
			continue
		}
		if !hasHeader {
			return mismatch("missing " + name + " header for parameter " + strings.Join(a.Path, "."))
		}
		decoded, ok := decodeParamHeader(hv)
		if !ok {
			return mismatch(name + " header has invalid Base64 encoding")
		}
		if !primitiveEqual(decoded, val) {
			return mismatch(name + " header value does not match the body value")
		}
	}
	return nil
}

func mismatch(msg string) *jsonrpc.Error {
	return jsonrpc.NewError(jsonrpc.CodeHeaderMismatch, "Header mismatch: "+msg)
}

// lookupPath returns the raw value at a chain of object keys.
func lookupPath(v []byte, path []string) ([]byte, bool) {
	for _, k := range path {
		if len(v) == 0 || v[0] != '{' {
			return nil, false
		}
		next, ok := jsonrpc.Get(v, k)
		if !ok {
			return nil, false
		}
		v = next
	}
	return v, true
}

// decodeParamHeader decodes the =?base64?...?= form strictly (bad padding
// or characters fail); other values are literal.
func decodeParamHeader(v string) (string, bool) {
	inner, ok := strings.CutPrefix(v, "=?base64?")
	if !ok {
		return v, true
	}
	inner, ok = strings.CutSuffix(inner, "?=")
	if !ok {
		return v, true // no suffix: a literal value
	}
	b, err := base64.StdEncoding.Strict().DecodeString(inner)
	if err != nil {
		return "", false
	}
	return string(b), true
}

// primitiveEqual compares a header string with a JSON primitive: strings
// exactly, booleans as true/false, integers numerically.
func primitiveEqual(h string, raw []byte) bool {
	switch {
	case len(raw) > 0 && raw[0] == '"':
		s, ok := jsonrpc.String(raw)
		return ok && s == h
	case string(raw) == "true" || string(raw) == "false":
		return h == string(raw)
	}
	var body json.Number
	if json.Unmarshal(raw, &body) != nil {
		return false
	}
	bi, err := body.Int64()
	if err != nil {
		return false
	}
	hf, err := strconv.ParseFloat(h, 64)
	if err != nil || math.IsNaN(hf) || math.IsInf(hf, 0) || hf != math.Trunc(hf) || math.Abs(hf) > 1<<53-1 {
		return false
	}
	return int64(hf) == bi
}
