package oauth

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// OAuth error codes (RFC 6749 §4.1.2.1 and §5.2, RFC 8707 §2, RFC 7591 §3.2.2).
const (
	errInvalidRequest          = "invalid_request"
	errInvalidClient           = "invalid_client"
	errInvalidGrant            = "invalid_grant"
	errUnauthorizedClient      = "unauthorized_client"
	errUnsupportedGrantType    = "unsupported_grant_type"
	errInvalidScope            = "invalid_scope"
	errInvalidTarget           = "invalid_target"
	errUnsupportedResponseType = "unsupported_response_type"
	errAccessDenied            = "access_denied"
	errServerError             = "server_error"
	errTemporarilyUnavailable  = "temporarily_unavailable"
	errInvalidRedirectURI      = "invalid_redirect_uri"
	errInvalidClientMetadata   = "invalid_client_metadata"
)

// oauthError is an error answered to the client: an RFC 6749 code, a
// description for the client's developer (never a secret), the HTTP
// status, and the internal cause for the log.
type oauthError struct {
	Code        string
	Description string
	Status      int
	// basic asks for WWW-Authenticate: Basic (client_secret_basic failed).
	basic bool
	cause error
}

func (e *oauthError) Error() string {
	if e.cause != nil {
		return e.Code + ": " + e.Description + ": " + e.cause.Error()
	}
	return e.Code + ": " + e.Description
}

func (e *oauthError) Unwrap() error { return e.cause }

// newError returns an oauthError with the status RFC 6749 gives its code.
func newError(code, format string, args ...any) *oauthError {
	status := http.StatusBadRequest
	switch code {
	case errInvalidClient:
		status = http.StatusUnauthorized
	case errServerError:
		status = http.StatusInternalServerError
	case errTemporarilyUnavailable:
		status = http.StatusServiceUnavailable
	}
	return &oauthError{Code: code, Description: fmt.Sprintf(format, args...), Status: status}
}

// serverError hides an internal failure behind a generic description.
func serverError(cause error) *oauthError {
	e := newError(errServerError, "the authorization server failed; try again later")
	e.cause = cause
	return e
}

// writeJSON answers a JSON document that must not be cached.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"server_error"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// writeError answers an RFC 6749 §5.2 error response.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, e *oauthError) {
	if e.Status >= 500 {
		s.log.Error("oauth request failed", "path", r.URL.Path, "error", e)
	} else {
		s.log.Debug("oauth request refused", "path", r.URL.Path, "error", e.Code, "description", e.Description)
	}
	if e.basic {
		w.Header().Set("WWW-Authenticate", `Basic realm="gatehouse", charset="UTF-8"`)
	}
	writeJSON(w, e.Status, struct {
		Error       string `json:"error"`
		Description string `json:"error_description,omitempty"`
	}{e.Code, e.Description})
}
