package storetest

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"gatehouse/internal/store"
)

func testTeams(t *testing.T, s store.Store) {
	teams, err := s.ListTeams(ctx(t))
	must(t, err, "ListTeams on an empty store")
	if len(teams) != 0 {
		t.Fatalf("ListTeams on an empty store = %v, want none", teams)
	}

	// Inserted out of order: the list is by name.
	in := []store.Team{
		{Name: "support", MaxSecretAge: 30 * 24 * time.Hour, CreatedAt: at(0)},
		{Name: "billing", MaxSecretAge: 0, CreatedAt: at(time.Minute)},
		{Name: "research", MaxSecretAge: 1500 * time.Millisecond, CreatedAt: at(time.Hour)},
	}
	for _, tm := range in {
		must(t, s.UpsertTeam(ctx(t), tm), "UpsertTeam "+tm.Name)
	}
	for _, tm := range in {
		got, err := s.GetTeam(ctx(t), tm.Name)
		must(t, err, "GetTeam "+tm.Name)
		same(t, got, tm, "GetTeam "+tm.Name)
	}
	teams, err = s.ListTeams(ctx(t))
	must(t, err, "ListTeams")
	same(t, teams, []store.Team{in[1], in[2], in[0]}, "ListTeams")

	// Upsert replaces the policy and keeps the creation time.
	must(t, s.UpsertTeam(ctx(t), store.Team{Name: "support", MaxSecretAge: 7 * 24 * time.Hour, CreatedAt: at(48 * time.Hour)}), "UpsertTeam again")
	got, err := s.GetTeam(ctx(t), "support")
	must(t, err, "GetTeam after upsert")
	same(t, got, store.Team{Name: "support", MaxSecretAge: 7 * 24 * time.Hour, CreatedAt: at(0)}, "team after upsert")

	_, err = s.GetTeam(ctx(t), "nobody")
	wantErr(t, err, store.ErrNotFound, "nobody", "GetTeam unknown")
}

// newAgent returns a fully populated agent.
func newAgent(id, name, team, status string) store.Agent {
	return store.Agent{
		ID:       id,
		Name:     name,
		ClientID: "cli_" + id,
		Team:     team,
		Owner:    "alice@example.com",
		Status:   status,
		// Spacing and key order must survive: attributes are stored as given.
		Attributes: json.RawMessage(`{"region": "eu", "queues":["a","b"], "limit":3}`),
		Source:     "api",
		CreatedAt:  at(0),
		UpdatedAt:  at(time.Second),
	}
}

func testAgents(t *testing.T, s store.Store) {
	full := newAgent("agt_1", "triage-bot", "support", store.AgentActive)
	full.RevokedAt = ptr(time.Hour)
	bare := store.Agent{ID: "agt_2", Name: "bare", ClientID: "cli_bare", Status: store.AgentDisabled, Source: "config", CreatedAt: at(0), UpdatedAt: at(0)}
	for _, a := range []store.Agent{full, bare} {
		must(t, s.CreateAgent(ctx(t), a), "CreateAgent "+a.Name)
	}

	for _, a := range []store.Agent{full, bare} {
		getters := []struct {
			name string
			get  func() (store.Agent, error)
		}{
			{"GetAgent", func() (store.Agent, error) { return s.GetAgent(ctx(t), a.ID) }},
			{"GetAgentByName", func() (store.Agent, error) { return s.GetAgentByName(ctx(t), a.Name) }},
			{"GetAgentByClientID", func() (store.Agent, error) { return s.GetAgentByClientID(ctx(t), a.ClientID) }},
		}
		for _, g := range getters {
			got, err := g.get()
			must(t, err, g.name+" "+a.Name)
			same(t, got, a, g.name+" "+a.Name)
		}
	}

	conflicts := []struct {
		name string
		a    store.Agent
	}{
		{"same id", newAgent("agt_1", "other-name", "", store.AgentActive)},
		{"same name", func() store.Agent { a := newAgent("agt_3", "triage-bot", "", store.AgentActive); return a }()},
		{"same client id", func() store.Agent {
			a := newAgent("agt_4", "fresh", "", store.AgentActive)
			a.ClientID = "cli_agt_1"
			return a
		}()},
	}
	for _, c := range conflicts {
		wantErr(t, s.CreateAgent(ctx(t), c.a), store.ErrConflict, "", "CreateAgent with "+c.name)
	}

	// "" is no client id at all, so any number of agents may lack one.
	for i := range 2 {
		a := newAgent(fmt.Sprintf("agt_noclient_%d", i), fmt.Sprintf("no-client-%d", i), "", store.AgentActive)
		a.ClientID = ""
		must(t, s.CreateAgent(ctx(t), a), "CreateAgent without a client id")
		got, err := s.GetAgent(ctx(t), a.ID)
		must(t, err, "GetAgent without a client id")
		same(t, got, a, "agent without a client id")
	}

	notFound := []struct {
		name, key string
		call      func() error
	}{
		{"GetAgent", "agt_missing", func() error { _, err := s.GetAgent(ctx(t), "agt_missing"); return err }},
		{"GetAgentByName", "missing-bot", func() error { _, err := s.GetAgentByName(ctx(t), "missing-bot"); return err }},
		{"GetAgentByClientID", "cli_missing", func() error { _, err := s.GetAgentByClientID(ctx(t), "cli_missing"); return err }},
		{"GetAgentByClientID empty", "", func() error { _, err := s.GetAgentByClientID(ctx(t), ""); return err }},
		{"UpdateAgent", "agt_missing", func() error { return s.UpdateAgent(ctx(t), newAgent("agt_missing", "x", "", store.AgentActive)) }},
	}
	for _, nf := range notFound {
		wantErr(t, nf.call(), store.ErrNotFound, nf.key, nf.name)
	}
}

