package jsonrpc

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
)

// Standard JSON-RPC 2.0 error codes.
const (
	CodeParseError     = -32700
	CodeInvalidRequest = -32600
	CodeMethodNotFound = -32601
	CodeInvalidParams  = -32602
	CodeInternalError  = -32603
)

// Error codes defined by the MCP specification (2026-07-28 numbering, and
// the legacy resource-not-found code of earlier revisions).
const (
	CodeResourceNotFoundLegacy     = -32002
	CodeHeaderMismatch             = -32020
	CodeMissingRequiredCapability  = -32021
	CodeUnsupportedProtocolVersion = -32022
)

// Gateway error codes. MCP 2026-07-28 reserves -32020..-32099 for the
// specification and asks implementations not to use -32000..-32019, so the
// gateway's own codes live outside the JSON-RPC reserved range. They are
// listed in docs/errors.md and must not change once released.
const (
	// CodeUpstreamUnavailable: the upstream serving this item cannot be
	// reached (not started, crashed, connection refused).
	CodeUpstreamUnavailable = -31001
	// CodeUpstreamTimeout: the upstream did not answer within its timeout.
	CodeUpstreamTimeout = -31002
	// CodeOverloaded: the gateway refused the request to protect itself.
	CodeOverloaded = -31005
	// CodePolicyDenied: a policy rule denied the call; the message names
	// the rule, data carries {rule, origin}.
	CodePolicyDenied = -31010
	// CodeApprovalPending: the call needs a human approval that was not
	// given in time; data carries {approval_id, expires_at}. Retrying the
	// same call once it is approved proceeds.
	CodeApprovalPending = -31011
)

// Error is a JSON-RPC error object. Message and Data are shown to the client;
// the wrapped cause is for logs and audit only.
type Error struct {
	Code    int
	Message string
	Data    json.RawMessage
	cause   error
}

func (e *Error) Error() string {
	if e.cause != nil {
		return e.Message + ": " + e.cause.Error()
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.cause }

// NewError returns an error with the given public code and message.
func NewError(code int, msg string) *Error { return &Error{Code: code, Message: msg} }

// Wrap returns an error with a public code and message and a private cause.
func Wrap(code int, msg string, cause error) *Error {
	return &Error{Code: code, Message: msg, cause: cause}
}

// WithData returns a copy of e carrying data (any JSON-marshalable value).
func (e *Error) WithData(v any) *Error {
	c := *e
	if b, err := json.Marshal(v); err == nil {
		c.Data = b
	}
	return &c
}

// FromError maps any error to a JSON-RPC error: typed errors first, then
// context cancellation and deadlines, then an internal error whose text is
// not shown to the client.
func FromError(err error) *Error {
	var je *Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &je):
		return je
	case errors.Is(err, context.DeadlineExceeded):
		return Wrap(CodeUpstreamTimeout, "request timed out", err)
	case errors.Is(err, context.Canceled):
		return Wrap(CodeInternalError, "request cancelled", err)
	}
	return Wrap(CodeInternalError, "internal error", err)
}

// AppendErrorObject appends the JSON error object for e.
func (e *Error) AppendObject(b []byte) []byte {
	b = append(b, `{"code":`...)
	b = strconv.AppendInt(b, int64(e.Code), 10)
	b = append(b, `,"message":`...)
	b = appendString(b, e.Message)
	if len(e.Data) > 0 {
		b = append(b, `,"data":`...)
		b = append(b, e.Data...)
	}
	return append(b, '}')
}

// ErrorResponse builds an error response for the request id (raw JSON; nil
// means the id could not be read and null is sent).
func ErrorResponse(id []byte, e *Error) []byte {
	b := make([]byte, 0, 96+len(e.Message)+len(e.Data))
	b = append(b, `{"jsonrpc":"2.0","id":`...)
	if id == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, id...)
	}
	b = append(b, `,"error":`...)
	b = e.AppendObject(b)
	return append(b, '}')
}

// ResultResponse builds a result response with the raw result object.
func ResultResponse(id, result []byte) []byte {
	b := make([]byte, 0, 32+len(id)+len(result))
	b = append(b, `{"jsonrpc":"2.0","id":`...)
	b = append(b, id...)
	b = append(b, `,"result":`...)
	b = append(b, result...)
	return append(b, '}')
}

// Notification builds a notification message with raw params (nil for none).
func Notification(method string, params []byte) []byte {
	b := make([]byte, 0, 40+len(method)+len(params))
	b = append(b, `{"jsonrpc":"2.0","method":`...)
	b = appendString(b, method)
	if params != nil {
		b = append(b, `,"params":`...)
		b = append(b, params...)
	}
	return append(b, '}')
}

// Request builds a request message with raw id and params (nil for none).
func Request(id []byte, method string, params []byte) []byte {
	b := make([]byte, 0, 48+len(id)+len(method)+len(params))
	b = append(b, `{"jsonrpc":"2.0","id":`...)
	b = append(b, id...)
	b = append(b, `,"method":`...)
	b = appendString(b, method)
	if params != nil {
		b = append(b, `,"params":`...)
		b = append(b, params...)
	}
	return append(b, '}')
}

// ParseErrorObject decodes a raw error object.
func ParseErrorObject(raw []byte) *Error {
	var v struct {
		Code    int             `json:"code"`
		Message string          `json:"message"`
		Data    json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return NewError(CodeInternalError, "malformed error object")
	}
	return &Error{Code: v.Code, Message: v.Message, Data: v.Data}
}
