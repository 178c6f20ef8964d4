package mcp

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"strings"

	"gatehouse/internal/gateway"
	"gatehouse/internal/jsonrpc"
)

// Reserved _meta keys of the 2026-07-28 revision.
const (
	metaVersion      = "io.modelcontextprotocol/protocolVersion"
	metaCapabilities = "io.modelcontextprotocol/clientCapabilities"
)

// isModern reports whether a request without session uses the stateless
// 2026-07-28 revision: its MCP-Protocol-Version header is not one of the
// handshake revisions, or its params carry the per-request _meta version.
func isModern(r *http.Request, m *jsonrpc.Message) bool {
	if v := r.Header.Get("Mcp-Protocol-Version"); v != "" && !slices.Contains(gateway.LegacyVersions, v) {
		return true
	}
	if m.Params == nil || m.Params[0] != '{' {
		return false
	}
	meta, ok := jsonrpc.Get(m.Params, "_meta")
	if !ok || len(meta) == 0 || meta[0] != '{' {
		return false
	}
	_, ok = jsonrpc.Get(meta, metaVersion)
	return ok
}

// removedMethods no longer exist in 2026-07-28; a modern request for them
// gets 404 and Method not found.
var removedMethods = map[string]bool{
	"initialize": true, "ping": true, "logging/setLevel": true,
	"resources/subscribe": true, "resources/unsubscribe": true,
	"notifications/initialized": true,
}

