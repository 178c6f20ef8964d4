package admin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"gatehouse/internal/identity"
	"gatehouse/internal/store"
)

// Default overlaps: a routine rotation leaves running agents a day to pick
// up the new secret; a team rotation is the emergency brake.
const (
	defaultAgentOverlap = 24 * time.Hour
	defaultTeamOverlap  = 0
)

func agentSubject(name string) string { return fmt.Sprintf("agent %q", name) }

func (a *API) listAgents(r *http.Request) (any, error) {
	q := r.URL.Query()
	f := store.AgentFilter{Team: q.Get("team"), Status: q.Get("status")}
	switch f.Status {
	case "", store.AgentActive, store.AgentDisabled, store.AgentRevoked:
	default:
		return nil, badRequest("status must be active, disabled or revoked, not %q", f.Status)
	}
	list, err := a.cfg.Store.ListAgents(r.Context(), f)
	if err != nil {
		return nil, classify(fmt.Errorf("listing agents: %w", err), "agents")
	}
	out := make([]Agent, 0, len(list))
	for _, ag := range list {
		v, err := a.cfg.Manager.Describe(r.Context(), ag)
		if err != nil {
			return nil, classify(fmt.Errorf("describing agent %s: %w", ag.Name, err), agentSubject(ag.Name))
		}
		out = append(out, agentFromView(v))
	}
	return out, nil
}

func (a *API) createAgent(r *http.Request) (any, error) {
	var req CreateAgentRequest
	if err := decodeBody(r, &req, false); err != nil {
		return nil, err
	}
	ag, secret, err := a.cfg.Manager.CreateAgent(r.Context(), identity.NewAgent{
		Name: req.Name, Team: req.Team, Owner: req.Owner, Attributes: req.Attributes, Source: "api",
	}, false)
	if err != nil {
		return nil, classify(err, agentSubject(req.Name))
	}
	view, err := a.describe(r, ag)
	if err != nil {
		return nil, err
	}
	return CreateAgentResponse{Agent: view, ClientID: ag.ClientID, ClientSecret: secret}, nil
}

func (a *API) getAgent(r *http.Request) (any, error) {
	name := r.PathValue("name")
	ag, err := a.cfg.Store.GetAgentByName(r.Context(), name)
	if err != nil {
		return nil, classify(err, agentSubject(name))
	}
	return a.describe(r, ag)
}

// describe returns the agent as the API shows it.
func (a *API) describe(r *http.Request, ag store.Agent) (Agent, error) {
	v, err := a.cfg.Manager.Describe(r.Context(), ag)
	if err != nil {
		return Agent{}, classify(fmt.Errorf("describing agent %s: %w", ag.Name, err), agentSubject(ag.Name))
	}
	return agentFromView(v), nil
}

func (a *API) rotateAgent(r *http.Request) (any, error) {
	name := r.PathValue("name")
	var req RotateRequest
	if err := decodeBody(r, &req, true); err != nil {
		return nil, err
	}
	overlap, err := parseDuration("overlap", req.Overlap, defaultAgentOverlap)
	if err != nil {
		return nil, err
	}
	secret, err := a.cfg.Manager.RotateSecret(r.Context(), name, overlap)
	if err != nil {
		return nil, classify(err, agentSubject(name))
	}
	return RotateResponse{ClientSecret: secret}, nil
}

// setStatus returns the handler that moves an agent to status.
func (a *API) setStatus(status string) func(*http.Request) (any, error) {
	return func(r *http.Request) (any, error) {
		name := r.PathValue("name")
		// These actions take no parameters; a body is refused rather
		// than ignored, so a client that thinks it sent options learns
		// otherwise.
		if err := decodeBody(r, &struct{}{}, true); err != nil {
			return nil, err
		}
		ag, err := a.cfg.Manager.SetStatus(r.Context(), name, status)
		if err != nil {
			return nil, classify(err, agentSubject(name))
		}
		return a.describe(r, ag)
	}
}

func (a *API) createAPIKey(r *http.Request) (any, error) {
	name := r.PathValue("name")
	var req APIKeyRequest
	if err := decodeBody(r, &req, true); err != nil {
		return nil, err
	}
	ttl, err := parseDuration("ttl", req.TTL, 0)
	if err != nil {
		return nil, err
	}
	if req.TTL != nil && ttl == 0 {
		return nil, badRequest("ttl must be positive (omit it for the team's maximum secret age)")
	}
	key, err := a.cfg.Manager.CreateAPIKey(r.Context(), name, ttl)
	if err != nil {
		return nil, classify(err, agentSubject(name))
	}
	return APIKeyResponse{APIKey: key}, nil
}

func (a *API) addKey(r *http.Request) (any, error) {
	name := r.PathValue("name")
	raw, err := readBody(r)
	if err != nil {
		return nil, err
	}
	raw = bytes.TrimSpace(raw)
	var obj map[string]json.RawMessage
	if len(raw) == 0 || json.Unmarshal(raw, &obj) != nil {
		return nil, badRequest("the body must be a public JWK: a JSON object such as {\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":…,\"y\":…}")
	}
	// Refuse private keys explicitly: the identity layer would too, but
	// the operator should learn that they just sent a private key.
	for _, member := range []string{"d", "p", "q", "dp", "dq", "qi", "k"} {
		if _, ok := obj[member]; ok {
			return nil, badRequest("the JWK has the private member %q: send only the public part: the private key never needs to leave the agent", member)
		}
	}
	prefix, err := a.cfg.Manager.AddPublicKey(r.Context(), name, raw)
	if err != nil {
		return nil, classify(err, agentSubject(name))
	}
	return AddKeyResponse{Prefix: prefix}, nil
}

func (a *API) rotateTeam(r *http.Request) (any, error) {
	team := r.PathValue("team")
	var req TeamRotateRequest
	if err := decodeBody(r, &req, true); err != nil {
		return nil, err
	}
	overlap, err := parseDuration("overlap", req.Overlap, defaultTeamOverlap)
	if err != nil {
		return nil, err
	}
	// A typo in an emergency must not look like success: a team without
	// agents is an error.
	members, err := a.cfg.Store.ListAgents(r.Context(), store.AgentFilter{Team: team})
	if err != nil {
		return nil, classify(fmt.Errorf("listing agents of team %s: %w", team, err), fmt.Sprintf("team %q", team))
	}
	if len(members) == 0 {
		return nil, notFound("team %q has no agents", team)
	}
	secrets, err := a.cfg.Manager.RotateTeam(r.Context(), team, overlap)
	if err != nil {
		ae := toAPIError(classify(err, fmt.Sprintf("team %q", team)))
		if len(secrets) > 0 {
			// These secrets exist and replaced others: this response is
			// the only place they can be read.
			ae.extra = map[string]any{"secrets": secrets}
		}
		return nil, ae
	}
	if secrets == nil {
		secrets = map[string]string{}
	}
	return TeamRotateResponse{Secrets: secrets}, nil
}

// parseDuration reads an optional duration field; absent gives def.
func parseDuration(field string, s *string, def time.Duration) (time.Duration, error) {
	if s == nil {
		return def, nil
	}
	d, err := time.ParseDuration(*s)
	if err != nil {
		return 0, badRequest("%s %q is not a duration (use e.g. \"24h\", \"90m\", \"0s\")", field, *s)
	}
	if d < 0 {
		return 0, badRequest("%s must not be negative", field)
	}
	return d, nil
}
