package storetest

import (
	"fmt"
	"testing"
	"time"

	"gatehouse/internal/store"
)

// newGrant returns a fully populated, unrevoked grant created at created
// that expires at expires (both from t0).
func newGrant(id, agent, bundle string, created, expires time.Duration) store.Grant {
	return store.Grant{
		ID:        id,
		AgentID:   agent,
		Bundle:    bundle,
		Reason:    "incident INC-42: read access to billing, ünïcode",
		CreatedBy: "alice@example.com",
		CreatedAt: at(created),
		ExpiresAt: at(expires),
	}
}

func grantIDs(gs []store.Grant) []string {
	var ids []string
	for _, g := range gs {
		ids = append(ids, g.ID)
	}
	return ids
}

func testGrants(t *testing.T, s store.Store) {
	list, err := s.ListGrants(ctx(t), store.GrantFilter{})
	must(t, err, "ListGrants on an empty store")
	if len(list) != 0 {
		t.Fatalf("ListGrants on an empty store = %v, want none", list)
	}

	full := newGrant("grt_1", "agt_1", "billing-read", 0, time.Hour)
	full.RevokedAt, full.RevokedBy, full.ExpiryNoted = ptr(time.Minute), "bob@example.com", true
	bare := store.Grant{ID: "grt_2", AgentID: "agt_2", Bundle: "b", CreatedAt: at(0), ExpiresAt: at(time.Hour)}
	for _, g := range []store.Grant{full, bare} {
		must(t, s.CreateGrant(ctx(t), g), "CreateGrant "+g.ID)
		got, err := s.GetGrant(ctx(t), g.ID)
		must(t, err, "GetGrant "+g.ID)
		same(t, got, g, "grant "+g.ID)
	}
	wantErr(t, s.CreateGrant(ctx(t), newGrant("grt_1", "agt_3", "other", 0, time.Hour)), store.ErrConflict, "grt_1", "CreateGrant with a used id")
	_, err = s.GetGrant(ctx(t), "grt_missing")
	wantErr(t, err, store.ErrNotFound, "grt_missing", "GetGrant unknown")
}

