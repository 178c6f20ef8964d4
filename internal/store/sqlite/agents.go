package sqlite

import (
	"context"
	"fmt"
	"strings"
	"time"

	"gatehouse/internal/store"
)

// UpsertTeam creates the team or replaces its MaxSecretAge; CreatedAt is
// kept from the first call.
func (s *Store) UpsertTeam(ctx context.Context, t store.Team) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO teams (name, max_secret_age_ns, created_at) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET max_secret_age_ns = excluded.max_secret_age_ns`,
		t.Name, int64(t.MaxSecretAge), millis(t.CreatedAt))
	return wrap(err, fmt.Sprintf("team %q", t.Name))
}

const teamCols = `name, max_secret_age_ns, created_at`

func scanTeam(sc scanner) (store.Team, error) {
	var t store.Team
	var age int64
	err := sc.Scan(&t.Name, &age, timeDest{&t.CreatedAt})
	t.MaxSecretAge = time.Duration(age)
	return t, err
}

// GetTeam returns the team called name.
func (s *Store) GetTeam(ctx context.Context, name string) (store.Team, error) {
	t, err := scanTeam(s.r.QueryRowContext(ctx, `SELECT `+teamCols+` FROM teams WHERE name = ?`, name))
	return t, wrap(err, fmt.Sprintf("team %q", name))
}

// ListTeams returns every team, ordered by name.
func (s *Store) ListTeams(ctx context.Context) ([]store.Team, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+teamCols+` FROM teams ORDER BY name`)
	if err != nil {
		return nil, wrap(err, "listing teams")
	}
	defer rows.Close()
	var out []store.Team
	for rows.Next() {
		t, err := scanTeam(rows)
		if err != nil {
			return nil, wrap(err, "listing teams")
		}
		out = append(out, t)
	}
	return out, wrap(rows.Err(), "listing teams")
}

// CreateAgent adds a; its ID, Name and (when set) ClientID must be unused.
func (s *Store) CreateAgent(ctx context.Context, a store.Agent) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO agents
		(id, name, client_id, team, owner, status, attributes, source, created_at, updated_at, revoked_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		a.ID, a.Name, optText(a.ClientID), a.Team, a.Owner, a.Status, jsonArg(a.Attributes), a.Source,
		millis(a.CreatedAt), millis(a.UpdatedAt), millisPtr(a.RevokedAt))
	return wrap(err, fmt.Sprintf("agent %q", a.Name))
}

const agentCols = `id, name, client_id, team, owner, status, attributes, source, created_at, updated_at, revoked_at`

func scanAgent(sc scanner) (store.Agent, error) {
	var a store.Agent
	err := sc.Scan(&a.ID, &a.Name, optTextDest{&a.ClientID}, &a.Team, &a.Owner, &a.Status,
		jsonDest{&a.Attributes}, &a.Source, timeDest{&a.CreatedAt}, timeDest{&a.UpdatedAt}, timePtrDest{&a.RevokedAt})
	return a, err
}

// GetAgent returns the agent with the given id.
func (s *Store) GetAgent(ctx context.Context, id string) (store.Agent, error) {
	a, err := scanAgent(s.r.QueryRowContext(ctx, `SELECT `+agentCols+` FROM agents WHERE id = ?`, id))
	return a, wrap(err, fmt.Sprintf("agent id %q", id))
}

// GetAgentByName returns the agent called name.
func (s *Store) GetAgentByName(ctx context.Context, name string) (store.Agent, error) {
	a, err := scanAgent(s.r.QueryRowContext(ctx, `SELECT `+agentCols+` FROM agents WHERE name = ?`, name))
	return a, wrap(err, fmt.Sprintf("agent %q", name))
}

// GetAgentByClientID returns the agent whose OAuth client id is clientID.
func (s *Store) GetAgentByClientID(ctx context.Context, clientID string) (store.Agent, error) {
	a, err := scanAgent(s.r.QueryRowContext(ctx, `SELECT `+agentCols+` FROM agents WHERE client_id = ?`, clientID))
	return a, wrap(err, fmt.Sprintf("agent with client id %q", clientID))
}

// ListAgents returns the agents f selects, ordered by name.
func (s *Store) ListAgents(ctx context.Context, f store.AgentFilter) ([]store.Agent, error) {
	var where []string
	var args []any
	if f.Team != "" {
		where, args = append(where, "team = ?"), append(args, f.Team)
	}
	if f.Status != "" {
		where, args = append(where, "status = ?"), append(args, f.Status)
	}
	q := `SELECT ` + agentCols + ` FROM agents`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	rows, err := s.r.QueryContext(ctx, q+` ORDER BY name`, args...)
	if err != nil {
		return nil, wrap(err, "listing agents")
	}
	defer rows.Close()
	var out []store.Agent
	for rows.Next() {
		a, err := scanAgent(rows)
		if err != nil {
			return nil, wrap(err, "listing agents")
		}
		out = append(out, a)
	}
	return out, wrap(rows.Err(), "listing agents")
}

// UpdateAgent replaces Team, Owner, Status, Attributes, RevokedAt and
// UpdatedAt of the agent a.ID.
func (s *Store) UpdateAgent(ctx context.Context, a store.Agent) error {
	res, err := s.w.ExecContext(ctx, `UPDATE agents SET team = ?, owner = ?, status = ?, attributes = ?, revoked_at = ?, updated_at = ?
		WHERE id = ?`,
		a.Team, a.Owner, a.Status, jsonArg(a.Attributes), millisPtr(a.RevokedAt), millis(a.UpdatedAt), a.ID)
	return mustAffect(res, err, fmt.Sprintf("agent id %q", a.ID))
}

// AddCredential adds c to the agent c.AgentID (ErrNotFound when there is
// no such agent); its ID and Prefix must be unused.
func (s *Store) AddCredential(ctx context.Context, c store.Credential) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO credentials
		(id, agent_id, kind, prefix, hash, public_jwk, created_at, expires_at, revoked_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.ID, c.AgentID, c.Kind, c.Prefix, optBlob(c.Hash), jsonArg(c.PublicJWK),
		millis(c.CreatedAt), millisPtr(c.ExpiresAt), millisPtr(c.RevokedAt))
	return wrap(err, fmt.Sprintf("credential %q of agent id %q", c.Prefix, c.AgentID))
}

const credentialCols = `id, agent_id, kind, prefix, hash, public_jwk, created_at, expires_at, revoked_at`

func scanCredential(sc scanner) (store.Credential, error) {
	var c store.Credential
	err := sc.Scan(&c.ID, &c.AgentID, &c.Kind, &c.Prefix, &c.Hash, jsonDest{&c.PublicJWK},
		timeDest{&c.CreatedAt}, timePtrDest{&c.ExpiresAt}, timePtrDest{&c.RevokedAt})
	return c, err
}

// GetCredentialByPrefix returns the credential with the given prefix.
func (s *Store) GetCredentialByPrefix(ctx context.Context, prefix string) (store.Credential, error) {
	c, err := scanCredential(s.r.QueryRowContext(ctx, `SELECT `+credentialCols+` FROM credentials WHERE prefix = ?`, prefix))
	return c, wrap(err, fmt.Sprintf("credential %q", prefix))
}

// ListCredentials returns the credentials of the agent agentID, oldest
// first; none (not an error) for an unknown agent.
func (s *Store) ListCredentials(ctx context.Context, agentID string) ([]store.Credential, error) {
	what := fmt.Sprintf("listing credentials of agent id %q", agentID)
	rows, err := s.r.QueryContext(ctx, `SELECT `+credentialCols+` FROM credentials WHERE agent_id = ? ORDER BY created_at, id`, agentID)
	if err != nil {
		return nil, wrap(err, what)
	}
	defer rows.Close()
	var out []store.Credential
	for rows.Next() {
		c, err := scanCredential(rows)
		if err != nil {
			return nil, wrap(err, what)
		}
		out = append(out, c)
	}
	return out, wrap(rows.Err(), what)
}

// UpdateCredential replaces ExpiresAt and RevokedAt of the credential c.ID.
func (s *Store) UpdateCredential(ctx context.Context, c store.Credential) error {
	res, err := s.w.ExecContext(ctx, `UPDATE credentials SET expires_at = ?, revoked_at = ? WHERE id = ?`,
		millisPtr(c.ExpiresAt), millisPtr(c.RevokedAt), c.ID)
	return mustAffect(res, err, fmt.Sprintf("credential id %q", c.ID))
}
