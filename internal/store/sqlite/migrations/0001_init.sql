-- Gatehouse schema, SQLite.
--
-- Times are INTEGER milliseconds since the Unix epoch, UTC: they compare and
-- index as numbers, and "expires_at > ?" needs no date parsing. JSON values
-- (attributes, JWKs, client metadata, lists) are TEXT checked with
-- json_valid, kept byte for byte as given; NULL stands for a nil value.
-- Hashes, ciphertext and sealed keys are BLOBs. STRICT tables make SQLite
-- reject a value of the wrong type instead of storing it anyway.

CREATE TABLE teams (
	name              TEXT NOT NULL PRIMARY KEY,
	max_secret_age_ns INTEGER NOT NULL,
	created_at        INTEGER NOT NULL
) STRICT;

CREATE TABLE agents (
	id         TEXT NOT NULL PRIMARY KEY,
	name       TEXT NOT NULL UNIQUE,
	-- NULL when the agent has no client id, so "" is not a taken value.
	client_id  TEXT UNIQUE,
	team       TEXT NOT NULL,
	owner      TEXT NOT NULL,
	status     TEXT NOT NULL,
	attributes TEXT CHECK (attributes IS NULL OR json_valid(attributes)),
	source     TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	revoked_at INTEGER
) STRICT;
CREATE INDEX agents_team_status ON agents (team, status, name);
CREATE INDEX agents_status ON agents (status, name);

CREATE TABLE credentials (
	id         TEXT NOT NULL PRIMARY KEY,
	agent_id   TEXT NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
	kind       TEXT NOT NULL,
	prefix     TEXT NOT NULL UNIQUE,
	hash       BLOB,
	public_jwk TEXT CHECK (public_jwk IS NULL OR json_valid(public_jwk)),
	created_at INTEGER NOT NULL,
	expires_at INTEGER,
	revoked_at INTEGER
) STRICT;
CREATE INDEX credentials_agent ON credentials (agent_id, created_at, id);

CREATE TABLE users (
	username      TEXT NOT NULL PRIMARY KEY,
	password_hash TEXT NOT NULL,
	groups_json   TEXT CHECK (groups_json IS NULL OR json_valid(groups_json)),
	disabled      INTEGER NOT NULL,
	created_at    INTEGER NOT NULL,
	updated_at    INTEGER NOT NULL
) STRICT;

CREATE TABLE oauth_clients (
	client_id          TEXT NOT NULL PRIMARY KEY,
	name               TEXT NOT NULL,
	redirect_uris_json TEXT CHECK (redirect_uris_json IS NULL OR json_valid(redirect_uris_json)),
	kind               TEXT NOT NULL,
	metadata           TEXT CHECK (metadata IS NULL OR json_valid(metadata)),
	secret_hash        BLOB,
	created_at         INTEGER NOT NULL
) STRICT;

CREATE TABLE auth_codes (
	hash           BLOB NOT NULL PRIMARY KEY,
	client_id      TEXT NOT NULL,
	username       TEXT NOT NULL,
	agent_id       TEXT NOT NULL,
	redirect_uri   TEXT NOT NULL,
	code_challenge TEXT NOT NULL,
	resource       TEXT NOT NULL,
	scope          TEXT NOT NULL,
	created_at     INTEGER NOT NULL,
	expires_at     INTEGER NOT NULL,
	used_at        INTEGER
) STRICT;
CREATE INDEX auth_codes_expires ON auth_codes (expires_at);

CREATE TABLE refresh_tokens (
	hash       BLOB NOT NULL PRIMARY KEY,
	family     TEXT NOT NULL,
	client_id  TEXT NOT NULL,
	username   TEXT NOT NULL,
	agent_id   TEXT NOT NULL,
	resource   TEXT NOT NULL,
	scope      TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL,
	used_at    INTEGER,
	revoked_at INTEGER
) STRICT;
CREATE INDEX refresh_tokens_family ON refresh_tokens (family);
CREATE INDEX refresh_tokens_expires ON refresh_tokens (expires_at);

CREATE TABLE signing_keys (
	kid         TEXT NOT NULL PRIMARY KEY,
	alg         TEXT NOT NULL,
	private     BLOB NOT NULL,
	public_jwk  TEXT CHECK (public_jwk IS NULL OR json_valid(public_jwk)),
	created_at  INTEGER NOT NULL,
	activate_at INTEGER NOT NULL,
	retires_at  INTEGER NOT NULL,
	expires_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX signing_keys_activate ON signing_keys (activate_at, kid);

CREATE TABLE vault_secrets (
	name        TEXT NOT NULL,
	-- '' is the shared entry; otherwise an agent id.
	agent       TEXT NOT NULL,
	ciphertext  BLOB NOT NULL,
	wrapped_dek BLOB NOT NULL,
	kek_id      TEXT NOT NULL,
	version     INTEGER NOT NULL,
	created_at  INTEGER NOT NULL,
	updated_at  INTEGER NOT NULL,
	PRIMARY KEY (name, agent)
) STRICT;
