package admin

import (
	"net/http"
	"strings"

	"gatehouse/internal/policy"
)

// route is one admin operation: how it is served and how it is
// documented. The route table is the single source of both the mux and
// the OpenAPI document.
type route struct {
	method string
	// path is the OpenAPI path ("/admin/v1/agents/{name}"). A parameter
	// written {name...} matches the rest of the path (vault names may
	// contain '/'); the document shows it as {name}.
	path   string
	handle func(r *http.Request) (any, error)
	// status is the success status.
	status int

	summary     string
	description string
	query       []queryParam
	pathDocs    map[string]string // descriptions of path parameters
	// request is a value of the body type (nil: no body); requestOptional
	// says whether the body may be omitted.
	request         any
	requestOptional bool
	// response is a value of the success body type (nil: no body).
	response any
	// errors are the error statuses besides 401 and 500.
	errors []int
}

type queryParam struct {
	name, description string
}

// docPath is the path as OpenAPI writes it.
func (rt route) docPath() string { return strings.ReplaceAll(rt.path, "...}", "}") }

// routeTable lists every route.
func (a *API) routeTable() []route {
	const (
		agents = "/admin/v1/agents"
		agent  = "/admin/v1/agents/{name}"
	)
	agentParam := map[string]string{"name": "The agent's name."}
	grantParam := map[string]string{"id": "The grant's id (grt_…)."}
	approvalParam := map[string]string{"id": "The approval's id (apr_…)."}
	overlapErr := []int{http.StatusBadRequest, http.StatusNotFound}
	return []route{
		{
			method: http.MethodGet, path: agents, handle: a.listAgents, status: http.StatusOK,
			summary:     "List agents",
			description: "Every agent with its credentials' state and warnings (credentials expiring within 14 days, agents without an active credential). Never returns secrets.",
			query: []queryParam{
				{"team", "Only agents of this team."},
				{"status", "Only agents with this status: active, disabled or revoked."},
			},
			response: []Agent{}, errors: []int{http.StatusBadRequest},
		},
		{
			method: http.MethodPost, path: agents, handle: a.createAgent, status: http.StatusCreated,
			summary:     "Create an agent",
			description: "Registers an agent with a new client secret. The secret is returned this once: only its hash is stored.",
			request:     CreateAgentRequest{}, response: CreateAgentResponse{},
			errors: []int{http.StatusBadRequest, http.StatusConflict},
		},
		{
			method: http.MethodGet, path: agent, handle: a.getAgent, status: http.StatusOK,
			summary: "Show an agent", pathDocs: agentParam,
			response: Agent{}, errors: []int{http.StatusNotFound},
		},
		{
			method: http.MethodPost, path: agent + "/rotate", handle: a.rotateAgent, status: http.StatusOK,
			summary:     "Rotate an agent's client secret",
			description: "Creates a new client secret, returned this once; the current secrets keep working for the overlap (default 24h; \"0s\" ends them now).",
			pathDocs:    agentParam, request: RotateRequest{}, requestOptional: true, response: RotateResponse{}, errors: overlapErr,
		},
		{
			method: http.MethodPost, path: agent + "/revoke", handle: a.setStatus("revoked"), status: http.StatusOK,
			summary:     "Revoke an agent",
			description: "Revokes the agent and every credential it has; its live tokens stop working at once on every replica. Cannot be undone.",
			pathDocs:    agentParam, response: Agent{}, errors: []int{http.StatusBadRequest, http.StatusNotFound},
		},
		{
			method: http.MethodPost, path: agent + "/disable", handle: a.setStatus("disabled"), status: http.StatusOK,
			summary:     "Disable an agent",
			description: "The agent's credentials and tokens stop working until it is enabled again.",
			pathDocs:    agentParam, response: Agent{}, errors: []int{http.StatusBadRequest, http.StatusNotFound},
		},
		{
			method: http.MethodPost, path: agent + "/enable", handle: a.setStatus("active"), status: http.StatusOK,
			summary:  "Enable an agent",
			pathDocs: agentParam, response: Agent{}, errors: []int{http.StatusBadRequest, http.StatusNotFound},
		},
		{
			method: http.MethodPost, path: agent + "/api-keys", handle: a.createAPIKey, status: http.StatusCreated,
			summary:     "Create a static API key",
			description: "For clients that cannot do OAuth. The key is returned this once: only its hash is stored.",
			pathDocs:    agentParam, request: APIKeyRequest{}, requestOptional: true, response: APIKeyResponse{}, errors: overlapErr,
		},
		{
			method: http.MethodPost, path: agent + "/keys", handle: a.addKey, status: http.StatusCreated,
			summary:     "Register a public key",
			description: "Registers a public JWK for private_key_jwt client authentication.",
			pathDocs:    agentParam, request: publicJWK{}, response: AddKeyResponse{}, errors: overlapErr,
		},
		{
			method: http.MethodPost, path: "/admin/v1/teams/{team}/rotate", handle: a.rotateTeam, status: http.StatusOK,
			summary:     "Rotate every credential of a team",
			description: "Emergency rotation: every active agent of the team gets a new client secret, returned this once; old secrets and API keys stop after the overlap (default \"0s\": now). If it fails part way, the error response also carries the secrets already created, under \"secrets\".",
			pathDocs:    map[string]string{"team": "The team's name."},
			request:     TeamRotateRequest{}, requestOptional: true, response: TeamRotateResponse{}, errors: overlapErr,
		},
		{
			method: http.MethodGet, path: "/admin/v1/users", handle: a.listUsers, status: http.StatusOK,
			summary: "List local users", description: "Never returns password hashes.",
			response: []User{},
		},
		{
			method: http.MethodPost, path: "/admin/v1/users", handle: a.createUser, status: http.StatusCreated,
			summary: "Create a local user",
			request: CreateUserRequest{}, response: User{}, errors: []int{http.StatusBadRequest, http.StatusConflict},
		},
		{
			method: http.MethodPut, path: "/admin/v1/users/{username}/password", handle: a.setPassword, status: http.StatusOK,
			summary:  "Set a user's password",
			pathDocs: map[string]string{"username": "The user's name."},
			request:  SetPasswordRequest{}, response: User{}, errors: []int{http.StatusBadRequest, http.StatusNotFound},
		},
		{
			method: http.MethodPatch, path: "/admin/v1/users/{username}", handle: a.updateUser, status: http.StatusOK,
			summary: "Change a user's groups or disable them", description: "Omitted fields stay as they are.",
			pathDocs: map[string]string{"username": "The user's name."},
			request:  UpdateUserRequest{}, response: User{}, errors: []int{http.StatusBadRequest, http.StatusNotFound},
		},
		{
			method: http.MethodGet, path: "/admin/v1/vault/secrets", handle: a.listSecrets, status: http.StatusOK,
			summary: "List vault secrets", description: "Names, agents, versions and timestamps: never values.",
			response: []VaultEntry{}, errors: []int{http.StatusNotFound},
		},
		{
			method: http.MethodPut, path: "/admin/v1/vault/secrets/{name...}", handle: a.putSecret, status: http.StatusOK,
			summary:     "Store a vault secret",
			description: "Creates or replaces the secret, encrypted. The response describes the entry, never the value.",
			query:       []queryParam{{"agent", "The name of the agent the secret is for; omitted: the shared entry."}},
			pathDocs:    map[string]string{"name": "The secret's name (A-Z a-z 0-9 _ . : / -). Escape '/' as %2F to keep '.' and empty segments exactly as written."},
			request:     VaultPutRequest{}, response: VaultEntry{}, errors: []int{http.StatusBadRequest, http.StatusNotFound},
		},
		{
			method: http.MethodDelete, path: "/admin/v1/vault/secrets/{name...}", handle: a.deleteSecret, status: http.StatusNoContent,
			summary:  "Delete a vault secret",
			query:    []queryParam{{"agent", "The name of the agent the secret is for; omitted: the shared entry."}},
			pathDocs: map[string]string{"name": "The secret's name; escape '/' as %2F."},
			errors:   []int{http.StatusBadRequest, http.StatusNotFound},
		},
		{
			method: http.MethodPost, path: "/admin/v1/vault/rotate", handle: a.rotateVault, status: http.StatusOK,
			summary:     "Re-wrap vault secrets with the primary key-encryption key",
			description: "Run after making a new key-encryption key primary on every replica. Idempotent; values are not decrypted.",
			response:    VaultRotateResponse{}, errors: []int{http.StatusBadRequest, http.StatusNotFound},
		},
		{
			method: http.MethodPost, path: "/admin/v1/keys/rotate", handle: a.rotateKeys, status: http.StatusOK,
			summary:     "Rotate the token-signing key",
			description: "Creates a signing key, published in the JWKS now and signing after the configured overlap; the current key retires then.",
			response:    KeyRotateResponse{}, errors: []int{http.StatusBadRequest, http.StatusNotFound},
		},
		{
			method: http.MethodPost, path: "/admin/v1/grants", handle: a.createGrant, status: http.StatusCreated,
			summary:     "Grant a bundle to an agent for a bounded time",
			description: "Makes an active agent a member of a bundle of the running policy until the grant expires (1m to 90 days); creation and expiry are audited. Needs a policy section.",
			request:     CreateGrantRequest{}, response: Grant{},
			errors: []int{http.StatusBadRequest, http.StatusNotFound, http.StatusConflict},
		},
		{
			method: http.MethodGet, path: "/admin/v1/grants", handle: a.listGrants, status: http.StatusOK,
			summary:     "List grants",
			description: "Every grant, oldest first, with its status now (active, revoked or expired).",
			query: []queryParam{
				{"agent", "Only grants of the agent with this name."},
				{"bundle", "Only grants of this bundle."},
				{"active", "true: only grants in force now."},
			},
			response: []Grant{}, errors: []int{http.StatusBadRequest, http.StatusNotFound},
		},
		{
			method: http.MethodDelete, path: "/admin/v1/grants/{id}", handle: a.revokeGrant, status: http.StatusOK,
			summary:     "Revoke a grant",
			description: "Ends a grant before its expiry; the agent loses the bundle at once on every replica. Returns the revoked grant.",
			query:       []queryParam{{"by", "Who revokes it, for the audit log (the body's by wins; default \"admin\")."}},
			pathDocs:    grantParam, request: RevokeGrantRequest{}, requestOptional: true, response: Grant{},
			errors: []int{http.StatusBadRequest, http.StatusNotFound, http.StatusConflict},
		},
		{
			method: http.MethodGet, path: "/admin/v1/approvals", handle: a.listApprovals, status: http.StatusOK,
			summary:     "List approval requests",
			description: "Calls held by workflow rules and their decisions, newest first.",
			query: []queryParam{
				{"status", "Only approvals with this status: pending, approved, denied or used (default: all)."},
				{"limit", "At most this many (1 to 1000; default 100)."},
			},
			response: []Approval{}, errors: []int{http.StatusBadRequest, http.StatusNotFound},
		},
		{
			method: http.MethodGet, path: "/admin/v1/approvals/{id}", handle: a.getApproval, status: http.StatusOK,
			summary: "Show an approval request", pathDocs: approvalParam,
			response: Approval{}, errors: []int{http.StatusNotFound},
		},
		{
			method: http.MethodPost, path: "/admin/v1/approvals/{id}/approve", handle: a.decideApproval(true), status: http.StatusOK,
			summary:     "Approve a held call",
			description: "The held call proceeds (or, if its wait ended, the same call succeeds when retried before the approval expires). An approval is used once.",
			pathDocs:    approvalParam, request: DecideApprovalRequest{}, requestOptional: true, response: Approval{},
			errors: []int{http.StatusBadRequest, http.StatusNotFound, http.StatusConflict},
		},
		{
			method: http.MethodPost, path: "/admin/v1/approvals/{id}/deny", handle: a.decideApproval(false), status: http.StatusOK,
			summary:     "Deny a held call",
			description: "The held call fails with the approver's note.",
			pathDocs:    approvalParam, request: DecideApprovalRequest{}, requestOptional: true, response: Approval{},
			errors: []int{http.StatusBadRequest, http.StatusNotFound, http.StatusConflict},
		},
		{
			method: http.MethodPost, path: "/admin/v1/policy/explain", handle: a.explain, status: http.StatusOK,
			summary:     "Explain how a call would be decided",
			description: "Decides the call under the running policy without making it: the decision, the deciding rule and its reason, whether the caller's list shows the tool, the caller's bundles, and every rule considered.",
			request:     policy.ExplainQuery{}, response: policy.Explanation{},
			errors: []int{http.StatusBadRequest, http.StatusNotFound},
		},
		{
			method: http.MethodGet, path: "/admin/v1/audit/records", handle: a.listAuditRecords, status: http.StatusOK,
			summary:     "Search the audit trail",
			description: "Records matching every filter given, newest first (order=asc: oldest first), a page at a time: pass next as before (desc) or after (asc), with the same filters, for the next page. Records are returned exactly as stored, so that they stay verifiable against the hash chain.",
			query:       auditRecordParams, response: AuditRecordsPage{},
			errors: []int{http.StatusBadRequest, http.StatusNotFound},
		},
		{
			method: http.MethodGet, path: "/admin/v1/audit/checkpoints", handle: a.listAuditCheckpoints, status: http.StatusOK,
			summary:     "List signed checkpoints of the audit chain",
			description: "Each checkpoint states, signed with Ed25519 by the gateway's checkpoint key, that the record with its seq has its hash; by seq. Page with from = the last seq received (checkpoints of several keys may share a seq).",
			query:       auditCheckpointParams, response: []AuditCheckpoint{},
			errors: []int{http.StatusBadRequest, http.StatusNotFound},
		},
		{
			method: http.MethodGet, path: "/admin/v1/audit/head", handle: a.auditHead, status: http.StatusOK,
			summary:     "The audit chain's head",
			description: "The seq and hash of the last record appended (0 and \"\" before the first; retention does not move it).",
			response:    AuditHead{}, errors: []int{http.StatusBadRequest, http.StatusNotFound},
		},
		{
			method: http.MethodGet, path: "/admin/v1/tools", handle: a.listTools, status: http.StatusOK,
			summary:     "List pinned and pending tool definitions",
			description: "Every upstream tool with a pinned (approved) definition or a definition waiting for approval, by upstream then tool: pinned (nothing waiting), changed (its definition changed since it was pinned: quarantined until approved; with the change's class) or new (waiting for approval, no pin yet).",
			query: []queryParam{
				{"upstream", "Only the tools of this upstream."},
				{"status", "Only tools with this status: pinned, changed or new (default: all)."},
			},
			response: []Tool{}, errors: []int{http.StatusBadRequest},
		},
		{
			method: http.MethodGet, path: "/admin/v1/tools/{upstream}/{tool}", handle: a.getTool, status: http.StatusOK,
			summary:     "Show a tool's definitions and what changed",
			description: "The pinned and the pending definition in canonical form and, for a changed tool, the field-level changes with their classes and the same rendered as text.",
			pathDocs:    toolPathDocs, response: ToolDetail{}, errors: []int{http.StatusNotFound},
		},
		{
			method: http.MethodPost, path: "/admin/v1/tools/{upstream}/{tool}/approve", handle: a.approveTool, status: http.StatusOK,
			summary:     "Approve a tool's pending definition",
			description: "Pins the definition waiting for approval; gateways drop their cached pin and tell clients their tool list changed. With hash (the full hash or a prefix of at least 8 hex digits), the approval is refused (409) if the pending definition changed again since it was read. Returns the new pin.",
			pathDocs:    toolPathDocs, request: ApproveToolRequest{}, requestOptional: true, response: ToolPin{},
			errors: []int{http.StatusBadRequest, http.StatusNotFound, http.StatusConflict},
		},
		{
			method: http.MethodDelete, path: "/admin/v1/tools/{upstream}/{tool}", handle: a.forgetTool, status: http.StatusNoContent,
			summary:     "Forget a tool's pin and pending definition",
			description: "The next time the upstream lists the tool it is pinned again on first use, or waits for approval (inspect.tools.pin: approval).",
			pathDocs:    toolPathDocs, errors: []int{http.StatusNotFound},
		},
		{
			method: http.MethodGet, path: "/admin/v1/openapi.json", handle: a.serveOpenAPI, status: http.StatusOK,
			summary:  "This API's OpenAPI 3.1 document",
			response: openAPIDoc{},
		},
	}
}

func (a *API) serveOpenAPI(*http.Request) (any, error) { return rawJSON(a.openapi), nil }
