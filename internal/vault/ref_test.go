package vault_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"gatehouse/internal/store"
	"gatehouse/internal/vault"
)

func TestParseRef(t *testing.T) {
	tests := []struct {
		in   string
		want string // "" when not a reference
	}{
		{"vault:github-token", "github-token"},
		{"vault:slack/bot.token:prod", "slack/bot.token:prod"},
		{"vault:", ""},
		{"vault:has space", ""},
		{" vault:x", ""},
		{"vault:x ", ""},
		{"Vault:x", ""},
		{"{{vault:x}}", ""},
		{"plain value", ""},
		{"", ""},
	}
	for _, tt := range tests {
		r, ok := vault.ParseRef(tt.in)
		if ok != (tt.want != "") || r.Name != tt.want {
			t.Errorf("ParseRef(%q) = %+v, %v; want %q", tt.in, r, ok, tt.want)
		}
		if ok && r.String() != tt.in {
			t.Errorf("Ref.String() = %q, want %q", r, tt.in)
		}
	}
}

func TestExpand(t *testing.T) {
	secrets := map[string]string{"github-token": "ghp_abc", "a": "A", "b": "B", "with-braces": "{{x}}"}
	var agents []string
	resolve := func(_ context.Context, name, agent string) ([]byte, error) {
		agents = append(agents, agent)
		v, ok := secrets[name]
		if !ok {
			return nil, fmt.Errorf("secret %q: %w", name, store.ErrNotFound)
		}
		return []byte(v), nil
	}
	tests := []struct {
		name, tmpl, want string
		wantErr          error
		wantMsg          string
		wantRefs         []string
	}{
		{name: "no refs", tmpl: "plain", want: "plain"},
		{name: "empty", tmpl: "", want: ""},
		{name: "bearer", tmpl: "Bearer {{vault:github-token}}", want: "Bearer ghp_abc", wantRefs: []string{"github-token"}},
		{name: "several", tmpl: "{{vault:a}}:{{vault:b}}/{{vault:a}}", want: "A:B/A", wantRefs: []string{"a", "b", "a"}},
		{name: "whole", tmpl: "{{vault:a}}", want: "A", wantRefs: []string{"a"}},
		{name: "spaces", tmpl: "x{{ vault:a  }}y", want: "xAy", wantRefs: []string{"a"}},
		{name: "value with braces is not expanded again", tmpl: "{{vault:with-braces}}", want: "{{x}}", wantRefs: []string{"with-braces"}},
		{name: "escape", tmpl: "{{{{vault:a}}", want: "{{vault:a}}"},
		{name: "escape then ref", tmpl: "{{{{{{vault:a}}", want: "{{A", wantRefs: []string{"a"}},
		{name: "escaped mustache", tmpl: "tpl {{{{ name }}", want: "tpl {{ name }}"},
		{name: "closing braces alone", tmpl: "}} and }", want: "}} and }"},
		{name: "single brace", tmpl: "{ vault:a }", want: "{ vault:a }"},
		{name: "missing secret", tmpl: "Bearer {{vault:gitlab-token}}", wantErr: store.ErrNotFound,
			wantMsg: "expanding {{vault:gitlab-token}}", wantRefs: []string{"gitlab-token"}},
		{name: "missing second", tmpl: "{{vault:a}}{{vault:nope}}", wantErr: store.ErrNotFound,
			wantMsg: "{{vault:nope}}", wantRefs: []string{"a", "nope"}},
		{name: "unterminated", tmpl: "x {{vault:a", wantErr: vault.ErrTemplate, wantMsg: "offset 2 is not closed"},
		{name: "not a ref", tmpl: "Bearer {{sk-live-123}}", wantErr: vault.ErrTemplate, wantMsg: "offset 7 does not start"},
		{name: "triple braces", tmpl: "{{{vault:a}}}", wantErr: vault.ErrTemplate},
		{name: "bad name", tmpl: "{{vault:bad name}}", wantErr: vault.ErrInvalidName},
		{name: "empty name", tmpl: "{{vault:}}", wantErr: vault.ErrInvalidName},
		{name: "error after escape", tmpl: "{{{{ {{x}}", wantErr: vault.ErrTemplate, wantMsg: "offset 5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			agents = nil
			got, err := vault.Expand(context.Background(), tt.tmpl, "agt_7", resolve)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.wantMsg) {
					t.Fatalf("Expand = %q, %v; want %v containing %q", got, err, tt.wantErr, tt.wantMsg)
				}
				if strings.Contains(err.Error(), "sk-live") || strings.Contains(err.Error(), "ghp_abc") {
					t.Fatalf("error leaks template text or a value: %v", err)
				}
			} else if err != nil || got != tt.want {
				t.Fatalf("Expand = %q, %v; want %q", got, err, tt.want)
			}
			for _, a := range agents {
				if a != "agt_7" {
					t.Fatalf("resolve got agent %q", a)
				}
			}

			refs, err := vault.Refs(tt.tmpl)
			if errors.Is(tt.wantErr, store.ErrNotFound) || tt.wantErr == nil {
				var names []string
				for _, r := range refs {
					names = append(names, r.Name)
				}
				if err != nil || !slices.Equal(names, tt.wantRefs) {
					t.Fatalf("Refs = %v, %v; want %v", names, err, tt.wantRefs)
				}
			} else if !errors.Is(err, vault.ErrTemplate) {
				t.Fatalf("Refs: %v, want ErrTemplate", err)
			}
		})
	}
}

func TestValueRedacts(t *testing.T) {
	const secret = "hunter2-very-secret"
	v := vault.Value(secret)
	for _, f := range []string{"%s", "%v", "%+v", "%#v", "%x", "%X", "%q", "%d", "%10s"} {
		got := fmt.Sprintf(f, v)
		if strings.Contains(got, "hunter2") || strings.Contains(got, fmt.Sprintf("%x", secret)) || !strings.Contains(got, vault.Redacted) {
			t.Errorf("Sprintf(%q) = %q", f, got)
		}
	}
	wrapped := struct {
		Name  string
		Value vault.Value
	}{"x", v}
	for _, got := range []string{fmt.Sprintf("%+v", wrapped), fmt.Sprintf("%#v", wrapped), fmt.Errorf("failed with %v", v).Error()} {
		if strings.Contains(got, "hunter2") {
			t.Errorf("leak: %q", got)
		}
	}
	js, err := json.Marshal(wrapped)
	if err != nil || bytes.Contains(js, []byte("hunter2")) || !bytes.Contains(js, []byte(vault.Redacted)) {
		t.Errorf("json = %s, %v", js, err)
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("msg", "token", v, "obj", wrapped)
	slog.New(slog.NewTextHandler(&buf, nil)).Info("msg", "token", v)
	if strings.Contains(buf.String(), "hunter2") {
		t.Errorf("slog leaks: %s", buf.String())
	}
	if string(v.Bytes()) != secret {
		t.Error("Bytes does not return the value")
	}
	v.Zero()
	if !bytes.Equal(v, make([]byte, len(secret))) {
		t.Error("Zero left bytes")
	}
}
