package cli

import (
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"gatehouse/internal/admin"
	"gatehouse/internal/admin/admintest"
	"gatehouse/internal/policy"
)

// newPolicyServer runs an admin API whose running policy defines the
// bundles support and oncall and explains with explain (nil: none).
func newPolicyServer(t *testing.T, explain func(context.Context, policy.ExplainQuery) (policy.Explanation, error)) *admintest.Server {
	t.Helper()
	return admintest.New(t, admintest.WithPolicy(admintest.PolicyOptions{Bundles: []string{"support", "oncall"}, Explain: explain}))
}

// exitCode is the process exit status a command's error gives.
func exitCode(err error) int {
	var ee exitError
	switch {
	case errors.As(err, &ee):
		return ee.code
	case err != nil:
		return 1
	}
	return 0
}

var grantIDRE = regexp.MustCompile(`grt_[0-9a-f]+`)

func TestGrantCommands(t *testing.T) {
	s := newPolicyServer(t, nil)
	ok(t, s, newAgentCmd, "", "create", "bot", "--team", "support", "--owner", "alice@example.com")
	ok(t, s, newAgentCmd, "", "create", "other", "--team", "sales", "--owner", "bob@example.com")
	t.Setenv("USER", "carol")

	out := ok(t, s, newGrantCmd, "", "add", "--agent", "bot", "--bundle", "oncall", "--for", "2h", "--reason", "INC-42")
	id := grantIDRE.FindString(out)
	if id == "" || !strings.Contains(out, "Granted bundle oncall to agent bot for 2h") || !strings.Contains(out, "gatehouse grant revoke "+id) {
		t.Fatalf("add output:\n%s", out)
	}
	g, err := s.Store.GetGrant(context.Background(), id)
	if err != nil || g.CreatedBy != "carol" || g.Reason != "INC-42" || g.ExpiresAt.Sub(g.CreatedAt) != 2*time.Hour {
		t.Fatalf("stored grant %+v, %v (--by defaults to $USER)", g, err)
	}
	out = ok(t, s, newGrantCmd, "", "add", "--agent", "other", "--bundle", "support", "--for", "30m", "--reason", "pairing", "--by", "dave", "--json")
	var g2 admin.Grant
	if err := json.Unmarshal([]byte(out), &g2); err != nil || g2.CreatedBy != "dave" || g2.Agent != "other" {
		t.Fatalf("add --json: %v\n%s", err, out)
	}

	out = ok(t, s, newGrantCmd, "", "list")
	for _, re := range []string{
		`ID\s+AGENT\s+BUNDLE\s+STATUS\s+EXPIRES\s+BY\s+REASON`,
		id + `\s+bot\s+oncall\s+active\s+\S+ \S+ \(in (1h59m|2h)\)\s+carol\s+INC-42`,
		g2.ID + `\s+other\s+support\s+active\s+.*dave\s+pairing`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("list output does not match %s:\n%s", re, out)
		}
	}
	if out = ok(t, s, newGrantCmd, "", "list", "--agent", "other", "--active"); strings.Contains(out, id) || !strings.Contains(out, g2.ID) {
		t.Errorf("list --agent other --active:\n%s", out)
	}

	out = ok(t, s, newGrantCmd, "", "revoke", id)
	if !strings.Contains(out, "Revoked grant "+id+": agent bot no longer has bundle oncall") {
		t.Errorf("revoke output: %s", out)
	}
	if g, _ := s.Store.GetGrant(context.Background(), id); g.RevokedAt == nil || g.RevokedBy != "carol" {
		t.Errorf("after revoke: %+v", g)
	}
	if out = ok(t, s, newGrantCmd, "", "list"); !regexp.MustCompile(id + `\s+bot\s+oncall\s+revoked\s+revoked .* by carol`).MatchString(out) {
		t.Errorf("list after revoke:\n%s", out)
	}
	if out = ok(t, s, newGrantCmd, "", "list", "--agent", "bot", "--active"); !strings.Contains(out, "No active grants.") {
		t.Errorf("list --active after revoke:\n%s", out)
	}

	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown bundle", []string{"add", "--agent", "bot", "--bundle", "root", "--for", "1h", "--reason", "r"}, `unknown bundle "root"`},
		{"unknown agent", []string{"add", "--agent", "ghost", "--bundle", "oncall", "--for", "1h", "--reason", "r"}, `agent "ghost" not found`},
		{"missing reason", []string{"add", "--agent", "bot", "--bundle", "oncall", "--for", "1h"}, `required flag(s) "reason" not set`},
		{"blank reason", []string{"add", "--agent", "bot", "--bundle", "oncall", "--for", "1h", "--reason", " "}, "reason is required"},
		{"bad duration", []string{"add", "--agent", "bot", "--bundle", "oncall", "--for", "2 days", "--reason", "r"}, "invalid argument"},
		{"zero duration", []string{"add", "--agent", "bot", "--bundle", "oncall", "--for", "0s", "--reason", "r"}, "--for must be positive"},
		{"too long", []string{"add", "--agent", "bot", "--bundle", "oncall", "--for", "2200h", "--reason", "r"}, "from 1m to 90 days"},
		{"revoke twice", []string{"revoke", id}, "was already revoked by carol"},
		{"revoke unknown", []string{"revoke", "grt_nope"}, `grant "grt_nope" not found`},
		{"list unknown agent", []string{"list", "--agent", "ghost"}, `agent "ghost" not found`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := run(t, s, newGrantCmd, "", tt.args...)
			if r.err == nil || !strings.Contains(r.err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", r.err, tt.want)
			}
		})
	}

	// A gateway without a policy says so.
	plain := admintest.New(t)
	r := run(t, plain, newGrantCmd, "", "list")
	if r.err == nil || !strings.Contains(r.err.Error(), "no policy section is configured") {
		t.Errorf("without a policy: %v", r.err)
	}
	assertNoSecretsLogged(t, s)
}

func TestHumanDurationAndClean(t *testing.T) {
	for d, want := range map[time.Duration]string{
		20 * time.Second:                "<1m",
		59*time.Minute + 40*time.Second: "1h",
		90 * time.Minute:                "1h30m",
		-5 * time.Minute:                "5m",
		50 * time.Hour:                  "2d2h",
		72 * time.Hour:                  "3d",
	} {
		if got := humanDuration(d); got != want {
			t.Errorf("humanDuration(%s) = %q, want %q", d, got, want)
		}
	}
	if got := clean("a\x1b[31mb\u202e\n", 100); got != "a?[31mb??" {
		t.Errorf("clean: %q", got)
	}
	if got := clean("abcdef", 3); got != "abc…" {
		t.Errorf("clean cut: %q", got)
	}
}
