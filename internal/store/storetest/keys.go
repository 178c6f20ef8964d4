package storetest

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"gatehouse/internal/store"
)

func newKey(kid string, activate time.Duration) store.SigningKey {
	return store.SigningKey{
		KID:        kid,
		Alg:        "EdDSA",
		Private:    []byte("sealed:" + kid + "\x00\xff"),
		PublicJWK:  json.RawMessage(`{"kty":"OKP","crv":"Ed25519", "kid":"` + kid + `","x":"abc"}`),
		CreatedAt:  at(0),
		ActivateAt: at(activate),
		RetiresAt:  at(activate + 24*time.Hour),
		ExpiresAt:  at(activate + 48*time.Hour),
	}
}

func testSigningKeys(t *testing.T, s store.Store) {
	keys, err := s.ListSigningKeys(ctx(t))
	must(t, err, "ListSigningKeys on an empty store")
	if len(keys) != 0 {
		t.Fatalf("ListSigningKeys on an empty store = %v, want none", keys)
	}
	// The kids sort the other way round from the activation times.
	next := newKey("k1-next", 24*time.Hour)
	current := newKey("k2-current", 0)
	old := newKey("k3-old", -24*time.Hour)
	old.Alg = "ES256"
	for _, k := range []store.SigningKey{next, current, old} {
		must(t, s.AddSigningKey(ctx(t), k), "AddSigningKey "+k.KID)
	}
	keys, err = s.ListSigningKeys(ctx(t))
	must(t, err, "ListSigningKeys")
	same(t, keys, []store.SigningKey{old, current, next}, "ListSigningKeys (by ActivateAt)")

	wantErr(t, s.AddSigningKey(ctx(t), newKey("k2-current", time.Hour)), store.ErrConflict, "k2-current", "AddSigningKey twice")

	// UpdateSigningKey replaces Private, RetiresAt and ExpiresAt only.
	sent := current
	sent.RetiresAt, sent.ExpiresAt = at(time.Hour), at(2*time.Hour)
	sent.Alg, sent.Private, sent.PublicJWK, sent.CreatedAt, sent.ActivateAt = "ES256", []byte("other"), json.RawMessage(`{}`), at(time.Hour), at(72*time.Hour)
	must(t, s.UpdateSigningKey(ctx(t), sent), "UpdateSigningKey")
	want := current
	want.Private, want.RetiresAt, want.ExpiresAt = []byte("other"), at(time.Hour), at(2*time.Hour)
	keys, err = s.ListSigningKeys(ctx(t))
	must(t, err, "ListSigningKeys after update")
	same(t, keys, []store.SigningKey{old, want, next}, "keys after UpdateSigningKey")

	must(t, s.DeleteSigningKey(ctx(t), old.KID), "DeleteSigningKey")
	keys, err = s.ListSigningKeys(ctx(t))
	must(t, err, "ListSigningKeys after delete")
	same(t, keys, []store.SigningKey{want, next}, "keys after DeleteSigningKey")

	wantErr(t, s.DeleteSigningKey(ctx(t), old.KID), store.ErrNotFound, old.KID, "DeleteSigningKey twice")
	wantErr(t, s.UpdateSigningKey(ctx(t), newKey("k-missing", 0)), store.ErrNotFound, "k-missing", "UpdateSigningKey unknown")
}

func newSecret(name, agent string, version int) store.VaultSecret {
	return store.VaultSecret{
		Name:       name,
		Agent:      agent,
		Ciphertext: []byte(fmt.Sprintf("ct:%s/%s/v%d\x00", name, agent, version)),
		WrappedDEK: []byte(fmt.Sprintf("dek:%s/%s/v%d", name, agent, version)),
		KEKID:      "kek-1",
		Version:    version,
		CreatedAt:  at(0),
		UpdatedAt:  at(time.Duration(version) * time.Minute),
	}
}

