package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"gatehouse/internal/store"
)

// toolName names (upstream, tool) in errors.
func toolName(upstream, tool string) string {
	return fmt.Sprintf("tool %q of upstream %q", tool, upstream)
}

// PinTool stores p as the approved definition of its tool if the tool has
// none. The insert does nothing on a conflict, so of concurrent pinners
// exactly one stores its definition; the others get ErrConflict.
func (s *Store) PinTool(ctx context.Context, p store.ToolPin) error {
	what := "pinning " + toolName(p.Upstream, p.Tool)
	res, err := s.w.ExecContext(ctx, `INSERT INTO tool_pins
		(upstream, tool, hash, canonical, approved_by, approved_at)
		VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (upstream, tool) DO NOTHING`,
		p.Upstream, p.Tool, p.Hash, string(p.Canonical), p.ApprovedBy, millis(p.ApprovedAt))
	if err != nil {
		return wrap(err, what)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return wrap(err, what)
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", what, store.ErrConflict)
	}
	return nil
}

const toolPinCols = `upstream, tool, hash, canonical, approved_by, approved_at`

func scanToolPin(sc scanner) (store.ToolPin, error) {
	var p store.ToolPin
	err := sc.Scan(&p.Upstream, &p.Tool, &p.Hash, jsonDest{&p.Canonical}, &p.ApprovedBy, timeDest{&p.ApprovedAt})
	return p, err
}

const pendingToolCols = `upstream, tool, hash, canonical, first_seen, last_seen`

func scanPendingTool(sc scanner) (store.PendingTool, error) {
	var p store.PendingTool
	err := sc.Scan(&p.Upstream, &p.Tool, &p.Hash, jsonDest{&p.Canonical}, timeDest{&p.FirstSeen}, timeDest{&p.LastSeen})
	return p, err
}

// GetToolPin returns the approved definition of (upstream, tool).
func (s *Store) GetToolPin(ctx context.Context, upstream, tool string) (store.ToolPin, error) {
	p, err := scanToolPin(s.r.QueryRowContext(ctx, `SELECT `+toolPinCols+` FROM tool_pins
		WHERE upstream = ? AND tool = ?`, upstream, tool))
	return p, wrap(err, "pin of "+toolName(upstream, tool))
}

// ListToolPins returns the approved definitions of upstream's tools (every
// upstream's when upstream is ""), by upstream then tool.
func (s *Store) ListToolPins(ctx context.Context, upstream string) ([]store.ToolPin, error) {
	return listTools(ctx, s, "listing tool pins", scanToolPin, `SELECT `+toolPinCols+` FROM tool_pins`, upstream)
}

// RecordPendingTool stores p as the definition of its tool waiting for
// approval. A waiting definition with the same hash keeps its canonical
// form and FirstSeen and takes p's LastSeen; one with another hash is
// replaced.
func (s *Store) RecordPendingTool(ctx context.Context, p store.PendingTool) error {
	// The SET expressions read the old row's values (tool_pending.*), so
	// the CASEs compare with the hash being replaced.
	_, err := s.w.ExecContext(ctx, `INSERT INTO tool_pending
		(upstream, tool, hash, canonical, first_seen, last_seen)
		VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (upstream, tool) DO UPDATE SET
			canonical  = CASE WHEN tool_pending.hash = excluded.hash THEN tool_pending.canonical ELSE excluded.canonical END,
			first_seen = CASE WHEN tool_pending.hash = excluded.hash THEN tool_pending.first_seen ELSE excluded.first_seen END,
			hash       = excluded.hash,
			last_seen  = excluded.last_seen`,
		p.Upstream, p.Tool, p.Hash, string(p.Canonical), millis(p.FirstSeen), millis(p.LastSeen))
	return wrap(err, "recording the pending definition of "+toolName(p.Upstream, p.Tool))
}

// ListPendingTools returns the definitions waiting for approval (every
// upstream's when upstream is ""), by upstream then tool.
func (s *Store) ListPendingTools(ctx context.Context, upstream string) ([]store.PendingTool, error) {
	return listTools(ctx, s, "listing pending tools", scanPendingTool, `SELECT `+pendingToolCols+` FROM tool_pending`, upstream)
}

// listTools runs q (a SELECT from tool_pins or tool_pending), restricted
// to upstream unless it is "", in key order.
func listTools[T any](ctx context.Context, s *Store, what string, scan func(scanner) (T, error), q, upstream string) ([]T, error) {
	var args []any
	if upstream != "" {
		q, args = q+` WHERE upstream = ?`, append(args, upstream)
	}
	rows, err := s.r.QueryContext(ctx, q+` ORDER BY upstream, tool`, args...)
	if err != nil {
		return nil, wrap(err, what)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, wrap(err, what)
		}
		out = append(out, v)
	}
	return out, wrap(rows.Err(), what)
}

// ApproveTool makes the pending definition of (upstream, tool) with the
// given hash the approved one. One IMMEDIATE transaction (it holds the
// write lock from the start) removes the pending entry and replaces the
// pin, so of concurrent approvers exactly one finds the entry; the others
// get ErrNotFound.
func (s *Store) ApproveTool(ctx context.Context, upstream, tool, hash, by string, at time.Time) (store.ToolPin, error) {
	what := fmt.Sprintf("approving %s with hash %q", toolName(upstream, tool), hash)
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return store.ToolPin{}, wrap(err, what)
	}
	defer tx.Rollback()
	var canonical json.RawMessage
	err = tx.QueryRowContext(ctx, `DELETE FROM tool_pending WHERE upstream = ? AND tool = ? AND hash = ?
		RETURNING canonical`, upstream, tool, hash).Scan(jsonDest{&canonical})
	if errors.Is(err, sql.ErrNoRows) {
		return store.ToolPin{}, fmt.Errorf("%s: no such pending definition: %w", what, store.ErrNotFound)
	}
	if err != nil {
		return store.ToolPin{}, wrap(err, what)
	}
	p, err := scanToolPin(tx.QueryRowContext(ctx, `INSERT INTO tool_pins
		(upstream, tool, hash, canonical, approved_by, approved_at)
		VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (upstream, tool) DO UPDATE SET
			hash        = excluded.hash,
			canonical   = excluded.canonical,
			approved_by = excluded.approved_by,
			approved_at = excluded.approved_at
		RETURNING `+toolPinCols,
		upstream, tool, hash, string(canonical), by, millis(at)))
	if err != nil {
		return store.ToolPin{}, wrap(err, what)
	}
	if err := tx.Commit(); err != nil {
		return store.ToolPin{}, wrap(err, what)
	}
	return p, nil
}

// DeleteToolPin removes the approved and the pending definition of
// (upstream, tool), in one transaction.
func (s *Store) DeleteToolPin(ctx context.Context, upstream, tool string) error {
	what := "deleting the pin of " + toolName(upstream, tool)
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return wrap(err, what)
	}
	defer tx.Rollback()
	var deleted int64
	for _, q := range []string{
		`DELETE FROM tool_pins WHERE upstream = ? AND tool = ?`,
		`DELETE FROM tool_pending WHERE upstream = ? AND tool = ?`,
	} {
		res, err := tx.ExecContext(ctx, q, upstream, tool)
		if err != nil {
			return wrap(err, what)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return wrap(err, what)
		}
		deleted += n
	}
	if deleted == 0 {
		return fmt.Errorf("%s: %w", what, store.ErrNotFound)
	}
	return wrap(tx.Commit(), what)
}
