package sqlite

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"gatehouse/internal/store"
)

// CreateGrant stores g; its ID must be unused.
func (s *Store) CreateGrant(ctx context.Context, g store.Grant) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO grants
		(id, agent_id, bundle, reason, created_by, created_at, expires_at, revoked_at, revoked_by, expiry_noted)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		g.ID, g.AgentID, g.Bundle, g.Reason, g.CreatedBy, millis(g.CreatedAt), millis(g.ExpiresAt),
		millisPtr(g.RevokedAt), g.RevokedBy, g.ExpiryNoted)
	return wrap(err, fmt.Sprintf("grant %q", g.ID))
}

const grantCols = `id, agent_id, bundle, reason, created_by, created_at, expires_at, revoked_at, revoked_by, expiry_noted`

func scanGrant(sc scanner) (store.Grant, error) {
	var g store.Grant
	err := sc.Scan(&g.ID, &g.AgentID, &g.Bundle, &g.Reason, &g.CreatedBy, timeDest{&g.CreatedAt}, timeDest{&g.ExpiresAt},
		timePtrDest{&g.RevokedAt}, &g.RevokedBy, &g.ExpiryNoted)
	return g, err
}

// GetGrant returns the grant with the given id.
func (s *Store) GetGrant(ctx context.Context, id string) (store.Grant, error) {
	g, err := scanGrant(s.r.QueryRowContext(ctx, `SELECT `+grantCols+` FROM grants WHERE id = ?`, id))
	return g, wrap(err, fmt.Sprintf("grant %q", id))
}

// ListGrants returns the grants f selects, oldest first.
func (s *Store) ListGrants(ctx context.Context, f store.GrantFilter) ([]store.Grant, error) {
	var where []string
	var args []any
	if f.AgentID != "" {
		where, args = append(where, "agent_id = ?"), append(args, f.AgentID)
	}
	if f.Bundle != "" {
		where, args = append(where, "bundle = ?"), append(args, f.Bundle)
	}
	switch {
	case f.ExpiredUnnoted && f.ActiveAt.IsZero():
		return nil, errors.New("listing grants: ExpiredUnnoted needs ActiveAt")
	case f.ExpiredUnnoted:
		where = append(where, "revoked_at IS NULL", "expiry_noted = 0", "expires_at <= ?")
		args = append(args, millis(f.ActiveAt))
	case !f.ActiveAt.IsZero():
		where = append(where, "revoked_at IS NULL", "expires_at > ?")
		args = append(args, millis(f.ActiveAt))
	}
	q := `SELECT ` + grantCols + ` FROM grants`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	rows, err := s.r.QueryContext(ctx, q+` ORDER BY created_at, id`, args...)
	if err != nil {
		return nil, wrap(err, "listing grants")
	}
	defer rows.Close()
	var out []store.Grant
	for rows.Next() {
		g, err := scanGrant(rows)
		if err != nil {
			return nil, wrap(err, "listing grants")
		}
		out = append(out, g)
	}
	return out, wrap(rows.Err(), "listing grants")
}

// RevokeGrant revokes the grant id if it is active at at. The condition is
// part of the UPDATE, so a revocation never overwrites an earlier one.
func (s *Store) RevokeGrant(ctx context.Context, id, by string, at time.Time) error {
	what := fmt.Sprintf("grant %q", id)
	res, err := s.w.ExecContext(ctx, `UPDATE grants SET revoked_at = ?, revoked_by = ?
		WHERE id = ? AND revoked_at IS NULL AND expires_at > ?`,
		millis(at), by, id, millis(at))
	if err != nil {
		return wrap(err, "revoking "+what)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return wrap(err, "revoking "+what)
	}
	if n == 1 {
		return nil
	}
	// Grants are never deleted, so one that exists now existed at the
	// UPDATE: it was revoked or expired.
	var one int
	if err := s.w.QueryRowContext(ctx, `SELECT 1 FROM grants WHERE id = ?`, id).Scan(&one); err != nil {
		return wrap(err, what)
	}
	return fmt.Errorf("revoking %s: %w", what, store.ErrUsed)
}

// MarkGrantExpired notes the expiry of the grant id if it has expired at
// now and is neither noted nor revoked. One statement both checks and
// marks, so of concurrent callers exactly one gets true. An unknown id is
// not an error: this call did not note anything.
func (s *Store) MarkGrantExpired(ctx context.Context, id string, now time.Time) (bool, error) {
	what := fmt.Sprintf("noting the expiry of grant %q", id)
	res, err := s.w.ExecContext(ctx, `UPDATE grants SET expiry_noted = 1
		WHERE id = ? AND expires_at <= ? AND expiry_noted = 0 AND revoked_at IS NULL`,
		id, millis(now))
	if err != nil {
		return false, wrap(err, what)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, wrap(err, what)
	}
	return n == 1, nil
}