func testSecrets(t *testing.T, s store.Store) {
	list, err := s.ListSecrets(ctx(t))
	must(t, err, "ListSecrets on an empty store")
	if len(list) != 0 {
		t.Fatalf("ListSecrets on an empty store = %v, want none", list)
	}
	// One name, three entries: shared and two agents'; put out of order.
	entries := []store.VaultSecret{
		newSecret("github", "agt_b", 1),
		newSecret("search", "", 1),
		newSecret("github", "", 1),
		newSecret("github", "agt_a", 1),
	}
	for _, v := range entries {
		must(t, s.PutSecret(ctx(t), v), "PutSecret "+v.Name+"/"+v.Agent)
	}
	for _, v := range entries {
		got, err := s.GetSecret(ctx(t), v.Name, v.Agent)
		must(t, err, "GetSecret "+v.Name+"/"+v.Agent)
		same(t, got, v, "secret "+v.Name+"/"+v.Agent)
	}
	list, err = s.ListSecrets(ctx(t))
	must(t, err, "ListSecrets")
	same(t, list, []store.VaultSecret{entries[2], entries[3], entries[0], entries[1]}, "ListSecrets (by name, agent)")

	// Put replaces the entry in place and keeps its creation time.
	v2 := newSecret("github", "agt_a", 2)
	v2.KEKID, v2.CreatedAt = "kek-2", at(time.Hour)
	must(t, s.PutSecret(ctx(t), v2), "PutSecret (rotation)")
	want := v2
	want.CreatedAt = at(0)
	got, err := s.GetSecret(ctx(t), "github", "agt_a")
	must(t, err, "GetSecret after rotation")
	same(t, got, want, "secret after rotation")
	shared, err := s.GetSecret(ctx(t), "github", "")
	must(t, err, "GetSecret shared after rotation")
	same(t, shared, entries[2], "shared secret after another entry's rotation")

	// No fallback from an agent's entry to the shared one.
	_, err = s.GetSecret(ctx(t), "search", "agt_a")
	wantErr(t, err, store.ErrNotFound, "search", "GetSecret of an agent without its own entry")
	_, err = s.GetSecret(ctx(t), "missing", "")
	wantErr(t, err, store.ErrNotFound, "missing", "GetSecret unknown")

	must(t, s.DeleteSecret(ctx(t), "github", "agt_b"), "DeleteSecret")
	wantErr(t, s.DeleteSecret(ctx(t), "github", "agt_b"), store.ErrNotFound, "github", "DeleteSecret twice")
	list, err = s.ListSecrets(ctx(t))
	must(t, err, "ListSecrets after delete")
	same(t, list, []store.VaultSecret{entries[2], want, entries[1]}, "ListSecrets after delete")
}

// testTimes checks what every record relies on: any location in, UTC out;
// below-millisecond digits may be dropped but nothing coarser; the zero
// time survives.
func testTimes(t *testing.T, s store.Store) {
	paris := time.FixedZone("UTC+2", 2*60*60)
	fine := time.Date(2025, 6, 1, 12, 0, 0, 123_456_789, paris)
	must(t, s.UpsertTeam(ctx(t), store.Team{Name: "fine", CreatedAt: fine}), "UpsertTeam")
	got, err := s.GetTeam(ctx(t), "fine")
	must(t, err, "GetTeam")
	if got.CreatedAt.Location() != time.UTC {
		t.Errorf("CreatedAt is in %v, want UTC", got.CreatedAt.Location())
	}
	if d := fine.Sub(got.CreatedAt); d < 0 || d >= time.Millisecond {
		t.Errorf("CreatedAt = %v, want %v to the millisecond", got.CreatedAt, fine)
	}

	must(t, s.UpsertTeam(ctx(t), store.Team{Name: "zero"}), "UpsertTeam with zero time")
	got, err = s.GetTeam(ctx(t), "zero")
	must(t, err, "GetTeam zero")
	if !got.CreatedAt.IsZero() {
		t.Errorf("zero CreatedAt came back as %v", got.CreatedAt)
	}

	// Before 1970 and far ahead.
	for _, tm := range []time.Time{time.Date(1969, 7, 20, 20, 17, 40, 0, time.UTC), time.Date(2199, 12, 31, 23, 59, 59, 999_000_000, time.UTC)} {
		name := tm.Format("2006")
		must(t, s.UpsertTeam(ctx(t), store.Team{Name: name, CreatedAt: tm}), "UpsertTeam "+name)
		got, err := s.GetTeam(ctx(t), name)
		must(t, err, "GetTeam "+name)
		same(t, got.CreatedAt, tm, "CreatedAt "+name)
	}
}

// testConcurrentWrites checks that writers do not trip over each other
// (SQLite: no SQLITE_BUSY).
func testConcurrentWrites(t *testing.T, s store.Store) {
	const n = 20
	i := make(chan int, n)
	for k := range n {
		i <- k
	}
	errs := race(n, func() error {
		k := <-i
		a := newAgent(fmt.Sprintf("agt_%02d", k), fmt.Sprintf("bot-%02d", k), "load", store.AgentActive)
		if err := s.CreateAgent(ctx(t), a); err != nil {
			return err
		}
		a.Status = store.AgentDisabled
		if err := s.UpdateAgent(ctx(t), a); err != nil {
			return err
		}
		_, err := s.GetAgent(ctx(t), a.ID)
		return err
	})
	for _, err := range errs {
		must(t, err, "concurrent create, update and read")
	}
	agents, err := s.ListAgents(ctx(t), store.AgentFilter{Team: "load", Status: store.AgentDisabled})
	must(t, err, "ListAgents")
	if len(agents) != n {
		t.Fatalf("ListAgents = %d agents, want %d", len(agents), n)
	}
}
