package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"gatehouse/internal/store"
)

// newApproval returns a fully populated, undecided approval of the call key
// created at created that expires at expires (both from t0).
func newApproval(id, key, status string, created, expires time.Duration) store.Approval {
	return store.Approval{
		ID:            id,
		Key:           key,
		Status:        status,
		Principal:     "agent:agt_1",
		PrincipalName: "triage-bot",
		Server:        "github",
		Tool:          "github__delete_repo",
		ArgsHash:      "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
		// Spacing and key order must survive: the approver sees them.
		Args:          json.RawMessage(`{"repo": "acme/site",  "token":"***", "force":true}`),
		PolicyVersion: "v7",
		Rule:          "destructive-needs-approval",
		Reason:        "deletes a repository, ünïcode",
		CreatedAt:     at(created),
		ExpiresAt:     at(expires),
	}
}

// decided returns a with the decision fields set as DecideApproval sets
// them.
func decided(a store.Approval, status, by, note string, when time.Duration) store.Approval {
	a.Status, a.DecidedBy, a.DecidedAt, a.Note = status, by, ptr(when), note
	return a
}

func approvalIDs(as []store.Approval) []string {
	var ids []string
	for _, a := range as {
		ids = append(ids, a.ID)
	}
	return ids
}

// unchanged fails the test unless the stored approval is still want.
func unchanged(t *testing.T, s store.Store, want store.Approval, what string) {
	t.Helper()
	got, err := s.GetApproval(ctx(t), want.ID)
	must(t, err, "GetApproval "+want.ID)
	same(t, got, want, what)
}

func testApprovals(t *testing.T, s store.Store) {
	full := decided(newApproval("apr_1", "key-1", store.ApprovalUsed, 0, time.Hour), store.ApprovalApproved, "bob@example.com", "fine once", time.Minute)
	full.Status, full.UsedAt = store.ApprovalUsed, ptr(2*time.Minute)
	bare := store.Approval{ID: "apr_2", Key: "key-2", Status: store.ApprovalPending, CreatedAt: at(0), ExpiresAt: at(time.Hour)}
	for _, a := range []store.Approval{full, bare} {
		must(t, s.CreateApproval(ctx(t), a), "CreateApproval "+a.ID)
		unchanged(t, s, a, "approval "+a.ID)
	}
	wantErr(t, s.CreateApproval(ctx(t), newApproval("apr_1", "key-3", store.ApprovalPending, 0, time.Hour)), store.ErrConflict, "apr_1", "CreateApproval with a used id")
	unchanged(t, s, full, "approval after a conflicting CreateApproval")
	_, err := s.GetApproval(ctx(t), "apr_missing")
	wantErr(t, err, store.ErrNotFound, "apr_missing", "GetApproval unknown")
}

