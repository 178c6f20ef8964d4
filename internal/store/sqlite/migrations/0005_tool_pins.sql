-- Tool pins: the approved definition of each upstream tool, and the latest
-- definition waiting for an operator's approval. Conventions as in
-- 0001_init.sql: times are INTEGER milliseconds, JSON is TEXT checked with
-- json_valid and kept byte for byte (the hash covers it); strings the Go
-- types cannot leave unset are NOT NULL.
--
-- Both tables are keyed (upstream, tool): the key serves the look-up, the
-- listing of one upstream and the order of ListToolPins and
-- ListPendingTools (by upstream then tool, bytewise: SQLite's BINARY
-- collation).

CREATE TABLE tool_pins (
	upstream    TEXT NOT NULL,
	tool        TEXT NOT NULL,
	-- Hex SHA-256 of canonical.
	hash        TEXT NOT NULL,
	canonical   TEXT NOT NULL CHECK (json_valid(canonical)),
	-- "first-use" when pinned on first sight, else the operator.
	approved_by TEXT NOT NULL,
	approved_at INTEGER NOT NULL,
	PRIMARY KEY (upstream, tool)
) STRICT;

-- At most one definition per tool waits: a newer one with another hash
-- replaces it (and its first_seen), the same one moves last_seen.
CREATE TABLE tool_pending (
	upstream   TEXT NOT NULL,
	tool       TEXT NOT NULL,
	hash       TEXT NOT NULL,
	canonical  TEXT NOT NULL CHECK (json_valid(canonical)),
	first_seen INTEGER NOT NULL,
	last_seen  INTEGER NOT NULL,
	PRIMARY KEY (upstream, tool)
) STRICT;
