package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"gatehouse/internal/store"
)

// UpsertTeam creates the team or replaces its MaxSecretAge; CreatedAt is
// kept from the first call.
func (s *Store) UpsertTeam(ctx context.Context, t store.Team) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO teams (name, max_secret_age_ns, created_at) VALUES ($1, $2, $3)
		ON CONFLICT (name) DO UPDATE SET max_secret_age_ns = excluded.max_secret_age_ns`,
		t.Name, int64(t.MaxSecretAge), ts(t.CreatedAt))
	return wrap(err, fmt.Sprintf("team %q", t.Name))
}

const teamCols = `name, max_secret_age_ns, created_at`

func scanTeam(row pgx.Row) (store.Team, error) {
	var t store.Team
	var age int64
	err := row.Scan(&t.Name, &age, &t.CreatedAt)
	t.MaxSecretAge = time.Duration(age)
	utc(&t.CreatedAt)
	return t, err
}

// GetTeam returns the team called name.
func (s *Store) GetTeam(ctx context.Context, name string) (store.Team, error) {
	t, err := scanTeam(s.pool.QueryRow(ctx, `SELECT `+teamCols+` FROM teams WHERE name = $1`, name))
	return t, wrap(err, fmt.Sprintf("team %q", name))
}

// ListTeams returns every team, ordered by name.
func (s *Store) ListTeams(ctx context.Context) ([]store.Team, error) {
	return list(ctx, s, "listing teams", scanTeam, `SELECT `+teamCols+` FROM teams ORDER BY name`)
}

// list runs a query and scans every row with scan.
func list[T any](ctx context.Context, s *Store, what string, scan func(pgx.Row) (T, error), q string, args ...any) ([]T, error) {
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, wrap(err, what)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (T, error) { return scan(r) })
	return out, wrap(err, what)
}

// CreateAgent adds a; its ID, Name and (when set) ClientID must be unused.
func (s *Store) CreateAgent(ctx context.Context, a store.Agent) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO agents
		(id, name, client_id, team, owner, status, attributes, source, created_at, updated_at, revoked_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		a.ID, a.Name, optText(a.ClientID), a.Team, a.Owner, a.Status, jsonArg(a.Attributes), a.Source,
		ts(a.CreatedAt), ts(a.UpdatedAt), tsPtr(a.RevokedAt))
	return wrap(err, fmt.Sprintf("agent %q", a.Name))
}

const agentCols = `id, name, coalesce(client_id, ''), team, owner, status, attributes, source, created_at, updated_at, revoked_at`

func scanAgent(row pgx.Row) (store.Agent, error) {
	var a store.Agent
	err := row.Scan(&a.ID, &a.Name, &a.ClientID, &a.Team, &a.Owner, &a.Status,
		(*[]byte)(&a.Attributes), &a.Source, &a.CreatedAt, &a.UpdatedAt, &a.RevokedAt)
	utc(&a.CreatedAt, &a.UpdatedAt)
	utcPtr(a.RevokedAt)
	return a, err
}

// GetAgent returns the agent with the given id.
func (s *Store) GetAgent(ctx context.Context, id string) (store.Agent, error) {
	a, err := scanAgent(s.pool.QueryRow(ctx, `SELECT `+agentCols+` FROM agents WHERE id = $1`, id))
	return a, wrap(err, fmt.Sprintf("agent id %q", id))
}

// GetAgentByName returns the agent called name.
func (s *Store) GetAgentByName(ctx context.Context, name string) (store.Agent, error) {
	a, err := scanAgent(s.pool.QueryRow(ctx, `SELECT `+agentCols+` FROM agents WHERE name = $1`, name))
	return a, wrap(err, fmt.Sprintf("agent %q", name))
}

// GetAgentByClientID returns the agent whose OAuth client id is clientID.
func (s *Store) GetAgentByClientID(ctx context.Context, clientID string) (store.Agent, error) {
	a, err := scanAgent(s.pool.QueryRow(ctx, `SELECT `+agentCols+` FROM agents WHERE client_id = $1`, clientID))
	return a, wrap(err, fmt.Sprintf("agent with client id %q", clientID))
}

// ListAgents returns the agents f selects, ordered by name.
func (s *Store) ListAgents(ctx context.Context, f store.AgentFilter) ([]store.Agent, error) {
	var where []string
	var args []any
	if f.Team != "" {
		args = append(args, f.Team)
		where = append(where, fmt.Sprintf("team = $%d", len(args)))
	}
	if f.Status != "" {
		args = append(args, f.Status)
		where = append(where, fmt.Sprintf("status = $%d", len(args)))
	}
	q := `SELECT ` + agentCols + ` FROM agents`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	return list(ctx, s, "listing agents", scanAgent, q+` ORDER BY name`, args...)
}

// UpdateAgent replaces Team, Owner, Status, Attributes, RevokedAt and
// UpdatedAt of the agent a.ID.
func (s *Store) UpdateAgent(ctx context.Context, a store.Agent) error {
	tag, err := s.pool.Exec(ctx, `UPDATE agents SET team = $1, owner = $2, status = $3, attributes = $4, revoked_at = $5, updated_at = $6
		WHERE id = $7`,
		a.Team, a.Owner, a.Status, jsonArg(a.Attributes), tsPtr(a.RevokedAt), ts(a.UpdatedAt), a.ID)
	return mustAffect(tag, err, fmt.Sprintf("agent id %q", a.ID))
}

// AddCredential adds c to the agent c.AgentID (ErrNotFound when there is
// no such agent); its ID and Prefix must be unused.
func (s *Store) AddCredential(ctx context.Context, c store.Credential) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO credentials
		(id, agent_id, kind, prefix, hash, public_jwk, created_at, expires_at, revoked_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		c.ID, c.AgentID, c.Kind, c.Prefix, optBlob(c.Hash), jsonArg(c.PublicJWK),
		ts(c.CreatedAt), tsPtr(c.ExpiresAt), tsPtr(c.RevokedAt))
	return wrap(err, fmt.Sprintf("credential %q of agent id %q", c.Prefix, c.AgentID))
}

const credentialCols = `id, agent_id, kind, prefix, hash, public_jwk, created_at, expires_at, revoked_at`

func scanCredential(row pgx.Row) (store.Credential, error) {
	var c store.Credential
	err := row.Scan(&c.ID, &c.AgentID, &c.Kind, &c.Prefix, &c.Hash, (*[]byte)(&c.PublicJWK),
		&c.CreatedAt, &c.ExpiresAt, &c.RevokedAt)
	utc(&c.CreatedAt)
	utcPtr(c.ExpiresAt, c.RevokedAt)
	return c, err
}

// GetCredentialByPrefix returns the credential with the given prefix.
func (s *Store) GetCredentialByPrefix(ctx context.Context, prefix string) (store.Credential, error) {
	c, err := scanCredential(s.pool.QueryRow(ctx, `SELECT `+credentialCols+` FROM credentials WHERE prefix = $1`, prefix))
	return c, wrap(err, fmt.Sprintf("credential %q", prefix))
}

// ListCredentials returns the credentials of the agent agentID, oldest
// first; none (not an error) for an unknown agent.
func (s *Store) ListCredentials(ctx context.Context, agentID string) ([]store.Credential, error) {
	return list(ctx, s, fmt.Sprintf("listing credentials of agent id %q", agentID), scanCredential,
		`SELECT `+credentialCols+` FROM credentials WHERE agent_id = $1 ORDER BY created_at, id`, agentID)
}

// UpdateCredential replaces ExpiresAt and RevokedAt of the credential c.ID.
func (s *Store) UpdateCredential(ctx context.Context, c store.Credential) error {
	tag, err := s.pool.Exec(ctx, `UPDATE credentials SET expires_at = $1, revoked_at = $2 WHERE id = $3`,
		tsPtr(c.ExpiresAt), tsPtr(c.RevokedAt), c.ID)
	return mustAffect(tag, err, fmt.Sprintf("credential id %q", c.ID))
}
