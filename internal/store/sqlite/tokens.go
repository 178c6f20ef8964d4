package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"gatehouse/internal/store"
)

// CreateAuthCode stores the code c; its Hash must be unused.
func (s *Store) CreateAuthCode(ctx context.Context, c store.AuthCode) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO auth_codes
		(hash, client_id, username, agent_id, redirect_uri, code_challenge, resource, scope, created_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		blob(c.Hash), c.ClientID, c.Username, c.AgentID, c.RedirectURI, c.CodeChallenge, c.Resource, c.Scope,
		millis(c.CreatedAt), millis(c.ExpiresAt))
	return wrap(err, "authorization code")
}

// ConsumeAuthCode marks the code used and returns it. One statement both
// checks and marks, so of concurrent consumers exactly one gets the code;
// the others get ErrUsed. A code is expired from its ExpiresAt on.
func (s *Store) ConsumeAuthCode(ctx context.Context, hash []byte, now time.Time) (store.AuthCode, error) {
	var c store.AuthCode
	err := s.w.QueryRowContext(ctx, `UPDATE auth_codes SET used_at = ?
		WHERE hash = ? AND used_at IS NULL AND expires_at > ?
		RETURNING hash, client_id, username, agent_id, redirect_uri, code_challenge, resource, scope, created_at, expires_at`,
		millis(now), blob(hash), millis(now)).
		Scan(&c.Hash, &c.ClientID, &c.Username, &c.AgentID, &c.RedirectURI, &c.CodeChallenge, &c.Resource, &c.Scope,
			timeDest{&c.CreatedAt}, timeDest{&c.ExpiresAt})
	if err == nil {
		return c, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return store.AuthCode{}, wrap(err, "consuming authorization code")
	}
	// Codes are never deleted, so a code that exists now existed at the
	// UPDATE: it was used or expired.
	var one int
	err = s.w.QueryRowContext(ctx, `SELECT 1 FROM auth_codes WHERE hash = ?`, blob(hash)).Scan(&one)
	if err != nil {
		return store.AuthCode{}, wrap(err, "authorization code")
	}
	return store.AuthCode{}, fmt.Errorf("authorization code: %w", store.ErrUsed)
}

// CreateRefreshToken stores t; its Hash must be unused.
func (s *Store) CreateRefreshToken(ctx context.Context, t store.RefreshToken) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO refresh_tokens
		(hash, family, client_id, username, agent_id, resource, scope, created_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		blob(t.Hash), t.Family, t.ClientID, t.Username, t.AgentID, t.Resource, t.Scope, millis(t.CreatedAt), millis(t.ExpiresAt))
	return wrap(err, fmt.Sprintf("refresh token of family %q", t.Family))
}

// ConsumeRefreshToken marks the token used and returns it. A token that was
// used before, is revoked, belongs to a revoked family or has expired
// yields ErrUsed, and its whole family is revoked: presenting a rotated
// token again means it was stolen (or the client is broken), and either way
// no token of that grant should work any more. Revocation is sticky: a
// token created later in a revoked family cannot be consumed either.
func (s *Store) ConsumeRefreshToken(ctx context.Context, hash []byte, now time.Time) (store.RefreshToken, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return store.RefreshToken{}, wrap(err, "consuming refresh token")
	}
	defer tx.Rollback()
	var t store.RefreshToken
	err = tx.QueryRowContext(ctx, `UPDATE refresh_tokens SET used_at = ?
		WHERE hash = ? AND used_at IS NULL AND revoked_at IS NULL AND expires_at > ?
		AND NOT EXISTS (SELECT 1 FROM refresh_tokens f WHERE f.family = refresh_tokens.family AND f.revoked_at IS NOT NULL)
		RETURNING hash, family, client_id, username, agent_id, resource, scope, created_at, expires_at`,
		millis(now), blob(hash), millis(now)).
		Scan(&t.Hash, &t.Family, &t.ClientID, &t.Username, &t.AgentID, &t.Resource, &t.Scope,
			timeDest{&t.CreatedAt}, timeDest{&t.ExpiresAt})
	if err == nil {
		if err := tx.Commit(); err != nil {
			return store.RefreshToken{}, wrap(err, "consuming refresh token")
		}
		return t, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return store.RefreshToken{}, wrap(err, "consuming refresh token")
	}
	var family string
	if err := tx.QueryRowContext(ctx, `SELECT family FROM refresh_tokens WHERE hash = ?`, blob(hash)).Scan(&family); err != nil {
		return store.RefreshToken{}, wrap(err, "refresh token")
	}
	if _, err := tx.ExecContext(ctx, `UPDATE refresh_tokens SET revoked_at = ? WHERE family = ? AND revoked_at IS NULL`,
		millis(now), family); err != nil {
		return store.RefreshToken{}, wrap(err, fmt.Sprintf("revoking refresh family %q", family))
	}
	if err := tx.Commit(); err != nil {
		return store.RefreshToken{}, wrap(err, fmt.Sprintf("revoking refresh family %q", family))
	}
	return store.RefreshToken{}, fmt.Errorf("refresh token of family %q: %w", family, store.ErrUsed)
}

// RevokeRefreshFamily revokes every token of family at the given time.
// Revoking an unknown or already revoked family is not an error.
func (s *Store) RevokeRefreshFamily(ctx context.Context, family string, at time.Time) error {
	_, err := s.w.ExecContext(ctx, `UPDATE refresh_tokens SET revoked_at = ? WHERE family = ? AND revoked_at IS NULL`,
		millis(at), family)
	return wrap(err, fmt.Sprintf("revoking refresh family %q", family))
}