func testAgentList(t *testing.T, s store.Store) {
	agents, err := s.ListAgents(ctx(t), store.AgentFilter{})
	must(t, err, "ListAgents on an empty store")
	if len(agents) != 0 {
		t.Fatalf("ListAgents on an empty store = %v, want none", agents)
	}
	// Created neither in name nor in id order.
	for _, a := range []store.Agent{
		newAgent("agt_5", "echo", "support", store.AgentActive),
		newAgent("agt_1", "delta", "billing", store.AgentDisabled),
		newAgent("agt_4", "alpha", "support", store.AgentRevoked),
		newAgent("agt_2", "charlie", "support", store.AgentActive),
		newAgent("agt_3", "bravo", "", store.AgentActive),
	} {
		must(t, s.CreateAgent(ctx(t), a), "CreateAgent "+a.Name)
	}
	tests := []struct {
		name   string
		filter store.AgentFilter
		want   []string
	}{
		{"all", store.AgentFilter{}, []string{"alpha", "bravo", "charlie", "delta", "echo"}},
		{"team", store.AgentFilter{Team: "support"}, []string{"alpha", "charlie", "echo"}},
		{"status", store.AgentFilter{Status: store.AgentActive}, []string{"bravo", "charlie", "echo"}},
		{"team and status", store.AgentFilter{Team: "support", Status: store.AgentActive}, []string{"charlie", "echo"}},
		{"unknown team", store.AgentFilter{Team: "nobody"}, nil},
		{"no match", store.AgentFilter{Team: "billing", Status: store.AgentActive}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.ListAgents(ctx(t), tt.filter)
			must(t, err, "ListAgents")
			var names []string
			for _, a := range got {
				names = append(names, a.Name)
			}
			if fmt.Sprint(names) != fmt.Sprint(tt.want) {
				t.Fatalf("ListAgents(%+v) = %v, want %v", tt.filter, names, tt.want)
			}
		})
	}
	// Listing returns whole records.
	got, err := s.ListAgents(ctx(t), store.AgentFilter{Team: "billing"})
	must(t, err, "ListAgents billing")
	same(t, got, []store.Agent{newAgent("agt_1", "delta", "billing", store.AgentDisabled)}, "ListAgents billing")
}

func testAgentUpdate(t *testing.T, s store.Store) {
	orig := newAgent("agt_1", "triage-bot", "support", store.AgentActive)
	must(t, s.CreateAgent(ctx(t), orig), "CreateAgent")

	steps := []struct {
		name   string
		update func(a *store.Agent)
	}{
		{"revoke", func(a *store.Agent) {
			a.Team, a.Owner, a.Status = "billing", "bob@example.com", store.AgentRevoked
			a.Attributes = json.RawMessage(`{"region":"us"}`)
			a.RevokedAt, a.UpdatedAt = ptr(2*time.Hour), at(2*time.Hour)
		}},
		{"clear", func(a *store.Agent) {
			a.Team, a.Status, a.Attributes, a.RevokedAt, a.UpdatedAt = "", store.AgentDisabled, nil, nil, at(3*time.Hour)
		}},
	}
	want := orig
	for _, st := range steps {
		st.update(&want)
		sent := want
		// The immutable fields are not UpdateAgent's to change.
		sent.Name, sent.ClientID, sent.Source, sent.CreatedAt = "renamed", "cli_other", "config", at(99*time.Hour)
		must(t, s.UpdateAgent(ctx(t), sent), "UpdateAgent "+st.name)
		got, err := s.GetAgent(ctx(t), orig.ID)
		must(t, err, "GetAgent after "+st.name)
		same(t, got, want, "agent after "+st.name)
	}
}

