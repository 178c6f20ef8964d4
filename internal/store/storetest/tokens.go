package storetest

import (
	"crypto/sha256"
	"testing"
	"time"

	"gatehouse/internal/store"
)

// racers is how many goroutines try to consume one code or token at once.
const racers = 20

func hash(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

func newCode(secret string, expires time.Duration) store.AuthCode {
	return store.AuthCode{
		Hash:          hash(secret),
		ClientID:      "dcr_1",
		Username:      "alice@example.com",
		AgentID:       "agt_1",
		RedirectURI:   "http://127.0.0.1:33418/callback",
		CodeChallenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
		Resource:      "https://gateway.example.com/mcp/support",
		Scope:         "mcp:tools openid",
		CreatedAt:     at(0),
		ExpiresAt:     at(expires),
	}
}

func testAuthCodes(t *testing.T, s store.Store) {
	code := newCode("code-1", time.Minute)
	bare := store.AuthCode{Hash: hash("code-2"), ClientID: "dcr_1", Username: "bob@example.com", CreatedAt: at(0), ExpiresAt: at(time.Minute)}
	for _, c := range []store.AuthCode{code, bare} {
		must(t, s.CreateAuthCode(ctx(t), c), "CreateAuthCode")
	}
	wantErr(t, s.CreateAuthCode(ctx(t), newCode("code-1", time.Hour)), store.ErrConflict, "", "CreateAuthCode twice")

	for _, c := range []store.AuthCode{code, bare} {
		got, err := s.ConsumeAuthCode(ctx(t), c.Hash, at(time.Second))
		must(t, err, "ConsumeAuthCode")
		same(t, got, c, "consumed code")
		_, err = s.ConsumeAuthCode(ctx(t), c.Hash, at(2*time.Second))
		wantErr(t, err, store.ErrUsed, "", "ConsumeAuthCode a second time")
	}

	expiry := []struct {
		name string
		now  time.Duration
	}{
		{"at ExpiresAt", time.Minute},
		{"after ExpiresAt", time.Hour},
	}
	for _, e := range expiry {
		c := newCode("expiring "+e.name, time.Minute)
		must(t, s.CreateAuthCode(ctx(t), c), "CreateAuthCode")
		_, err := s.ConsumeAuthCode(ctx(t), c.Hash, at(e.now))
		wantErr(t, err, store.ErrUsed, "", "ConsumeAuthCode "+e.name)
	}

	_, err := s.ConsumeAuthCode(ctx(t), hash("never issued"), at(0))
	wantErr(t, err, store.ErrNotFound, "", "ConsumeAuthCode unknown")
}

func testAuthCodeRace(t *testing.T, s store.Store) {
	c := newCode("contended", time.Minute)
	must(t, s.CreateAuthCode(ctx(t), c), "CreateAuthCode")
	errs := race(racers, func() error {
		got, err := s.ConsumeAuthCode(ctx(t), c.Hash, at(time.Second))
		if err == nil {
			if d := diff(got, c); len(d) > 0 {
				t.Errorf("the winner got a different code: %v", d)
			}
		}
		return err
	})
	countWins(t, errs, "ConsumeAuthCode")
}

func newRefresh(secret, family string, expires time.Duration) store.RefreshToken {
	return store.RefreshToken{
		Hash:      hash(secret),
		Family:    family,
		ClientID:  "dcr_1",
		Username:  "alice@example.com",
		AgentID:   "agt_1",
		Resource:  "https://gateway.example.com/mcp/support",
		Scope:     "mcp:tools",
		CreatedAt: at(0),
		ExpiresAt: at(expires),
	}
}

func testRefreshTokens(t *testing.T, s store.Store) {
	day := 24 * time.Hour
	consume := func(t *testing.T, tok store.RefreshToken, now time.Duration) error {
		t.Helper()
		got, err := s.ConsumeRefreshToken(ctx(t), tok.Hash, at(now))
		if err == nil {
			same(t, got, tok, "consumed refresh token")
		}
		return err
	}

	t.Run("rotation and reuse", func(t *testing.T) {
		first := newRefresh("f1-1", "fam_1", day)
		must(t, s.CreateRefreshToken(ctx(t), first), "CreateRefreshToken")
		wantErr(t, s.CreateRefreshToken(ctx(t), newRefresh("f1-1", "fam_other", day)), store.ErrConflict, "", "CreateRefreshToken twice")
		bystander := newRefresh("f2-1", "fam_2", day)
		must(t, s.CreateRefreshToken(ctx(t), bystander), "CreateRefreshToken (other family)")

		must(t, consume(t, first, time.Minute), "consuming the first token")
		second := newRefresh("f1-2", "fam_1", day)
		second.CreatedAt = at(time.Minute)
		must(t, s.CreateRefreshToken(ctx(t), second), "CreateRefreshToken (rotated)")

		// Replaying the first token is theft: ErrUsed, and the rotated
		// token dies with its family.
		wantErr(t, consume(t, first, 2*time.Minute), store.ErrUsed, "", "reusing a rotated token")
		wantErr(t, consume(t, second, 3*time.Minute), store.ErrUsed, "", "the successor after reuse")
		// Revocation is sticky for tokens issued into the family later.
		late := newRefresh("f1-3", "fam_1", day)
		must(t, s.CreateRefreshToken(ctx(t), late), "CreateRefreshToken (after revocation)")
		wantErr(t, consume(t, late, 4*time.Minute), store.ErrUsed, "", "a token issued into a revoked family")
		// Other families are untouched.
		must(t, consume(t, bystander, 5*time.Minute), "consuming another family's token")
	})

	t.Run("expired", func(t *testing.T) {
		old := newRefresh("exp-1", "fam_exp", time.Hour)
		must(t, s.CreateRefreshToken(ctx(t), old), "CreateRefreshToken")
		wantErr(t, consume(t, old, time.Hour), store.ErrUsed, "", "consuming at ExpiresAt")
		// Presenting an expired token revoked its family, so it stays dead
		// even at a clock before its expiry.
		wantErr(t, consume(t, old, 0), store.ErrUsed, "", "consuming after an expired attempt")
	})

	t.Run("explicit revocation", func(t *testing.T) {
		a := newRefresh("rev-1", "fam_rev", day)
		keep := newRefresh("keep-1", "fam_keep", day)
		for _, tok := range []store.RefreshToken{a, keep} {
			must(t, s.CreateRefreshToken(ctx(t), tok), "CreateRefreshToken")
		}
		must(t, s.RevokeRefreshFamily(ctx(t), "fam_rev", at(time.Minute)), "RevokeRefreshFamily")
		must(t, s.RevokeRefreshFamily(ctx(t), "fam_rev", at(2*time.Minute)), "RevokeRefreshFamily again")
		must(t, s.RevokeRefreshFamily(ctx(t), "fam_never_issued", at(time.Minute)), "RevokeRefreshFamily unknown")
		wantErr(t, consume(t, a, 3*time.Minute), store.ErrUsed, "", "consuming a revoked token")
		must(t, consume(t, keep, 3*time.Minute), "consuming a token of another family")
	})

	t.Run("unknown", func(t *testing.T) {
		_, err := s.ConsumeRefreshToken(ctx(t), hash("never issued"), at(0))
		wantErr(t, err, store.ErrNotFound, "", "ConsumeRefreshToken unknown")
	})
}

func testRefreshTokenRace(t *testing.T, s store.Store) {
	tok := newRefresh("contended", "fam_race", time.Hour)
	must(t, s.CreateRefreshToken(ctx(t), tok), "CreateRefreshToken")
	errs := race(racers, func() error {
		_, err := s.ConsumeRefreshToken(ctx(t), tok.Hash, at(time.Second))
		return err
	})
	countWins(t, errs, "ConsumeRefreshToken")
	// The losers presented a used token: the family is revoked, so the
	// winner's rotated token is dead too.
	next := newRefresh("contended-next", "fam_race", time.Hour)
	must(t, s.CreateRefreshToken(ctx(t), next), "CreateRefreshToken (rotated)")
	_, err := s.ConsumeRefreshToken(ctx(t), next.Hash, at(2*time.Second))
	wantErr(t, err, store.ErrUsed, "", "the successor after a contended consume")
}