func testGrantList(t *testing.T, s store.Store) {
	// Created out of creation-time order: the list is by CreatedAt.
	revoked := newGrant("grt_revoked", "agt_1", "ops", 3*time.Minute, 2*time.Hour)
	revoked.RevokedAt, revoked.RevokedBy = ptr(4*time.Minute), "bob@example.com"
	noted := newGrant("grt_noted", "agt_2", "ops", 5*time.Minute, 10*time.Minute)
	noted.ExpiryNoted = true
	in := []store.Grant{
		newGrant("grt_long", "agt_1", "billing", 2*time.Minute, 24*time.Hour),
		newGrant("grt_short", "agt_1", "ops", 0, time.Hour),
		revoked,
		newGrant("grt_expired", "agt_2", "billing", time.Minute, 30*time.Minute),
		noted,
	}
	for _, g := range in {
		must(t, s.CreateGrant(ctx(t), g), "CreateGrant "+g.ID)
	}

	tests := []struct {
		name   string
		filter store.GrantFilter
		want   []string
	}{
		{"all", store.GrantFilter{}, []string{"grt_short", "grt_expired", "grt_long", "grt_revoked", "grt_noted"}},
		{"agent", store.GrantFilter{AgentID: "agt_1"}, []string{"grt_short", "grt_long", "grt_revoked"}},
		{"bundle", store.GrantFilter{Bundle: "ops"}, []string{"grt_short", "grt_revoked", "grt_noted"}},
		{"agent and bundle", store.GrantFilter{AgentID: "agt_2", Bundle: "billing"}, []string{"grt_expired"}},
		{"unknown agent", store.GrantFilter{AgentID: "agt_missing"}, nil},
		{"active at creation", store.GrantFilter{ActiveAt: at(0)}, []string{"grt_short", "grt_expired", "grt_long", "grt_noted"}},
		{"active after some expired", store.GrantFilter{ActiveAt: at(45 * time.Minute)}, []string{"grt_short", "grt_long"}},
		// Expired from ExpiresAt on, as in Grant.Active.
		{"active at an ExpiresAt", store.GrantFilter{ActiveAt: at(time.Hour)}, []string{"grt_long"}},
		{"active, agent", store.GrantFilter{AgentID: "agt_2", ActiveAt: at(0)}, []string{"grt_expired", "grt_noted"}},
		{"active, none", store.GrantFilter{ActiveAt: at(48 * time.Hour)}, nil},
		{"expired unnoted before any expiry", store.GrantFilter{ExpiredUnnoted: true, ActiveAt: at(0)}, nil},
		{"expired unnoted at an ExpiresAt", store.GrantFilter{ExpiredUnnoted: true, ActiveAt: at(30 * time.Minute)}, []string{"grt_expired"}},
		// Neither the noted nor the revoked grant is due for noting.
		{"expired unnoted, all expired", store.GrantFilter{ExpiredUnnoted: true, ActiveAt: at(48 * time.Hour)}, []string{"grt_short", "grt_expired", "grt_long"}},
		{"expired unnoted, bundle", store.GrantFilter{ExpiredUnnoted: true, ActiveAt: at(48 * time.Hour), Bundle: "billing"}, []string{"grt_expired", "grt_long"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.ListGrants(ctx(t), tt.filter)
			must(t, err, "ListGrants")
			if ids := grantIDs(got); fmt.Sprint(ids) != fmt.Sprint(tt.want) {
				t.Fatalf("ListGrants(%+v) = %v, want %v", tt.filter, ids, tt.want)
			}
			for _, g := range got {
				if !tt.filter.ActiveAt.IsZero() && !tt.filter.ExpiredUnnoted && !g.Active(tt.filter.ActiveAt) {
					t.Errorf("ListGrants(%+v) returned %s, which Grant.Active says is not active", tt.filter, g.ID)
				}
			}
		})
	}

	// Listing returns whole records.
	got, err := s.ListGrants(ctx(t), store.GrantFilter{AgentID: "agt_1", Bundle: "ops"})
	must(t, err, "ListGrants agt_1 ops")
	same(t, got, []store.Grant{in[1], revoked}, "ListGrants agt_1 ops")

	// ExpiredUnnoted is relative to ActiveAt, so it needs one.
	if _, err := s.ListGrants(ctx(t), store.GrantFilter{ExpiredUnnoted: true}); err == nil {
		t.Error("ListGrants with ExpiredUnnoted and no ActiveAt succeeded")
	}
}

func testGrantRevoke(t *testing.T, s store.Store) {
	g := newGrant("grt_1", "agt_1", "ops", 0, time.Hour)
	must(t, s.CreateGrant(ctx(t), g), "CreateGrant")
	must(t, s.RevokeGrant(ctx(t), g.ID, "bob@example.com", at(time.Minute)), "RevokeGrant")
	want := g
	want.RevokedAt, want.RevokedBy = ptr(time.Minute), "bob@example.com"
	got, err := s.GetGrant(ctx(t), g.ID)
	must(t, err, "GetGrant after RevokeGrant")
	same(t, got, want, "grant after RevokeGrant")

	// A second revocation fails and keeps the first's time and author.
	wantErr(t, s.RevokeGrant(ctx(t), g.ID, "carol@example.com", at(2*time.Minute)), store.ErrUsed, g.ID, "RevokeGrant twice")
	got, err = s.GetGrant(ctx(t), g.ID)
	must(t, err, "GetGrant after the second RevokeGrant")
	same(t, got, want, "grant after the second RevokeGrant")

	expiry := []struct {
		name string
		at   time.Duration
	}{
		{"at ExpiresAt", time.Hour},
		{"after ExpiresAt", 2 * time.Hour},
	}
	for _, e := range expiry {
		g := newGrant("grt_expiring "+e.name, "agt_1", "ops", 0, time.Hour)
		must(t, s.CreateGrant(ctx(t), g), "CreateGrant")
		wantErr(t, s.RevokeGrant(ctx(t), g.ID, "bob@example.com", at(e.at)), store.ErrUsed, g.ID, "RevokeGrant "+e.name)
		got, err := s.GetGrant(ctx(t), g.ID)
		must(t, err, "GetGrant")
		same(t, got, g, "grant after RevokeGrant "+e.name)
	}

	wantErr(t, s.RevokeGrant(ctx(t), "grt_missing", "bob@example.com", at(0)), store.ErrNotFound, "grt_missing", "RevokeGrant unknown")
}

