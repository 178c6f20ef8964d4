package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"gatehouse/internal/store"
)

// toolName names (upstream, tool) in errors.
func toolName(upstream, tool string) string {
	return fmt.Sprintf("tool %q of upstream %q", tool, upstream)
}

// PinTool stores p as the approved definition of its tool if the tool has
// none. The insert does nothing on a conflict, so of concurrent pinners
// (other replicas included) exactly one stores its definition; the others
// get ErrConflict.
func (s *Store) PinTool(ctx context.Context, p store.ToolPin) error {
	what := "pinning " + toolName(p.Upstream, p.Tool)
	tag, err := s.pool.Exec(ctx, `INSERT INTO tool_pins
		(upstream, tool, hash, canonical, approved_by, approved_at)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (upstream, tool) DO NOTHING`,
		p.Upstream, p.Tool, p.Hash, string(p.Canonical), p.ApprovedBy, ts(p.ApprovedAt))
	if err != nil {
		return wrap(err, what)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%s: %w", what, store.ErrConflict)
	}
	return nil
}

const toolPinCols = `upstream, tool, hash, canonical, approved_by, approved_at`

func scanToolPin(row pgx.Row) (store.ToolPin, error) {
	var p store.ToolPin
	err := row.Scan(&p.Upstream, &p.Tool, &p.Hash, (*[]byte)(&p.Canonical), &p.ApprovedBy, &p.ApprovedAt)
	utc(&p.ApprovedAt)
	return p, err
}

const pendingToolCols = `upstream, tool, hash, canonical, first_seen, last_seen`

func scanPendingTool(row pgx.Row) (store.PendingTool, error) {
	var p store.PendingTool
	err := row.Scan(&p.Upstream, &p.Tool, &p.Hash, (*[]byte)(&p.Canonical), &p.FirstSeen, &p.LastSeen)
	utc(&p.FirstSeen, &p.LastSeen)
	return p, err
}

// GetToolPin returns the approved definition of (upstream, tool).
func (s *Store) GetToolPin(ctx context.Context, upstream, tool string) (store.ToolPin, error) {
	p, err := scanToolPin(s.pool.QueryRow(ctx, `SELECT `+toolPinCols+` FROM tool_pins
		WHERE upstream = $1 AND tool = $2`, upstream, tool))
	return p, wrap(err, "pin of "+toolName(upstream, tool))
}

// ListToolPins returns the approved definitions of upstream's tools (every
// upstream's when upstream is ""), by upstream then tool (bytewise: the
// columns collate "C").
func (s *Store) ListToolPins(ctx context.Context, upstream string) ([]store.ToolPin, error) {
	q, args := toolsQuery(`SELECT `+toolPinCols+` FROM tool_pins`, upstream)
	return list(ctx, s, "listing tool pins", scanToolPin, q, args...)
}

// RecordPendingTool stores p as the definition of its tool waiting for
// approval. A waiting definition with the same hash keeps its canonical
// form and FirstSeen and takes p's LastSeen; one with another hash is
// replaced.
func (s *Store) RecordPendingTool(ctx context.Context, p store.PendingTool) error {
	// The SET expressions read the old row's values (tool_pending.*), so
	// the CASEs compare with the hash being replaced.
	_, err := s.pool.Exec(ctx, `INSERT INTO tool_pending
		(upstream, tool, hash, canonical, first_seen, last_seen)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (upstream, tool) DO UPDATE SET
			canonical  = CASE WHEN tool_pending.hash = EXCLUDED.hash THEN tool_pending.canonical ELSE EXCLUDED.canonical END,
			first_seen = CASE WHEN tool_pending.hash = EXCLUDED.hash THEN tool_pending.first_seen ELSE EXCLUDED.first_seen END,
			hash       = EXCLUDED.hash,
			last_seen  = EXCLUDED.last_seen`,
		p.Upstream, p.Tool, p.Hash, string(p.Canonical), ts(p.FirstSeen), ts(p.LastSeen))
	return wrap(err, "recording the pending definition of "+toolName(p.Upstream, p.Tool))
}

// ListPendingTools returns the definitions waiting for approval (every
// upstream's when upstream is ""), by upstream then tool (bytewise).
func (s *Store) ListPendingTools(ctx context.Context, upstream string) ([]store.PendingTool, error) {
	q, args := toolsQuery(`SELECT `+pendingToolCols+` FROM tool_pending`, upstream)
	return list(ctx, s, "listing pending tools", scanPendingTool, q, args...)
}

// toolsQuery restricts q (a SELECT from tool_pins or tool_pending) to
// upstream unless it is "", in key order.
func toolsQuery(q, upstream string) (string, []any) {
	if upstream == "" {
		return q + ` ORDER BY upstream, tool`, nil
	}
	return q + ` WHERE upstream = $1 ORDER BY upstream, tool`, []any{upstream}
}

// ApproveTool makes the pending definition of (upstream, tool) with the
// given hash the approved one, in one READ COMMITTED transaction (whatever
// the server's default) that removes the pending entry and replaces the
// pin. Concurrent approvers (other replicas included) queue on the pending
// row's lock; once the first commits, the others find the row gone and get
// ErrNotFound.
func (s *Store) ApproveTool(ctx context.Context, upstream, tool, hash, by string, at time.Time) (store.ToolPin, error) {
	what := fmt.Sprintf("approving %s with hash %q", toolName(upstream, tool), hash)
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return store.ToolPin{}, wrap(err, what)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	var canonical []byte
	err = tx.QueryRow(ctx, `DELETE FROM tool_pending WHERE upstream = $1 AND tool = $2 AND hash = $3
		RETURNING canonical`, upstream, tool, hash).Scan(&canonical)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.ToolPin{}, fmt.Errorf("%s: no such pending definition: %w", what, store.ErrNotFound)
	}
	if err != nil {
		return store.ToolPin{}, wrap(err, what)
	}
	p, err := scanToolPin(tx.QueryRow(ctx, `INSERT INTO tool_pins
		(upstream, tool, hash, canonical, approved_by, approved_at)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (upstream, tool) DO UPDATE SET
			hash        = EXCLUDED.hash,
			canonical   = EXCLUDED.canonical,
			approved_by = EXCLUDED.approved_by,
			approved_at = EXCLUDED.approved_at
		RETURNING `+toolPinCols,
		upstream, tool, hash, string(canonical), by, ts(at)))
	if err != nil {
		return store.ToolPin{}, wrap(err, what)
	}
	if err := tx.Commit(ctx); err != nil {
		return store.ToolPin{}, wrap(err, what)
	}
	return p, nil
}

// DeleteToolPin removes the approved and the pending definition of
// (upstream, tool); one statement deletes both.
func (s *Store) DeleteToolPin(ctx context.Context, upstream, tool string) error {
	what := "deleting the pin of " + toolName(upstream, tool)
	var deleted int64
	err := s.pool.QueryRow(ctx, `WITH
		pin AS (DELETE FROM tool_pins WHERE upstream = $1 AND tool = $2 RETURNING 1),
		pending AS (DELETE FROM tool_pending WHERE upstream = $1 AND tool = $2 RETURNING 1)
		SELECT (SELECT count(*) FROM pin) + (SELECT count(*) FROM pending)`,
		upstream, tool).Scan(&deleted)
	if err != nil {
		return wrap(err, what)
	}
	if deleted == 0 {
		return fmt.Errorf("%s: %w", what, store.ErrNotFound)
	}
	return nil
}