func testApprovalList(t *testing.T, s store.Store) {
	list, err := s.ListApprovals(ctx(t), store.ApprovalFilter{})
	must(t, err, "ListApprovals on an empty store")
	if len(list) != 0 {
		t.Fatalf("ListApprovals on an empty store = %v, want none", list)
	}
	mk := func(id, status, principal string, created time.Duration) store.Approval {
		a := newApproval(id, "key-"+id, status, created, created+time.Hour)
		a.Principal = principal
		return a
	}
	// Created out of creation-time order: the list is newest first.
	in := []store.Approval{
		mk("apr_c", store.ApprovalApproved, "agent:agt_1", 3*time.Minute),
		mk("apr_a", store.ApprovalPending, "agent:agt_1", time.Minute),
		mk("apr_e", store.ApprovalPending, "user:alice", 5*time.Minute),
		mk("apr_b", store.ApprovalDenied, "user:alice", 2*time.Minute),
		mk("apr_d", store.ApprovalPending, "agent:agt_1", 4*time.Minute),
	}
	for _, a := range in {
		must(t, s.CreateApproval(ctx(t), a), "CreateApproval "+a.ID)
	}
	tests := []struct {
		name   string
		filter store.ApprovalFilter
		want   []string
	}{
		{"all", store.ApprovalFilter{}, []string{"apr_e", "apr_d", "apr_c", "apr_b", "apr_a"}},
		{"status", store.ApprovalFilter{Status: store.ApprovalPending}, []string{"apr_e", "apr_d", "apr_a"}},
		{"principal", store.ApprovalFilter{Principal: "user:alice"}, []string{"apr_e", "apr_b"}},
		{"status and principal", store.ApprovalFilter{Status: store.ApprovalPending, Principal: "agent:agt_1"}, []string{"apr_d", "apr_a"}},
		{"limit", store.ApprovalFilter{Limit: 2}, []string{"apr_e", "apr_d"}},
		{"limit and status", store.ApprovalFilter{Status: store.ApprovalPending, Limit: 1}, []string{"apr_e"}},
		{"limit above the count", store.ApprovalFilter{Limit: 10}, []string{"apr_e", "apr_d", "apr_c", "apr_b", "apr_a"}},
		{"unknown principal", store.ApprovalFilter{Principal: "user:nobody"}, nil},
		{"no match", store.ApprovalFilter{Status: store.ApprovalUsed}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.ListApprovals(ctx(t), tt.filter)
			must(t, err, "ListApprovals")
			if ids := approvalIDs(got); fmt.Sprint(ids) != fmt.Sprint(tt.want) {
				t.Fatalf("ListApprovals(%+v) = %v, want %v", tt.filter, ids, tt.want)
			}
		})
	}
	// Listing returns whole records.
	got, err := s.ListApprovals(ctx(t), store.ApprovalFilter{Status: store.ApprovalDenied})
	must(t, err, "ListApprovals denied")
	same(t, got, []store.Approval{in[3]}, "ListApprovals denied")
}

// testApprovalListLimit checks the default Limit of 100.
func testApprovalListLimit(t *testing.T, s store.Store) {
	const n = 105
	for i := range n {
		a := newApproval(fmt.Sprintf("apr_%03d", i), "key", store.ApprovalPending, time.Duration(i)*time.Second, time.Hour)
		must(t, s.CreateApproval(ctx(t), a), "CreateApproval "+a.ID)
	}
	tests := []struct {
		name   string
		limit  int
		want   int
		newest string
	}{
		{"default", 0, 100, fmt.Sprintf("apr_%03d", n-1)},
		{"explicit, above the default", 150, n, fmt.Sprintf("apr_%03d", n-1)},
	}
	for _, tt := range tests {
		got, err := s.ListApprovals(ctx(t), store.ApprovalFilter{Limit: tt.limit})
		must(t, err, "ListApprovals "+tt.name)
		if len(got) != tt.want || got[0].ID != tt.newest {
			t.Fatalf("ListApprovals with Limit %d: %d approvals %v, want %d starting at %s",
				tt.limit, len(got), approvalIDs(got), tt.want, tt.newest)
		}
	}
}

