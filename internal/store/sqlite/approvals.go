package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"gatehouse/internal/store"
)

// defaultApprovalLimit is how many approvals ListApprovals returns when the
// filter sets no Limit.
const defaultApprovalLimit = 100

// CreateApproval stores a; its ID must be unused.
func (s *Store) CreateApproval(ctx context.Context, a store.Approval) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO approvals
		(id, key, status, principal, principal_name, server, tool, args_hash, args, policy_version, rule, reason,
		created_at, expires_at, decided_by, decided_at, note, used_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		a.ID, a.Key, a.Status, a.Principal, a.PrincipalName, a.Server, a.Tool, a.ArgsHash, jsonArg(a.Args),
		a.PolicyVersion, a.Rule, a.Reason, millis(a.CreatedAt), millis(a.ExpiresAt),
		a.DecidedBy, millisPtr(a.DecidedAt), a.Note, millisPtr(a.UsedAt))
	return wrap(err, fmt.Sprintf("approval %q", a.ID))
}

const approvalCols = `id, key, status, principal, principal_name, server, tool, args_hash, args, policy_version, rule, reason,
	created_at, expires_at, decided_by, decided_at, note, used_at`

func scanApproval(sc scanner) (store.Approval, error) {
	var a store.Approval
	err := sc.Scan(&a.ID, &a.Key, &a.Status, &a.Principal, &a.PrincipalName, &a.Server, &a.Tool, &a.ArgsHash,
		jsonDest{&a.Args}, &a.PolicyVersion, &a.Rule, &a.Reason, timeDest{&a.CreatedAt}, timeDest{&a.ExpiresAt},
		&a.DecidedBy, timePtrDest{&a.DecidedAt}, &a.Note, timePtrDest{&a.UsedAt})
	return a, err
}

// GetApproval returns the approval with the given id.
func (s *Store) GetApproval(ctx context.Context, id string) (store.Approval, error) {
	a, err := scanApproval(s.r.QueryRowContext(ctx, `SELECT `+approvalCols+` FROM approvals WHERE id = ?`, id))
	return a, wrap(err, fmt.Sprintf("approval %q", id))
}

// ListApprovals returns the approvals f selects, newest first, at most
// f.Limit (100 when not set).
func (s *Store) ListApprovals(ctx context.Context, f store.ApprovalFilter) ([]store.Approval, error) {
	var where []string
	var args []any
	if f.Status != "" {
		where, args = append(where, "status = ?"), append(args, f.Status)
	}
	if f.Principal != "" {
		where, args = append(where, "principal = ?"), append(args, f.Principal)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = defaultApprovalLimit
	}
	q := `SELECT ` + approvalCols + ` FROM approvals`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	rows, err := s.r.QueryContext(ctx, q+` ORDER BY created_at DESC, id DESC LIMIT ?`, append(args, limit)...)
	if err != nil {
		return nil, wrap(err, "listing approvals")
	}
	defer rows.Close()
	var out []store.Approval
	for rows.Next() {
		a, err := scanApproval(rows)
		if err != nil {
			return nil, wrap(err, "listing approvals")
		}
		out = append(out, a)
	}
	return out, wrap(rows.Err(), "listing approvals")
}

// DecideApproval approves or denies the approval id if it is pending and
// unexpired at at. One statement both checks and decides, so of concurrent
// deciders exactly one wins; the others get ErrUsed.
func (s *Store) DecideApproval(ctx context.Context, id, status, by, note string, at time.Time) (store.Approval, error) {
	if status != store.ApprovalApproved && status != store.ApprovalDenied {
		return store.Approval{}, fmt.Errorf("deciding approval %q: status %q is neither %q nor %q",
			id, status, store.ApprovalApproved, store.ApprovalDenied)
	}
	a, err := scanApproval(s.w.QueryRowContext(ctx, `UPDATE approvals SET status = ?, decided_by = ?, decided_at = ?, note = ?
		WHERE id = ? AND status = 'pending' AND expires_at > ?
		RETURNING `+approvalCols,
		status, by, millis(at), note, id, millis(at)))
	if err == nil {
		return a, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return store.Approval{}, wrap(err, fmt.Sprintf("deciding approval %q", id))
	}
	return store.Approval{}, s.approvalUnavailable(ctx, "deciding", id)
}

// FindApproval returns the newest approval with the given key that is
// pending or approved and unexpired at now.
func (s *Store) FindApproval(ctx context.Context, key string, now time.Time) (store.Approval, error) {
	a, err := scanApproval(s.r.QueryRowContext(ctx, `SELECT `+approvalCols+` FROM approvals
		WHERE key = ? AND status IN ('pending', 'approved') AND expires_at > ?
		ORDER BY created_at DESC, id DESC LIMIT 1`,
		key, millis(now)))
	return a, wrap(err, fmt.Sprintf("approval with key %q", key))
}

// ConsumeApproval marks the approval id used and returns it, if it is
// approved and unexpired at now. One statement both checks and marks, so
// of concurrent consumers exactly one gets it; the others get ErrUsed.
func (s *Store) ConsumeApproval(ctx context.Context, id string, now time.Time) (store.Approval, error) {
	a, err := scanApproval(s.w.QueryRowContext(ctx, `UPDATE approvals SET status = 'used', used_at = ?
		WHERE id = ? AND status = 'approved' AND expires_at > ?
		RETURNING `+approvalCols,
		millis(now), id, millis(now)))
	if err == nil {
		return a, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
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
	if err := s.w.QueryRowContext(ctx, `SELECT status FROM approvals WHERE id = ?`, id).Scan(&status); err != nil {
		return wrap(err, fmt.Sprintf("approval %q", id))
	}
	return fmt.Errorf("%s approval %q (status %s): %w", doing, id, status, store.ErrUsed)
}
