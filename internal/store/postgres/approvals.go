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

// defaultApprovalLimit is how many approvals ListApprovals returns when the
// filter sets no Limit.
const defaultApprovalLimit = 100

// CreateApproval stores a; its ID must be unused.
func (s *Store) CreateApproval(ctx context.Context, a store.Approval) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO approvals
		(id, key, status, principal, principal_name, server, tool, args_hash, args, policy_version, rule, reason,
		created_at, expires_at, decided_by, decided_at, note, used_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)`,
		a.ID, a.Key, a.Status, a.Principal, a.PrincipalName, a.Server, a.Tool, a.ArgsHash, jsonArg(a.Args),
		a.PolicyVersion, a.Rule, a.Reason, ts(a.CreatedAt), ts(a.ExpiresAt),
		a.DecidedBy, tsPtr(a.DecidedAt), a.Note, tsPtr(a.UsedAt))
	return wrap(err, fmt.Sprintf("approval %q", a.ID))
}

const approvalCols = `id, key, status, principal, principal_name, server, tool, args_hash, args, policy_version, rule, reason,
	created_at, expires_at, decided_by, decided_at, note, used_at`

func scanApproval(row pgx.Row) (store.Approval, error) {
	var a store.Approval
	err := row.Scan(&a.ID, &a.Key, &a.Status, &a.Principal, &a.PrincipalName, &a.Server, &a.Tool, &a.ArgsHash,
		(*[]byte)(&a.Args), &a.PolicyVersion, &a.Rule, &a.Reason, &a.CreatedAt, &a.ExpiresAt,
		&a.DecidedBy, &a.DecidedAt, &a.Note, &a.UsedAt)
	utc(&a.CreatedAt, &a.ExpiresAt)
	utcPtr(a.DecidedAt, a.UsedAt)
	return a, err
}

// GetApproval returns the approval with the given id.
func (s *Store) GetApproval(ctx context.Context, id string) (store.Approval, error) {
	a, err := scanApproval(s.pool.QueryRow(ctx, `SELECT `+approvalCols+` FROM approvals WHERE id = $1`, id))
	return a, wrap(err, fmt.Sprintf("approval %q", id))
}

// ListApprovals returns the approvals f selects, newest first, at most
// f.Limit (100 when not set).
func (s *Store) ListApprovals(ctx context.Context, f store.ApprovalFilter) ([]store.Approval, error) {
	var where []string
	var args []any
	if f.Status != "" {
		args = append(args, f.Status)
		where = append(where, fmt.Sprintf("status = $%d", len(args)))
	}
	if f.Principal != "" {
		args = append(args, f.Principal)
		where = append(where, fmt.Sprintf("principal = $%d", len(args)))
	}
	limit := f.Limit
	if limit <= 0 {
		limit = defaultApprovalLimit
	}
	q := `SELECT ` + approvalCols + ` FROM approvals`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	args = append(args, limit)
	return list(ctx, s, "listing approvals", scanApproval,
		q+fmt.Sprintf(` ORDER BY created_at DESC, id DESC LIMIT $%d`, len(args)), args...)
}

// DecideApproval approves or denies the approval id if it is pending and
// unexpired at at. One statement both checks and decides; concurrent
// deciders queue on the row lock and re-check the status once the first
// commits, so exactly one wins and the others get ErrUsed.
func (s *Store) DecideApproval(ctx context.Context, id, status, by, note string, at time.Time) (store.Approval, error) {
	if status != store.ApprovalApproved && status != store.ApprovalDenied {
		return store.Approval{}, fmt.Errorf("deciding approval %q: status %q is neither %q nor %q",
			id, status, store.ApprovalApproved, store.ApprovalDenied)
	}
	a, err := scanApproval(s.pool.QueryRow(ctx, `UPDATE approvals SET status = $1, decided_by = $2, decided_at = $3, note = $4
		WHERE id = $5 AND status = 'pending' AND expires_at > $3
		RETURNING `+approvalCols,
		status, by, ts(at), note, id))
	if err == nil {
		return a, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return store.Approval{}, wrap(err, fmt.Sprintf("deciding approval %q", id))
	}
	return store.Approval{}, s.approvalUnavailable(ctx, "deciding", id)
}

// FindApproval returns the newest approval with the given key that is
// pending or approved and unexpired at now.
func (s *Store) FindApproval(ctx context.Context, key string, now time.Time) (store.Approval, error) {
	a, err := scanApproval(s.pool.QueryRow(ctx, `SELECT `+approvalCols+` FROM approvals
		WHERE key = $1 AND status IN ('pending', 'approved') AND expires_at > $2
		ORDER BY created_at DESC, id DESC LIMIT 1`,
		key, ts(now)))
	return a, wrap(err, fmt.Sprintf("approval with key %q", key))
}

// ConsumeApproval marks the approval id used and returns it, if it is
// approved and unexpired at now. One statement both checks and marks;
// concurrent consumers (other processes included) queue on the row lock
// and re-check the status once the first commits, so exactly one gets it
// and the others get ErrUsed.
func (s *Store) ConsumeApproval(ctx context.Context, id string, now time.Time) (store.Approval, error) {
	a, err := scanApproval(s.pool.QueryRow(ctx, `UPDATE approvals SET status = 'used', used_at = $1
		WHERE id = $2 AND status = 'approved' AND expires_at > $1
		RETURNING `+approvalCols,
		ts(now), id))
	if err == nil {
		return a, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return store.Approval{}, wrap(err, fmt.Sprintf("consuming approval %q", id))
	}
	return store.Approval{}, s.approvalUnavailable(ctx, "consuming", id)
}

// approvalUnavailable explains why a conditional update of the approval id
// matched nothing: ErrNotFound when there is no such approval, else ErrUsed
// naming its status. Approvals are never deleted, so one that exists now
// existed at the update.
func (s *Store) approvalUnavailable(ctx context.Context, doing, id string) error {
	var status string
	if err := s.pool.QueryRow(ctx, `SELECT status FROM approvals WHERE id = $1`, id).Scan(&status); err != nil {
		return wrap(err, fmt.Sprintf("approval %q", id))
	}
	return fmt.Errorf("%s approval %q (status %s): %w", doing, id, status, store.ErrUsed)
}
