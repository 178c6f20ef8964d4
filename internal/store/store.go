// Package store is Gatehouse's persistent state: teams, agents and their
// credentials, local users, OAuth clients, authorization codes, refresh
// tokens, signing keys and vault entries. One interface, two
// implementations: SQLite (the embedded default, modernc.org/sqlite, pure
// Go) and PostgreSQL (pgx/v5). Migrations are embedded in the binary.
//
// Nothing here runs on the request hot path: the identity layer caches what
// it needs and learns about changes through Changes.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// Errors callers branch on. Implementations wrap them with context.
var (
	// ErrNotFound: no such record.
	ErrNotFound = errors.New("not found")
	// ErrConflict: a unique field (name, client id, prefix) is taken.
	ErrConflict = errors.New("already exists")
	// ErrUsed: a single-use record (authorization code, refresh token) was
	// already consumed, or has expired.
	ErrUsed = errors.New("already used or expired")
)

// Store is the persistent state. Implementations are safe for concurrent
// use. Times are stored and returned in UTC with at least millisecond
// precision.
type Store interface {
	// Teams.
	UpsertTeam(ctx context.Context, t Team) error
	GetTeam(ctx context.Context, name string) (Team, error)
	ListTeams(ctx context.Context) ([]Team, error)

	// Agents. Names and client ids are unique.
	CreateAgent(ctx context.Context, a Agent) error
	GetAgent(ctx context.Context, id string) (Agent, error)
	GetAgentByName(ctx context.Context, name string) (Agent, error)
	GetAgentByClientID(ctx context.Context, clientID string) (Agent, error)
	ListAgents(ctx context.Context, f AgentFilter) ([]Agent, error)
	// UpdateAgent replaces the mutable fields (Team, Owner, Status,
	// Attributes, RevokedAt, UpdatedAt) of the agent with a.ID.
	UpdateAgent(ctx context.Context, a Agent) error

	// Credentials of agents. Prefixes are unique.
	AddCredential(ctx context.Context, c Credential) error
	GetCredentialByPrefix(ctx context.Context, prefix string) (Credential, error)
	ListCredentials(ctx context.Context, agentID string) ([]Credential, error)
	// UpdateCredential replaces ExpiresAt and RevokedAt of c.ID.
	UpdateCredential(ctx context.Context, c Credential) error

	// Local users (humans) who log in to the gateway's own login page.
	CreateUser(ctx context.Context, u User) error
	GetUser(ctx context.Context, username string) (User, error)
	ListUsers(ctx context.Context) ([]User, error)
	// UpdateUser replaces PasswordHash, Groups, Disabled and UpdatedAt.
	UpdateUser(ctx context.Context, u User) error

	// OAuth clients registered dynamically (RFC 7591) or by metadata
	// document; ClientID is unique.
	CreateClient(ctx context.Context, c OAuthClient) error
	GetClient(ctx context.Context, clientID string) (OAuthClient, error)

	// Authorization codes are single use.
	CreateAuthCode(ctx context.Context, c AuthCode) error
	// ConsumeAuthCode marks the code used and returns it; ErrUsed when it
	// was used before or has expired (at now), ErrNotFound when unknown.
	ConsumeAuthCode(ctx context.Context, hash []byte, now time.Time) (AuthCode, error)

	// Refresh tokens rotate: each is used once; reuse revokes its family.
	CreateRefreshToken(ctx context.Context, t RefreshToken) error
	// ConsumeRefreshToken marks the token used and returns it; ErrUsed when
	// it was used, revoked or expired (then the whole family is revoked).
	ConsumeRefreshToken(ctx context.Context, hash []byte, now time.Time) (RefreshToken, error)
	RevokeRefreshFamily(ctx context.Context, family string, at time.Time) error

	// Signing keys for access tokens.
	AddSigningKey(ctx context.Context, k SigningKey) error
	ListSigningKeys(ctx context.Context) ([]SigningKey, error)
	// UpdateSigningKey replaces Private (re-sealed after a key-encryption
	// key rotation), RetiresAt and ExpiresAt of k.KID.
	UpdateSigningKey(ctx context.Context, k SigningKey) error
	DeleteSigningKey(ctx context.Context, kid string) error

	// Vault entries: encrypted secrets, keyed by (Name, Agent); Agent ""
	// is the shared entry.
	PutSecret(ctx context.Context, s VaultSecret) error
	GetSecret(ctx context.Context, name, agent string) (VaultSecret, error)
	ListSecrets(ctx context.Context) ([]VaultSecret, error) // all fields
	DeleteSecret(ctx context.Context, name, agent string) error

	// Time-bounded grants: an agent's membership of a bundle until a
	// moment. Expiry is noted once (MarkGrantExpired) so that exactly one
	// replica records it.
	CreateGrant(ctx context.Context, g Grant) error
	GetGrant(ctx context.Context, id string) (Grant, error)
	ListGrants(ctx context.Context, f GrantFilter) ([]Grant, error)
	// RevokeGrant sets RevokedAt/RevokedBy of an active grant; ErrNotFound
	// when id does not exist, ErrUsed when it is already revoked or expired.
	RevokeGrant(ctx context.Context, id, by string, at time.Time) error
	// MarkGrantExpired sets ExpiryNoted on a grant whose ExpiresAt is
	// before now and that is not yet noted or revoked; it reports whether
	// this call did it.
	MarkGrantExpired(ctx context.Context, id string, now time.Time) (bool, error)

	// Approvals of held calls.
	CreateApproval(ctx context.Context, a Approval) error
	GetApproval(ctx context.Context, id string) (Approval, error)
	ListApprovals(ctx context.Context, f ApprovalFilter) ([]Approval, error)
	// DecideApproval moves a pending, unexpired approval to approved or
	// denied; ErrUsed when it is no longer pending or has expired,
	// ErrNotFound when id does not exist.
	DecideApproval(ctx context.Context, id, status, by, note string, at time.Time) (Approval, error)
	// FindApproval returns the newest approval of the exact call (Key)
	// that is pending or approved and unexpired at now; ErrNotFound if none.
	FindApproval(ctx context.Context, key string, now time.Time) (Approval, error)
	// ConsumeApproval moves an approved, unexpired approval to used (it is
	// single-use); ErrUsed when it is not approved, already used, or expired.
	ConsumeApproval(ctx context.Context, id string, now time.Time) (Approval, error)

	// Tool pins: the approved definition of each upstream tool, and the
	// latest definition waiting for approval (a changed one, or a new one
	// when new tools need approval). See internal/inspect/pin.
	//
	// PinTool stores p as the approved definition of (p.Upstream, p.Tool)
	// only when that tool has none yet; ErrConflict when it has one (a
	// replica pinned it first: read it back).
	PinTool(ctx context.Context, p ToolPin) error
	// GetToolPin returns the approved definition; ErrNotFound when none.
	GetToolPin(ctx context.Context, upstream, tool string) (ToolPin, error)
	// ListToolPins returns the approved definitions of upstream's tools
	// (every upstream's when upstream is ""), by upstream then tool.
	ListToolPins(ctx context.Context, upstream string) ([]ToolPin, error)
	// RecordPendingTool stores p as the definition of (p.Upstream, p.Tool)
	// waiting for approval, replacing an earlier one with another hash
	// (then FirstSeen is p's) or updating LastSeen of the same one.
	RecordPendingTool(ctx context.Context, p PendingTool) error
	// ListPendingTools returns the definitions waiting for approval
	// (every upstream's when upstream is ""), by upstream then tool.
	ListPendingTools(ctx context.Context, upstream string) ([]PendingTool, error)
	// ApproveTool makes the pending definition of (upstream, tool) with
	// the given hash the approved one, atomically: it replaces the pin and
	// removes the pending entry. ErrNotFound when no pending definition
	// has that hash (it changed again, or was approved already).
	ApproveTool(ctx context.Context, upstream, tool, hash, by string, at time.Time) (ToolPin, error)
	// DeleteToolPin forgets the approved and pending definitions of
	// (upstream, tool); ErrNotFound when there were none.
	DeleteToolPin(ctx context.Context, upstream, tool string) error

	// Changes publishes a change to every process using this store
	// (PostgreSQL: LISTEN/NOTIFY; SQLite: in-process only) and Subscribe
	// delivers them, including this process's own, until ctx ends. A
	// subscriber that falls behind may miss changes; it is then told with
	// a Change of Kind "resync" and must reload what it caches.
	Publish(ctx context.Context, c Change) error
	Subscribe(ctx context.Context) (<-chan Change, error)

	Close() error
}

