-- Time-bounded grants and approvals of held calls. Conventions as in
-- 0001_init.sql: times are TIMESTAMPTZ, JSON is JSON (kept byte for byte),
-- NULL stands for a nil value; strings the Go types cannot leave unset (""
-- means none) are NOT NULL.

CREATE TABLE grants (
	id           TEXT PRIMARY KEY,
	-- Not a foreign key, like refresh_tokens.agent_id: the caller checks
	-- the agent.
	agent_id     TEXT NOT NULL,
	bundle       TEXT NOT NULL,
	reason       TEXT NOT NULL,
	created_by   TEXT NOT NULL,
	created_at   TIMESTAMPTZ NOT NULL,
	expires_at   TIMESTAMPTZ NOT NULL,
	revoked_at   TIMESTAMPTZ,
	revoked_by   TEXT NOT NULL,
	expiry_noted BOOLEAN NOT NULL
);
CREATE INDEX grants_agent ON grants (agent_id, created_at, id);
-- The expiry sweep (expired, unnoted, unrevoked) and the active filter.
CREATE INDEX grants_expires ON grants (expires_at);

CREATE TABLE approvals (
	id             TEXT PRIMARY KEY,
	-- Hex SHA-256 binding the exact call; many approvals may share one
	-- (a denied or used one, then a new request).
	key            TEXT NOT NULL,
	status         TEXT NOT NULL,
	principal      TEXT NOT NULL,
	principal_name TEXT NOT NULL,
	server         TEXT NOT NULL,
	tool           TEXT NOT NULL,
	args_hash      TEXT NOT NULL,
	args           JSON,
	policy_version TEXT NOT NULL,
	rule           TEXT NOT NULL,
	reason         TEXT NOT NULL,
	created_at     TIMESTAMPTZ NOT NULL,
	expires_at     TIMESTAMPTZ NOT NULL,
	decided_by     TEXT NOT NULL,
	decided_at     TIMESTAMPTZ,
	note           TEXT NOT NULL,
	used_at        TIMESTAMPTZ
);
-- FindApproval: by key and status, newest first.
CREATE INDEX approvals_key_status ON approvals (key, status, created_at);
-- ListApprovals: newest first, optionally by status or principal.
CREATE INDEX approvals_created ON approvals (created_at, id);
CREATE INDEX approvals_status ON approvals (status, created_at, id);
CREATE INDEX approvals_principal ON approvals (principal, created_at, id);
