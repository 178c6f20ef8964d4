package mcp

import (
	"gatehouse/internal/audit"
	"net"
	"net/http"
	"strconv"
	"strings"

	"gatehouse/internal/identity"
	"gatehouse/internal/jsonrpc"
)

// Authenticator verifies the credential of a request for a virtual server
// whose resource URL (the token audience) is resource.
type Authenticator interface {
	Authenticate(r *http.Request, server, resource string) (*identity.Principal, *identity.AuthError)
}

// resourceURL is the canonical URL of a virtual server (RFC 8707): the
// audience of its tokens.
func (h *Handler) resourceURL(server string) string { return h.issuer + "/mcp/" + server }

// authenticate checks the caller and returns the request with its
// principal in the context, or writes the 401/403 answer.
func (h *Handler) authenticate(w http.ResponseWriter, r *http.Request, server string) (*http.Request, bool) {
	if h.auth == nil {
		return r, true
	}
	p, aerr := h.auth.Authenticate(r, server, h.resourceURL(server))
	if aerr != nil {
		if h.onAuthFailure != nil {
			h.onAuthFailure(aerr.Code)
		}
		h.writeAuthError(w, server, aerr)
		if aerr.Code != "" {
			h.log.Info("request refused", "server", server, "status", aerr.Status, "error", aerr.Code, "reason", aerr.Description, "remote", r.RemoteAddr)
			if h.record != nil {
				// A request without credentials is the normal first step of
				// discovery; one with bad or insufficient credentials is an
				// event.
				if err := h.record(audit.Record{Kind: audit.KindAuth, Action: "auth.refused",
					Actor:   audit.Actor{Kind: "anonymous", Source: remoteIP(r)},
					Target:  audit.Target{Server: server, Method: r.Method},
					Outcome: audit.Outcome{Status: audit.OutcomeDenied, Error: aerr.Code, Reason: aerr.Description}}); err != nil {
					h.log.Error("audit: an authentication refusal could not be recorded", "error", err)
				}
			}
		}
		return r, false
	}
	return r.WithContext(identity.WithPrincipal(r.Context(), p)), true
}

// writeAuthError answers an authentication failure the way MCP clients
// discover authorization: 401 with WWW-Authenticate pointing at the
// protected resource metadata (RFC 9728), 403 insufficient_scope with the
// scope needed (RFC 6750).
func (h *Handler) writeAuthError(w http.ResponseWriter, server string, e *identity.AuthError) {
	params := []string{`resource_metadata="` + h.issuer + "/.well-known/oauth-protected-resource/mcp/" + server + `"`}
	if e.Code != "" {
		params = append(params, `error="`+e.Code+`"`)
		params = append(params, `error_description=`+strconv.Quote(sanitizeHeader(e.Description)))
	}
	if e.Scope != "" {
		params = append(params, `scope="`+e.Scope+`"`)
	}
	w.Header().Set("WWW-Authenticate", "Bearer "+strings.Join(params, ", "))
	code := jsonrpc.CodeInvalidRequest
	msg := e.Description
	if e.Code != "" {
		msg = e.Code + ": " + e.Description
	}
	writeError(w, e.Status, nil, jsonrpc.NewError(code, msg))
}

// sanitizeHeader keeps a description to the characters allowed in an
// RFC 6750 error_description.
func sanitizeHeader(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			b[i] = '\''
		}
	}
	return string(b)
}

// owner returns the identity a request acts as ("" without
// authentication).
func owner(r *http.Request) string {
	if p, ok := identity.FromContext(r.Context()); ok {
		return p.ID()
	}
	return ""
}

// principalOf returns the request's principal (nil without
// authentication).
func principalOf(r *http.Request) *identity.Principal {
	p, _ := identity.FromContext(r.Context())
	return p
}

// remoteIP is the client's IP address as the connection shows it (the
// gateway does not trust forwarding headers).
func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
