package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"gatehouse/internal/identity"
	"gatehouse/internal/store"
	"gatehouse/internal/vault"
)

// Error codes of the API's error body.
const (
	codeNotFound     = "not_found"
	codeConflict     = "conflict"
	codeInvalid      = "invalid"
	codeUnauthorized = "unauthorized"
	codeInternal     = "internal"
)

// ErrorBody is the body of every error response.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail says what went wrong.
type ErrorDetail struct {
	// Code is one of not_found, conflict, invalid, unauthorized, internal.
	Code string `json:"code"`
	// Message is meant for the operator; it never holds a secret.
	Message string `json:"message"`
}

// apiError is an error with its public status, code and message. The
// cause, if any, goes to the log only.
type apiError struct {
	status int
	code   string
	msg    string
	cause  error
	// extra members of the response body besides "error" (team rotation
	// returns the secrets it created before failing: they exist only
	// there).
	extra map[string]any
}

func (e *apiError) Error() string {
	if e.cause != nil {
		return e.msg + ": " + e.cause.Error()
	}
	return e.msg
}

func (e *apiError) Unwrap() error { return e.cause }

func badRequest(format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, code: codeInvalid, msg: fmt.Sprintf(format, args...)}
}

func notFound(format string, args ...any) *apiError {
	return &apiError{status: http.StatusNotFound, code: codeNotFound, msg: fmt.Sprintf(format, args...)}
}

// classify turns an error of the identity layer, the store or the vault
// into an apiError. subject names the record acted on ("agent \"bot\"")
// so that not-found and conflict messages are precise without exposing
// the store's wording (which may carry driver details).
func classify(err error, subject string) error {
	if err == nil {
		return nil
	}
	var ae *apiError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.Is(err, identity.ErrInvalid),
		errors.Is(err, vault.ErrInvalidName),
		errors.Is(err, vault.ErrInvalidAgent),
		errors.Is(err, vault.ErrInvalidValue):
		// These messages are written for the operator.
		return &apiError{status: http.StatusBadRequest, code: codeInvalid, msg: err.Error(), cause: err}
	case errors.Is(err, store.ErrNotFound):
		return &apiError{status: http.StatusNotFound, code: codeNotFound, msg: subject + " not found", cause: err}
	case errors.Is(err, store.ErrConflict):
		return &apiError{status: http.StatusConflict, code: codeConflict, msg: subject + " already exists", cause: err}
	}
	return &apiError{status: http.StatusInternalServerError, code: codeInternal, msg: "internal error (see the gateway's log)", cause: err}
}

// toAPIError is classify for errors that escaped it.
func toAPIError(err error) *apiError {
	var ae *apiError
	if errors.As(classify(err, "the record"), &ae) {
		return ae
	}
	return &apiError{status: http.StatusInternalServerError, code: codeInternal, msg: "internal error", cause: err}
}

// writeError renders an error response: the only place that does.
func writeError(w http.ResponseWriter, e *apiError) {
	body := map[string]any{"error": ErrorDetail{Code: e.code, Message: e.msg}}
	for k, v := range e.extra {
		body[k] = v
	}
	writeJSON(w, e.status, body)
}

// writeResult renders a successful response; a nil result is an empty
// body (204).
func writeResult(w http.ResponseWriter, status int, res any) {
	if res == nil {
		w.WriteHeader(status)
		return
	}
	if raw, ok := res.(rawJSON); ok {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write(raw)
		return
	}
	writeJSON(w, status, res)
}

// rawJSON is a result already encoded.
type rawJSON []byte

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// Every response type marshals; this is a bug.
		b, status = []byte(`{"error":{"code":"internal","message":"encoding the response failed"}}`), http.StatusInternalServerError
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// decodeBody decodes the request body into dst, strictly: unknown fields,
// trailing data and bodies over the limit are errors. An empty body is
// allowed when optional (dst keeps its zero value).
func decodeBody(r *http.Request, dst any, optional bool) error {
	raw, err := readBody(r)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		if optional {
			return nil
		}
		return badRequest("a JSON request body is required")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return badRequest("bad request body: %s", jsonProblem(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return badRequest("bad request body: unexpected data after the JSON value")
	}
	return nil
}

// readBody reads the (size-limited) request body.
func readBody(r *http.Request) ([]byte, error) {
	raw, err := io.ReadAll(r.Body)
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return nil, badRequest("request body larger than %d bytes", mbe.Limit)
	case err != nil:
		return nil, badRequest("reading the request body: %v", err)
	}
	return raw, nil
}

// jsonProblem words a decoding error for the operator. The decoder's
// messages name Go types; these name JSON fields.
func jsonProblem(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("invalid JSON at byte %d: %v", se.Offset, se)
	case errors.As(err, &te):
		if te.Field != "" {
			return fmt.Sprintf("field %q must be %s, not %s", te.Field, jsonKind(te.Type.Kind().String()), te.Value)
		}
		return fmt.Sprintf("the body must be a JSON object, not %s", te.Value)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "truncated JSON"
	}
	msg := err.Error()
	if f, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		return "unknown field " + f
	}
	return strings.TrimPrefix(msg, "json: ")
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "slice", "array":
		return "an array"
	case "map", "struct":
		return "an object"
	case "int", "int64", "float64":
		return "a number"
	}
	return goKind
}
