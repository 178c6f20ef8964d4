-- Gatehouse schema, PostgreSQL.
--
-- Times are TIMESTAMPTZ (the store writes them truncated to the
-- millisecond, as SQLite keeps them). JSON values are JSON, not JSONB:
-- JSON keeps the text byte for byte (client metadata "as received"), and
-- nothing queries inside it. NULL stands for a nil value. Hashes,
-- ciphertext and sealed keys are BYTEA; string lists are TEXT[].

CREATE TABLE teams (
	name              TEXT PRIMARY KEY,
	max_secret_age_ns BIGINT NOT NULL,
	created_at        TIMESTAMPTZ NOT NULL
);

CREATE TABLE agents (
	id         TEXT PRIMARY KEY,
	name       TEXT NOT NULL UNIQUE,
	-- NULL when the agent has no client id, so '' is not a taken value.
	client_id  TEXT UNIQUE,
	team       TEXT NOT NULL,
	owner      TEXT NOT NULL,
	status     TEXT NOT NULL,
	attributes JSON,
	source     TEXT NOT NULL,
	created_at TIMESTAMPTZ NOT NULL,
	updated_at TIMESTAMPTZ NOT NULL,
	revoked_at TIMESTAMPTZ
);
CREATE INDEX agents_team_status ON agents (team, status, name);
CREATE INDEX agents_status ON agents (status, name);

CREATE TABLE credentials (
	id         TEXT PRIMARY KEY,
	agent_id   TEXT NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
	kind       TEXT NOT NULL,
	prefix     TEXT NOT NULL UNIQUE,
	hash       BYTEA,
	public_jwk JSON,
	created_at TIMESTAMPTZ NOT NULL,
	expires_at TIMESTAMPTZ,
	revoked_at TIMESTAMPTZ
);
CREATE INDEX credentials_agent ON credentials (agent_id, created_at, id);

CREATE TABLE users (
	username      TEXT PRIMARY KEY,
	password_hash TEXT NOT NULL,
	groups        TEXT[],
	disabled      BOOLEAN NOT NULL,
	created_at    TIMESTAMPTZ NOT NULL,
	updated_at    TIMESTAMPTZ NOT NULL
);

CREATE TABLE oauth_clients (
	client_id     TEXT PRIMARY KEY,
	name          TEXT NOT NULL,
	redirect_uris TEXT[],
	kind          TEXT NOT NULL,
	metadata      JSON,
	secret_hash   BYTEA,
	created_at    TIMESTAMPTZ NOT NULL
);

CREATE TABLE auth_codes (
	hash           BYTEA PRIMARY KEY,
	client_id      TEXT NOT NULL,
	username       TEXT NOT NULL,
	agent_id       TEXT NOT NULL,
	redirect_uri   TEXT NOT NULL,
	code_challenge TEXT NOT NULL,
	resource       TEXT NOT NULL,
	scope          TEXT NOT NULL,
	created_at     TIMESTAMPTZ NOT NULL,
	expires_at     TIMESTAMPTZ NOT NULL,
	used_at        TIMESTAMPTZ
);
CREATE INDEX auth_codes_expires ON auth_codes (expires_at);

CREATE TABLE refresh_tokens (
	hash       BYTEA PRIMARY KEY,
	family     TEXT NOT NULL,
	client_id  TEXT NOT NULL,
	username   TEXT NOT NULL,
	agent_id   TEXT NOT NULL,
	resource   TEXT NOT NULL,
	scope      TEXT NOT NULL,
	created_at TIMESTAMPTZ NOT NULL,
	expires_at TIMESTAMPTZ NOT NULL,
	used_at    TIMESTAMPTZ,
	revoked_at TIMESTAMPTZ
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family);
CREATE INDEX refresh_tokens_expires ON refresh_tokens (expires_at);

CREATE TABLE signing_keys (
	kid         TEXT PRIMARY KEY,
	alg         TEXT NOT NULL,
	private     BYTEA NOT NULL,
	public_jwk  JSON,
	created_at  TIMESTAMPTZ NOT NULL,
	activate_at TIMESTAMPTZ NOT NULL,
	retires_at  TIMESTAMPTZ NOT NULL,
	expires_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX signing_keys_activate ON signing_keys (activate_at, kid);

CREATE TABLE vault_secrets (
	name        TEXT NOT NULL,
	-- '' is the shared entry; otherwise an agent id.
	agent       TEXT NOT NULL,
	ciphertext  BYTEA NOT NULL,
	wrapped_dek BYTEA NOT NULL,
	kek_id      TEXT NOT NULL,
	version     INTEGER NOT NULL,
	created_at  TIMESTAMPTZ NOT NULL,
	updated_at  TIMESTAMPTZ NOT NULL,
	PRIMARY KEY (name, agent)
);
