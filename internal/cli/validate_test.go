package cli

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(good, []byte("upstreams: {a: {command: x}}\nservers: {s: {upstreams: [{upstream: a}]}}\n"), 0o600)
	os.WriteFile(bad, []byte("upstreams: {a: {command: x, url: 'http://h'}}\nservers: {s: {upstreams: [{upstream: b}]}}\n"), 0o600)
	badInspect := filepath.Join(dir, "inspect.yaml")
	os.WriteFile(badInspect, []byte("upstreams: {a: {command: x}}\nservers: {s: {upstreams: [{upstream: a}]}}\n"+
		"inspect:\n  pii: {region: XX}\n  secrets: {disabled_rules: [no-such-rule]}\n"), 0o600)
	badActions := filepath.Join(dir, "actions.yaml")
	os.WriteFile(badActions, []byte("upstreams: {a: {command: x}}\nservers: {s: {upstreams: [{upstream: a}]}}\n"+
		"inspect:\n  actions: [{category: secrets, action: drop}]\n"), 0o600)

	tests := []struct {
		file     string
		wantCode int
		want     []string
	}{
		{good, 0, []string{"good.yaml: ok (1 upstreams, 1 virtual servers)"}},
		{bad, 1, []string{
			"bad.yaml:1:16: upstreams.a: set either command (stdio) or url (HTTP), not both",
			`bad.yaml:2:38: servers.s.upstreams[0].upstream: unknown upstream "b"`,
			"2 problem(s) found",
		}},
		{badInspect, 1, []string{
			`inspect.yaml:4:17: inspect.pii.region: pii: default region "XX"`,
			`inspect.yaml:5:29: inspect.secrets.disabled_rules: disabled rule "no-such-rule": no rule has that id`,
			"2 problem(s) found",
		}},
		{badActions, 1, []string{
			`actions.yaml:4:24: inspect.actions[0].category: unknown category "secrets"`,
			`actions.yaml:4:41: inspect.actions[0].action: unknown action "drop"`,
			"2 problem(s) found",
		}},
	}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.file), func(t *testing.T) {
			cmd := newValidateCmd()
			cmd.SilenceUsage = true
			var out bytes.Buffer
			cmd.SetOut(&out)
			cmd.SetErr(&out)
			cmd.SetArgs([]string{"--config", tt.file})
			err := cmd.Execute()
			code := 0
			var ee exitError
			if errors.As(err, &ee) {
				code = ee.code
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tt.wantCode {
				t.Fatalf("exit code %d, want %d; output:\n%s", code, tt.wantCode, out.String())
			}
			for _, w := range tt.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
		})
	}
}