func testCredentials(t *testing.T, s store.Store) {
	for _, a := range []store.Agent{
		newAgent("agt_1", "one", "", store.AgentActive),
		newAgent("agt_2", "two", "", store.AgentActive),
	} {
		must(t, s.CreateAgent(ctx(t), a), "CreateAgent")
	}
	secret := store.Credential{ID: "crd_b", AgentID: "agt_1", Kind: store.CredSecret, Prefix: "ghs_b",
		Hash: []byte{0, 1, 2, 0xfe, 0xff}, CreatedAt: at(time.Minute), ExpiresAt: ptr(90 * 24 * time.Hour)}
	jwk := store.Credential{ID: "crd_a", AgentID: "agt_1", Kind: store.CredJWK, Prefix: "jwk_a",
		PublicJWK: json.RawMessage(`{"kty":"OKP", "crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}`), CreatedAt: at(2 * time.Minute)}
	key := store.Credential{ID: "crd_c", AgentID: "agt_1", Kind: store.CredAPIKey, Prefix: "ghk_c",
		Hash: []byte("0123456789abcdef0123456789abcdef"), CreatedAt: at(0), RevokedAt: ptr(time.Hour)}
	other := store.Credential{ID: "crd_d", AgentID: "agt_2", Kind: store.CredAPIKey, Prefix: "ghk_d", Hash: []byte{9}, CreatedAt: at(0)}
	for _, c := range []store.Credential{secret, jwk, key, other} {
		must(t, s.AddCredential(ctx(t), c), "AddCredential "+c.Prefix)
	}
	for _, c := range []store.Credential{secret, jwk, key, other} {
		got, err := s.GetCredentialByPrefix(ctx(t), c.Prefix)
		must(t, err, "GetCredentialByPrefix "+c.Prefix)
		same(t, got, c, "credential "+c.Prefix)
	}

	list, err := s.ListCredentials(ctx(t), "agt_1")
	must(t, err, "ListCredentials")
	same(t, list, []store.Credential{key, secret, jwk}, "ListCredentials (by creation time)")
	list, err = s.ListCredentials(ctx(t), "agt_unknown")
	must(t, err, "ListCredentials of an unknown agent")
	if len(list) != 0 {
		t.Fatalf("ListCredentials of an unknown agent = %v, want none", list)
	}

	bad := []struct {
		name   string
		c      store.Credential
		target error
		key    string
	}{
		{"unknown agent", store.Credential{ID: "crd_x", AgentID: "agt_missing", Kind: store.CredSecret, Prefix: "ghs_x", CreatedAt: at(0)}, store.ErrNotFound, "agt_missing"},
		{"same prefix", store.Credential{ID: "crd_y", AgentID: "agt_2", Kind: store.CredSecret, Prefix: "ghs_b", CreatedAt: at(0)}, store.ErrConflict, ""},
		{"same id", store.Credential{ID: "crd_a", AgentID: "agt_2", Kind: store.CredSecret, Prefix: "ghs_z", CreatedAt: at(0)}, store.ErrConflict, ""},
	}
	for _, b := range bad {
		wantErr(t, s.AddCredential(ctx(t), b.c), b.target, b.key, "AddCredential with "+b.name)
	}

	// UpdateCredential replaces ExpiresAt and RevokedAt only.
	updates := []struct {
		name              string
		expires, revokeds *time.Time
	}{
		{"set both", ptr(24 * time.Hour), ptr(3 * time.Hour)},
		{"clear both", nil, nil},
	}
	for _, u := range updates {
		sent := secret
		sent.ExpiresAt, sent.RevokedAt = u.expires, u.revokeds
		sent.Kind, sent.Prefix, sent.Hash, sent.CreatedAt = store.CredAPIKey, "changed", []byte("changed"), at(9*time.Hour)
		must(t, s.UpdateCredential(ctx(t), sent), "UpdateCredential "+u.name)
		want := secret
		want.ExpiresAt, want.RevokedAt = u.expires, u.revokeds
		got, err := s.GetCredentialByPrefix(ctx(t), secret.Prefix)
		must(t, err, "GetCredentialByPrefix after "+u.name)
		same(t, got, want, "credential after "+u.name)
	}

	_, err = s.GetCredentialByPrefix(ctx(t), "ghs_missing")
	wantErr(t, err, store.ErrNotFound, "ghs_missing", "GetCredentialByPrefix unknown")
	wantErr(t, s.UpdateCredential(ctx(t), store.Credential{ID: "crd_missing"}), store.ErrNotFound, "crd_missing", "UpdateCredential unknown")
}

