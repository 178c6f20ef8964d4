package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"gatehouse/internal/store"
)

// CreateAuthCode stores the code c; its Hash must be unused.
func (s *Store) CreateAuthCode(ctx context.Context, c store.AuthCode) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO auth_codes
		(hash, client_id, username, agent_id, redirect_uri, code_challenge, resource, scope, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		blob(c.Hash), c.ClientID, c.Username, c.AgentID, c.RedirectURI, c.CodeChallenge, c.Resource, c.Scope,
		ts(c.CreatedAt), ts(c.ExpiresAt))
	return wrap(err, "authorization code")
}

// ConsumeAuthCode marks the code used and returns it. One statement both
// checks and marks; concurrent consumers queue on the row lock and re-check
// used_at once the first commits, so exactly one gets the code and the
// others get ErrUsed. A code is expired from its ExpiresAt on.
func (s *Store) ConsumeAuthCode(ctx context.Context, hash []byte, now time.Time) (store.AuthCode, error) {
	var c store.AuthCode
	err := s.pool.QueryRow(ctx, `UPDATE auth_codes SET used_at = $1
		WHERE hash = $2 AND used_at IS NULL AND expires_at > $1
		RETURNING hash, client_id, username, agent_id, redirect_uri, code_challenge, resource, scope, created_at, expires_at`,
		ts(now), blob(hash)).
		Scan(&c.Hash, &c.ClientID, &c.Username, &c.AgentID, &c.RedirectURI, &c.CodeChallenge, &c.Resource, &c.Scope,
			&c.CreatedAt, &c.ExpiresAt)
	if err == nil {
		utc(&c.CreatedAt, &c.ExpiresAt)
		return c, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return store.AuthCode{}, wrap(err, "consuming authorization code")
	}
	// Codes are never deleted, so a code that exists now existed at the
	// UPDATE: it was used or expired.
	var one int
	if err := s.pool.QueryRow(ctx, `SELECT 1 FROM auth_codes WHERE hash = $1`, blob(hash)).Scan(&one); err != nil {
		return store.AuthCode{}, wrap(err, "authorization code")
	}
	return store.AuthCode{}, fmt.Errorf("authorization code: %w", store.ErrUsed)
}

// CreateRefreshToken stores t; its Hash must be unused.
func (s *Store) CreateRefreshToken(ctx context.Context, t store.RefreshToken) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO refresh_tokens
		(hash, family, client_id, username, agent_id, resource, scope, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		blob(t.Hash), t.Family, t.ClientID, t.Username, t.AgentID, t.Resource, t.Scope, ts(t.CreatedAt), ts(t.ExpiresAt))
	return wrap(err, fmt.Sprintf("refresh token of family %q", t.Family))
}

// ConsumeRefreshToken marks the token used and returns it. A token that was
// used before, is revoked, belongs to a revoked family or has expired
// yields ErrUsed, and its whole family is revoked: presenting a rotated
// token again means it was stolen (or the client is broken), and either way
// no token of that grant should work any more. Revocation is sticky: a
// token created later in a revoked family cannot be consumed either.
func (s *Store) ConsumeRefreshToken(ctx context.Context, hash []byte, now time.Time) (store.RefreshToken, error) {
	var t store.RefreshToken
	err := s.pool.QueryRow(ctx, `UPDATE refresh_tokens SET used_at = $1
		WHERE hash = $2 AND used_at IS NULL AND revoked_at IS NULL AND expires_at > $1
		AND NOT EXISTS (SELECT 1 FROM refresh_tokens f WHERE f.family = refresh_tokens.family AND f.revoked_at IS NOT NULL)
		RETURNING hash, family, client_id, username, agent_id, resource, scope, created_at, expires_at`,
		ts(now), blob(hash)).
		Scan(&t.Hash, &t.Family, &t.ClientID, &t.Username, &t.AgentID, &t.Resource, &t.Scope, &t.CreatedAt, &t.ExpiresAt)
	if err == nil {
		utc(&t.CreatedAt, &t.ExpiresAt)
		return t, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return store.RefreshToken{}, wrap(err, "consuming refresh token")
	}
	var family string
	if err := s.pool.QueryRow(ctx, `SELECT family FROM refresh_tokens WHERE hash = $1`, blob(hash)).Scan(&family); err != nil {
		return store.RefreshToken{}, wrap(err, "refresh token")
	}
	if err := s.RevokeRefreshFamily(ctx, family, now); err != nil {
		return store.RefreshToken{}, err
	}
	return store.RefreshToken{}, fmt.Errorf("refresh token of family %q: %w", family, store.ErrUsed)
}

// RevokeRefreshFamily revokes every token of family at the given time.
// Revoking an unknown or already revoked family is not an error. Rows are
// locked in hash order so that concurrent revocations of one family (every
// loser of a consume race revokes it) cannot deadlock.
func (s *Store) RevokeRefreshFamily(ctx context.Context, family string, at time.Time) error {
	_, err := s.pool.Exec(ctx, `UPDATE refresh_tokens SET revoked_at = $1 WHERE hash IN (
		SELECT hash FROM refresh_tokens WHERE family = $2 AND revoked_at IS NULL ORDER BY hash FOR UPDATE)`,
		ts(at), family)
	return wrap(err, fmt.Sprintf("revoking refresh family %q", family))
}
