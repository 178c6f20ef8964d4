package admin

import (
	"errors"
	"fmt"
	"net/http"

	"gatehouse/internal/store"
)

// errNoVault answers the vault routes of a gateway without a vault.
func errNoVault() error {
	return notFound("no vault is configured on this gateway (set the vault's key-encryption key in the configuration)")
}

func secretSubject(name, agent string) string {
	if agent == "" {
		return fmt.Sprintf("secret %q (shared)", name)
	}
	return fmt.Sprintf("secret %q for agent %q", name, agent)
}

func (a *API) listSecrets(r *http.Request) (any, error) {
	if a.cfg.Vault == nil {
		return nil, errNoVault()
	}
	entries, err := a.cfg.Vault.List(r.Context())
	if err != nil {
		return nil, classify(err, "secrets")
	}
	// The vault keys entries by agent id; operators know agents by name.
	names := map[string]string{}
	out := make([]VaultEntry, 0, len(entries))
	for _, e := range entries {
		ve := VaultEntry{Name: e.Name, AgentID: e.Agent, Version: e.Version, KEKID: e.KEKID, CreatedAt: e.CreatedAt, UpdatedAt: e.UpdatedAt}
		if e.Agent != "" {
			name, ok := names[e.Agent]
			if !ok {
				ag, err := a.cfg.Store.GetAgent(r.Context(), e.Agent)
				switch {
				case err == nil:
					name = ag.Name
				case errors.Is(err, store.ErrNotFound):
					name = "" // an entry for an agent that is gone: the id says which
				default:
					return nil, classify(fmt.Errorf("looking up agent %s: %w", e.Agent, err), "agent")
				}
				names[e.Agent] = name
			}
			ve.Agent = name
		}
		out = append(out, ve)
	}
	return out, nil
}

// secretKey reads the entry a request names: the secret's name from the
// path and the agent's name from ?agent=, resolved to its id.
func (a *API) secretKey(r *http.Request) (name, agentName, agentID string, err error) {
	name = r.PathValue("name")
	agentName = r.URL.Query().Get("agent")
	if agentName == "" {
		return name, "", "", nil
	}
	ag, err := a.cfg.Store.GetAgentByName(r.Context(), agentName)
	if err != nil {
		return "", "", "", classify(err, agentSubject(agentName))
	}
	return name, agentName, ag.ID, nil
}

func (a *API) putSecret(r *http.Request) (any, error) {
	if a.cfg.Vault == nil {
		return nil, errNoVault()
	}
	name, agentName, agentID, err := a.secretKey(r)
	if err != nil {
		return nil, err
	}
	var req VaultPutRequest
	if err := decodeBody(r, &req, false); err != nil {
		return nil, err
	}
	value := []byte(req.Value)
	defer clear(value)
	if err := a.cfg.Vault.Put(r.Context(), name, agentID, value); err != nil {
		return nil, classify(err, secretSubject(name, agentName))
	}
	entries, err := a.cfg.Vault.List(r.Context())
	if err != nil {
		return nil, classify(err, "secrets")
	}
	for _, e := range entries {
		if e.Name == name && e.Agent == agentID {
			return VaultEntry{Name: e.Name, Agent: agentName, AgentID: e.Agent, Version: e.Version, KEKID: e.KEKID,
				CreatedAt: e.CreatedAt, UpdatedAt: e.UpdatedAt}, nil
		}
	}
	// Deleted between the put and the listing by someone else.
	return nil, notFound("%s was stored but is gone now", secretSubject(name, agentName))
}

func (a *API) deleteSecret(r *http.Request) (any, error) {
	if a.cfg.Vault == nil {
		return nil, errNoVault()
	}
	name, agentName, agentID, err := a.secretKey(r)
	if err != nil {
		return nil, err
	}
	if err := a.cfg.Vault.Delete(r.Context(), name, agentID); err != nil {
		return nil, classify(err, secretSubject(name, agentName))
	}
	return nil, nil
}

func (a *API) rotateVault(r *http.Request) (any, error) {
	if a.cfg.Vault == nil {
		return nil, errNoVault()
	}
	if err := decodeBody(r, &struct{}{}, true); err != nil {
		return nil, err
	}
	n, err := a.cfg.Vault.Rotate(r.Context())
	if err != nil {
		return nil, classify(fmt.Errorf("re-wrapping vault secrets (%d done): %w", n, err), "secrets")
	}
	return VaultRotateResponse{Rewrapped: n}, nil
}
