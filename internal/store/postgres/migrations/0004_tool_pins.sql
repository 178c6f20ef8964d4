-- Tool pins: the approved definition of each upstream tool, and the latest
-- definition waiting for an operator's approval. Conventions as in
-- 0001_init.sql: times are TIMESTAMPTZ, JSON is JSON (kept byte for byte:
-- the hash covers it); strings the Go types cannot leave unset are NOT
-- NULL.
--
-- Both tables are keyed (upstream, tool): the key serves the look-up, the
-- listing of one upstream and the order of ListToolPins and
-- ListPendingTools. The key columns collate "C" so that order is bytewise,
-- as in SQLite, whatever the database's collation: upstream and tool names
-- are identifiers, not prose.

CREATE TABLE tool_pins (
	upstream    TEXT COLLATE "C" NOT NULL,
	tool        TEXT COLLATE "C" NOT NULL,
	-- Hex SHA-256 of canonical.
	hash        TEXT NOT NULL,
	canonical   JSON NOT NULL,
	-- 'first-use' when pinned on first sight, else the operator.
	approved_by TEXT NOT NULL,
	approved_at TIMESTAMPTZ NOT NULL,
	PRIMARY KEY (upstream, tool)
);

-- At most one definition per tool waits: a newer one with another hash
-- replaces it (and its first_seen), the same one moves last_seen.
CREATE TABLE tool_pending (
	upstream   TEXT COLLATE "C" NOT NULL,
	tool       TEXT COLLATE "C" NOT NULL,
	hash       TEXT NOT NULL,
	canonical  JSON NOT NULL,
	first_seen TIMESTAMPTZ NOT NULL,
	last_seen  TIMESTAMPTZ NOT NULL,
	PRIMARY KEY (upstream, tool)
);
