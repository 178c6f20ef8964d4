package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"gatehouse/internal/store"
)

// CreateGrant stores g; its ID must be unused.
func (s *Store) CreateGrant(ctx context.Context, g store.Grant) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO grants
		(id, agent_id, bundle, reason, created_by, created_at, expires_at, revoked_at, revoked_by, expiry_noted)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		g.ID, g.AgentID, g.Bundle, g.Reason, g.CreatedBy, ts(g.CreatedAt), ts(g.ExpiresAt),
		tsPtr(g.RevokedAt), g.RevokedBy, g.ExpiryNoted)
	return wrap(err, fmt.Sprintf("grant %q", g.ID))
}

const grantCols = `id, agent_id, bundle, reason, created_by, created_at, expires_at, revoked_at, revoked_by, expiry_noted`

func scanGrant(row pgx.Row) (store.Grant, error) {
	var g store.Grant
	err := row.Scan(&g.ID, &g.AgentID, &g.Bundle, &g.Reason, &g.CreatedBy, &g.CreatedAt, &g.ExpiresAt,
		&g.RevokedAt, &g.RevokedBy, &g.ExpiryNoted)
	utc(&g.CreatedAt, &g.ExpiresAt)
	utcPtr(g.RevokedAt)
	return g, err
}

// GetGrant returns the grant with the given id.
func (s *Store) GetGrant(ctx context.Context, id string) (store.Grant, error) {
	g, err := scanGrant(s.pool.QueryRow(ctx, `SELECT `+grantCols+` FROM grants WHERE id = $1`, id))
	return g, wrap(err, fmt.Sprintf("grant %q", id))
}

// ListGrants returns the grants f selects, oldest first.
func (s *Store) ListGrants(ctx context.Context, f store.GrantFilter) ([]store.Grant, error) {
	var where []string
	var args []any
	if f.AgentID != "" {
		args = append(args, f.AgentID)
		where = append(where, fmt.Sprintf("agent_id = $%d", len(args)))
	}
	if f.Bundle != "" {
		args = append(args, f.Bundle)
		where = append(where, fmt.Sprintf("bundle = $%d", len(args)))
	}
	switch {
	case f.ExpiredUnnoted && f.ActiveAt.IsZero():
		return nil, errors.New("listing grants: ExpiredUnnoted needs ActiveAt")
	case f.ExpiredUnnoted:
		args = append(args, ts(f.ActiveAt))
		where = append(where, "revoked_at IS NULL", "NOT expiry_noted", fmt.Sprintf("expires_at <= $%d", len(args)))
	case !f.ActiveAt.IsZero():
		args = append(args, ts(f.ActiveAt))
		where = append(where, "revoked_at IS NULL", fmt.Sprintf("expires_at > $%d", len(args)))
	}
	q := `SELECT ` + grantCols + ` FROM grants`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	return list(ctx, s, "listing grants", scanGrant, q+` ORDER BY created_at, id`, args...)
}

// RevokeGrant revokes the grant id if it is active at at. The condition is
// part of the UPDATE, so a revocation never overwrites an earlier one:
// concurrent revokers queue on the row lock and re-check it.
func (s *Store) RevokeGrant(ctx context.Context, id, by string, at time.Time) error {
	what := fmt.Sprintf("grant %q", id)
	tag, err := s.pool.Exec(ctx, `UPDATE grants SET revoked_at = $1, revoked_by = $2
		WHERE id = $3 AND revoked_at IS NULL AND expires_at > $1`,
		ts(at), by, id)
	if err != nil {
		return wrap(err, "revoking "+what)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	// Grants are never deleted, so one that exists now existed at the
	// UPDATE: it was revoked or expired.
	var one int
	if err := s.pool.QueryRow(ctx, `SELECT 1 FROM grants WHERE id = $1`, id).Scan(&one); err != nil {
		return wrap(err, what)
	}
	return fmt.Errorf("revoking %s: %w", what, store.ErrUsed)
}

// MarkGrantExpired notes the expiry of the grant id if it has expired at
// now and is neither noted nor revoked. One statement both checks and
// marks; concurrent callers (other replicas included) queue on the row lock
// and re-check, so exactly one gets true. An unknown id is not an error:
// this call did not note anything.
func (s *Store) MarkGrantExpired(ctx context.Context, id string, now time.Time) (bool, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE grants SET expiry_noted = TRUE
		WHERE id = $1 AND expires_at <= $2 AND NOT expiry_noted AND revoked_at IS NULL`,
		id, ts(now))
	if err != nil {
		return false, wrap(err, fmt.Sprintf("noting the expiry of grant %q", id))
	}
	return tag.RowsAffected() == 1, nil
}
