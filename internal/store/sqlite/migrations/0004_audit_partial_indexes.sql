-- Fewer index writes per audit record: the four columns most records
-- share one value of (no human user; kind mcp.request; action tools/call;
-- outcome allowed) are indexed only where they differ from it. Every
-- record written into an index costs CPU on the request path's committer,
-- and a filter on the common value matches most records, so the table
-- walked in seq order reaches the limit at once without an index.
-- ListAudit adds the matching "<> value" term for a filter on any other
-- value, which is what lets SQLite use a partial index.
DROP INDEX audit_records_user;
DROP INDEX audit_records_kind;
DROP INDEX audit_records_action;
DROP INDEX audit_records_outcome;
CREATE INDEX audit_records_user    ON audit_records (user_name, seq) WHERE user_name <> '';
CREATE INDEX audit_records_kind    ON audit_records (kind, seq)      WHERE kind <> 'mcp.request';
CREATE INDEX audit_records_action  ON audit_records (action, seq)    WHERE action <> 'tools/call';
CREATE INDEX audit_records_outcome ON audit_records (outcome, seq)   WHERE outcome <> 'allowed';