func testUsers(t *testing.T, s store.Store) {
	users, err := s.ListUsers(ctx(t))
	must(t, err, "ListUsers on an empty store")
	if len(users) != 0 {
		t.Fatalf("ListUsers on an empty store = %v, want none", users)
	}
	const phc = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"
	in := []store.User{
		{Username: "carol@example.com", PasswordHash: phc, Groups: []string{"admins", "support", "ünïcode"}, CreatedAt: at(0), UpdatedAt: at(time.Second)},
		{Username: "alice@example.com", PasswordHash: phc, Groups: nil, Disabled: true, CreatedAt: at(time.Minute), UpdatedAt: at(time.Minute)},
		{Username: "bob@example.com", PasswordHash: "", Groups: []string{}, CreatedAt: at(time.Hour), UpdatedAt: at(time.Hour)},
	}
	for _, u := range in {
		must(t, s.CreateUser(ctx(t), u), "CreateUser "+u.Username)
	}
	for _, u := range in {
		got, err := s.GetUser(ctx(t), u.Username)
		must(t, err, "GetUser "+u.Username)
		same(t, got, u, "user "+u.Username)
	}
	users, err = s.ListUsers(ctx(t))
	must(t, err, "ListUsers")
	same(t, users, []store.User{in[1], in[2], in[0]}, "ListUsers (by username)")

	wantErr(t, s.CreateUser(ctx(t), store.User{Username: "alice@example.com", CreatedAt: at(0), UpdatedAt: at(0)}), store.ErrConflict, "alice@example.com", "CreateUser twice")
	_, err = s.GetUser(ctx(t), "nobody@example.com")
	wantErr(t, err, store.ErrNotFound, "nobody@example.com", "GetUser unknown")
	wantErr(t, s.UpdateUser(ctx(t), store.User{Username: "nobody@example.com"}), store.ErrNotFound, "nobody@example.com", "UpdateUser unknown")

	// UpdateUser replaces PasswordHash, Groups, Disabled and UpdatedAt.
	updates := []store.User{
		{Username: "carol@example.com", PasswordHash: "new", Groups: nil, Disabled: true, UpdatedAt: at(5 * time.Hour)},
		{Username: "carol@example.com", PasswordHash: "newer", Groups: []string{}, Disabled: false, UpdatedAt: at(6 * time.Hour)},
		{Username: "carol@example.com", PasswordHash: "newest", Groups: []string{"ops"}, Disabled: false, UpdatedAt: at(7 * time.Hour)},
	}
	for i, u := range updates {
		sent := u
		sent.CreatedAt = at(99 * time.Hour)
		must(t, s.UpdateUser(ctx(t), sent), fmt.Sprintf("UpdateUser %d", i))
		want := u
		want.CreatedAt = in[0].CreatedAt
		got, err := s.GetUser(ctx(t), u.Username)
		must(t, err, "GetUser after update")
		same(t, got, want, fmt.Sprintf("user after update %d", i))
	}
}

func testClients(t *testing.T, s store.Store) {
	in := []store.OAuthClient{
		{
			ClientID:     "dcr_1",
			Name:         "Claude Code",
			RedirectURIs: []string{"http://127.0.0.1:33418/callback", "http://localhost/cb?x=1&y=2"},
			Kind:         "dynamic",
			Metadata:     json.RawMessage(`{"client_name": "Claude Code",  "token_endpoint_auth_method":"client_secret_basic"}`),
			SecretHash:   []byte{0xde, 0xad, 0xbe, 0xef},
			CreatedAt:    at(0),
		},
		{
			ClientID:     "https://client.example.com/metadata.json",
			Name:         "",
			RedirectURIs: []string{},
			Kind:         "metadata_document",
			Metadata:     nil,
			CreatedAt:    at(time.Hour),
		},
		{ClientID: "dcr_2", Kind: "dynamic", RedirectURIs: nil, CreatedAt: at(0)},
	}
	for _, c := range in {
		must(t, s.CreateClient(ctx(t), c), "CreateClient "+c.ClientID)
	}
	for _, c := range in {
		got, err := s.GetClient(ctx(t), c.ClientID)
		must(t, err, "GetClient "+c.ClientID)
		same(t, got, c, "client "+c.ClientID)
	}
	wantErr(t, s.CreateClient(ctx(t), store.OAuthClient{ClientID: "dcr_1", Kind: "dynamic", CreatedAt: at(0)}), store.ErrConflict, "dcr_1", "CreateClient twice")
	_, err := s.GetClient(ctx(t), "dcr_missing")
	wantErr(t, err, store.ErrNotFound, "dcr_missing", "GetClient unknown")
}