func testApprovalDecide(t *testing.T, s store.Store) {
	pending := func(id string) store.Approval {
		a := newApproval(id, "key-"+id, store.ApprovalPending, 0, time.Hour)
		must(t, s.CreateApproval(ctx(t), a), "CreateApproval "+id)
		return a
	}

	t.Run("approve and deny", func(t *testing.T) {
		for _, st := range []string{store.ApprovalApproved, store.ApprovalDenied} {
			a := pending("apr_" + st)
			got, err := s.DecideApproval(ctx(t), a.ID, st, "bob@example.com", "looked at it: "+st, at(time.Minute))
			must(t, err, "DecideApproval "+st)
			want := decided(a, st, "bob@example.com", "looked at it: "+st, time.Minute)
			same(t, got, want, "DecideApproval "+st+" result")
			unchanged(t, s, want, "approval after DecideApproval "+st)

			// Decided once and for all, whatever the second decision.
			for _, again := range []string{store.ApprovalApproved, store.ApprovalDenied} {
				_, err := s.DecideApproval(ctx(t), a.ID, again, "carol@example.com", "", at(2*time.Minute))
				wantErr(t, err, store.ErrUsed, a.ID, "DecideApproval "+again+" after "+st)
			}
			unchanged(t, s, want, "approval after deciding it twice")
		}
	})

	t.Run("not pending", func(t *testing.T) {
		for _, st := range []string{store.ApprovalApproved, store.ApprovalDenied, store.ApprovalUsed} {
			a := newApproval("apr_already_"+st, "key", st, 0, time.Hour)
			must(t, s.CreateApproval(ctx(t), a), "CreateApproval")
			_, err := s.DecideApproval(ctx(t), a.ID, store.ApprovalApproved, "bob@example.com", "", at(time.Minute))
			wantErr(t, err, store.ErrUsed, a.ID, "DecideApproval of an approval that is "+st)
			unchanged(t, s, a, "approval that is "+st+" after DecideApproval")
		}
	})

	t.Run("expired", func(t *testing.T) {
		for _, e := range []struct {
			name string
			at   time.Duration
		}{
			{"at ExpiresAt", time.Hour},
			{"after ExpiresAt", 2 * time.Hour},
		} {
			a := pending("apr_expired " + e.name)
			_, err := s.DecideApproval(ctx(t), a.ID, store.ApprovalApproved, "bob@example.com", "", at(e.at))
			wantErr(t, err, store.ErrUsed, a.ID, "DecideApproval "+e.name)
			unchanged(t, s, a, "approval after DecideApproval "+e.name)
		}
		// Just before expiry is still in time.
		a := pending("apr_in_time")
		_, err := s.DecideApproval(ctx(t), a.ID, store.ApprovalDenied, "bob@example.com", "", at(time.Hour-time.Millisecond))
		must(t, err, "DecideApproval a millisecond before ExpiresAt")
	})

	t.Run("not a decision", func(t *testing.T) {
		a := pending("apr_bad_status")
		for _, st := range []string{store.ApprovalPending, store.ApprovalUsed, "", "APPROVED", "maybe"} {
			_, err := s.DecideApproval(ctx(t), a.ID, st, "bob@example.com", "", at(time.Minute))
			if err == nil || errors.Is(err, store.ErrUsed) || errors.Is(err, store.ErrNotFound) {
				t.Errorf("DecideApproval with status %q: err = %v, want a plain error", st, err)
			}
		}
		unchanged(t, s, a, "approval after invalid decisions")
	})

	t.Run("unknown", func(t *testing.T) {
		_, err := s.DecideApproval(ctx(t), "apr_missing", store.ApprovalApproved, "bob@example.com", "", at(0))
		wantErr(t, err, store.ErrNotFound, "apr_missing", "DecideApproval unknown")
	})
}

// testApprovalDecideRace has several approvers decide one approval at once,
// half approving and half denying: exactly one decision sticks.
func testApprovalDecideRace(t *testing.T, s store.Store) {
	a := newApproval("apr_contended", "key", store.ApprovalPending, 0, time.Hour)
	must(t, s.CreateApproval(ctx(t), a), "CreateApproval")
	turn := make(chan int, racers)
	for i := range racers {
		turn <- i
	}
	winners := make(chan store.Approval, racers)
	errs := race(racers, func() error {
		st := store.ApprovalApproved
		if <-turn%2 == 1 {
			st = store.ApprovalDenied
		}
		got, err := s.DecideApproval(ctx(t), a.ID, st, "bob@example.com", st, at(time.Second))
		if err == nil {
			winners <- got
		}
		return err
	})
	countWins(t, errs, "DecideApproval")
	win := <-winners
	same(t, win, decided(a, win.Status, "bob@example.com", win.Status, time.Second), "the winning decision")
	unchanged(t, s, win, "approval after concurrent decisions")
}

