-- The audit chain. Conventions as in 0001_init.sql: times are INTEGER
-- milliseconds; strings the Go types cannot leave unset ("" means none) are
-- NOT NULL.

-- One row per record. seq is the rowid, so the table is stored in chain
-- order, and every index below ends in seq: each equality filter of
-- ListAudit reads its index in seq order (either way) and stops at the
-- limit, and the cursor (seq > ? or seq < ?) is a range within it, as is
-- a time range (see audit_time_buckets).
CREATE TABLE audit_records (
	seq        INTEGER NOT NULL PRIMARY KEY,
	-- Unique and stable across retries: AppendAudit skips a stored one.
	id         TEXT NOT NULL UNIQUE,
	time       INTEGER NOT NULL,
	kind       TEXT NOT NULL,
	action     TEXT NOT NULL,
	actor_id   TEXT NOT NULL,
	agent_name TEXT NOT NULL,
	team       TEXT NOT NULL,
	user_name  TEXT NOT NULL,
	server     TEXT NOT NULL,
	tool       TEXT NOT NULL,
	outcome    TEXT NOT NULL,
	-- The canonical JSON the hash covers, byte for byte: a BLOB, so that
	-- nothing (text encoding, JSON normalisation) can alter it.
	data       BLOB NOT NULL,
	prev_hash  TEXT NOT NULL,
	hash       TEXT NOT NULL
) STRICT;
CREATE INDEX audit_records_agent   ON audit_records (agent_name, seq);
CREATE INDEX audit_records_team    ON audit_records (team, seq);
CREATE INDEX audit_records_user    ON audit_records (user_name, seq);
CREATE INDEX audit_records_server  ON audit_records (server, seq);
CREATE INDEX audit_records_tool    ON audit_records (tool, seq);
CREATE INDEX audit_records_kind    ON audit_records (kind, seq);
CREATE INDEX audit_records_action  ON audit_records (action, seq);
CREATE INDEX audit_records_outcome ON audit_records (outcome, seq);

-- Which seqs each ten minutes of record time holds: bucket is the record
-- time in milliseconds since the epoch divided by 600000 (rounded down),
-- min_seq and max_seq the least and greatest seq of a record in it. The
-- append that stores a record widens its bucket in the same transaction.
-- ListAudit turns a time range into a seq range with it (the buckets the
-- range overlaps give exact bounds, late records included) and walks one
-- of the (column, seq) indexes, or the table, within that range only: a
-- time index would need the matches sorted by seq, or a walk from one end.
-- PurgeAudit drops the buckets whose records are all gone.
CREATE TABLE audit_time_buckets (
	bucket  INTEGER NOT NULL PRIMARY KEY,
	min_seq INTEGER NOT NULL,
	max_seq INTEGER NOT NULL
) STRICT;

-- The head of the chain: the last appended record's seq and hash. One row,
-- updated in the transaction that appends (which holds SQLite's write
-- lock, so appenders queue). It is not max(seq): retention may delete
-- every record, and the chain must go on from where it was.
CREATE TABLE audit_head (
	id   INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
	seq  INTEGER NOT NULL,
	hash TEXT NOT NULL
) STRICT;
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '');

-- Signed statements of the head. Retention does not touch them.
CREATE TABLE audit_checkpoints (
	seq        INTEGER NOT NULL,
	key_id     TEXT NOT NULL,
	hash       TEXT NOT NULL,
	time       INTEGER NOT NULL,
	public_key BLOB NOT NULL,
	signature  BLOB NOT NULL,
	PRIMARY KEY (seq, key_id)
) STRICT;

-- The last seq each sink has delivered.
CREATE TABLE audit_cursors (
	sink       TEXT NOT NULL PRIMARY KEY,
	seq        INTEGER NOT NULL,
	updated_at INTEGER NOT NULL
) STRICT;