// Change names a record that changed, so caches can drop it.
type Change struct {
	Kind string `json:"kind"` // agent, credential, signing_key, secret, user, team, client, grant, approval, tool_pin, resync
	ID   string `json:"id"`   // the record's id, name or prefix
}

// Team groups agents and holds their credential policy.
type Team struct {
	Name string
	// MaxSecretAge is how long a client secret or API key of the team's
	// agents may live (0: the default, 90 days).
	MaxSecretAge time.Duration
	CreatedAt    time.Time
}

// Agent statuses.
const (
	AgentActive   = "active"
	AgentDisabled = "disabled"
	AgentRevoked  = "revoked"
)

// Agent is a non-human identity: an AI agent or a service.
type Agent struct {
	ID         string // stable, e.g. "agt_01J…"
	Name       string // unique, human-chosen
	ClientID   string // the OAuth client id
	Team       string
	Owner      string          // the accountable human, e.g. alice@example.com
	Status     string          // AgentActive, AgentDisabled, AgentRevoked
	Attributes json.RawMessage // JSON object for policy (queues, regions, …)
	Source     string          // "api" or "config"
	CreatedAt  time.Time
	UpdatedAt  time.Time
	RevokedAt  *time.Time
}

// AgentFilter selects agents; zero fields match all.
type AgentFilter struct {
	Team   string
	Status string
}

