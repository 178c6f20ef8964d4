// Package audit is the audit trail: one record per action, written to a
// durable local queue before the gateway answers, then appended to a
// hash-chained table in the store (each record's hash covers the previous
// one's; signed checkpoints), then delivered to sinks, each with its own
// cursor. Records are never edited or deleted except by retention.
package audit

import (
	"encoding/json"
	"time"
)

// Kinds of record.
const (
	KindMCPRequest       = "mcp.request"        // a request from a client, with its outcome
	KindMCPNotification  = "mcp.notification"   // a notification, either direction
	KindMCPServerRequest = "mcp.server_request" // a server→client request relayed
	KindAuth             = "auth"               // token issued, refused, revoked, key rotated
	KindAdmin            = "admin"              // a change through the admin API or CLI
	KindPolicy           = "policy"             // grant and approval lifecycle, policy decisions not tied to a request
	KindAnomaly          = "anomaly"            // an agent's activity departed from its baseline
)

// Outcomes.
const (
	OutcomeAllowed   = "allowed"
	OutcomeDenied    = "denied"
	OutcomeError     = "error"
	OutcomeWouldDeny = "would_deny" // monitor mode let it through
	OutcomePending   = "pending"    // held for approval, not decided in time
)

// Record is one audited action. The JSON form is the canonical one: it is
// what the chain hashes (Hash and PrevHash excluded), what the store keeps
// and what `gatehouse audit verify` checks offline.
type Record struct {
	// ID is unique and stable across retries (sinks deduplicate on it):
	// "aud_" + 26 characters, sortable by creation time.
	ID string `json:"id"`
	// Seq is assigned when the record joins the chain: strictly
	// increasing, without gaps, per store.
	Seq  int64     `json:"seq"`
	Time time.Time `json:"time"` // UTC, millisecond precision
	Kind string    `json:"kind"`
	// Action names what happened within the kind: the MCP method
	// ("tools/call"), or "token.issued", "agent.created", "grant.expired", ….
	Action string `json:"action"`

	Actor   Actor   `json:"actor"`
	Target  Target  `json:"target,omitempty"`
	Outcome Outcome `json:"outcome"`
	Context Context `json:"context,omitempty"`

	// Args and Result are stored as the bundle's audit setting says
	// (default masked); Masking says which was applied.
	Args    json.RawMessage `json:"args,omitempty"`
	Result  *ResultSummary  `json:"result,omitempty"`
	Masking string          `json:"masking,omitempty"` // full, masked, hashed, omitted

	// Inspection is what the detectors found in the arguments and result
	// (never the text found) and the action taken.
	Inspection *Inspection `json:"inspection,omitempty"`

	// Latency: the whole request at the gateway, and the upstream's part.
	DurationMS float64 `json:"duration_ms,omitempty"`
	UpstreamMS float64 `json:"upstream_ms,omitempty"`
	BytesIn    int64   `json:"bytes_in,omitempty"`
	BytesOut   int64   `json:"bytes_out,omitempty"`

	// Replica names the gateway process that wrote the record.
	Replica string `json:"replica,omitempty"`

	// The chain: PrevHash is the previous record's Hash; Hash is
	// hex(SHA-256(PrevHash || canonical JSON of the record without both)).
	PrevHash string `json:"prev_hash,omitempty"`
	Hash     string `json:"hash,omitempty"`
}

// Actor is who acted.
type Actor struct {
	Kind      string `json:"kind,omitempty"` // agent, user, admin, system, anonymous
	ID        string `json:"id,omitempty"`   // identity id: "agent:agt_…", "user:alice"
	AgentID   string `json:"agent_id,omitempty"`
	AgentName string `json:"agent,omitempty"`
	Team      string `json:"team,omitempty"`
	User      string `json:"user,omitempty"` // the human (caller, or driving the agent)
	// Chain is the delegation chain, outermost first (e.g. the person,
	// then the agent acting for them).
	Chain         []string `json:"chain,omitempty"`
	ClientName    string   `json:"client_name,omitempty"`
	ClientVersion string   `json:"client_version,omitempty"`
	Source        string   `json:"source,omitempty"` // IP address
}

