package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"gatehouse/internal/store"
)

// AddSigningKey stores k; its KID must be unused.
func (s *Store) AddSigningKey(ctx context.Context, k store.SigningKey) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO signing_keys
		(kid, alg, private, public_jwk, created_at, activate_at, retires_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		k.KID, k.Alg, blob(k.Private), jsonArg(k.PublicJWK),
		ts(k.CreatedAt), ts(k.ActivateAt), ts(k.RetiresAt), ts(k.ExpiresAt))
	return wrap(err, fmt.Sprintf("signing key %q", k.KID))
}

func scanSigningKey(row pgx.Row) (store.SigningKey, error) {
	var k store.SigningKey
	err := row.Scan(&k.KID, &k.Alg, &k.Private, (*[]byte)(&k.PublicJWK), &k.CreatedAt, &k.ActivateAt, &k.RetiresAt, &k.ExpiresAt)
	utc(&k.CreatedAt, &k.ActivateAt, &k.RetiresAt, &k.ExpiresAt)
	return k, err
}

// ListSigningKeys returns every signing key, ordered by ActivateAt (then
// KID).
func (s *Store) ListSigningKeys(ctx context.Context) ([]store.SigningKey, error) {
	return list(ctx, s, "listing signing keys", scanSigningKey,
		`SELECT kid, alg, private, public_jwk, created_at, activate_at, retires_at, expires_at
		FROM signing_keys ORDER BY activate_at, kid`)
}

// UpdateSigningKey replaces Private, RetiresAt and ExpiresAt of the key
// k.KID.
func (s *Store) UpdateSigningKey(ctx context.Context, k store.SigningKey) error {
	tag, err := s.pool.Exec(ctx, `UPDATE signing_keys SET private = $1, retires_at = $2, expires_at = $3 WHERE kid = $4`,
		k.Private, ts(k.RetiresAt), ts(k.ExpiresAt), k.KID)
	return mustAffect(tag, err, fmt.Sprintf("signing key %q", k.KID))
}

// DeleteSigningKey removes the key kid (ErrNotFound when there is none).
func (s *Store) DeleteSigningKey(ctx context.Context, kid string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM signing_keys WHERE kid = $1`, kid)
	return mustAffect(tag, err, fmt.Sprintf("signing key %q", kid))
}

// PutSecret creates or replaces the entry (v.Name, v.Agent). Replacing
// keeps the CreatedAt of the first Put; every other field, Version
// included, is stored as given.
func (s *Store) PutSecret(ctx context.Context, v store.VaultSecret) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO vault_secrets
		(name, agent, ciphertext, wrapped_dek, kek_id, version, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT (name, agent) DO UPDATE SET ciphertext = excluded.ciphertext, wrapped_dek = excluded.wrapped_dek,
			kek_id = excluded.kek_id, version = excluded.version, updated_at = excluded.updated_at`,
		v.Name, v.Agent, blob(v.Ciphertext), blob(v.WrappedDEK), v.KEKID, v.Version, ts(v.CreatedAt), ts(v.UpdatedAt))
	return wrap(err, secretWhat(v.Name, v.Agent))
}

const secretCols = `name, agent, ciphertext, wrapped_dek, kek_id, version, created_at, updated_at`

func scanSecret(row pgx.Row) (store.VaultSecret, error) {
	var v store.VaultSecret
	err := row.Scan(&v.Name, &v.Agent, &v.Ciphertext, &v.WrappedDEK, &v.KEKID, &v.Version, &v.CreatedAt, &v.UpdatedAt)
	utc(&v.CreatedAt, &v.UpdatedAt)
	return v, err
}

// GetSecret returns the entry (name, agent); agent "" is the shared entry.
// There is no fallback from an agent's entry to the shared one: that is
// the vault's decision.
func (s *Store) GetSecret(ctx context.Context, name, agent string) (store.VaultSecret, error) {
	v, err := scanSecret(s.pool.QueryRow(ctx, `SELECT `+secretCols+` FROM vault_secrets WHERE name = $1 AND agent = $2`, name, agent))
	return v, wrap(err, secretWhat(name, agent))
}

// ListSecrets returns every entry, ordered by (Name, Agent).
func (s *Store) ListSecrets(ctx context.Context) ([]store.VaultSecret, error) {
	return list(ctx, s, "listing secrets", scanSecret, `SELECT `+secretCols+` FROM vault_secrets ORDER BY name, agent`)
}

// DeleteSecret removes the entry (name, agent) (ErrNotFound when there is
// none).
func (s *Store) DeleteSecret(ctx context.Context, name, agent string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM vault_secrets WHERE name = $1 AND agent = $2`, name, agent)
	return mustAffect(tag, err, secretWhat(name, agent))
}

func secretWhat(name, agent string) string {
	if agent == "" {
		return fmt.Sprintf("secret %q (shared)", name)
	}
	return fmt.Sprintf("secret %q of agent id %q", name, agent)
}
