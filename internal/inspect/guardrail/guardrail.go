// Package guardrail calls external guardrails on the content of tool calls
// and tool results: a generic signed HTTP contract (the webhook adapter) and
// adapters for AWS Bedrock Guardrails, Google Cloud DLP and Nightfall.
//
// Every adapter implements [Guardrail]: it receives a [Request] (the
// direction, who is calling what, the content as text and as JSON) and
// answers a [Verdict]: allow, deny with a reason, or mutate with
// replacement content. [Wrap] adds what every guardrail needs around the
// call: a timeout, a fail mode (closed by default: an error or a timeout
// denies), the directions it applies to and a cap on the response size.
//
// # The webhook contract
//
// The gateway POSTs one JSON object per check to the configured URL:
//
//	{"direction":"request|response", "server":"…", "upstream":"…",
//	 "method":"tools/call", "tool":"…", "agent":"…", "team":"…",
//	 "text":"…", "json":{…}}
//
// "text" is the string values of "json" joined by "\n" (see [TextOf]);
// "json" is the tool arguments (direction "request") or the tool result
// (direction "response"). The request carries these headers:
//
//	Content-Type: application/json
//	X-Gatehouse-Timestamp: <unix seconds>
//	X-Gatehouse-Signature: sha256=<hex HMAC-SHA256(key, "<timestamp>.<body>")>
//	Authorization: Bearer <token>          (when a token is configured)
//
// A receiver recomputes the HMAC over the timestamp header, a dot and the
// raw body, compares in constant time and rejects timestamps more than a
// few minutes from its clock, so a captured request cannot be replayed
// ([webhooksig.Verify] does this in Go). It answers 200 with
//
//	{"action":"allow|deny|mutate", "reason":"…", "json":{…}, "text":"…",
//	 "findings":[{"category":"pii","type":"email","start":0,"end":10,"confidence":"high"}]}
//
// "reason" (for deny) is shown to the caller, so it must not repeat the
// content it objects to. "json" (for mutate) replaces the arguments or the
// result and must have the same shape; "text" is accepted when the
// receiver can only rewrite text. "findings" is optional, with byte offsets
// into "text". Any other status, an unknown action or a body that is not
// this JSON is an error, handled by the guardrail's fail mode.
//
// Secrets (API keys, HMAC keys, service-account credentials) are given to
// the constructors as plain strings, already resolved from the vault. They
// are never logged, and no error returned here contains them or the
// content being checked.
package guardrail

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"gatehouse/internal/inspect"
)

// Direction says which way the checked content travels.
type Direction string

// Directions.
const (
	// DirectionRequest is a tool call's arguments, going to the upstream.
	DirectionRequest Direction = "request"
	// DirectionResponse is a tool result, coming back to the agent.
	DirectionResponse Direction = "response"
)

// ParseDirection reads "request" or "response".
func ParseDirection(s string) (Direction, error) {
	switch d := Direction(s); d {
	case DirectionRequest, DirectionResponse:
		return d, nil
	}
	return "", fmt.Errorf("direction %q: want request or response", s)
}

// Action is a guardrail's decision.
type Action string

// Actions.
const (
	Allow  Action = "allow"
	Deny   Action = "deny"
	Mutate Action = "mutate"
)

// Request is what a guardrail checks.
type Request struct {
	Direction Direction
	Server    string // the virtual server the agent called
	Upstream  string // the upstream serving the tool
	Method    string // the MCP method, e.g. "tools/call"
	Tool      string
	Agent     string
	Team      string
	// Text is the content to check: the string values of JSON joined by
	// "\n" (see TextOf). Findings' offsets point into it.
	Text string
	// JSON is the tool arguments (DirectionRequest) or the tool result
	// (DirectionResponse).
	JSON json.RawMessage
}

// Verdict is a guardrail's answer.
type Verdict struct {
	Action Action
	// Reason explains a deny. It is shown to the caller, so adapters build
	// it from policy and finding names, never from the checked content.
	Reason string
	// Findings are what the guardrail found, when it says where: byte
	// offsets into Request.Text.
	Findings []inspect.Finding
	// JSON is, for Mutate, the replacement arguments or result (same shape
	// as Request.JSON).
	JSON json.RawMessage
	// Text is, for Mutate by providers that only rewrite text, the
	// replacement for Request.Text. Exactly one of JSON and Text is set on
	// a Mutate.
	Text string
}

// Guardrail checks content with an external service.
type Guardrail interface {
	// Name identifies the guardrail in configuration, logs and deny
	// reasons.
	Name() string
	// Check asks the guardrail about r. An error means no verdict (the
	// service failed, timed out or answered nonsense); Wrap turns it into
	// a verdict according to the fail mode. Implementations are safe for
	// concurrent use.
	Check(ctx context.Context, r *Request) (Verdict, error)
}

// TextOf returns the string values of a JSON document in document order
// (object members in the order written, keys excluded), joined by "\n".
// It is the Request.Text the gateway sends for Request.JSON; invalid JSON
// gives the text read before the error.
func TextOf(doc json.RawMessage) string {
	dec := json.NewDecoder(bytes.NewReader(doc))
	var b strings.Builder
	// One entry per open object or array: in an object, tokens alternate
	// between a key and a value, so expectKey says what the next string is.
	type level struct{ object, expectKey bool }
	var stack []level
	valueDone := func() {
		if n := len(stack); n > 0 && stack[n-1].object {
			stack[n-1].expectKey = true
		}
	}
	first := true
	for {
		tok, err := dec.Token()
		if err != nil {
			return b.String()
		}
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{':
				stack = append(stack, level{object: true, expectKey: true})
			case '[':
				stack = append(stack, level{})
			default:
				stack = stack[:len(stack)-1]
				valueDone()
			}
		case string:
			if n := len(stack); n > 0 && stack[n-1].object && stack[n-1].expectKey {
				stack[n-1].expectKey = false
				continue
			}
			if !first {
				b.WriteByte('\n')
			}
			first = false
			b.WriteString(t)
			valueDone()
		default:
			valueDone()
		}
	}
}