// Target is what the action was about.
type Target struct {
	Server   string `json:"server,omitempty"`
	Upstream string `json:"upstream,omitempty"`
	Method   string `json:"method,omitempty"`
	Tool     string `json:"tool,omitempty"`
	Prompt   string `json:"prompt,omitempty"`
	Resource string `json:"resource,omitempty"`
	// Object names what an admin or auth action changed ("agent triage-bot").
	Object string `json:"object,omitempty"`
}

// Outcome is how it ended and why.
type Outcome struct {
	Status string `json:"status"`           // an Outcome* constant
	Rule   string `json:"rule,omitempty"`   // the deciding policy rule
	Origin string `json:"origin,omitempty"` // its rule set
	Reason string `json:"reason,omitempty"`
	// ErrorCode and Error are the JSON-RPC error the client got, if any.
	ErrorCode int    `json:"error_code,omitempty"`
	Error     string `json:"error,omitempty"`
	Approval  string `json:"approval,omitempty"` // approval id, when one was involved
}

// Context ties the record to others.
type Context struct {
	SessionID     string `json:"session_id,omitempty"`
	RequestID     string `json:"request_id,omitempty"` // the JSON-RPC id, as sent
	CorrelationID string `json:"correlation_id,omitempty"`
	TraceParent   string `json:"traceparent,omitempty"` // W3C
	// Conversation is what the client supplied in _meta to tie requests to
	// a conversation (kept as sent, bounded).
	Conversation json.RawMessage `json:"conversation,omitempty"`
	Protocol     string          `json:"protocol,omitempty"` // MCP revision
	// Direction of a notification or relayed request: "client_to_server"
	// or "server_to_client" (requests from clients, the common case, leave
	// it empty).
	Direction string `json:"direction,omitempty"`
}

// Directions of a message.
const (
	ClientToServer = "client_to_server"
	ServerToClient = "server_to_client"
)

// Inspection summarises what inspection found in one exchange.
type Inspection struct {
	// Action is the strongest action taken: flag, alert, redact or block.
	Action string `json:"action"`
	// Review marks records an operator should look at (flag, alert).
	Review   bool      `json:"review,omitempty"`
	Findings []Finding `json:"findings"`
}

// Finding is one detector finding, without the text found.
type Finding struct {
	Category   string `json:"category"` // secret, pii, injection
	Type       string `json:"type"`
	Confidence string `json:"confidence"`
	Direction  string `json:"direction"` // request, response
	Path       string `json:"path,omitempty"`
	Action     string `json:"action"`
}

// ResultSummary describes a result without keeping it.
type ResultSummary struct {
	Bytes        int64    `json:"bytes,omitempty"`
	ContentTypes []string `json:"content_types,omitempty"` // text, image, resource_link, …
	IsError      bool     `json:"is_error,omitempty"`
	Items        int      `json:"items,omitempty"` // list lengths
}

// Checkpoint is a signed statement of the chain's head: the record with
// sequence Seq has hash Hash. Ed25519 over CheckpointMessage.
type Checkpoint struct {
	Seq       int64     `json:"seq"`
	Hash      string    `json:"hash"`
	Time      time.Time `json:"time"`
	KeyID     string    `json:"key_id"`
	PublicKey string    `json:"public_key"` // base64 raw Ed25519 public key
	Signature string    `json:"signature"`  // base64
}

// CheckpointMessage is what a checkpoint signs.
func CheckpointMessage(seq int64, hash string, t time.Time) []byte {
	b, _ := json.Marshal(struct {
		Seq  int64  `json:"seq"`
		Hash string `json:"hash"`
		Time string `json:"time"`
	}{seq, hash, t.UTC().Format(time.RFC3339Nano)})
	return append([]byte("gatehouse-audit-checkpoint-v1\n"), b...)
}