func testApprovalFind(t *testing.T, s store.Store) {
	const key = "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8"
	in := []store.Approval{
		decided(newApproval("apr_old_approved", key, store.ApprovalPending, 0, time.Hour), store.ApprovalApproved, "bob@example.com", "", time.Minute),
		newApproval("apr_pending", key, store.ApprovalPending, time.Minute, 10*time.Minute),
		decided(newApproval("apr_denied", key, store.ApprovalPending, 2*time.Minute, time.Hour), store.ApprovalDenied, "bob@example.com", "", 2*time.Minute),
		newApproval("apr_used", key, store.ApprovalUsed, 3*time.Minute, time.Hour),
		newApproval("apr_short", key, store.ApprovalPending, 4*time.Minute, 5*time.Minute),
		newApproval("apr_other_key", "other", store.ApprovalPending, 6*time.Minute, time.Hour),
	}
	for _, a := range in {
		must(t, s.CreateApproval(ctx(t), a), "CreateApproval "+a.ID)
	}
	tests := []struct {
		name string
		key  string
		now  time.Duration
		want string // "" for ErrNotFound
	}{
		{"newest pending", key, 4*time.Minute + 30*time.Second, "apr_short"},
		{"newest expired at its ExpiresAt", key, 5 * time.Minute, "apr_pending"},
		{"only the approved one left", key, 10 * time.Minute, "apr_old_approved"},
		{"all expired", key, time.Hour, ""},
		{"other key", "other", 10 * time.Minute, "apr_other_key"},
		{"unknown key", "unknown", 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.FindApproval(ctx(t), tt.key, at(tt.now))
			if tt.want == "" {
				wantErr(t, err, store.ErrNotFound, tt.key, "FindApproval")
				return
			}
			must(t, err, "FindApproval")
			if got.ID != tt.want {
				t.Fatalf("FindApproval(%s, +%v) = %s, want %s", tt.key, tt.now, got.ID, tt.want)
			}
			for _, a := range in {
				if a.ID == tt.want {
					same(t, got, a, "FindApproval result")
				}
			}
		})
	}

	// Once used, an approval is no longer found.
	_, err := s.ConsumeApproval(ctx(t), "apr_old_approved", at(20*time.Minute))
	must(t, err, "ConsumeApproval")
	_, err = s.FindApproval(ctx(t), key, at(20*time.Minute))
	wantErr(t, err, store.ErrNotFound, key, "FindApproval after the approval was used")
}

func testApprovalConsume(t *testing.T, s store.Store) {
	t.Run("pending, approved, used", func(t *testing.T) {
		a := newApproval("apr_1", "key-1", store.ApprovalPending, 0, time.Hour)
		must(t, s.CreateApproval(ctx(t), a), "CreateApproval")
		_, err := s.ConsumeApproval(ctx(t), a.ID, at(time.Second))
		wantErr(t, err, store.ErrUsed, a.ID, "ConsumeApproval of a pending approval")
		unchanged(t, s, a, "pending approval after ConsumeApproval")

		approved, err := s.DecideApproval(ctx(t), a.ID, store.ApprovalApproved, "bob@example.com", "ok", at(time.Minute))
		must(t, err, "DecideApproval")
		got, err := s.ConsumeApproval(ctx(t), a.ID, at(2*time.Minute))
		must(t, err, "ConsumeApproval")
		want := approved
		want.Status, want.UsedAt = store.ApprovalUsed, ptr(2*time.Minute)
		same(t, got, want, "ConsumeApproval result")
		unchanged(t, s, want, "approval after ConsumeApproval")

		_, err = s.ConsumeApproval(ctx(t), a.ID, at(3*time.Minute))
		wantErr(t, err, store.ErrUsed, a.ID, "ConsumeApproval twice")
		unchanged(t, s, want, "approval after ConsumeApproval twice")
	})

	t.Run("not approved", func(t *testing.T) {
		for _, st := range []string{store.ApprovalPending, store.ApprovalDenied, store.ApprovalUsed} {
			a := newApproval("apr_"+st, "key", st, 0, time.Hour)
			must(t, s.CreateApproval(ctx(t), a), "CreateApproval")
			_, err := s.ConsumeApproval(ctx(t), a.ID, at(time.Minute))
			wantErr(t, err, store.ErrUsed, a.ID, "ConsumeApproval of an approval that is "+st)
			unchanged(t, s, a, "approval that is "+st+" after ConsumeApproval")
		}
	})

	t.Run("expired", func(t *testing.T) {
		for _, e := range []struct {
			name string
			now  time.Duration
		}{
			{"at ExpiresAt", time.Hour},
			{"after ExpiresAt", 2 * time.Hour},
		} {
			a := decided(newApproval("apr_expired "+e.name, "key", store.ApprovalPending, 0, time.Hour), store.ApprovalApproved, "bob@example.com", "", time.Minute)
			must(t, s.CreateApproval(ctx(t), a), "CreateApproval")
			_, err := s.ConsumeApproval(ctx(t), a.ID, at(e.now))
			wantErr(t, err, store.ErrUsed, a.ID, "ConsumeApproval "+e.name)
			unchanged(t, s, a, "approval after ConsumeApproval "+e.name)
		}
	})

	t.Run("unknown", func(t *testing.T) {
		_, err := s.ConsumeApproval(ctx(t), "apr_missing", at(0))
		wantErr(t, err, store.ErrNotFound, "apr_missing", "ConsumeApproval unknown")
	})
}

