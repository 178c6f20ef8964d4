package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"gatehouse/internal/store"
)

// CreateUser adds u; its Username must be unused.
func (s *Store) CreateUser(ctx context.Context, u store.User) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO users (username, password_hash, groups, disabled, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6)`,
		u.Username, u.PasswordHash, u.Groups, u.Disabled, ts(u.CreatedAt), ts(u.UpdatedAt))
	return wrap(err, fmt.Sprintf("user %q", u.Username))
}

const userCols = `username, password_hash, groups, disabled, created_at, updated_at`

func scanUser(row pgx.Row) (store.User, error) {
	var u store.User
	err := row.Scan(&u.Username, &u.PasswordHash, &u.Groups, &u.Disabled, &u.CreatedAt, &u.UpdatedAt)
	utc(&u.CreatedAt, &u.UpdatedAt)
	return u, err
}

// GetUser returns the user called username.
func (s *Store) GetUser(ctx context.Context, username string) (store.User, error) {
	u, err := scanUser(s.pool.QueryRow(ctx, `SELECT `+userCols+` FROM users WHERE username = $1`, username))
	return u, wrap(err, fmt.Sprintf("user %q", username))
}

// ListUsers returns every user, ordered by username.
func (s *Store) ListUsers(ctx context.Context) ([]store.User, error) {
	return list(ctx, s, "listing users", scanUser, `SELECT `+userCols+` FROM users ORDER BY username`)
}

// UpdateUser replaces PasswordHash, Groups, Disabled and UpdatedAt of the
// user u.Username.
func (s *Store) UpdateUser(ctx context.Context, u store.User) error {
	tag, err := s.pool.Exec(ctx, `UPDATE users SET password_hash = $1, groups = $2, disabled = $3, updated_at = $4
		WHERE username = $5`,
		u.PasswordHash, u.Groups, u.Disabled, ts(u.UpdatedAt), u.Username)
	return mustAffect(tag, err, fmt.Sprintf("user %q", u.Username))
}

// CreateClient adds the OAuth client c; its ClientID must be unused.
func (s *Store) CreateClient(ctx context.Context, c store.OAuthClient) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO oauth_clients
		(client_id, name, redirect_uris, kind, metadata, secret_hash, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		c.ClientID, c.Name, c.RedirectURIs, c.Kind, jsonArg(c.Metadata), optBlob(c.SecretHash), ts(c.CreatedAt))
	return wrap(err, fmt.Sprintf("oauth client %q", c.ClientID))
}

// GetClient returns the OAuth client clientID.
func (s *Store) GetClient(ctx context.Context, clientID string) (store.OAuthClient, error) {
	var c store.OAuthClient
	err := s.pool.QueryRow(ctx, `SELECT client_id, name, redirect_uris, kind, metadata, secret_hash, created_at
		FROM oauth_clients WHERE client_id = $1`, clientID).
		Scan(&c.ClientID, &c.Name, &c.RedirectURIs, &c.Kind, (*[]byte)(&c.Metadata), &c.SecretHash, &c.CreatedAt)
	utc(&c.CreatedAt)
	return c, wrap(err, fmt.Sprintf("oauth client %q", clientID))
}
