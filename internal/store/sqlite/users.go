package sqlite

import (
	"context"
	"fmt"

	"gatehouse/internal/store"
)

// CreateUser adds u; its Username must be unused.
func (s *Store) CreateUser(ctx context.Context, u store.User) error {
	what := fmt.Sprintf("user %q", u.Username)
	groups, err := listArg(u.Groups)
	if err != nil {
		return wrap(err, what)
	}
	_, err = s.w.ExecContext(ctx, `INSERT INTO users (username, password_hash, groups_json, disabled, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?)`,
		u.Username, u.PasswordHash, groups, u.Disabled, millis(u.CreatedAt), millis(u.UpdatedAt))
	return wrap(err, what)
}

const userCols = `username, password_hash, groups_json, disabled, created_at, updated_at`

func scanUser(sc scanner) (store.User, error) {
	var u store.User
	err := sc.Scan(&u.Username, &u.PasswordHash, listDest{&u.Groups}, &u.Disabled, timeDest{&u.CreatedAt}, timeDest{&u.UpdatedAt})
	return u, err
}

// GetUser returns the user called username.
func (s *Store) GetUser(ctx context.Context, username string) (store.User, error) {
	u, err := scanUser(s.r.QueryRowContext(ctx, `SELECT `+userCols+` FROM users WHERE username = ?`, username))
	return u, wrap(err, fmt.Sprintf("user %q", username))
}

// ListUsers returns every user, ordered by username.
func (s *Store) ListUsers(ctx context.Context) ([]store.User, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+userCols+` FROM users ORDER BY username`)
	if err != nil {
		return nil, wrap(err, "listing users")
	}
	defer rows.Close()
	var out []store.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, wrap(err, "listing users")
		}
		out = append(out, u)
	}
	return out, wrap(rows.Err(), "listing users")
}

// UpdateUser replaces PasswordHash, Groups, Disabled and UpdatedAt of the
// user u.Username.
func (s *Store) UpdateUser(ctx context.Context, u store.User) error {
	what := fmt.Sprintf("user %q", u.Username)
	groups, err := listArg(u.Groups)
	if err != nil {
		return wrap(err, what)
	}
	res, err := s.w.ExecContext(ctx, `UPDATE users SET password_hash = ?, groups_json = ?, disabled = ?, updated_at = ?
		WHERE username = ?`,
		u.PasswordHash, groups, u.Disabled, millis(u.UpdatedAt), u.Username)
	return mustAffect(res, err, what)
}

// CreateClient adds the OAuth client c; its ClientID must be unused.
func (s *Store) CreateClient(ctx context.Context, c store.OAuthClient) error {
	what := fmt.Sprintf("oauth client %q", c.ClientID)
	uris, err := listArg(c.RedirectURIs)
	if err != nil {
		return wrap(err, what)
	}
	_, err = s.w.ExecContext(ctx, `INSERT INTO oauth_clients
		(client_id, name, redirect_uris_json, kind, metadata, secret_hash, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`,
		c.ClientID, c.Name, uris, c.Kind, jsonArg(c.Metadata), optBlob(c.SecretHash), millis(c.CreatedAt))
	return wrap(err, what)
}

// GetClient returns the OAuth client clientID.
func (s *Store) GetClient(ctx context.Context, clientID string) (store.OAuthClient, error) {
	var c store.OAuthClient
	err := s.r.QueryRowContext(ctx, `SELECT client_id, name, redirect_uris_json, kind, metadata, secret_hash, created_at
		FROM oauth_clients WHERE client_id = ?`, clientID).
		Scan(&c.ClientID, &c.Name, listDest{&c.RedirectURIs}, &c.Kind, jsonDest{&c.Metadata}, &c.SecretHash, timeDest{&c.CreatedAt})
	return c, wrap(err, fmt.Sprintf("oauth client %q", clientID))
}