// Credential kinds.
const (
	CredSecret = "secret"  // client secret (client_secret_basic/post)
	CredAPIKey = "api_key" // static API key
	CredJWK    = "jwk"     // public key for private_key_jwt
)

// Credential is one secret, API key or public key of an agent. Secrets and
// keys are stored hashed (SHA-256 of a high-entropy random value); the
// plain value is shown once at creation.
type Credential struct {
	ID        string
	AgentID   string
	Kind      string
	Prefix    string // unique, shown in listings (e.g. "ghs_3fK9…"), used for look-up
	Hash      []byte // SHA-256 of the full secret; nil for CredJWK
	PublicJWK json.RawMessage
	CreatedAt time.Time
	// ExpiresAt ends the credential (rotation overlap, maximum age).
	ExpiresAt *time.Time
	RevokedAt *time.Time
}

// User is a human who logs in with a password (until SSO).
type User struct {
	Username     string // unique (an email address is fine)
	PasswordHash string // argon2id, PHC string format
	Groups       []string
	Disabled     bool
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// OAuthClient is a client that registered itself (RFC 7591) or is known by
// its client ID metadata document.
type OAuthClient struct {
	ClientID     string
	Name         string
	RedirectURIs []string
	Kind         string          // "dynamic" or "metadata_document"
	Metadata     json.RawMessage // the registration or document, as received
	SecretHash   []byte          // confidential dynamic clients only
	CreatedAt    time.Time
}

// AuthCode is an authorization code (stored hashed).
type AuthCode struct {
	Hash          []byte
	ClientID      string
	Username      string
	AgentID       string // when the human drives an agent (act claim), else ""
	RedirectURI   string
	CodeChallenge string // S256
	Resource      string // RFC 8707
	Scope         string
	CreatedAt     time.Time
	ExpiresAt     time.Time
}

// RefreshToken is a rotating refresh token (stored hashed).
type RefreshToken struct {
	Hash      []byte
	Family    string // all rotations of one grant
	ClientID  string
	Username  string
	AgentID   string
	Resource  string
	Scope     string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// SigningKey is a token signing key. The private key is sealed by the
// vault's key-encryption key.
type SigningKey struct {
	KID        string
	Alg        string // ES256 or EdDSA
	Private    []byte // sealed
	PublicJWK  json.RawMessage
	CreatedAt  time.Time
	ActivateAt time.Time // starts signing (published earlier, for overlap)
	RetiresAt  time.Time // stops signing
	ExpiresAt  time.Time // leaves the JWKS (after the longest token lifetime)
}

// VaultSecret is one encrypted upstream credential (envelope encryption:
// the value is encrypted with a data key, the data key with the
// key-encryption key KEKID).
type VaultSecret struct {
	Name       string
	Agent      string // "" for the shared entry, else an agent id
	Ciphertext []byte
	WrappedDEK []byte
	KEKID      string
	Version    int
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// Grant makes an agent a member of a bundle for a bounded time.
type Grant struct {
	ID          string // "grt_…"
	AgentID     string
	Bundle      string
	Reason      string
	CreatedBy   string
	CreatedAt   time.Time
	ExpiresAt   time.Time
	RevokedAt   *time.Time
	RevokedBy   string
	ExpiryNoted bool // the expiry has been recorded (MarkGrantExpired)
}

// Active reports whether the grant is in force at now.
func (g Grant) Active(now time.Time) bool {
	return g.RevokedAt == nil && now.Before(g.ExpiresAt)
}

// GrantFilter selects grants; zero fields match everything.
type GrantFilter struct {
	AgentID string
	Bundle  string
	// ActiveAt, when set, keeps only grants neither revoked nor expired at
	// that moment.
	ActiveAt time.Time
	// ExpiredUnnoted keeps only grants expired before ActiveAt (required
	// then) whose expiry is not yet noted and that were not revoked.
	ExpiredUnnoted bool
}

// Approval states.
const (
	ApprovalPending  = "pending"
	ApprovalApproved = "approved"
	ApprovalDenied   = "denied"
	ApprovalUsed     = "used"
)

// Approval is a held call waiting for, or carrying, a human decision. It
// is bound to the exact call by Key (who, server, tool, hash of the
// arguments, policy version) and is single-use.
type Approval struct {
	ID            string // "apr_…"
	Key           string // hex SHA-256 binding the exact call
	Status        string
	Principal     string // identity ID of the caller ("agent:agt_…", "user:alice")
	PrincipalName string // agent or user name, for people
	Server        string
	Tool          string // the client-visible tool name
	ArgsHash      string
	Args          json.RawMessage // masked arguments, for the approver
	PolicyVersion string
	Rule          string // the workflow rule that asked for approval
	Reason        string
	CreatedAt     time.Time
	ExpiresAt     time.Time
	DecidedBy     string
	DecidedAt     *time.Time
	Note          string
	UsedAt        *time.Time
}

// ApprovalFilter selects approvals; zero fields match everything.
type ApprovalFilter struct {
	Status    string
	Principal string
	Limit     int // 0: 100
}

// ToolPin is the approved definition of one upstream tool, in the
// canonical form of pin.Fingerprint.
type ToolPin struct {
	Upstream   string // the upstream's name in configuration
	Tool       string // the tool's name as the upstream lists it
	Hash       string // hex SHA-256 of Canonical
	Canonical  json.RawMessage
	ApprovedBy string // "first-use" when pinned on first sight, else the operator
	ApprovedAt time.Time
}

// PendingTool is a tool definition waiting for an operator's approval:
// one that differs from its pin, or a new tool when new tools need
// approval.
type PendingTool struct {
	Upstream  string
	Tool      string
	Hash      string
	Canonical json.RawMessage
	FirstSeen time.Time
	LastSeen  time.Time
}