func testGrantExpiry(t *testing.T, s store.Store) {
	revoked := newGrant("grt_revoked", "agt_1", "ops", 0, time.Hour)
	revoked.RevokedAt, revoked.RevokedBy = ptr(time.Minute), "bob@example.com"
	for _, g := range []store.Grant{newGrant("grt_1", "agt_1", "ops", 0, time.Hour), revoked} {
		must(t, s.CreateGrant(ctx(t), g), "CreateGrant "+g.ID)
	}

	// In order: each step sees the previous steps' effects.
	steps := []struct {
		name string
		id   string
		now  time.Duration
		want bool
	}{
		{"before ExpiresAt", "grt_1", time.Hour - time.Millisecond, false},
		{"at ExpiresAt", "grt_1", time.Hour, true},
		{"already noted", "grt_1", 2 * time.Hour, false},
		{"revoked", "grt_revoked", 2 * time.Hour, false},
		{"unknown", "grt_missing", 2 * time.Hour, false},
	}
	for _, st := range steps {
		got, err := s.MarkGrantExpired(ctx(t), st.id, at(st.now))
		must(t, err, "MarkGrantExpired "+st.name)
		if got != st.want {
			t.Fatalf("MarkGrantExpired %s = %v, want %v", st.name, got, st.want)
		}
	}

	g, err := s.GetGrant(ctx(t), "grt_1")
	must(t, err, "GetGrant")
	want := newGrant("grt_1", "agt_1", "ops", 0, time.Hour)
	want.ExpiryNoted = true
	same(t, g, want, "grant after MarkGrantExpired")
	g, err = s.GetGrant(ctx(t), "grt_revoked")
	must(t, err, "GetGrant revoked")
	same(t, g, revoked, "revoked grant after MarkGrantExpired")

	list, err := s.ListGrants(ctx(t), store.GrantFilter{ExpiredUnnoted: true, ActiveAt: at(2 * time.Hour)})
	must(t, err, "ListGrants ExpiredUnnoted")
	if len(list) != 0 {
		t.Fatalf("ListGrants ExpiredUnnoted after noting = %v, want none", grantIDs(list))
	}
}

// testGrantExpiryRace has every replica's sweeper note one expiry at once:
// exactly one may record it.
func testGrantExpiryRace(t *testing.T, s store.Store) {
	g := newGrant("grt_contended", "agt_1", "ops", 0, time.Hour)
	must(t, s.CreateGrant(ctx(t), g), "CreateGrant")
	results := make(chan bool, racers)
	errs := race(racers, func() error {
		noted, err := s.MarkGrantExpired(ctx(t), g.ID, at(2*time.Hour))
		results <- noted
		return err
	})
	close(results)
	for _, err := range errs {
		must(t, err, "concurrent MarkGrantExpired")
	}
	wins := 0
	for noted := range results {
		if noted {
			wins++
		}
	}
	if wins != 1 {
		t.Fatalf("%d of %d concurrent MarkGrantExpired calls noted the expiry, want exactly 1", wins, racers)
	}
}
