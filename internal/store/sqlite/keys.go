package sqlite

import (
	"context"
	"fmt"

	"gatehouse/internal/store"
)

// AddSigningKey stores k; its KID must be unused.
func (s *Store) AddSigningKey(ctx context.Context, k store.SigningKey) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO signing_keys
		(kid, alg, private, public_jwk, created_at, activate_at, retires_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		k.KID, k.Alg, blob(k.Private), jsonArg(k.PublicJWK),
		millis(k.CreatedAt), millis(k.ActivateAt), millis(k.RetiresAt), millis(k.ExpiresAt))
	return wrap(err, fmt.Sprintf("signing key %q", k.KID))
}

// ListSigningKeys returns every signing key, ordered by ActivateAt (then
// KID).
func (s *Store) ListSigningKeys(ctx context.Context) ([]store.SigningKey, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT kid, alg, private, public_jwk, created_at, activate_at, retires_at, expires_at
		FROM signing_keys ORDER BY activate_at, kid`)
	if err != nil {
		return nil, wrap(err, "listing signing keys")
	}
	defer rows.Close()
	var out []store.SigningKey
	for rows.Next() {
		var k store.SigningKey
		if err := rows.Scan(&k.KID, &k.Alg, &k.Private, jsonDest{&k.PublicJWK},
			timeDest{&k.CreatedAt}, timeDest{&k.ActivateAt}, timeDest{&k.RetiresAt}, timeDest{&k.ExpiresAt}); err != nil {
			return nil, wrap(err, "listing signing keys")
		}
		out = append(out, k)
	}
	return out, wrap(rows.Err(), "listing signing keys")
}

// UpdateSigningKey replaces Private, RetiresAt and ExpiresAt of the key
// k.KID.
func (s *Store) UpdateSigningKey(ctx context.Context, k store.SigningKey) error {
	res, err := s.w.ExecContext(ctx, `UPDATE signing_keys SET private = ?, retires_at = ?, expires_at = ? WHERE kid = ?`,
		k.Private, millis(k.RetiresAt), millis(k.ExpiresAt), k.KID)
	return mustAffect(res, err, fmt.Sprintf("signing key %q", k.KID))
}

// DeleteSigningKey removes the key kid (ErrNotFound when there is none).
func (s *Store) DeleteSigningKey(ctx context.Context, kid string) error {
	res, err := s.w.ExecContext(ctx, `DELETE FROM signing_keys WHERE kid = ?`, kid)
	return mustAffect(res, err, fmt.Sprintf("signing key %q", kid))
}

// PutSecret creates or replaces the entry (s.Name, s.Agent). Replacing
// keeps the CreatedAt of the first Put; every other field, Version
// included, is stored as given.
func (s *Store) PutSecret(ctx context.Context, v store.VaultSecret) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO vault_secrets
		(name, agent, ciphertext, wrapped_dek, kek_id, version, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (name, agent) DO UPDATE SET ciphertext = excluded.ciphertext, wrapped_dek = excluded.wrapped_dek,
			kek_id = excluded.kek_id, version = excluded.version, updated_at = excluded.updated_at`,
		v.Name, v.Agent, blob(v.Ciphertext), blob(v.WrappedDEK), v.KEKID, v.Version, millis(v.CreatedAt), millis(v.UpdatedAt))
	return wrap(err, secretWhat(v.Name, v.Agent))
}

const secretCols = `name, agent, ciphertext, wrapped_dek, kek_id, version, created_at, updated_at`

func scanSecret(sc scanner) (store.VaultSecret, error) {
	var v store.VaultSecret
	err := sc.Scan(&v.Name, &v.Agent, &v.Ciphertext, &v.WrappedDEK, &v.KEKID, &v.Version, timeDest{&v.CreatedAt}, timeDest{&v.UpdatedAt})
	return v, err
}

// GetSecret returns the entry (name, agent); agent "" is the shared entry.
// There is no fallback from an agent's entry to the shared one: that is
// the vault's decision.
func (s *Store) GetSecret(ctx context.Context, name, agent string) (store.VaultSecret, error) {
	v, err := scanSecret(s.r.QueryRowContext(ctx, `SELECT `+secretCols+` FROM vault_secrets WHERE name = ? AND agent = ?`, name, agent))
	return v, wrap(err, secretWhat(name, agent))
}

// ListSecrets returns every entry, ordered by (Name, Agent).
func (s *Store) ListSecrets(ctx context.Context) ([]store.VaultSecret, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+secretCols+` FROM vault_secrets ORDER BY name, agent`)
	if err != nil {
		return nil, wrap(err, "listing secrets")
	}
	defer rows.Close()
	var out []store.VaultSecret
	for rows.Next() {
		v, err := scanSecret(rows)
		if err != nil {
			return nil, wrap(err, "listing secrets")
		}
		out = append(out, v)
	}
	return out, wrap(rows.Err(), "listing secrets")
}

// DeleteSecret removes the entry (name, agent) (ErrNotFound when there is
// none).
func (s *Store) DeleteSecret(ctx context.Context, name, agent string) error {
	res, err := s.w.ExecContext(ctx, `DELETE FROM vault_secrets WHERE name = ? AND agent = ?`, name, agent)
	return mustAffect(res, err, secretWhat(name, agent))
}

func secretWhat(name, agent string) string {
	if agent == "" {
		return fmt.Sprintf("secret %q (shared)", name)
	}
	return fmt.Sprintf("secret %q of agent id %q", name, agent)
}