// stateless serves one request of the 2026-07-28 revision after checking
// its headers against its body, as the transport requires of anything that
// processes the body.
func (h *Handler) stateless(w http.ResponseWriter, r *http.Request, server string, m *jsonrpc.Message) {
	id := m.ID
	bad := func(status int, code int, msg string) {
		writeError(w, status, id, jsonrpc.NewError(code, msg))
	}
	if m.Kind == jsonrpc.KindResult || m.Kind == jsonrpc.KindError {
		bad(http.StatusBadRequest, jsonrpc.CodeInvalidRequest, "clients of protocol revision 2026-07-28 do not send responses")
		return
	}
	hv := r.Header.Get("Mcp-Protocol-Version")
	if hv == "" {
		bad(http.StatusBadRequest, jsonrpc.CodeHeaderMismatch, "Header mismatch: missing MCP-Protocol-Version header")
		return
	}
	var meta []byte
	if m.Params != nil && m.Params[0] == '{' {
		meta, _ = jsonrpc.Get(m.Params, "_meta")
	}
	if m.Kind == jsonrpc.KindRequest {
		var missing []string
		for _, k := range []string{metaVersion, metaCapabilities} {
			if meta == nil || meta[0] != '{' {
				missing = append(missing, k)
				continue
			}
			if _, ok := jsonrpc.Get(meta, k); !ok {
				missing = append(missing, k)
			}
		}
		if len(missing) > 0 {
			bad(http.StatusBadRequest, jsonrpc.CodeInvalidParams, "Invalid params: missing _meta keys: "+strings.Join(missing, ", "))
			return
		}
	}
	bodyVersion := ""
	if meta != nil && meta[0] == '{' {
		if v, ok := jsonrpc.Get(meta, metaVersion); ok {
			bodyVersion, _ = jsonrpc.String(v)
		}
	}
	if bodyVersion != "" && bodyVersion != hv {
		bad(http.StatusBadRequest, jsonrpc.CodeHeaderMismatch, "Header mismatch: MCP-Protocol-Version header value '"+hv+"' does not match body value '"+bodyVersion+"'")
		return
	}
	if hv != gateway.ModernVersion {
		data, _ := json.Marshal(map[string]any{"supported": gateway.SupportedVersions(), "requested": hv})
		writeError(w, http.StatusBadRequest, id, &jsonrpc.Error{Code: jsonrpc.CodeUnsupportedProtocolVersion, Message: "Unsupported protocol version", Data: data})
		return
	}
	if mh := r.Header.Get("Mcp-Method"); mh != m.Method {
		if mh == "" {
			bad(http.StatusBadRequest, jsonrpc.CodeHeaderMismatch, "Header mismatch: missing Mcp-Method header")
		} else {
			bad(http.StatusBadRequest, jsonrpc.CodeHeaderMismatch, "Header mismatch: Mcp-Method header value '"+mh+"' does not match body value '"+m.Method+"'")
		}
		return
	}
	if key := nameSource(m.Method); key != "" {
		var bodyName string
		if m.Params != nil && m.Params[0] == '{' {
			if v, ok := jsonrpc.Get(m.Params, key); ok {
				bodyName, _ = jsonrpc.String(v)
			}
		}
		raw := r.Header.Get("Mcp-Name")
		if raw == "" {
			bad(http.StatusBadRequest, jsonrpc.CodeHeaderMismatch, "Header mismatch: missing Mcp-Name header")
			return
		}
		hn, ok := decodeHeaderValue(raw)
		if !ok {
			bad(http.StatusBadRequest, jsonrpc.CodeHeaderMismatch, "Header mismatch: malformed Mcp-Name header")
			return
		}
		// Never trust Mcp-Name over the body: they must agree.
		if hn != bodyName {
			bad(http.StatusBadRequest, jsonrpc.CodeHeaderMismatch, "Header mismatch: Mcp-Name header value '"+hn+"' does not match body value '"+bodyName+"'")
			return
		}
	}
	if m.Kind == jsonrpc.KindNotification {
		w.WriteHeader(http.StatusAccepted)
		return
	}
	if removedMethods[m.Method] {
		bad(http.StatusNotFound, jsonrpc.CodeMethodNotFound, "Method not found: "+m.Method+" is not part of protocol revision 2026-07-28")
		return
	}
	var params map[string]string
	for k, v := range r.Header {
		if strings.HasPrefix(k, "Mcp-Param-") && len(v) > 0 {
			if params == nil {
				params = map[string]string{}
			}
			params[k] = v[0]
		}
	}
	// Most requests are answered as an SSE stream scoped to the request
	// (progress and log notifications may precede the result); errors
	// found before forwarding use plain JSON with their HTTP status.
	rr := &reqReplier{st: newStream("s", false, 1<<16), w: w, ctx: r.Context(), status: modernStatus, sseFinal: true}
	ctx := gateway.WithSource(r.Context(), remoteIP(r))
	rr.serve(func() { h.gw.HandleStateless(ctx, server, m, params, rr) })
}

// nameSource names the params member mirrored in Mcp-Name for a method.
func nameSource(method string) string {
	switch method {
	case "tools/call", "prompts/get":
		return "name"
	case "resources/read":
		return "uri"
	}
	return ""
}

// decodeHeaderValue decodes the base64 sentinel form =?base64?...?= used
// for header values that are not plain ASCII.
func decodeHeaderValue(v string) (string, bool) {
	inner, ok := strings.CutPrefix(v, "=?base64?")
	if !ok {
		return v, true
	}
	inner, ok = strings.CutSuffix(inner, "?=")
	if !ok {
		return "", false
	}
	b, err := base64.StdEncoding.DecodeString(inner)
	if err != nil {
		return "", false
	}
	return string(b), true
}

// modernStatus maps a JSON-RPC error response to the HTTP status the
// 2026-07-28 transport requires.
func modernStatus(resp []byte) int {
	m, err := jsonrpc.Parse(resp)
	if err != nil || m.Kind != jsonrpc.KindError {
		return 0
	}
	code, ok := jsonrpc.Get(m.Error, "code")
	if !ok {
		return 0
	}
	switch string(code) {
	case "-32601":
		return http.StatusNotFound
	case "-32602", "-32020", "-32021", "-32022":
		return http.StatusBadRequest
	}
	return 0
}