// testApprovalConsumeRace has several callers present one approval at once:
// it is single-use, so exactly one may proceed.
func testApprovalConsumeRace(t *testing.T, s store.Store) {
	a := decided(newApproval("apr_contended", "key", store.ApprovalPending, 0, time.Hour), store.ApprovalApproved, "bob@example.com", "", time.Minute)
	must(t, s.CreateApproval(ctx(t), a), "CreateApproval")
	want := a
	want.Status, want.UsedAt = store.ApprovalUsed, ptr(2*time.Minute)
	errs := race(racers, func() error {
		got, err := s.ConsumeApproval(ctx(t), a.ID, at(2*time.Minute))
		if err == nil {
			if d := diff(got, want); len(d) > 0 {
				t.Errorf("the winner got a different approval: %v", d)
			}
		}
		return err
	})
	countWins(t, errs, "ConsumeApproval")
	unchanged(t, s, want, "approval after concurrent consumers")
}

// SingleUseAcrossStores checks single use between processes: stores are
// several Stores opened on one database (as separate processes would
// have), and callers spread over them race to consume one approval and to
// note one grant's expiry; exactly one of each may win. It is exported for
// implementation-specific tests, which alone can open a second Store on
// the same database.
func SingleUseAcrossStores(t *testing.T, stores []store.Store) {
	t.Helper()
	first := stores[0]
	a := decided(newApproval("apr_shared", "key", store.ApprovalPending, 0, time.Hour), store.ApprovalApproved, "bob@example.com", "", time.Minute)
	must(t, first.CreateApproval(ctx(t), a), "CreateApproval")
	g := newGrant("grt_shared", "agt_1", "ops", 0, time.Hour)
	must(t, first.CreateGrant(ctx(t), g), "CreateGrant")

	turn := make(chan int, racers)
	for i := range racers {
		turn <- i
	}
	errs := race(racers, func() error {
		_, err := stores[<-turn%len(stores)].ConsumeApproval(ctx(t), a.ID, at(2*time.Minute))
		return err
	})
	countWins(t, errs, "ConsumeApproval across stores")

	for i := range racers {
		turn <- i
	}
	errs = race(racers, func() error {
		noted, err := stores[<-turn%len(stores)].MarkGrantExpired(ctx(t), g.ID, at(2*time.Hour))
		if err == nil && !noted {
			// Lost the race: as a consumer would, report it as ErrUsed.
			err = store.ErrUsed
		}
		return err
	})
	countWins(t, errs, "MarkGrantExpired across stores")
}
